"""Hugging Face checkpoint folders: their backbone through KerasHub, and a QA checkpoint's trained head.

A `*ForQuestionAnswering` checkpoint is an encoder plus `qa_outputs`, a `Linear(hidden, 2)` whose two
outputs are the start and end logits: the same computation as keras-qa's `SpanHead`. Loading it whole
gives a `QuestionAnsweringModel` that answers with no training.

KerasHub converts the encoder (BERT, DistilBERT, RoBERTa, XLM-RoBERTa, ALBERT), with corrections so that
it computes what transformers computes:
- its BERT and ALBERT converters also ask for the pooler, which question-answering checkpoints do not
  have, so here the pooler is optional (question answering never reads it);
- its BERT and ALBERT compute the tanh approximation of GELU, so a checkpoint trained with the exact
  one (`"hidden_act": "gelu"`) gets `ExactGeluBertBackbone` / `ExactGeluAlbertBackbone`; its
  DistilBERT, RoBERTa and XLM-RoBERTa compute the exact one; a checkpoint of an activation KerasHub
  does not compute is refused;
- its RoBERTa converter drops the token type embedding, which transformers adds to every token
  (RoBERTa has one type), so here it is added into the position embeddings, as KerasHub's own
  XLM-RoBERTa converter does.
"""

import os

from keras_qa.checkpoints.tokenizers import from_hugging_face_folder
from keras_qa.checkpoints.weight_shapes import check_finite_weights, check_sizes, header_shapes
from keras_qa.errors import ModelFileError
from keras_qa.files import read_json, read_json_object

# The model types whose question-answering checkpoints load whole (backbone, head, tokenizer).
QUESTION_ANSWERING_MODEL_TYPES = ("bert", "distilbert", "roberta", "xlm-roberta", "albert")
HEAD_WEIGHT, HEAD_BIAS = "qa_outputs.weight", "qa_outputs.bias"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
# What is downloaded of an `hf://org/name` repository: the config, the weights and the tokenizer.
MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "model-*.safetensors",
    WEIGHTS_INDEX_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)
# transformers' names of the tanh approximation of GELU (what KerasHub's BERT and ALBERT compute), and
# each model type's activation when its config names none.
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")
DEFAULT_ACTIVATIONS = {"albert": "gelu_new"}
# Windows of a checkpoint loaded to answer: those of Hugging Face's question-answering pipeline.
ANSWERING_MAX_LENGTH, ANSWERING_DOC_STRIDE = 384, 128


def model_type(folder):
    """The checkpoint's `model_type` from its `config.json` (None when it names none)."""
    return read_json_object(os.path.join(folder, "config.json")).get("model_type")


def has_span_head(folder):
    """Whether a Hugging Face folder holds a trained question-answering head (`qa_outputs`)."""
    return HEAD_WEIGHT in _weight_files(folder)


def load_backbone(folder, **overrides):
    """The KerasHub backbone of a Hugging Face folder, its weights converted; no pooler needed.

    Args:
        folder: a local Hugging Face folder (`config.json`, `model.safetensors`).
        **overrides: backbone config values to replace, such as `dropout=0.0`.
    """
    import keras_hub
    from keras_hub.src.utils.transformers.preset_loader import TransformersPresetLoader
    from keras_hub.src.utils.transformers.safetensor_utils import SafetensorLoader

    config = read_json_object(os.path.join(folder, "config.json"))
    # Before KerasHub builds what the config says: the sizes must be the weights'.
    check_sizes(folder, config, header_shapes(folder, _weight_files(folder)))
    # KerasHub's own loader picks the converter of the model type; the weights are ported here so
    # that a missing pooler can be skipped.
    loader = TransformersPresetLoader(folder, config)
    backbone_class = loader.converter.backbone_cls
    if not issubclass(backbone_class, keras_hub.models.Backbone):
        raise ModelFileError(f"{folder}: KerasHub has no encoder backbone for {config!r}")
    backbone_class = _faithful_backbone_class(backbone_class, config, folder)
    backbone = loader.load_backbone(backbone_class, load_weights=False, **overrides)
    with SafetensorLoader(folder) as tensors:
        loader.converter.convert_weights(backbone, _PoolerOptional(tensors), config)
        if type(backbone) is keras_hub.models.RobertaBackbone:
            _add_token_type_embedding(backbone, tensors)
    return backbone


