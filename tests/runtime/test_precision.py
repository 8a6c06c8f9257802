import keras
import pytest

from keras_qa.runtime.backend import has_accelerator
from keras_qa.runtime.cpu import cpu_has_bfloat16
from keras_qa.runtime.precision import answering_dtype, resolve_precision


def test_precision_choices():
    assert resolve_precision("off") == "float32"
    if keras.backend.backend() != "jax":  # JAX on the CPU refuses float16 (tests/test_model.py)
        assert resolve_precision("float16") == "mixed_float16"
    assert resolve_precision("bfloat16") == "mixed_bfloat16"
    expected = "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    assert resolve_precision("auto") == expected  # these tests run on CPUs
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_precision("int8")


def test_answering_precision_is_float32_on_a_cpu_unless_asked():
    assert not has_accelerator()  # these tests run on CPUs
    assert answering_dtype("auto") == "float32"
    assert answering_dtype("mixed_bfloat16") == "mixed_bfloat16"
    assert answering_dtype(None) is None
