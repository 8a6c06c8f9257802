"""Serve a trained model over HTTP: a JSON API and a web page (`keras_qa.serving.app`).

    python -m keras_qa.serve --model runs/quickstart [--host 127.0.0.1] [--port 8000]

Needs the `serve` extra (`pip install "keras-qa[serve]"`: FastAPI and uvicorn).

The API (`POST /answer`, `GET /health`, the web page at `GET /`), its error statuses, the queue and the
per-request budget of model windows are described in `keras_qa.serving`. A client that goes away is
logged in one line on stderr.
"""

import argparse
import logging
import os

from keras_qa import cli

# Where --api-key is read from when the flag is not given.
API_KEY_VARIABLE = "KERAS_QA_API_KEY"

# Windows per model call (a turn): with the quickstart model on 2 CPU cores, 8 windows answer a long
# context as fast as 32 (16.7 s and 16.5 s for 92 windows), and a short request behind abandoned long
# ones waited 0.6 s instead of 4.5 s, with a peak RSS of 1.4 GB instead of 1.9 GB.
SERVE_BATCH_SIZE = 8
EPILOG = f"""Model work is counted in windows. One thread runs the model, one batch of at most --batch-size
windows (a turn) at a time: requests that fit in one turn together are answered in one call, a longer
request takes several turns, and the next turn goes to the client address served least recently, then
to the request with the fewest windows left. A short request waits for at most about one turn, so the
server's --batch-size defaults to {SERVE_BATCH_SIZE} (on a CPU as fast as 32 per window, with a shorter
wait and less memory; raise it on a GPU). A request whose client goes away is dropped before its next
turn. GET /health reports the queue's requests and windows."""


def positive_int(text):
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.serve",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
    )
    cli.add_model_arguments(parser)
    parser.set_defaults(batch_size=SERVE_BATCH_SIZE)
    cli.add_debug_argument(parser)
    add_access_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=1_000_000,
        help="larger request bodies get 413 (default: 1,000,000)",
    )
    parser.add_argument(
        "--max-context-chars",
        type=positive_int,
        default=100_000,
        help="longer contexts get 413 (default: 100,000)",
    )
    parser.add_argument(
        "--max-request-windows",
        type=positive_int,
        default=128,
        help="a request whose context makes more model windows (max_length tokens, doc_stride "
        "overlap) gets 413 (default: 128)",
    )
    parser.add_argument(
        "--max-queue",
        type=positive_int,
        default=64,
        help="with this many requests waiting or being answered, new ones get 503 with "
        "Retry-After (default: 64)",
    )
    parser.add_argument(
        "--max-batch",
        type=positive_int,
        default=16,
        help="requests answered together in one model call, when their windows fit in one batch "
        "of --batch-size (default: 16)",
    )
    return parser


def add_access_arguments(parser):
    """--api-key, --allowed-hosts, --cors-origins, --read-timeout: who may call, and how
    (`keras_qa.serving.security`)."""
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_VARIABLE),
        help="require this key as 'Authorization: Bearer KEY' on every API call (default: "
        f"${API_KEY_VARIABLE}; none: no key)",
    )
    parser.add_argument(
        "--allowed-hosts",
        default=None,
        help="host names the Host header may name, comma-separated, or '*' for any (default: "
        "localhost, 127.0.0.1 and ::1 when --host is loopback, else any)",
    )
    parser.add_argument(
        "--cors-origins",
        type=comma_list,
        default=(),
        help="origins (https://app.example) whose web pages may call the API, comma-separated "
        "(default: none)",
    )
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=30.0,
        help="seconds a request's body may take to arrive; slower ones get 408 (default: 30)",
    )


def comma_list(text):
    """`a, b` -> `("a", "b")`."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def access_of(args):
    """The server's `Access` from the flags; a warning when it listens beyond this machine."""
    from keras_qa.serving.security import LOOPBACK_HOSTS, Access, is_loopback

    loopback = is_loopback(args.host)
    if args.allowed_hosts is None:
        hosts = LOOPBACK_HOSTS if loopback else None
    else:
        hosts = None if args.allowed_hosts.strip() == "*" else comma_list(args.allowed_hosts)
    if not loopback:
        keyless = "" if args.api_key else " and no --api-key: anyone who can reach it may use it"
        logging.getLogger("keras_qa.serving").warning(
            "serving on %s, beyond this machine%s", args.host, keyless
        )
    return Access(hosts, tuple(args.cors_origins), args.api_key or None, args.read_timeout)


def log_to_stderr():
    """Show the server's log lines (one per client that goes away, at INFO) on standard error,
    as uvicorn shows its own; once, however often it is called."""
    server_log = logging.getLogger("keras_qa.serving")
    if not any(getattr(handler, "keras_qa", False) for handler in server_log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:    %(message)s"))
        handler.keras_qa = True
        server_log.addHandler(handler)
    server_log.setLevel(logging.INFO)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    import uvicorn

    from keras_qa.serving.app import create_app

    log_to_stderr()
    with cli.user_errors(parser.prog, args.debug):
        answerer = cli.load_answerer(args)
    app = create_app(
        answerer,
        max_body_bytes=args.max_body_bytes,
        max_context_chars=args.max_context_chars,
        max_batch=args.max_batch,
        max_request_windows=args.max_request_windows,
        max_queue=args.max_queue,
        access=access_of(args),
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
