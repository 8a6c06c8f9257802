"""Serving over HTTP: request bodies and their checks, the fair model queue, and the FastAPI application
(`python -m keras_qa.serve`). Imports `answering` and the layers below; needs the `serve` extra."""

try:
    import fastapi  # noqa: F401
    import pydantic  # noqa: F401
except ImportError as error:
    raise ImportError(
        'keras_qa.serving needs FastAPI and uvicorn: pip install "keras-qa[serve]"'
    ) from error
