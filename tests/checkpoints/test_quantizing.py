import os

import numpy as np
import onnx
import pytest
from onnx import helper

from keras_qa import load_examples, load_trained_model, prepare_eval_features
from keras_qa.checkpoints import quantizing
from keras_qa.checkpoints.quantizing import gelu_readers, int8_onnx_model
from keras_qa.models.batching import predict_logits
from keras_qa.models.onnx_runtime import OnnxRuntimeModel

pytest.importorskip("onnxruntime")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def trained(tiny_trained_model):
    return load_trained_model(tiny_trained_model)


def test_the_int8_file_is_fused_quantized_and_keeps_what_reads_gelu_in_float32(
    tiny_int8_model_file,
):
    graph = onnx.load(tiny_int8_model_file).graph
    operations = {node.op_type for node in graph.node}
    # ONNX Runtime fused attention and quantized it; dense products run on int8.
    assert "QAttention" in operations
    assert "MatMulInteger" in operations or "DynamicQuantizeMatMul" in operations
    float_products = [node for node in graph.node if node.op_type == "MatMul"]
    assert float_products and gelu_readers(graph) == [node.name for node in float_products]


def test_int8_logits_pick_the_float_answers(trained, tiny_int8_model_file, tiny_data_file):
    model, tokenizer, config = trained
    examples = load_examples(tiny_data_file)[:24]
    features = prepare_eval_features(examples, tokenizer, config["max_length"], 16)
    expected = predict_logits(model, features, 8)
    int8_model = OnnxRuntimeModel(
        tiny_int8_model_file, model.input_names, model.backbone.max_sequence_length
    )
    found = predict_logits(int8_model, features, 8)
    real = features["padding_mask"] == 1
    for want, got in zip(expected, found):
        assert np.all(got[~real] == want[~real])  # padding: the Keras head's own value
        spread = np.ptp(want[real])
        assert np.max(np.abs(got[real] - want[real])) < 0.1 * spread
        agree = np.mean(np.argmax(got, axis=1) == np.argmax(want, axis=1))
        assert agree >= 0.9


def test_a_model_is_converted_once_and_other_weights_get_their_own_file(trained, tmp_path):
    model, tokenizer, _ = trained
    first = int8_onnx_model(model, tokenizer, cache_folder=str(tmp_path))
    written = os.stat(first).st_mtime_ns
    assert int8_onnx_model(model, tokenizer, cache_folder=str(tmp_path)) == first
    assert os.stat(first).st_mtime_ns == written
    assert os.listdir(os.path.dirname(first)) == ["model.onnx"]  # nothing but the file is kept

    weights = model.get_weights()
    model.set_weights([w + 0.01 for w in weights])
    try:
        second = int8_onnx_model(model, tokenizer, cache_folder=str(tmp_path))
    finally:
        model.set_weights(weights)
    assert second != first and os.path.isfile(second)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".int8-")]


def test_a_failed_export_says_what_to_install_and_leaves_nothing(trained, tmp_path, monkeypatch):
    model, tokenizer, _ = trained
    monkeypatch.setattr(quantizing, "EXPORT_SCRIPT", "import transformers_is_not_here")
    with pytest.raises(RuntimeError, match=r"int8\]"):
        int8_onnx_model(model, tokenizer, cache_folder=str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_the_default_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_QA_CACHE", str(tmp_path))
    assert quantizing.default_cache_folder() == os.path.join(str(tmp_path), "int8")
    monkeypatch.delenv("KERAS_QA_CACHE")
    assert quantizing.default_cache_folder().endswith(os.path.join(".cache", "keras-qa", "int8"))


def _graph(nodes):
    return helper.make_graph(nodes, "g", [], [])


def test_gelu_readers_finds_products_after_a_fused_or_spelled_out_gelu():
    fused = _graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="up"),
            helper.make_node("BiasGelu", ["h", "b"], ["g"], name="gelu"),
            helper.make_node("MatMul", ["g", "w2"], ["y"], name="down"),
            helper.make_node("MatMul", ["y", "w3"], ["z"], name="next"),
        ]
    )
    assert gelu_readers(fused) == ["down"]
    spelled = _graph(
        [
            helper.make_node("Div", ["h", "sqrt2"], ["s"], name="div"),
            helper.make_node("Erf", ["s"], ["e"], name="erf"),
            helper.make_node("Add", ["e", "one"], ["a"], name="add"),
            helper.make_node("Mul", ["h", "a"], ["m"], name="mul"),
            helper.make_node("Mul", ["m", "half"], ["g"], name="half"),
            helper.make_node("MatMul", ["g", "w2"], ["y"], name="down"),
            helper.make_node("MatMul", ["h", "w3"], ["z"], name="beside"),
        ]
    )
    assert gelu_readers(spelled) == ["down"]
