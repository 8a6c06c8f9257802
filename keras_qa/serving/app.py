"""The HTTP application over a `QuestionAnswerer`: a JSON API, a web page and a fair model queue.

`create_app(answerer)` builds it; `python -m keras_qa.serve` runs it with uvicorn. It needs the `serve`
extra (`pip install "keras-qa[serve]"`: FastAPI and uvicorn).

- `POST /answer` takes `{"question", "context", "top_k"?, "max_answer_length"?,
  "handle_impossible_answer"?, "align_to_words"?}` and returns `QuestionAnswerer`'s answer:
  `{"answer", "score", "start", "end"}` (a list of them when `top_k` > 1).
- `POST /` (and `POST /answer`) take Hugging Face's inference payload, what
  `huggingface_hub.InferenceClient(model=URL).question_answering` sends: `{"inputs": {"question",
  "context"}, "parameters"?: {"top_k", "doc_stride", "max_answer_len", "max_seq_len",
  "max_question_len", "handle_impossible_answer", "align_to_words"}}`, answered as transformers'
  pipeline answers (`keras_qa.hf_pipeline`).
- `POST /read` takes `{"question", "documents", "top_k"? (5), "score_threshold"?,
  "max_answer_length"?, "align_to_words"?}` and returns `QuestionAnswerer.read`'s answers, the best of
  all documents first, each with its `document` index; its windows count against the request budget
  and it takes turns like any request.
- `GET /health` says the model is loaded, which backend runs it and how deep the queue is.
- `GET /` is a page where a person pastes a text, asks a question and sees the answer highlighted.

Bad requests get a 4xx with a JSON `{"error": ...}` and the server goes on: a body that `json.loads`
cannot read, nesting too deep included (400); a body over `--max-body-bytes`, a context over
`--max-context-chars` or a request that makes more model windows than `--max-request-windows` (413);
wrong or missing fields, wrong types or an empty question or context (422). When `--max-queue`
requests are already waiting or being answered, a new one gets 503 with a `Retry-After` header.

Model work is counted in windows (the `max_length`-token pieces a context is cut into). One thread runs
the model, one batch of at most `batch_size` windows (a turn) at a time; requests that arrive together
and fit in one turn are answered in one call, and a longer request's windows take several turns, so
that other requests' turns run in between. The next turn goes to the client address served least
recently, then to the request with the fewest windows left (`keras_qa.serving.scheduler` says why). A
request whose client goes away is dropped: out of the queue if it has not started, and before its next
turn if it has (one log line, no traceback).
"""

import asyncio
import contextlib
import logging
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import ClientDisconnect

from keras_qa.runtime.backend import backend_name
from keras_qa.serving.requests import (
    AnswerRequest,
    PipelineRequest,
    ReadRequest,
    RequestError,
    parse_request,
)
from keras_qa.serving.scheduler import Scheduler
from keras_qa.serving.security import Access, HostGuard

# The status logged for a request whose client went away (nginx's "client closed request").
CLIENT_GONE = 499
logger = logging.getLogger(__name__)


