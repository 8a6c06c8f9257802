"""Serve a trained model over HTTP: a JSON API and a web page (`keras_qa.server`).

    python -m keras_qa.serve --model runs/quickstart [--host 127.0.0.1] [--port 8000]

Needs the `serve` extra (`pip install "keras-qa[serve]"`: FastAPI and uvicorn).

The API (`POST /answer`, `GET /health`, the web page at `GET /`) and its error statuses are described
in `keras_qa.server`.
"""

import argparse

from keras_qa.cli import add_model_arguments, load_answerer


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.serve", description=__doc__.split("\n\n")[0]
    )
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=1_000_000,
        help="larger request bodies get 413 (default: 1,000,000)",
    )
    parser.add_argument(
        "--max-context-chars",
        type=int,
        default=100_000,
        help="longer contexts get 413 (default: 100,000)",
    )
    parser.add_argument(
        "--max-batch", type=int, default=16, help="requests answered together (default: 16)"
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    import uvicorn

    from keras_qa.server import create_app

    answerer = load_answerer(args)
    app = create_app(answerer, args.max_body_bytes, args.max_context_chars, args.max_batch)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
