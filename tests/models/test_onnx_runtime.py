import numpy as np
import pytest

from keras_qa.models.onnx_runtime import OnnxRuntimeModel
from keras_qa.models.task import PADDING_LOGIT

pytest.importorskip("onnxruntime")

NAMES = ["token_ids", "segment_ids", "padding_mask"]


def batch(rows=2, length=6):
    return {
        "token_ids": np.full((rows, length), 5, np.int32),
        "segment_ids": np.zeros((rows, length), np.int32),
        "padding_mask": np.tile((np.arange(length) < length - 2).astype(np.int32), (rows, 1)),
    }


def test_logits_are_float32_with_padding_at_the_padding_logit(tiny_int8_model_file):
    model = OnnxRuntimeModel(tiny_int8_model_file, NAMES, 128)
    outputs = model.predict_on_batch(batch())
    for name in ("start_logits", "end_logits"):
        assert outputs[name].dtype == np.float32 and outputs[name].shape == (2, 6)
        assert np.all(outputs[name][:, -2:] == PADDING_LOGIT)
        assert np.all(np.abs(outputs[name][:, :-2]) < 1e3)
    assert model.max_sequence_length == 128 and model.precision == "int8"


def test_the_input_order_of_the_keras_model_does_not_matter(tiny_int8_model_file):
    forward = OnnxRuntimeModel(tiny_int8_model_file, NAMES, 128).predict_on_batch(batch())
    backward = OnnxRuntimeModel(tiny_int8_model_file, NAMES[::-1], 128).predict_on_batch(batch())
    np.testing.assert_array_equal(forward["start_logits"], backward["start_logits"])


def test_a_file_that_takes_an_input_the_model_lacks_is_refused(tiny_int8_model_file):
    with pytest.raises(ValueError, match="token_type_ids"):
        OnnxRuntimeModel(tiny_int8_model_file, ["token_ids", "padding_mask"], 128)


def test_a_file_onnx_runtime_cannot_read_is_a_model_file_error_naming_it(tmp_path):
    from keras_qa.errors import ModelFileError

    damaged = tmp_path / "model.onnx"
    damaged.write_bytes(b"not an onnx graph")
    with pytest.raises(ModelFileError, match=f"{damaged} is not an ONNX model"):
        OnnxRuntimeModel(str(damaged), NAMES, 128)
