"""What every Keras class of keras-qa must do, checked the same way for each (as KerasHub's `TestCase`):
its config rebuilds it, it survives a `.keras` save and load with the same outputs, and it computes under
a mixed precision policy with float32 variables.

A class is described by a `KerasClassCase`: how to build it from a config, and how to call it. The
checks are functions, so that a test module runs them over its cases with `pytest.mark.parametrize`.
"""

import dataclasses
import os
from collections.abc import Callable

import keras
import numpy as np


@dataclasses.dataclass
class KerasClassCase:
    """One registered class and how to exercise it.

    Args:
        cls: the class.
        config: keyword arguments that build a small instance.
        call: `call(instance) -> output`, a nested structure of tensors (the class's forward pass,
            `update_state` + `result` for a metric, a few steps for a schedule).
        wrap: `wrap(instance) -> keras.Model` saving the instance inside a model (layers); None when
            the instance is itself saved (models) or serialized (schedules, metrics).
        tolerance: how far the mixed precision output may be from float32's.
    """

    cls: type
    config: dict
    call: Callable
    wrap: Callable | None = None
    tolerance: float = 0.1

    def build(self, dtype=None):
        config = dict(self.config)
        if dtype is not None:
            config["dtype"] = dtype
        return self.cls(**config)


def as_numpy(output):
    """A nested structure of tensors as float64 NumPy arrays, flattened to a list."""
    return [
        np.asarray(keras.ops.convert_to_numpy(x), np.float64) for x in keras.tree.flatten(output)
    ]


def assert_same_outputs(first, second, atol=1e-6):
    for a, b in zip(as_numpy(first), as_numpy(second), strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=1e-5)


def check_config_round_trip(case):
    """`from_config(get_config())` builds an instance with the same config."""
    instance = case.build()
    rebuilt = case.cls.from_config(instance.get_config())
    assert type(rebuilt) is case.cls
    assert rebuilt.get_config() == instance.get_config()


def check_saving_round_trip(case, folder):
    """Saved and loaded (a `.keras` file for layers and models, Keras serialization for schedules and
    metrics), the instance gives the same outputs; the loaded object is of the same class."""
    instance = case.build()
    expected = case.call(instance)
    if isinstance(instance, keras.Model) or case.wrap is not None:
        model = instance if case.wrap is None else case.wrap(instance)
        path = os.path.join(folder, "round_trip.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, compile=False)
        if case.wrap is not None:
            loaded = next(layer for layer in loaded.layers if isinstance(layer, case.cls))
    else:
        loaded = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(instance)
        )
    assert type(loaded) is case.cls
    assert_same_outputs(case.call(loaded), expected)


def check_mixed_precision(case, policy="mixed_bfloat16"):
    """Under `policy` the instance keeps float32 variables and computes what float32 computes, up to
    the precision's rounding (its weights set to the float32 instance's)."""
    reference = case.build()
    expected = case.call(reference)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        mixed = case.build()
        if isinstance(mixed, keras.layers.Layer):
            case.call(mixed)  # builds the layer's variables
            mixed.set_weights(reference.get_weights())
            assert all(variable.dtype == "float32" for variable in mixed.weights)
        found = case.call(mixed)
    finally:
        keras.config.set_dtype_policy(previous)
    for a, b in zip(as_numpy(found), as_numpy(expected), strict=True):
        assert np.isfinite(a).all()
        scale = max(1.0, float(np.abs(b).max()))
        assert float(np.abs(a - b).max()) <= case.tolerance * scale
    return found
