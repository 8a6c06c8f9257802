import inspect
import logging
import sys

import pytest

from keras_qa.serve import build_parser, log_to_stderr, main
from keras_qa.serving.app import create_app

FLAGS = (
    "--model",
    "--batch-size",
    "--dtype",
    "--host",
    "--port",
    "--max-body-bytes",
    "--max-context-chars",
    "--max-request-windows",
    "--max-queue",
    "--max-batch",
    "--debug",
)


def test_defaults_serve_on_loopback_with_the_app_limits():
    args = build_parser().parse_args(["--model", "runs/x"])
    assert args.model == "runs/x"
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    # The limits default to create_app's own.
    limits = inspect.signature(create_app).parameters
    assert args.max_body_bytes == limits["max_body_bytes"].default == 1_000_000
    assert args.max_context_chars == limits["max_context_chars"].default == 100_000
    assert args.max_batch == limits["max_batch"].default == 16
    assert args.max_request_windows == limits["max_request_windows"].default == 128
    assert args.max_queue == limits["max_queue"].default == 64
    # Short turns: a short request waits for at most one turn of a long one.
    assert (args.batch_size, args.dtype) == (8, "auto")


def test_flags_are_parsed_as_numbers():
    args = build_parser().parse_args(
        "--model m --host 0.0.0.0 --port 9001 --max-body-bytes 2048 --max-context-chars 500 "
        "--max-batch 4 --batch-size 8 --max-request-windows 12 --max-queue 3".split()
    )
    assert (args.host, args.port, args.max_body_bytes) == ("0.0.0.0", 9001, 2048)
    assert (args.max_context_chars, args.max_batch, args.batch_size) == (500, 4, 8)
    assert (args.max_request_windows, args.max_queue) == (12, 3)


@pytest.mark.parametrize(
    "flag", ["--max-body-bytes", "--max-context-chars", "--max-request-windows", "--max-queue"]
)
@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_limits_must_be_positive_integers(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--model", "m", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_the_model_is_required(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--port", "9000"])
    assert exit_info.value.code == 2
    assert "--model" in capsys.readouterr().err


def test_help_names_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m keras_qa.serve")
    for flag in FLAGS:
        assert flag in text, flag
    for words in ("(default: 128)", "(default: 64)", "503 with Retry-After", "defaults to 8"):
        assert words in " ".join(text.split()), words


def test_main_serves_the_loaded_answerer_with_the_flags(monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    import keras_qa.cli
    import keras_qa.serve
    import keras_qa.serving.app

    calls = {}
    answerer = object()

    def fake_load(args):
        calls["model"] = (args.model, args.batch_size, args.dtype)
        return answerer

    def fake_create_app(*arguments, **options):
        calls["app"] = (arguments, options)
        return "the app"

    def fake_run(app, **options):
        calls["run"] = (app, options)

    monkeypatch.setattr(keras_qa.cli, "load_answerer", fake_load)
    monkeypatch.setattr(keras_qa.serve, "log_to_stderr", lambda: calls.setdefault("log", True))
    monkeypatch.setattr(keras_qa.serving.app, "create_app", fake_create_app)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    main(
        "--model runs/x --batch-size 3 --dtype float32 --host 0.0.0.0 --port 9002 "
        "--max-body-bytes 10 --max-context-chars 20 --max-batch 2 --max-request-windows 5 "
        "--max-queue 7".split()
    )
    assert calls["model"] == ("runs/x", 3, "float32") and calls["log"]
    arguments, options = calls["app"]
    access = options.pop("access")
    assert arguments == (answerer,)
    assert options == {
        "max_body_bytes": 10,
        "max_context_chars": 20,
        "max_batch": 2,
        "max_request_windows": 5,
        "max_queue": 7,
    }
    # Bound beyond loopback: any Host, no key unless given, a warning (below).
    assert (access.allowed_hosts, access.api_key, access.cors_origins) == (None, None, ())
    app, options = calls["run"]
    assert app == "the app"
    assert (options["host"], options["port"]) == ("0.0.0.0", 9002)


@pytest.mark.parametrize(
    "flags, expected",
    [
        ("", (("localhost", "127.0.0.1", "::1"), None, (), 30.0)),
        (
            "--allowed-hosts qa.lan,qa --cors-origins https://a.example --api-key k --read-timeout 2",
            (("qa.lan", "qa"), "k", ("https://a.example",), 2.0),
        ),
        ("--allowed-hosts *", (None, None, (), 30.0)),
    ],
)
def test_the_access_flags_make_the_servers_access(flags, expected, monkeypatch):
    from keras_qa.serve import access_of, build_parser

    monkeypatch.delenv("KERAS_QA_API_KEY", raising=False)
    args = build_parser().parse_args(["--model", "m", *flags.split()])
    access = access_of(args)
    found = (access.allowed_hosts, access.api_key, access.cors_origins, access.read_timeout)
    assert found == expected


def test_the_api_key_can_come_from_the_environment_and_a_wide_bind_warns(monkeypatch, caplog):
    from keras_qa.serve import access_of, build_parser

    monkeypatch.setenv("KERAS_QA_API_KEY", "from-env")
    args = build_parser().parse_args(["--model", "m", "--host", "0.0.0.0"])
    with caplog.at_level("WARNING", logger="keras_qa.serving"):
        assert access_of(args).api_key == "from-env"
    assert "serving on 0.0.0.0, beyond this machine" in caplog.text
    assert "no --api-key" not in caplog.text


def test_the_server_log_goes_to_stderr_once(capsys):
    server_log = logging.getLogger("keras_qa.serving")
    handlers, level = list(server_log.handlers), server_log.level
    try:
        log_to_stderr()
        log_to_stderr()
        added = [handler for handler in server_log.handlers if handler not in handlers]
        assert len(added) == 1
        added[0].stream = sys.stderr  # pytest's capture of this test
        server_log.info("client 127.0.0.1:5 went away")
        assert capsys.readouterr().err == "INFO:    client 127.0.0.1:5 went away\n"
    finally:
        server_log.handlers[:] = handlers
        server_log.setLevel(level)
