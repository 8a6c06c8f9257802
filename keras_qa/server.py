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
recently, then to the request with the fewest windows left (see `TurnTaker` for why). A request whose
client goes away is dropped: out of the queue if it has not started, and before its next turn if it
has (one log line, no traceback).
"""

import asyncio
import collections
import concurrent.futures
import contextlib
import copy
import functools
import itertools
import json
import logging
import math
import threading
import time
from importlib import resources

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, ValidationError
    from starlette.requests import ClientDisconnect
except ImportError as error:
    raise ImportError(
        'keras_qa.server needs FastAPI and uvicorn: pip install "keras-qa[serve]"'
    ) from error

from keras_qa.features import prepare_eval_features
from keras_qa.hf_pipeline import QuestionAnsweringPipeline
from keras_qa.runtime import backend_name

# The most answers one request may ask for (`top_k`).
MAX_TOP_K = 100
# The most documents one `POST /read` request may hold (their windows also count against the budget).
MAX_DOCUMENTS = 100
# The status logged for a request whose client went away (nginx's "client closed request").
CLIENT_GONE = 499
logger = logging.getLogger(__name__)


class AnswerRequest(BaseModel):
    """The body of `POST /answer` (strict types: a number is not a question)."""

    model_config = {"extra": "forbid"}

    question: StrictStr
    context: StrictStr
    top_k: StrictInt = Field(1, ge=1, le=MAX_TOP_K)
    max_answer_length: StrictInt = Field(30, ge=1, le=512)
    handle_impossible_answer: StrictBool = False
    align_to_words: StrictBool = True


class ReadRequest(BaseModel):
    """The body of `POST /read`: one question over many documents (`QuestionAnswerer.read`)."""

    model_config = {"extra": "forbid"}

    question: StrictStr
    documents: list[StrictStr] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    top_k: StrictInt = Field(5, ge=1, le=MAX_TOP_K)
    score_threshold: float | None = Field(None, ge=0.0, le=1.0)
    max_answer_length: StrictInt = Field(30, ge=1, le=512)
    align_to_words: StrictBool = True


class PipelineInputs(BaseModel):
    model_config = {"extra": "forbid"}

    question: StrictStr
    context: StrictStr


class PipelineParameters(BaseModel):
    """The question-answering pipeline's parameters (None: its default)."""

    model_config = {"extra": "forbid"}

    top_k: StrictInt | None = Field(None, ge=1, le=MAX_TOP_K)
    doc_stride: StrictInt | None = Field(None, ge=0)
    max_answer_len: StrictInt | None = Field(None, ge=1, le=512)
    max_seq_len: StrictInt | None = Field(None, ge=8)
    max_question_len: StrictInt | None = Field(None, ge=1)  # taken and ignored, as transformers does
    handle_impossible_answer: StrictBool | None = None
    align_to_words: StrictBool | None = None


class PipelineRequest(BaseModel):
    """Hugging Face's inference payload (`InferenceClient.question_answering`), answered as
    transformers' question-answering pipeline answers."""

    model_config = {"extra": "forbid"}

    inputs: PipelineInputs
    parameters: PipelineParameters = PipelineParameters()

    @property
    def question(self):
        return self.inputs.question

    @property
    def context(self):
        return self.inputs.context

    @property
    def settings(self):
        return self.parameters.model_dump(exclude_none=True)


