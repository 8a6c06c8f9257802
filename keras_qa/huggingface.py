"""Hugging Face checkpoint folders: their backbone through KerasHub, and a QA checkpoint's trained head.

A `*ForQuestionAnswering` checkpoint is an encoder plus `qa_outputs`, a `Linear(hidden, 2)` whose two
outputs are the start and end logits: the same computation as keras-qa's `SpanHead`. Loading it whole
gives a `QuestionAnsweringModel` that answers with no training.

KerasHub converts the encoder (BERT, DistilBERT, RoBERTa, XLM-RoBERTa, ALBERT), with corrections so that
it computes what transformers computes:
- its BERT and ALBERT converters also ask for the pooler, which question-answering checkpoints do not
  have, so here the pooler is optional (question answering never reads it);
- its BERT and ALBERT compute the tanh approximation of GELU, so a checkpoint trained with the exact
  one (`"hidden_act": "gelu"`) gets `ExactGeluBertBackbone` / `ExactGeluAlbertBackbone`; its RoBERTa
  and XLM-RoBERTa compute the exact one, so a checkpoint of another activation is refused;
- its RoBERTa converter drops the token type embedding, which transformers adds to every token
  (RoBERTa has one type), so here it is added into the position embeddings, as KerasHub's own
  XLM-RoBERTa converter does.
"""

import json
import os

import numpy as np

