import keras
import keras_hub
import numpy as np
import pytest


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

    config = dict(
        vocabulary_size=50,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
        **sizes,
    )
    exact = getattr(backbones, exact_class)(**config)
    approximate = base_class(**config)
    # Weights far larger than the initialisation's, so that the feedforward sees large inputs.
    large = [weight * 20 for weight in exact.get_weights()]
    exact.set_weights(large)
    approximate.set_weights(large)
    inputs = {
        "token_ids": np.arange(1, 25, dtype="int32").reshape(2, 12) % 50,
        "segment_ids": np.zeros((2, 12), dtype="int32"),
        "padding_mask": np.ones((2, 12), dtype="int32"),
    }
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
