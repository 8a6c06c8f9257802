import pytest

from keras_qa.train import build_parser, settings_from_args
from keras_qa.training import TrainSettings


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


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in (
        "--model",
        "--train-data",
        "--eval-data",
        "--max-length",
        "--doc-stride",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--warmup",
        "--weight-decay",
        "--mixed-precision",
        "--max-train-examples",
        "--max-eval-examples",
        "--output-dir",
        "--seed",
        "--resume",
        "--recipe",
    ):
        assert flag in text
