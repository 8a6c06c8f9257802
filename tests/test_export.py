import importlib.util

import keras
import numpy as np
import pytest

from keras_qa.export import export_model, main, sample_inputs
from keras_qa.saving import load_trained_model

BACKEND = keras.backend.backend()
needs_export_backend = pytest.mark.skipif(
    BACKEND == "torch", reason="export runs on the TensorFlow or JAX backend"
)


@needs_export_backend
def test_a_saved_model_gives_the_keras_logits(tiny_trained_model, tmp_path, capsys):
    import tensorflow as tf

    output = str(tmp_path / "saved")
    path, difference = main(["--model", tiny_trained_model, "--output", output])
    assert path == output and difference < 1e-4
    assert "exported tf_saved_model" in capsys.readouterr().out
    model, tokenizer, config = load_trained_model(tiny_trained_model)
    # A batch the export has not seen, at the length it takes.
    length = None if BACKEND == "tensorflow" else config["max_length"]
    inputs = sample_inputs(tokenizer, model.input_names, config["max_length"], length)
    inputs = {name: value[::-1].copy() for name, value in inputs.items()}
    loaded = tf.saved_model.load(output)  # kept: its variables die with it
    exported = loaded.serve({name: tf.constant(value) for name, value in inputs.items()})
    expected = model.predict_on_batch(inputs)
    for name in ("start_logits", "end_logits"):
        np.testing.assert_allclose(exported[name].numpy(), expected[name], atol=1e-4)
    assert (tmp_path / "saved" / "tokenizer" / "vocab.txt").is_file()
    assert (tmp_path / "saved" / "keras_qa.json").is_file()
    with pytest.raises(FileExistsError, match="exists"):
        export_model(tiny_trained_model, output)


@pytest.mark.skipif(
    BACKEND != "tensorflow" or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export runs on the TensorFlow backend with the onnx extra",
)
def test_an_onnx_export_gives_the_keras_logits(tiny_trained_model, tmp_path):
    path, difference = export_model(tiny_trained_model, str(tmp_path / "m.onnx"), "onnx")
    assert difference < 1e-4 and (tmp_path / "m.onnx").stat().st_size > 10_000


def test_bad_format_and_backend_errors(tiny_trained_model, tmp_path):
    with pytest.raises(ValueError, match="tf_saved_model, onnx"):
        export_model(tiny_trained_model, str(tmp_path / "x"), "coreml")
    if BACKEND == "torch":
        with pytest.raises(RuntimeError, match="TensorFlow or JAX backend"):
            export_model(tiny_trained_model, str(tmp_path / "x"))
