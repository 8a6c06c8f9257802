import dataclasses

import pytest

from keras_qa.train import build_parser, settings_from_args
from keras_qa.training.settings import TrainSettings


def test_no_arguments_is_the_quickstart():
    assert settings_from_args([]) == TrainSettings()


def test_flags_override_the_recipe():
    settings = settings_from_args(
        [
            "--recipe",
            "keras-io",
            "--epochs",
            "2",
            "--eval-data",
            "none",
            "--max-train-examples",
            "100",
            "--dropout",
            "checkpoint",
            "--mixed-precision",
            "bfloat16",
            "--resume",
        ]
    )
    assert settings.model == "distil_bert_base_en" and settings.batch_size == 32
    assert settings.epochs == 2 and settings.eval_data is None
    assert settings.max_train_examples == 100 and settings.dropout is None
    assert settings.mixed_precision == "bfloat16" and settings.resume


@pytest.mark.parametrize("spelling", [["--bucket-width", "none"], ["--bucket-width=none"]])
def test_none_overrides_a_setting_that_has_a_value(spelling):
    assert TrainSettings().bucket_width is not None
    assert settings_from_args(spelling).bucket_width is None
    assert settings_from_args(["--dropout", "0.2"]).dropout == 0.2
    assert settings_from_args([]).dropout == TrainSettings().dropout


def test_help_names_every_setting_with_its_help_and_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--recipe" in text
    for field in dataclasses.fields(TrainSettings):
        assert "--" + field.name.replace("_", "-") in text
        assert " ".join(field.metadata["help"].split()) in text
        if field.type is not bool:
            default = "none" if field.default is None else field.default
            assert f"(quickstart: {default})" in text


def test_every_flag_reaches_its_setting():
    """A value for each flag, different from the default, arrives in the settings as typed."""
    values = {int: "7", float: "0.5", str: "some/where"}
    for field in dataclasses.fields(TrainSettings):
        flag = "--" + field.name.replace("_", "-")
        if field.type is bool:
            assert getattr(settings_from_args([flag]), field.name) is True
            continue
        kind = next(
            k for k in (int, float, str) if k in getattr(field.type, "__args__", (field.type,))
        )
        text = field.metadata.get("choices", (values[kind],))[0]
        assert getattr(settings_from_args([flag, text]), field.name) == kind(text)


def test_bad_values_are_refused_by_the_parser(capsys):
    for argv in (["--epochs", "two"], ["--mixed-precision", "int8"], ["--learning-rate", "fast"]):
        with pytest.raises(SystemExit):
            settings_from_args(argv)
        assert "error: argument" in capsys.readouterr().err


def keras_io_run(model, data_file, output_dir):
    """`python -m keras_qa.train --recipe keras-io` offline on `model`, a few steps."""
    import json

    from keras_qa.train import main

    main(
        [
            "--recipe",
            "keras-io",
            "--model",
            model,
            "--train-data",
            data_file,
            "--eval-data",
            data_file,
            "--output-dir",
            str(output_dir),
            "--checkpoint-every",
            "0",
        ]
    )
    return json.loads((output_dir / "metrics.json").read_text())


def check_trained_distilbert(output_dir, tmp_path):
    """The run saved a DistilBERT model that reloads, answers and exports to transformers."""
    import keras_hub

    import keras_qa
    from keras_qa.answering.answerer import QuestionAnswerer

    model, _, config = keras_qa.load_trained_model(str(output_dir))
    assert isinstance(model.backbone, keras_hub.models.DistilBertBackbone)
    assert (config["max_length"], config["doc_stride"]) == (384, 128)  # the recipe's windows
    context = "the red mat . the cat ran to london . the dog sat in paris ."
    answer = QuestionAnswerer.from_pretrained(str(output_dir))("where did the cat run ?", context)
    assert context[answer["start"] : answer["end"]] == answer["answer"] != ""
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from keras_qa.export import export_model

    _, difference = export_model(str(output_dir), str(tmp_path / "hf"), "huggingface")
    assert difference < 1e-4


def test_the_keras_io_recipe_trains_a_keras_hub_distilbert(
    tiny_distilbert_preset, tiny_data_file, tmp_path
):
    metrics = keras_io_run(tiny_distilbert_preset, tiny_data_file, tmp_path / "run")
    assert metrics["settings"]["batch_size"] == 32 and metrics["settings"]["learning_rate"] == 5e-5
    assert 0 <= metrics["eval"]["f1"] <= 100
    check_trained_distilbert(tmp_path / "run", tmp_path)


def test_the_keras_io_recipe_trains_a_hugging_face_distilbert_qa_checkpoint(
    tiny_data_file, tmp_path
):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from tests.conftest import TINY_WORDS

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    checkpoint = tmp_path / "checkpoint"
    transformers.BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(checkpoint)
    config = transformers.DistilBertConfig(
        vocab_size=len(vocabulary),
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=512,
    )
    transformers.DistilBertForQuestionAnswering(config).save_pretrained(checkpoint)
    metrics = keras_io_run(str(checkpoint), tiny_data_file, tmp_path / "run")
    assert 0 <= metrics["eval"]["f1"] <= 100
    check_trained_distilbert(tmp_path / "run", tmp_path)


def test_the_compilation_cache_flag_belongs_to_the_command_not_to_the_settings(capsys):
    assert settings_from_args(["--compilation-cache", "none"]) == TrainSettings()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "--compilation-cache DIR|none" in capsys.readouterr().out