def _faithful_backbone_class(backbone_class, config, folder):
    """The backbone class that computes what the checkpoint was trained with (its activation, and
    for RoBERTa its positions; see the module docstring), or a `ModelFileError`."""
    import keras_hub

    from keras_qa.models.exact_gelu import ExactGeluAlbertBackbone, ExactGeluBertBackbone

    model_type = config.get("model_type")
    key = "activation" if model_type == "distilbert" else "hidden_act"
    activation = config.get(key, DEFAULT_ACTIVATIONS.get(model_type, "gelu"))
    exact = {
        keras_hub.models.BertBackbone: ExactGeluBertBackbone,
        keras_hub.models.AlbertBackbone: ExactGeluAlbertBackbone,
    }
    computed, names = ("gelu",), "the exact GELU ('gelu')"
    if backbone_class in exact:
        computed += TANH_GELU
        names += f" or its tanh approximation ({', '.join(map(repr, TANH_GELU))})"
    if activation not in computed:
        raise ModelFileError(
            f"{folder}/config.json: {key} {activation!r}; KerasHub's {backbone_class.__name__} "
            f"computes {names} only"
        )
    if backbone_class in exact:
        return exact[backbone_class] if activation == "gelu" else backbone_class
    if issubclass(backbone_class, keras_hub.models.RobertaBackbone):
        if config.get("pad_token_id", 1) != 1:
            # transformers starts positions after the padding id; KerasHub after row 2.
            raise ModelFileError(
                f"{folder}: pad_token_id {config['pad_token_id']}; KerasHub's RoBERTa converter "
                "reads the positions of checkpoints whose padding id is 1 (all published ones)."
            )
    return backbone_class


def _add_token_type_embedding(backbone, tensors):
    """Add RoBERTa's one token type embedding row to every position embedding (what transformers
    adds to every token); KerasHub's RoBERTa has no token types."""
    try:
        row = tensors.get_tensor("embeddings.token_type_embeddings.weight")[0]
    except Exception:  # safetensors raises its own error type for a missing tensor
        return
    positions = backbone.embeddings.position_embedding.position_embeddings
    positions.assign(positions + row.astype("float32"))


def load_span_head(model, folder):
    """Copy a question-answering checkpoint's `qa_outputs` into `model`'s span head.

    Args:
        model: a `QuestionAnsweringModel` whose backbone came from `folder`.
        folder: a Hugging Face `*ForQuestionAnswering` folder.
    """
    from safetensors import safe_open

    files = _weight_files(folder)
    values = {}
    for name in (HEAD_WEIGHT, HEAD_BIAS):
        if name not in files:
            raise ModelFileError(f"{folder}: no {name} in its weights; not a QA checkpoint")
        with safe_open(os.path.join(folder, files[name]), framework="np") as weights:
            values[name] = weights.get_tensor(name)
    kernel = model.head.dense.kernel
    if values[HEAD_WEIGHT].shape != tuple(reversed(kernel.shape)):
        raise ModelFileError(
            f"{folder}: {HEAD_WEIGHT} has shape {values[HEAD_WEIGHT].shape}; a span head over "
            f"hidden size {kernel.shape[0]} needs (2, {kernel.shape[0]})"
        )
    kernel.assign(values[HEAD_WEIGHT].T.astype("float32"))
    model.head.dense.bias.assign(values[HEAD_BIAS].astype("float32"))


