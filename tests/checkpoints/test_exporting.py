import importlib.util
import os

import keras
import numpy as np
import pytest

from keras_qa.checkpoints.exporting import sample_inputs
from keras_qa.checkpoints.saving import load_trained_model
from keras_qa.export import export_model, main

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


@pytest.mark.skipif(
    BACKEND != "tensorflow" or importlib.util.find_spec("onnxruntime") is None,
    reason="ONNX export runs on the TensorFlow backend with the onnx extra",
)
def test_an_onnx_export_of_a_bfloat16_exact_gelu_model_loads_and_gives_its_logits(
    tiny_trained_model, tmp_path
):
    # What a Hugging Face BERT trained by the quickstart is: exact GELU (erf), mixed_bfloat16.
    from keras_qa.checkpoints.saving import save_trained_model
    from keras_qa.models.exact_gelu import ExactGeluBertBackbone
    from keras_qa.models.task import QuestionAnsweringModel

    model, tokenizer, config = load_trained_model(tiny_trained_model)
    backbone_config = {**model.backbone.get_config(), "dtype": "mixed_bfloat16"}
    exact = QuestionAnsweringModel(ExactGeluBertBackbone.from_config(backbone_config))
    exact.set_weights(model.get_weights())
    folder = str(tmp_path / "model")
    os.makedirs(folder)
    save_trained_model(exact, tokenizer, folder, **config)
    path, difference = export_model(folder, str(tmp_path / "m.onnx"), "onnx")
    assert difference < 1e-4


def test_bad_format_and_backend_errors(tiny_trained_model, tmp_path):
    with pytest.raises(ValueError, match="tf_saved_model, onnx, huggingface"):
        export_model(tiny_trained_model, str(tmp_path / "x"), "coreml")
    if BACKEND == "torch":
        with pytest.raises(RuntimeError, match="TensorFlow or JAX backend"):
            export_model(tiny_trained_model, str(tmp_path / "x"))


@pytest.fixture(scope="module")
def tiny_distilbert_model(tmp_path_factory, tiny_distilbert_preset, tiny_data_file):
    """The tiny DistilBERT preset, fine-tuned by keras-qa."""
    from keras_qa.training.run import fine_tune
    from tests.conftest import tiny_settings

    output = tmp_path_factory.mktemp("distilbert_trained") / "model"
    data = {"train": tiny_data_file, "eval": None}
    settings = tiny_settings(tiny_distilbert_preset, data, output, epochs=1, checkpoint_every=0)
    fine_tune(settings, verbose=0)
    return str(output)


@pytest.mark.parametrize("architecture", ["bert", "distilbert"])
def test_a_hugging_face_export_loads_in_transformers_with_the_same_logits(
    architecture, tiny_trained_model, tiny_distilbert_model, tmp_path
):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    model_dir = tiny_trained_model if architecture == "bert" else tiny_distilbert_model
    output = str(tmp_path / "hf")
    path, difference = main(["--model", model_dir, "--format", "huggingface", "--output", output])
    assert path == output and difference < 1e-4
    reloaded = transformers.AutoModelForQuestionAnswering.from_pretrained(output).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(output)
    prefix = "Bert" if architecture == "bert" else "DistilBert"
    assert type(reloaded).__name__ == f"{prefix}ForQuestionAnswering"
    # transformers' own tokenizer lays out the pair as keras-qa does, and its logits match.
    model, qa_tokenizer, config = load_trained_model(model_dir)
    question, context = "where did the cat run ?", "the red mat . the cat ran to london ."
    encoded = tokenizer(question, context, return_tensors="pt")
    example = {"id": "0", "question": question, "context": context, "answers": {}}
    from keras_qa.text.features import prepare_eval_features

    features = prepare_eval_features([example], qa_tokenizer, config["max_length"], 16)
    real = features["padding_mask"][0] == 1
    assert encoded["input_ids"][0].tolist() == features["token_ids"][0][real].tolist()
    with torch.no_grad():
        start = reloaded(**encoded).start_logits.numpy()[0]
    expected = model.predict_on_batch({k: features[k] for k in model.input_names})["start_logits"]
    np.testing.assert_allclose(start, np.asarray(expected)[0][real], atol=1e-4)
    # ... and keras-qa reads the export back as a question-answering checkpoint.
    from keras_qa.answering.answerer import QuestionAnswerer

    answer = QuestionAnswerer.from_pretrained(output)(question, context)
    assert context[answer["start"] : answer["end"]] == answer["answer"]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_an_interrupted_export_leaves_nothing_and_can_be_run_again(
    tiny_trained_model, tmp_path, monkeypatch, interruption
):
    import keras_qa.checkpoints.exporting as exporting

    def interrupted(folder, inputs):
        assert os.path.isfile(os.path.join(folder, "config.json"))  # written, not yet checked
        raise interruption("stopped during the check")

    output = tmp_path / "exports" / "hf"
    with monkeypatch.context() as patched:
        patched.setattr(exporting, "_transformers_logits", interrupted)
        with pytest.raises(interruption):
            export_model(tiny_trained_model, str(output), "huggingface")
    assert os.listdir(tmp_path / "exports") == []  # neither the folder nor a temporary one
    pytest.importorskip("transformers")
    path, difference = export_model(tiny_trained_model, str(output), "huggingface")
    assert path == str(output) and difference < 1e-4
    assert sorted(os.listdir(tmp_path / "exports")) == ["hf"]
