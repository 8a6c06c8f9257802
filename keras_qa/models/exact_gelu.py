"""KerasHub encoders that compute the exact GELU (erf), as Hugging Face checkpoints with
`"hidden_act": "gelu"` were trained; KerasHub's BERT and ALBERT compute the tanh approximation."""

import keras
import keras_hub


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