class RequestError(Exception):
    """A client error: the HTTP status, the message sent back and any headers (`Retry-After`)."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers

    def response(self):
        return JSONResponse({"error": self.message}, self.status, headers=self.headers)


def parse_request(body, max_context_chars, kind=AnswerRequest):
    """An `AnswerRequest` (or `ReadRequest`) from the raw body, or a `RequestError` saying what is
    wrong."""
    try:
        payload = json.loads(body)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise RequestError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise RequestError(400, "the body is not valid JSON: it nests too deeply to read") from None
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object")
    if "inputs" in payload and kind is AnswerRequest:  # Hugging Face's inference payload
        kind = PipelineRequest
        if payload.get("parameters") is None:
            payload = {key: value for key, value in payload.items() if key != "parameters"}
    try:
        request = kind.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise RequestError(422, problems) from None
    texts = {"question": request.question}
    if kind is ReadRequest:
        texts.update((f"document {i}", text) for i, text in enumerate(request.documents))
    else:
        texts["context"] = request.context
    for field, text in texts.items():
        # The pipeline refuses only empty strings (it answers a question of spaces).
        if not (text if kind is PipelineRequest else text.strip()):
            raise RequestError(422, f"{field} is empty")
        if field != "question" and len(text) > max_context_chars:
            raise RequestError(
                413, f"{field} has {len(text):,} characters; the limit is {max_context_chars:,}"
            )
    return request


def count_windows(answerer, request):
    """The windows `answerer` cuts `request`'s question and context (or documents) into: its share
    of model work."""
    contexts = request.documents if isinstance(request, ReadRequest) else [request.context]
    examples = [
        {"id": str(i), "question": request.question, "context": context, "answers": {}}
        for i, context in enumerate(contexts)
    ]
    max_length, doc_stride = answerer.max_length, answerer.doc_stride
    if isinstance(request, PipelineRequest):
        max_length, doc_stride = QuestionAnsweringPipeline(answerer).windows(request.settings)
    as_pipeline = isinstance(request, PipelineRequest)
    features = prepare_eval_features(
        examples, answerer.tokenizer, max_length, doc_stride, as_pipeline=as_pipeline
    )
    return len(features["example_index"])


class Abandoned(Exception):
    """Every client of a call went away (or the server stops): the call ends before its next turn."""


class Job:
    """One admitted request: what it asks, the windows it makes, its client's address, its answer."""

    def __init__(self, request, windows, client, future, number):
        self.request, self.windows, self.client = request, windows, client
        self.future = future
        self.number = number  # admission order, for ties
        self.gone = False  # its client went away
        self.call = None  # the answerer call it is in, once started

    @property
    def options(self):
        """The decoding options one answerer call must share (a reading shares its call with none)."""
        request = self.request
        if isinstance(request, ReadRequest):
            return ("read", self.number)
        if isinstance(request, PipelineRequest):
            return ("pipeline", *sorted(request.settings.items()))
        return (request.max_answer_length, request.handle_impossible_answer, request.align_to_words)


class Call:
    """One answerer call over a group of jobs; the model runs its windows in turns."""

    def __init__(self, jobs, turn_windows):
        self.jobs = jobs
        self.client = jobs[0].client
        self.remaining = sum(job.windows for job in jobs)  # windows not yet through the model
        self.one_turn = self.remaining <= turn_windows
        self.began = False  # its first turn has begun

    def abandoned(self):
        return all(job.gone for job in self.jobs)


class TurnTaker:
    """The one thread that runs the model, one turn (a batch of at most `batch_size` windows) at a time.

    Of the turns waiting, the client address served least recently goes first, then the call with the
    fewest windows left, then the oldest. Round-robin by address, because a client must not get more
    model time by sending more or longer requests (one turn each while others wait); shortest-first
    within an address, because a short question then waits for at most one turn of a long one.
    """

    def __init__(self, model, on_turn):
        self.model = model
        self.on_turn = on_turn  # called from the model thread as a turn begins
        self.condition = threading.Condition()
        self.waiting = []  # [call, inputs, future, number]
        self.last_served = {}  # client address -> the number of its last turn
        self.turns = itertools.count()
        self.seconds_per_window = None
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="keras-qa-model", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        with self.condition:
            self.stopping = True
            self.condition.notify_all()

    def run(self, call, inputs):
        """The model's outputs for `inputs` once it is `call`'s turn (from the call's thread)."""
        future = concurrent.futures.Future()
        with self.condition:
            if self.stopping or call.abandoned():
                raise Abandoned()
            self.waiting.append((call, inputs, future, next(self.turns)))
            self.condition.notify()
        return future.result()

    def ranks(self):
        """{client address: its last turn's number}: the lower, the sooner it is served again."""
        with self.condition:
            return dict(self.last_served)

    def forget(self, client):
        """Drop a client with nothing left in the queue (a new request of its own goes first)."""
        with self.condition:
            self.last_served.pop(client, None)

    def estimate_seconds(self, windows):
        """Seconds the model takes for `windows`, at the speed measured so far (1 s per window
        before any)."""
        return windows * (self.seconds_per_window or 1.0)

    def _next(self):
        """The next turn to run, or None when stopping; turns of abandoned calls fail at once."""
        with self.condition:
            while True:
                for turn in [t for t in self.waiting if self.stopping or t[0].abandoned()]:
                    self.waiting.remove(turn)
                    turn[2].set_exception(Abandoned())
                if self.stopping:
                    return None
                if self.waiting:
                    break
                self.condition.wait()
            turn = min(
                self.waiting,
                key=lambda t: (self.last_served.get(t[0].client, -1), t[0].remaining, t[3]),
            )
            self.waiting.remove(turn)
            self.last_served[turn[0].client] = next(self.turns)
            return turn

    def _loop(self):
        while (turn := self._next()) is not None:
            call, inputs, future, _ = turn
            call.began = True
            self.on_turn()
            windows = len(inputs["token_ids"])
            began = time.perf_counter()
            try:
                outputs = self.model.predict_on_batch(inputs)
            except Exception as error:  # noqa: BLE001 - raised in the call's thread
                future.set_exception(error)
                continue
            seconds = (time.perf_counter() - began) / windows
            previous = self.seconds_per_window
            self.seconds_per_window = (
                seconds if previous is None else 0.8 * previous + 0.2 * seconds
            )
            call.remaining = max(0, call.remaining - windows)
            future.set_result(outputs)


