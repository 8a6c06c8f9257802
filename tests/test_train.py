import dataclasses

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
        kind = next(k for k in (int, float, str) if k in getattr(field.type, "__args__", (field.type,)))
        text = field.metadata.get("choices", (values[kind],))[0]
        assert getattr(settings_from_args([flag, text]), field.name) == kind(text)


def test_bad_values_are_refused_by_the_parser(capsys):
    for argv in (["--epochs", "two"], ["--mixed-precision", "int8"], ["--learning-rate", "fast"]):
        with pytest.raises(SystemExit):
            settings_from_args(argv)
        assert "error: argument" in capsys.readouterr().err