async def read_body(request, max_body_bytes):
    """The request's body, or a 413 `RequestError` as soon as it is over `max_body_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise RequestError(413, f"the body is over {max_body_bytes:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body_bytes:
            raise RequestError(413, f"the body is over {max_body_bytes:,} bytes")
    return bytes(body)


async def read_body_in_time(request, max_body_bytes, seconds):
    """`read_body`, or a 408 `RequestError` (the connection closed) when the body takes longer than
    `seconds` to arrive."""
    try:
        return await asyncio.wait_for(read_body(request, max_body_bytes), seconds)
    except TimeoutError:
        raise RequestError(
            408, f"the body did not arrive within {seconds:g} s", {"Connection": "close"}
        ) from None


async def client_gone(request):
    """Returns once the client has closed its connection (the ASGI server's `http.disconnect`)."""
    while (await request.receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.05)  # a server that repeats empty body messages is polled


async def answer_while_connected(request, scheduler, job, client):
    """`job`'s answer as a response; dropped, with one log line, if the client goes away first."""
    watcher = asyncio.ensure_future(client_gone(request))
    try:
        await asyncio.wait({job.future, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the server is stopping
        scheduler.drop(job)
        raise
    finally:
        watcher.cancel()
    if not job.future.done() or (job.future.cancelled() and watcher.done()):
        before = scheduler.drop(job)
        logger.info(
            "client %s went away; its request of %d windows was dropped %s",
            client,
            job.windows,
            "before the model" if before else "before its next turn",
        )
        return Response(status_code=CLIENT_GONE)
    if job.future.cancelled():
        return JSONResponse({"error": "the server is stopping"}, 503)
    error = job.future.exception()
    if error is None:
        return json_response(job.future.result())
    if isinstance(error, (ValueError, TypeError)):
        return JSONResponse({"error": str(error)}, 422)
    logger.error("answering failed: %r", error, exc_info=error)
    return JSONResponse({"error": f"the model failed: {error!r}"}, 500)


def json_response(content):
    """`content` as a JSON response; a value JSON cannot hold (a NaN or infinite score) is a JSON
    500 that says so, never a bare error page."""
    try:
        return JSONResponse(content)
    except ValueError as error:  # json.dumps(allow_nan=False) refuses NaN and infinities
        logger.error("an answer JSON cannot hold: %r (%s)", content, error)
        return JSONResponse({"error": f"the model gave an answer JSON cannot hold ({error})"}, 500)


def health_report(answerer, scheduler):
    """What `GET /health` says: the model is loaded, how it runs, and the queue's depth and limits."""
    requests, windows = scheduler.depth()
    return {
        "status": "ok",
        "backend": backend_name(),
        "dtype_policy": _precision(answerer.model),
        # Whether `score` is the probability that an answer is right (a calibrated model).
        "calibrated_scores": answerer.calibration is not None,
        "max_length": answerer.max_length,
        "doc_stride": answerer.doc_stride,
        "queue": {
            "requests": requests,
            "windows": windows,
            "max_requests": scheduler.max_queue,
            "max_request_windows": scheduler.max_request_windows,
        },
    }


def _documented_body(*kinds):
    """The OpenAPI request body of an endpoint that reads its body itself (for `/docs`)."""
    schemas = [
        kind.model_json_schema(ref_template="#/components/schemas/{model}") for kind in kinds
    ]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _guard(app, access):
    """The middleware `access` needs: CORS for its allowed origins, and the Host check outermost."""
    if access.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(access.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization"],
        )
    app.add_middleware(HostGuard, access=access)


def create_app(
    answerer,
    max_body_bytes=1_000_000,
    max_context_chars=100_000,
    max_batch=16,
    warmup=True,
    max_request_windows=128,
    max_queue=64,
    access=None,
):
    """The FastAPI application serving `answerer` (a `QuestionAnswerer`; see the module's doc).

    `access` (a `keras_qa.serving.security.Access`) says who may call it; by default requests
    must name a loopback host, API calls must be JSON, other sites' pages are refused, no key is
    needed and a body must arrive within 30 s.
    """
    access = Access() if access is None else access
    scheduler = Scheduler(answerer, max_batch, max_request_windows, max_queue)
    app = FastAPI(title="keras-qa", lifespan=_lifespan(answerer, scheduler, warmup))
    _guard(app, access)
    page = resources.files("keras_qa").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return page

    @app.get("/health")
    async def health():
        return health_report(answerer, scheduler)

    answer_body = _documented_body(AnswerRequest, PipelineRequest)

    @app.post("/", openapi_extra=answer_body, summary="Answer (Hugging Face's inference payload)")
    async def answer_at_root(request: Request):
        return await serve_request(request, AnswerRequest)

    @app.post("/answer", openapi_extra=answer_body, summary="Answer a question over a context")
    async def answer(request: Request):
        return await serve_request(request, AnswerRequest)

    @app.post("/read", openapi_extra=_documented_body(ReadRequest), summary="Read many documents")
    async def read(request: Request):
        return await serve_request(request, ReadRequest)

    async def serve_request(request, kind):
        limits = (max_body_bytes, max_context_chars)
        return await answer_request(request, kind, scheduler, access, *limits)

    return app


def _lifespan(answerer, scheduler, warmup):
    """The app's start-up and shut-down: a warm-up call, then the scheduler's model thread."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if warmup:
            # The first call traces / compiles the model; pay for it before the first request.
            await asyncio.to_thread(answerer, "What is this?", "This is a warm-up.")
        await scheduler.start()
        yield
        await scheduler.stop()

    return lifespan


async def answer_request(request, kind, scheduler, access, max_body_bytes, max_context_chars):
    """One API request of `kind` (`AnswerRequest` or `ReadRequest`) checked, read, queued and
    answered; any client error as its JSON 4xx."""
    client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
    try:
        access.check_api_call(request.headers)
        body = await read_body_in_time(request, max_body_bytes, access.read_timeout)
        parsed = parse_request(body, max_context_chars, kind)
        job = await scheduler.admit(parsed, client.rpartition(":")[0])
    except RequestError as error:
        return error.response()
    except ClientDisconnect:
        logger.info("client %s went away while sending its request", client)
        return Response(status_code=CLIENT_GONE)
    return await answer_while_connected(request, scheduler, job, client)


def _precision(model):
    """The Keras dtype policy the model computes in, or an ONNX Runtime copy's precision ("int8")."""
    backbone = getattr(model, "backbone", None)
    return backbone.dtype_policy.name if backbone is not None else model.precision
