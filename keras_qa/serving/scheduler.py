"""The fair model queue: one thread runs the model a turn (one batch of windows) at a time, and turns go
to the client served least recently, then to the request with the fewest windows left."""

import asyncio
import collections
import concurrent.futures
import contextlib
import copy
import functools
import itertools
import logging
import math
import threading
import time

from keras_qa.answering.hf_pipeline import QuestionAnsweringPipeline
from keras_qa.serving.requests import PipelineRequest, ReadRequest, RequestError, count_windows

logger = logging.getLogger(__name__)


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
