import keras
import keras_hub
import numpy as np
import pytest

TINY_BACKBONE = dict(
    vocabulary_size=50,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=32,
)
INPUTS = {
    "token_ids": np.arange(1, 25, dtype="int32").reshape(2, 12) % 50,
    "segment_ids": np.zeros((2, 12), dtype="int32"),
    "padding_mask": np.ones((2, 12), dtype="int32"),
}


@pytest.mark.parametrize(
    "exact_class, base_class, sizes",
    [
        ("ExactGeluBertBackbone", keras_hub.models.BertBackbone, {}),
        ("ExactGeluAlbertBackbone", keras_hub.models.AlbertBackbone, {"embedding_dim": 8}),
    ],
)
def test_exact_gelu_backbones_compute_erf_and_survive_saving(
    exact_class, base_class, sizes, tmp_path
):
    from keras_qa.models import exact_gelu as backbones

    config = {**TINY_BACKBONE, **sizes}
    exact = getattr(backbones, exact_class)(**config)
    approximate = base_class(**config)
    # Weights far larger than the initialisation's, so that the feedforward sees large inputs.
    large = [weight * 20 for weight in exact.get_weights()]
    exact.set_weights(large)
    approximate.set_weights(large)
    inputs = INPUTS
    exact_output = keras.ops.convert_to_numpy(exact(inputs)["sequence_output"])
    approximate_output = keras.ops.convert_to_numpy(approximate(inputs)["sequence_output"])
    assert np.abs(exact_output - approximate_output).max() > 1e-6  # the activations differ
    path = str(tmp_path / "backbone.keras")
    exact.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded).__name__ == exact_class
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(inputs)["sequence_output"]), exact_output, atol=1e-6
    )


def test_erf_gelu_equals_keras_exact_gelu_and_replaces_it_for_an_export():
    from keras_qa.models.exact_gelu import ExactGeluBertBackbone, erf_gelu, use_erf_gelu

    x = np.linspace(-6, 6, 101).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(erf_gelu(keras.ops.convert_to_tensor(x))),
        keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=False)),
        atol=1e-6,
    )
    config = {**TINY_BACKBONE, "num_layers": 2}
    exact = ExactGeluBertBackbone(**config)
    approximate = keras_hub.models.BertBackbone(**config)
    inputs = INPUTS
    before = keras.ops.convert_to_numpy(exact(inputs)["sequence_output"])
    use_erf_gelu(exact)
    use_erf_gelu(approximate)  # the tanh approximation is left as it is
    layers = [layer for layer in exact._flatten_layers() if getattr(layer, "activation", None)]
    assert sum(layer.activation is erf_gelu for layer in layers) == 4
    assert not any(
        getattr(layer, "activation", None) is erf_gelu for layer in approximate._flatten_layers()
    )
    after = keras.ops.convert_to_numpy(exact(inputs)["sequence_output"])
    np.testing.assert_allclose(after, before, atol=1e-5)