from keras_qa.errors import ModelFileError
from keras_qa.files import read_json_object

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
    _weight_files(folder)  # a clear error when there are no safetensors weights
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
    """The backbone class that computes what the checkpoint was trained with (its `hidden_act`, and
    for RoBERTa its positions; see the module docstring), or a `ModelFileError`."""
    import keras_hub

    from keras_qa.backbones import ExactGeluAlbertBackbone, ExactGeluBertBackbone

    activation = config.get("hidden_act")
    exact = {
        keras_hub.models.BertBackbone: ExactGeluBertBackbone,
        keras_hub.models.AlbertBackbone: ExactGeluAlbertBackbone,
    }
    if backbone_class in exact:
        return exact[backbone_class] if activation == "gelu" else backbone_class
    if issubclass(backbone_class, keras_hub.models.RobertaBackbone):
        if activation != "gelu":
            raise ModelFileError(
                f"{folder}: hidden_act {activation!r}; KerasHub's {backbone_class.__name__} "
                "computes the exact GELU ('gelu') only."
            )
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
    from keras_qa.model import QuestionAnsweringModel
    from keras_qa.tokenizer import load_tokenizer

    if not has_span_head(folder):
        raise ModelFileError(
            f"{folder}: a {model_type(folder)} encoder without a question-answering head "
            f"({HEAD_WEIGHT}); fine-tune it first: python -m keras_qa.train --model {folder}"
        )
    check_question_answering_type(folder)
    backbone = load_backbone(folder)
    model = QuestionAnsweringModel(backbone)
    load_span_head(model, folder)
    positions = getattr(backbone, "max_sequence_length", None) or ANSWERING_MAX_LENGTH
    max_length = min(ANSWERING_MAX_LENGTH, positions)
    doc_stride = min(ANSWERING_DOC_STRIDE, max_length // 3)
    return model, load_tokenizer(folder), {"max_length": max_length, "doc_stride": doc_stride}


def check_question_answering_type(folder):
    """Refuse a QA checkpoint of a model type whose head and tokenizer keras-qa cannot load yet."""
    found = model_type(folder)
    if found not in QUESTION_ANSWERING_MODEL_TYPES:
        raise ModelFileError(
            f"{folder}: a {found!r} question-answering checkpoint; keras-qa loads those of "
            f"{', '.join(QUESTION_ANSWERING_MODEL_TYPES)} (model_type in config.json)."
        )


def _weight_files(folder):
    """`{tensor name: safetensors file name}` of a folder, one file or sharded."""
    from safetensors import safe_open

    index = os.path.join(folder, WEIGHTS_INDEX_FILE)
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as file:
            return dict(json.load(file)["weight_map"])
    path = os.path.join(folder, WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{folder}: no {WEIGHTS_FILE} (looked for {path}). keras-qa loads Hugging Face "
            "checkpoints in the safetensors format."
        )
    with safe_open(path, framework="np") as weights:
        return {name: WEIGHTS_FILE for name in weights.keys()}


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


def save_question_answering_checkpoint(model, tokenizer, folder):
    """Write a keras-qa model as a Hugging Face `*ForQuestionAnswering` folder.

    transformers loads the folder with `AutoModelForQuestionAnswering` and `AutoTokenizer`:
    `config.json`, `model.safetensors` (the encoder's weights under transformers' names, the span head
    as `qa_outputs`) and the tokenizer (`tokenizer.json` with the pair template, and
    `tokenizer_config.json`).

    Args:
        model: a `QuestionAnsweringModel` with a KerasHub BERT, DistilBERT, RoBERTa, XLM-RoBERTa or
            ALBERT backbone.
        tokenizer: its `QATokenizer`.
        folder: the folder to write (created; it must not hold a checkpoint already).
    """
    import keras
    from safetensors.numpy import save_file

    config = _transformers_config(model.backbone, tokenizer)
    tensors = _transformers_weights(model.backbone)
    tensors[HEAD_WEIGHT] = np.asarray(keras.ops.convert_to_numpy(model.head.dense.kernel)).T
    tensors[HEAD_BIAS] = np.asarray(keras.ops.convert_to_numpy(model.head.dense.bias))
    os.makedirs(folder, exist_ok=True)
    tensors = {name: np.ascontiguousarray(value, np.float32) for name, value in tensors.items()}
    save_file(tensors, os.path.join(folder, WEIGHTS_FILE), metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file, indent=2)
    tokenizer.save_hugging_face(folder, model_max_length=model.backbone.max_sequence_length)


def _transformers_config(backbone, tokenizer):
    """transformers' `config.json` for a KerasHub BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT
    backbone."""
    import keras_hub

    from keras_qa.backbones import ExactGeluAlbertBackbone, ExactGeluBertBackbone

    common = {
        "vocab_size": backbone.vocabulary_size,
        "max_position_embeddings": backbone.max_sequence_length,
        "pad_token_id": tokenizer.pad_token_id,
        "initializer_range": 0.02,
    }
    if isinstance(backbone, keras_hub.models.DistilBertBackbone):
        return {
            "architectures": ["DistilBertForQuestionAnswering"],
            "model_type": "distilbert",
            "dim": backbone.hidden_dim,
            "n_layers": backbone.num_layers,
            "n_heads": backbone.num_heads,
            "hidden_dim": backbone.intermediate_dim,
            "activation": "gelu",
            "dropout": backbone.dropout,
            "attention_dropout": backbone.dropout,
            "sinusoidal_pos_embds": False,
            **common,
        }
    family = _export_family(backbone)
    roberta = family["model_type"] in ("roberta", "xlm-roberta")
    exact = isinstance(backbone, (ExactGeluBertBackbone, ExactGeluAlbertBackbone)) or roberta
    encoder = {
        "architectures": [f"{family['class']}ForQuestionAnswering"],
        "model_type": family["model_type"],
        "hidden_size": backbone.hidden_dim,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        # KerasHub's own BERT and ALBERT compute the tanh approximation: say so, so that
        # transformers does; RoBERTa's compute the exact GELU.
        "hidden_act": "gelu" if exact else family["approximate_gelu"],
        "type_vocab_size": getattr(backbone, "num_segments", 1),
        "layer_norm_eps": 1e-5 if roberta else 1e-12,
        "hidden_dropout_prob": backbone.dropout,
        "attention_probs_dropout_prob": backbone.dropout,
        **common,
    }
    if roberta:
        encoder["max_position_embeddings"] += family["position_offset"]
        encoder["bos_token_id"] = tokenizer.cls_token_id
        encoder["eos_token_id"] = tokenizer.layout.suffix[-1]
    if family["model_type"] == "albert":
        encoder["embedding_size"] = backbone.embedding_dim
        encoder["num_hidden_groups"] = backbone.num_groups
        encoder["inner_group_num"] = backbone.num_inner_repetitions
    return encoder


def _export_family(backbone):
    """What the export of a BERT-like backbone needs to know: transformers' class and model type,
    KerasHub's converter module, and how many position rows transformers reserves before the first."""
    import keras_hub

    families = [  # subclasses first: XLM-RoBERTa is a RoBERTa in KerasHub
        (keras_hub.models.XLMRobertaBackbone, "XLMRoberta", "xlm-roberta", "convert_xlm_roberta", 2),
        (keras_hub.models.RobertaBackbone, "Roberta", "roberta", "convert_roberta", 2),
        (keras_hub.models.AlbertBackbone, "Albert", "albert", "convert_albert", 0),
        (keras_hub.models.BertBackbone, "Bert", "bert", "convert_bert", 0),
        (keras_hub.models.DistilBertBackbone, "DistilBert", "distilbert", "convert_distilbert", 0),
    ]
    for backbone_class, name, model_type, converter, offset in families:
        if isinstance(backbone, backbone_class):
            return {
                "class": name,
                "model_type": model_type,
                "converter": converter,
                "position_offset": offset,
                # transformers' two names of the tanh approximation; ALBERT's configs use the first.
                "approximate_gelu": "gelu_new" if model_type == "albert" else "gelu_pytorch_tanh",
            }
    raise ModelFileError(
        "export to Hugging Face format takes BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT "
        f"backbones; this model has a {type(backbone).__name__}"
    )


def _transformers_weights(backbone):
    """The backbone's weights under transformers' names, by running KerasHub's own converter
    backwards: each weight it would read is recorded with its reshaping, which is then undone."""
    import importlib

    import keras

    family = _export_family(backbone)
    converter = importlib.import_module(
        f"keras_hub.src.utils.transformers.{family['converter']}"
    )
    recorder = _RecordingLoader()
    converter.convert_weights(backbone, recorder, {})
    # transformers' XLM-RoBERTa keeps RoBERTa's weight names.
    prefix = {"xlm-roberta": "roberta."}.get(family["model_type"], f"{family['model_type']}.")
    tensors = {}
    for variable, key, hook in recorder.ports:
        if "pooler" in key.split("."):
            continue  # question-answering checkpoints have no pooler
        name = key if key.startswith(prefix) else prefix + key
        value = keras.ops.convert_to_numpy(variable)
        if family["position_offset"] and key.endswith("position_embeddings.weight"):
            # Rows transformers reserves before the first position (padding) are never read for
            # real tokens; the token type row, folded into the positions on loading, stays there.
            reserved = np.zeros((family["position_offset"], value.shape[1]), value.dtype)
            tensors[name] = np.concatenate([reserved, value])
            tensors[prefix + "embeddings.token_type_embeddings.weight"] = reserved[:1]
            continue
        tensors[name] = _undo_hook(value, key, hook)
    return tensors


def _undo_hook(value, key, hook):
    """The transformers tensor that `hook` (a reshape and / or transpose) turns into `value`."""
    if hook is None:
        return value
    total = value.size
    if key.endswith("bias"):
        shape = (total,)
    elif value.ndim == 3:  # attention projections: square (hidden, hidden) matrices in PyTorch
        side = int(round(total**0.5))
        shape = (side, side)
    elif value.ndim == 2:  # feedforward Linear weights: (out, in) in PyTorch
        shape = value.shape[::-1]
    else:
        shape = (total,)
    probe = np.arange(total).reshape(shape)
    positions = np.asarray(hook(probe, list(value.shape))).reshape(-1)
    if positions.size != total or not np.array_equal(np.sort(positions), np.arange(total)):
        raise ModelFileError(f"cannot map the Keras weight of {key} back to transformers' layout")
    flat = np.empty(total, dtype=value.dtype)
    flat[positions] = value.reshape(-1)
    return flat.reshape(shape)


class _RecordingLoader:
    """Stands in for KerasHub's `SafetensorLoader`: records what would be ported, reads nothing."""

    def __init__(self):
        self.ports = []

    def get_tensor(self, hf_weight_key):
        if hf_weight_key.endswith("token_type_embeddings.weight"):
            # XLM-RoBERTa's converter adds this row into the position embeddings: adding zeros
            # leaves them as they are.
            return np.zeros((1, 1), dtype="float32")
        raise KeyError(hf_weight_key)  # BERT's converter probes the LayerNorm naming this way

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        self.ports.append((keras_variable, hf_weight_key, hook_fn))
