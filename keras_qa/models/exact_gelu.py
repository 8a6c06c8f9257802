"""KerasHub encoders that compute the exact GELU (erf), as Hugging Face checkpoints with
`"hidden_act": "gelu"` were trained; KerasHub's BERT and ALBERT compute the tanh approximation."""

import math

import keras
import keras_hub


def erf_gelu(x):
    """The exact GELU written with `erf`: `x / 2 * (1 + erf(x / sqrt 2))`.

    `keras.activations.gelu` computes the same in one fused kernel on each backend, but on TensorFlow
    with `erfc`, which ONNX has no operator for; an ONNX export computes this instead
    (`use_erf_gelu`).

    Example:
    >>> round(float(erf_gelu(keras.ops.convert_to_tensor(1.0))), 4)
    0.8413
    """
    return 0.5 * x * (1.0 + keras.ops.erf(x * (1.0 / math.sqrt(2.0))))


def use_erf_gelu(backbone):
    """Make a backbone's exact-GELU feedforward layers compute `erf_gelu` (for an ONNX export)."""
    for layer in backbone._flatten_layers():
        if getattr(layer, "activation", None) is keras.activations.gelu:
            layer.activation = erf_gelu


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
