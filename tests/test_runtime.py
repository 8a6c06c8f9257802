import keras
import pytest

from keras_qa.runtime import (
    answering_dtype,
    cpu_has_bfloat16,
    has_accelerator,
    resolve_precision,
    versions,
)


def test_precision_choices():
    assert resolve_precision("off") == "float32"
    if keras.backend.backend() != "jax":  # JAX on the CPU refuses float16 (tests/test_model.py)
        assert resolve_precision("float16") == "mixed_float16"
    assert resolve_precision("bfloat16") == "mixed_bfloat16"
    bfloat16 = keras.backend.backend() in ("tensorflow", "torch") and cpu_has_bfloat16()
    expected = "mixed_bfloat16" if bfloat16 else "float32"
    assert resolve_precision("auto") == expected  # these tests run on CPUs
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_precision("int8")


def test_answering_precision_is_float32_on_a_cpu_unless_asked():
    assert not has_accelerator()  # these tests run on CPUs
    assert answering_dtype("auto") == "float32"
    assert answering_dtype("mixed_bfloat16") == "mixed_bfloat16"
    assert answering_dtype(None) is None


def test_versions_name_the_backend_in_use():
    found = versions()
    assert found["keras"] == keras.__version__
    backend = keras.backend.backend()
    assert found[backend] == __import__(backend).__version__