class _TurnModel:
    """The answerer's model as the call threads see it: each batch waits for its turn.

    `QuestionAnswerer` runs its model through `predict_logits`, batch by batch, with
    `predict_on_batch`; this stand-in hands each batch to the `TurnTaker`, so that the answerer's own
    features and decoding are used unchanged. Other attributes are the model's.
    """

    def __init__(self, model, taker):
        self._model, self._taker = model, taker
        self._local = threading.local()  # the call each call thread is answering

    def __getattr__(self, name):
        return getattr(self._model, name)

    @contextlib.contextmanager
    def turns_of(self, call):
        """Within this block, the batches this thread runs are `call`'s turns."""
        self._local.call = call
        try:
            yield
        finally:
            self._local.call = None

    def predict_on_batch(self, inputs):
        return self._taker.run(self._local.call, inputs)


class Scheduler:
    """Admits requests, groups those that fit in one turn into one answerer call, and runs the calls.

    A call runs on a thread of its own. The next one starts once every one-turn call started before it
    has begun its turn, so that requests arriving meanwhile are grouped, while calls of several turns
    never hold it back, so that a short request is ready to take the next turn while long ones are
    answered. Pending requests are taken in the `TurnTaker`'s order.

    Args:
        answerer: a `QuestionAnswerer`; its `batch_size` is the windows of one turn.
        max_batch: the most requests answered in one call.
        max_request_windows: the most windows one request may make (more: 413).
        max_queue: the most requests waiting or being answered (more: 503 with `Retry-After`).
    """

    def __init__(self, answerer, max_batch=16, max_request_windows=128, max_queue=64):
        self.answerer = answerer
        self.max_batch, self.max_queue = int(max_batch), int(max_queue)
        self.max_request_windows = int(max_request_windows)
        self.taker = TurnTaker(answerer.model, self._turn_began)
        self.turn_model = _TurnModel(answerer.model, self.taker)
        self.turn_answerer = copy.copy(answerer)
        self.turn_answerer.model = self.turn_model
        self.turn_pipeline = QuestionAnsweringPipeline(self.turn_answerer)
        self.callers = concurrent.futures.ThreadPoolExecutor(
            self.max_queue, thread_name_prefix="keras-qa-call"
        )
        self.pending, self.calls = [], set()
        self.live = collections.Counter()  # client address -> its requests not yet finished
        self.numbers = itertools.count()
        self.loop = self.wakeup = self.task = None

    async def start(self):
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.taker.start()
        self.task = asyncio.create_task(self._dispatch())

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
        self.taker.stop()
        for job in self.pending:
            job.future.cancel()
        self.callers.shutdown(wait=False, cancel_futures=True)

    def depth(self):
        """`(requests, windows)` waiting or being answered, leaving out those whose client left."""
        requests = len(self.pending) + sum(not job.gone for call in self.calls for job in call.jobs)
        windows = sum(job.windows for job in self.pending) + sum(
            call.remaining for call in self.calls if not call.abandoned()
        )
        return requests, windows

    def _check_room(self):
        requests, windows = self.depth()
        if requests >= self.max_queue:
            wait = min(600, max(1, math.ceil(self.taker.estimate_seconds(windows))))
            raise RequestError(
                503,
                f"the server is busy: {requests} requests ({windows:,} windows) are queued, the "
                f"limit is {self.max_queue}; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    async def admit(self, request, client):
        """A queued `Job` for `request` from `client` (an address), or a `RequestError`: 413 over
        the window budget, 503 when the queue is full, 422 for a text the tokenizer refuses."""
        self._check_room()
        try:
            windows = await asyncio.to_thread(count_windows, self.answerer, request)
        except (ValueError, TypeError) as error:
            raise RequestError(422, str(error)) from None
        if windows > self.max_request_windows:
            raise RequestError(
                413,
                f"the request makes {windows:,} windows of {self.answerer.max_length} tokens; the "
                f"limit is {self.max_request_windows:,} windows per request",
            )
        self._check_room()
        job = Job(request, windows, client, self.loop.create_future(), next(self.numbers))
        self.pending.append(job)
        self.live[client] += 1
        self.wakeup.set()
        return job

    def drop(self, job):
        """Forget `job`, whose client went away: out of the queue, or out of its call's next turns.

        Returns whether the model had done no work for it yet."""
        job.gone = True
        job.future.cancel()
        if job in self.pending:
            self.pending.remove(job)
            self._release(job)
        return job.call is None or not job.call.began

    def _release(self, job):
        self.live[job.client] -= 1
        if self.live[job.client] <= 0:
            del self.live[job.client]
            self.taker.forget(job.client)

    def _turn_began(self):
        try:
            self.loop.call_soon_threadsafe(self.wakeup.set)
        except RuntimeError:  # the event loop has closed: the server is stopping
            pass

    async def _dispatch(self):
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending and all(call.began or not call.one_turn for call in self.calls):
                self._start(self._take_group())

    def _take_group(self):
        """The next pending job and those that can share its call: same decoding options, at most
        `max_batch` requests and, with more than one, at most one turn of windows."""
        ranks = self.taker.ranks()
        order = sorted(
            self.pending, key=lambda job: (ranks.get(job.client, -1), job.windows, job.number)
        )
        group, windows = [order[0]], order[0].windows
        for job in order[1:]:
            if len(group) >= self.max_batch:
                break
            if (
                job.options == group[0].options
                and windows + job.windows <= self.answerer.batch_size
            ):
                group.append(job)
                windows += job.windows
        for job in group:
            self.pending.remove(job)
        return group

    def _start(self, jobs):
        call = Call(jobs, self.answerer.batch_size)
        for job in jobs:
            job.call = call
        self.calls.add(call)
        running = self.loop.run_in_executor(self.callers, self._answer, call)
        running.add_done_callback(functools.partial(self._finish, call))

    def _answer(self, call):
        """The answerer's results for `call`'s jobs (on a call thread; the model runs in turns)."""
        if call.abandoned():
            raise Abandoned()
        requests = [job.request for job in call.jobs]
        with self.turn_model.turns_of(call):
            if isinstance(requests[0], ReadRequest):
                read = requests[0]
                options = read.model_dump(exclude={"question", "documents"})
                return [self.turn_answerer.read(read.question, read.documents, **options)]
            if isinstance(requests[0], PipelineRequest):
                examples = [request.inputs.model_dump() for request in requests]
                return self.turn_pipeline.answer(examples, **requests[0].settings)
            return self.turn_answerer(
                [request.question for request in requests],
                [request.context for request in requests],
                top_k=max(request.top_k for request in requests),
                max_answer_length=requests[0].max_answer_length,
                handle_impossible_answer=requests[0].handle_impossible_answer,
                align_to_words=requests[0].align_to_words,
            )

    def _finish(self, call, running):
        """Hand each job of a finished call its answer (a request's own `top_k` of them) or error."""
        self.calls.discard(call)
        error = Abandoned() if running.cancelled() else running.exception()
        for index, job in enumerate(call.jobs):
            self._release(job)
            if job.future.done():
                continue
            if isinstance(error, Abandoned):
                job.future.cancel()
            elif error is not None:
                job.future.set_exception(error)
            elif isinstance(job.request, (ReadRequest, PipelineRequest)):
                job.future.set_result(running.result()[index])  # shaped by its own rules
            else:
                result = running.result()[index]
                answers = result if isinstance(result, list) else [result]
                job.future.set_result(
                    answers[0] if job.request.top_k == 1 else answers[: job.request.top_k]
                )
        self.wakeup.set()


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
        return job.future.result()
    if isinstance(error, (ValueError, TypeError)):
        return JSONResponse({"error": str(error)}, 422)
    logger.error("answering failed: %r", error, exc_info=error)
    return JSONResponse({"error": f"the model failed: {error!r}"}, 500)


def health_report(answerer, scheduler):
    """What `GET /health` says: the model is loaded, how it runs, and the queue's depth and limits."""
    requests, windows = scheduler.depth()
    return {
        "status": "ok",
        "backend": backend_name(),
        "dtype_policy": answerer.model.backbone.dtype_policy.name,
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
    schemas = [kind.model_json_schema(ref_template="#/components/schemas/{model}") for kind in kinds]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def create_app(
    answerer,
    max_body_bytes=1_000_000,
    max_context_chars=100_000,
    max_batch=16,
    warmup=True,
    max_request_windows=128,
    max_queue=64,
):
    """The FastAPI application serving `answerer` (a `QuestionAnswerer`; see the module's doc)."""
    scheduler = Scheduler(answerer, max_batch, max_request_windows, max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if warmup:
            # The first call traces / compiles the model; pay for it before the first request.
            await asyncio.to_thread(answerer, "What is this?", "This is a warm-up.")
        await scheduler.start()
        yield
        await scheduler.stop()

    app = FastAPI(title="keras-qa", lifespan=lifespan)
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
        client = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        try:
            body = await read_body(request, max_body_bytes)
            parsed = parse_request(body, max_context_chars, kind)
            job = await scheduler.admit(parsed, client.rpartition(":")[0])
        except RequestError as error:
            return error.response()
        except ClientDisconnect:
            logger.info("client %s went away while sending its request", client)
            return Response(status_code=CLIENT_GONE)
        return await answer_while_connected(request, scheduler, job, client)

    return app