def load_question_answering_model(folder):
    """A Hugging Face `*ForQuestionAnswering` folder as `(model, tokenizer, config)`, like
    `keras_qa.load_trained_model`: its encoder, its trained span head and its own tokenizer.

    Args:
        folder: a local Hugging Face folder whose weights hold `qa_outputs`.

    Returns:
        A `QuestionAnsweringModel`, its `QATokenizer`, and `{"max_length", "doc_stride"}`: the
        pipeline's 384 / 128, or fewer tokens where the checkpoint has fewer positions.
    """
    from keras_qa.models.task import QuestionAnsweringModel

    if not has_span_head(folder):
        raise ModelFileError(
            f"{folder}: a {model_type(folder)} encoder without a question-answering head "
            f"({HEAD_WEIGHT}); fine-tune it first: python -m keras_qa.train --model {folder}"
        )
    check_question_answering_type(folder)
    backbone = load_backbone(folder)
    model = QuestionAnsweringModel(backbone)
    load_span_head(model, folder)
    check_finite_weights(model, folder)
    positions = getattr(backbone, "max_sequence_length", None) or ANSWERING_MAX_LENGTH
    max_length = min(ANSWERING_MAX_LENGTH, positions)
    doc_stride = min(ANSWERING_DOC_STRIDE, max_length // 3)
    return (
        model,
        from_hugging_face_folder(folder),
        {"max_length": max_length, "doc_stride": doc_stride},
    )


def start_from_span_head(folder, model):
    """Copy the folder's trained span head into `model`, where the folder has one."""
    if has_span_head(folder):
        check_question_answering_type(folder)
        load_span_head(model, folder)


def check_question_answering_type(folder):
    """Refuse a QA checkpoint of a model type whose head and tokenizer keras-qa cannot load yet."""
    found = model_type(folder)
    if found not in QUESTION_ANSWERING_MODEL_TYPES:
        raise ModelFileError(
            f"{folder}: a {found!r} question-answering checkpoint; keras-qa loads those of "
            f"{', '.join(QUESTION_ANSWERING_MODEL_TYPES)} (model_type in config.json)."
        )


def _weight_files(folder):
    """`{tensor name: safetensors file name}` of a folder, one file or sharded; every file named is a
    plain file of the folder itself (an index may not point elsewhere), else a `ModelFileError`."""
    index = os.path.join(folder, WEIGHTS_INDEX_FILE)
    if os.path.isfile(index):
        return _checked_weight_map(folder, index)
    path = os.path.join(folder, WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{folder}: no {WEIGHTS_FILE} (looked for {path}). keras-qa loads Hugging Face "
            "checkpoints in the safetensors format."
        )
    return dict.fromkeys(header_shapes(folder, {WEIGHTS_FILE: WEIGHTS_FILE}), WEIGHTS_FILE)


def _checked_weight_map(folder, index):
    """The `weight_map` of a sharded checkpoint's index, each shard a file inside `folder`."""
    weight_map = read_json(index, ModelFileError)
    weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelFileError(f"{index}: no 'weight_map' (tensor name -> shard file) in it")
    for name, shard in weight_map.items():
        plain = isinstance(shard, str) and shard not in ("", ".", "..")
        if not plain or os.path.basename(shard) != shard or os.path.isabs(shard):
            raise ModelFileError(
                f"{index}: the shard of {name!r} is {shard!r}; shards must be files of the "
                "checkpoint's own folder, named without a path"
            )
        if not os.path.isfile(os.path.join(folder, shard)):
            raise ModelFileError(f"{index}: the shard {shard} of {name!r} is missing from {folder}")
    return dict(weight_map)


class _PoolerOptional:
    """A KerasHub `SafetensorLoader` that leaves the pooler as initialised when the file has none."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        if "pooler" in hf_weight_key.split("."):
            try:
                self._loader.get_tensor(hf_weight_key)
            except Exception:  # safetensors raises its own error type for a missing tensor
                return
        self._loader.port_weight(keras_variable, hf_weight_key, hook_fn)
