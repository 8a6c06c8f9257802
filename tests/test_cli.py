import argparse
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

from keras_qa.answering.answerer import QuestionAnswerer
from keras_qa.checkpoints.saving import read_config
from keras_qa.cli import (
    add_model_arguments,
    default_compilation_cache,
    load_answerer,
    use_compilation_cache,
)
from keras_qa.errors import SettingsError

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMPORT_CLI = (
    "import json, os, sys\n"
    "import keras_qa.cli\n"
    "print(json.dumps([os.environ.get('TF_CPP_MIN_LOG_LEVEL'), 'tensorflow' in sys.modules]))"
)


def import_cli_in_a_new_process(level):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        environment["TF_CPP_MIN_LOG_LEVEL"] = level
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CLI],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_quiets_tensorflow_before_it_loads():
    # Set before TensorFlow is imported, or TensorFlow would not read it.
    assert import_cli_in_a_new_process(None) == ["3", False]


def test_importing_keeps_a_level_the_user_chose():
    assert import_cli_in_a_new_process("1") == ["1", False]
    assert import_cli_in_a_new_process("0") == ["0", False]


def model_parser():
    parser = argparse.ArgumentParser(prog="test")
    add_model_arguments(parser)
    return parser


def test_model_flags_and_their_defaults():
    args = model_parser().parse_args(["--model", "runs/x"])
    # The defaults are QuestionAnswerer.from_pretrained's own.
    defaults = inspect.signature(QuestionAnswerer.from_pretrained).parameters
    assert args.model == "runs/x"
    assert args.batch_size == defaults["batch_size"].default == 32
    assert args.dtype == defaults["dtype"].default == "auto"
    args = model_parser().parse_args(
        ["--model", "m", "--batch-size", "7", "--dtype", "mixed_bfloat16"]
    )
    assert (args.model, args.batch_size, args.dtype) == ("m", 7, "mixed_bfloat16")


def test_the_model_flag_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        model_parser().parse_args(["--batch-size", "4"])
    assert exit_info.value.code == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        model_parser().parse_args(["--model", "m", "--batch-size", "four"])


def test_load_answerer_loads_the_trained_model_with_the_flags(tiny_trained_model):
    args = model_parser().parse_args(
        ["--model", tiny_trained_model, "--batch-size", "5", "--dtype", "float32"]
    )
    answerer = load_answerer(args)
    assert isinstance(answerer, QuestionAnswerer)
    config = read_config(tiny_trained_model)
    assert answerer.batch_size == 5
    assert answerer.max_length == config["max_length"]
    assert answerer.doc_stride == config["doc_stride"]
    assert answerer.model.backbone.dtype_policy.name == "float32"
    context = "the red mat . the cat ran to london . the dog sat in paris ."
    answer = answerer("where did the cat run ?", context)
    assert answer["answer"] == context[answer["start"] : answer["end"]]


def test_load_answerer_computes_in_the_dtype_asked(tiny_trained_model):
    args = model_parser().parse_args(["--model", tiny_trained_model, "--dtype", "mixed_bfloat16"])
    answerer = load_answerer(args)
    assert answerer.batch_size == 32
    assert answerer.model.backbone.dtype_policy.name == "mixed_bfloat16"


def test_load_answerer_of_a_folder_that_is_not_a_trained_model(tmp_path):
    args = model_parser().parse_args(["--model", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_answerer(args)


def test_the_default_compilation_cache_is_a_folder_per_cpu_unless_the_variable_says():
    home = {"XDG_CACHE_HOME": "/somewhere"}
    folder = default_compilation_cache(home)
    assert folder == default_compilation_cache(home)
    assert re.fullmatch(r"/somewhere/keras_qa/xla-[0-9a-f]{12}", folder)
    assert default_compilation_cache({**home, "KERAS_QA_COMPILATION_CACHE": "/mine"}) == "/mine"
    for off in ("none", "NONE", "0", ""):
        assert default_compilation_cache({**home, "KERAS_QA_COMPILATION_CACHE": off}) is None


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="only JAX keeps compiled programs")
def test_a_compilation_cache_that_cannot_be_made_is_an_error_if_asked_for_and_a_warning_if_not(
    tmp_path, monkeypatch, jax_cache_settings
):
    import jax

    a_file = tmp_path / "a file"
    a_file.write_text("")
    assert jax.config.jax_compilation_cache_dir is None
    with pytest.raises(SettingsError, match="--compilation-cache .*a file/cache"):
        use_compilation_cache(argparse.Namespace(compilation_cache=str(a_file / "cache")))
    monkeypatch.setenv("KERAS_QA_COMPILATION_CACHE", str(a_file / "cache"))
    with pytest.warns(UserWarning, match="compiled programs are not kept between runs"):
        assert use_compilation_cache(argparse.Namespace(compilation_cache=None)) is None
    assert use_compilation_cache(argparse.Namespace(compilation_cache="none")) is None
    folder = str(tmp_path / "cache")
    assert use_compilation_cache(argparse.Namespace(compilation_cache=folder)) == folder
    assert jax.config.jax_compilation_cache_dir == folder


def test_load_answerer_answers_with_an_int8_copy_when_asked(tiny_trained_model):
    pytest.importorskip("onnxruntime")
    from keras_qa.models.onnx_runtime import OnnxRuntimeModel

    args = model_parser().parse_args(["--model", tiny_trained_model, "--quantize", "int8"])
    answerer = load_answerer(args)
    assert isinstance(answerer.model, OnnxRuntimeModel) and answerer.model.precision == "int8"
    context = "the red mat . the cat ran to london . the dog sat in paris ."
    answer = answerer("where did the cat run ?", context)
    assert answer["answer"] == context[answer["start"] : answer["end"]]


def test_quantize_takes_int8_only_and_no_other_dtype(tiny_trained_model, capsys):
    with pytest.raises(SystemExit):
        model_parser().parse_args(["--model", tiny_trained_model, "--quantize", "int4"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err
    args = ["--model", tiny_trained_model, "--quantize", "int8", "--dtype", "mixed_bfloat16"]
    with pytest.raises(ValueError, match="computes in int8"):
        load_answerer(model_parser().parse_args(args))
