"""The HTTP application over a `QuestionAnswerer`: a JSON API, a web page and micro-batching.

`create_app(answerer)` builds it; `python -m keras_qa.serve` runs it with uvicorn. It needs the `serve`
extra (`pip install "keras-qa[serve]"`: FastAPI and uvicorn).

- `POST /answer` takes `{"question", "context", "top_k"?, "max_answer_length"?,
  "handle_impossible_answer"?, "align_to_words"?}` or Hugging Face's inference payload
  `{"inputs": {"question", "context"}, "parameters"?: {...}}` and returns the pipeline's answer:
  `{"answer", "score", "start", "end"}` (a list of them when `top_k` > 1).
- `GET /health` says the model is loaded and which backend runs it.
- `GET /` is a page where a person pastes a text, asks a question and sees the answer highlighted.

Bad requests get a 4xx with a message and the server goes on: a body that is not JSON (400), a body
over `--max-body-bytes` or a context over `--max-context-chars` (413), wrong or missing fields, wrong
types or an empty question or context (422). Requests that arrive together are answered in one model
call: a single worker thread runs the model, so calls are never interleaved.
"""

import asyncio
import concurrent.futures
import functools
import json
from importlib import resources

try:
    from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, ValidationError
except ImportError as error:  # pydantic comes with FastAPI, in the serve extra
    raise ImportError(
        'keras_qa.server needs FastAPI and uvicorn: pip install "keras-qa[serve]"'
    ) from error

from keras_qa.runtime import backend_name

MAX_TOP_K = 20


class AnswerRequest(BaseModel):
    """The body of `POST /answer` (strict types: a number is not a question)."""

    model_config = {"extra": "forbid"}

    question: StrictStr
    context: StrictStr
    top_k: StrictInt = Field(1, ge=1, le=MAX_TOP_K)
    max_answer_length: StrictInt = Field(30, ge=1, le=512)
    handle_impossible_answer: StrictBool = False
    align_to_words: StrictBool = True


class RequestError(Exception):
    """A client error: the HTTP status and the message sent back."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def parse_request(body, max_context_chars):
    """An `AnswerRequest` from the raw body, or a `RequestError` saying what is wrong."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object")
    if "inputs" in payload:  # Hugging Face's inference payload
        inputs, parameters = payload.get("inputs"), payload.get("parameters") or {}
        extra = set(payload) - {"inputs", "parameters"}
        if extra or not isinstance(inputs, dict) or not isinstance(parameters, dict):
            raise RequestError(
                422,
                'the Hugging Face payload is {"inputs": {"question": ..., "context": ...}, '
                '"parameters": {...}}',
            )
        payload = {**parameters, **inputs}
    try:
        request = AnswerRequest.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise RequestError(422, problems) from None
    for field in ("question", "context"):
        if not getattr(request, field).strip():
            raise RequestError(422, f"{field} is empty")
    if len(request.context) > max_context_chars:
        raise RequestError(
            413,
            f"context has {len(request.context):,} characters; the limit is {max_context_chars:,}",
        )
    return request


class MicroBatcher:
    """Answers requests that wait together in one model call, on one worker thread.

    Args:
        answerer: a `QuestionAnswerer`.
        max_batch: the most requests answered in one call.
    """

    def __init__(self, answerer, max_batch=16):
        self.answerer = answerer
        self.max_batch = int(max_batch)
        self.queue = None
        self.worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="keras-qa-model")
        self.task = None

    async def start(self):
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
        self.worker.shutdown(wait=False, cancel_futures=True)

    async def answer(self, request):
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((request, future))
        return await future

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            waiting = [await self.queue.get()]
            while len(waiting) < self.max_batch and not self.queue.empty():
                waiting.append(self.queue.get_nowait())
            # One call per set of decoding options; top_k is served by the largest asked for (a
            # request's answers are the first top_k of them, the same as alone).
            groups = {}
            for request, future in waiting:
                key = (
                    request.max_answer_length,
                    request.handle_impossible_answer,
                    request.align_to_words,
                )
                groups.setdefault(key, []).append((request, future))
            for (max_answer_length, impossible, align), members in groups.items():
                members = [(r, f) for r, f in members if not f.cancelled()]
                if not members:
                    continue
                call = functools.partial(
                    self.answerer,
                    [request.question for request, _ in members],
                    [request.context for request, _ in members],
                    top_k=max(request.top_k for request, _ in members),
                    max_answer_length=max_answer_length,
                    handle_impossible_answer=impossible,
                    align_to_words=align,
                )
                try:
                    results = await loop.run_in_executor(self.worker, call)
                except Exception as error:  # noqa: BLE001 - each waiting request hears of it
                    for _, future in members:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (request, future), result in zip(members, results):
                    answers = result if isinstance(result, list) else [result]
                    if not future.done():
                        future.set_result(
                            answers[0] if request.top_k == 1 else answers[: request.top_k]
                        )


def create_app(
    answerer, max_body_bytes=1_000_000, max_context_chars=100_000, max_batch=16, warmup=True
):
    """The FastAPI application serving `answerer` (a `QuestionAnswerer`)."""
    import contextlib

    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    batcher = MicroBatcher(answerer, max_batch)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if warmup:
            # The first call traces / compiles the model; pay for it before the first request.
            await asyncio.get_running_loop().run_in_executor(
                batcher.worker, lambda: answerer("What is this?", "This is a warm-up.")
            )
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="keras-qa", lifespan=lifespan)
    page = resources.files("keras_qa").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return page

    @app.get("/health")
    async def health():
        return {
            "status": "ok",
            "backend": backend_name(),
            "dtype_policy": answerer.model.backbone.dtype_policy.name,
            "max_length": answerer.max_length,
            "doc_stride": answerer.doc_stride,
        }

    @app.post("/answer")
    async def answer(request: Request):
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
                raise RequestError(413, f"the body is over {max_body_bytes:,} bytes")
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes:
                    raise RequestError(413, f"the body is over {max_body_bytes:,} bytes")
            parsed = parse_request(bytes(body), max_context_chars)
        except RequestError as error:
            return JSONResponse({"error": error.message}, status_code=error.status)
        try:
            return await batcher.answer(parsed)
        except (ValueError, TypeError) as error:
            return JSONResponse({"error": str(error)}, status_code=422)

    return app
