import concurrent.futures
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from keras_qa.answering.answerer import QuestionAnswerer  # noqa: E402
from keras_qa.answering.hf_pipeline import QuestionAnsweringPipeline  # noqa: E402
from keras_qa.serving.app import create_app  # noqa: E402
from keras_qa.serving.requests import count_windows, parse_request  # noqa: E402
from keras_qa.serving.security import Access  # noqa: E402
from keras_qa.text.calibration import Calibration  # noqa: E402

CONTEXT = "the red mat . the cat ran to london . the dog sat in paris ."
CHROMIUM = "/usr/bin/chromium"


class RecordingAnswerer(QuestionAnswerer):
    """Notes how many questions each model call answered, and takes a little longer per call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.call_sizes = []

    def __call__(self, question, context, **options):
        self.call_sizes.append(1 if isinstance(question, str) else len(question))
        time.sleep(0.03)
        return super().__call__(question, context, **options)


@pytest.fixture(scope="module")
def answerer(tiny_trained_model):
    answerer = QuestionAnswerer.from_pretrained(tiny_trained_model)
    return RecordingAnswerer(answerer.model, answerer.tokenizer, 48, 16)


@contextlib.contextmanager
def serving(app):
    """`app` served by uvicorn on a free loopback port, in a thread: yields its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(answerer):
    """The app over the tiny model, with small limits."""
    app = create_app(
        answerer, max_body_bytes=20_000, max_context_chars=5_000, max_request_windows=30
    )
    with serving(app) as url:
        yield url


def assert_same_answers(found, expected):
    """The same answers and offsets, scores equal to rounding (computed in other batches)."""
    found, expected = (found, expected) if isinstance(expected, list) else ([found], [expected])
    assert len(found) == len(expected)
    for a, b in zip(found, expected):
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        assert a["score"] == pytest.approx(b["score"], rel=1e-4, abs=1e-7)


def post(url, body, timeout=60, **kwargs):
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(
        url + "/answer",
        content=content,
        headers={"content-type": "application/json"},
        timeout=timeout,
        **kwargs,
    )


def test_answer_health_and_page(server, answerer):
    response = post(server, {"question": "where did the cat run ?", "context": CONTEXT})
    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == CONTEXT[body["start"] : body["end"]] == "london"
    assert body == pytest.approx(answerer("where did the cat run ?", CONTEXT))
    hugging_face = post(
        server,
        {
            "inputs": {"question": "where did the cat run ?", "context": CONTEXT},
            "parameters": {"top_k": 2},
        },
    )
    assert hugging_face.status_code == 200
    # Hugging Face's payload is answered as transformers' pipeline answers.
    pipeline = QuestionAnsweringPipeline(answerer)
    expected = pipeline(question="where did the cat run ?", context=CONTEXT, top_k=2)
    assert_same_answers(hugging_face.json(), expected)
    health = httpx.get(server + "/health").json()
    assert health["status"] == "ok" and health["max_length"] == 48
    page = httpx.get(server + "/")
    assert page.status_code == 200 and 'id="question"' in page.text


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"question": "", "context": CONTEXT}, 422, "question is empty"),
        ({"question": "where ?", "context": "  \n"}, 422, "context is empty"),
        ({"question": 5, "context": CONTEXT}, 422, "question: Input should be a valid string"),
        ({"context": CONTEXT}, 422, "question: Field required"),
        ({"question": "q", "context": CONTEXT, "top_k": 0}, 422, "top_k"),
        ({"question": "q", "context": CONTEXT, "top_k": "3"}, 422, "top_k"),
        ({"question": "q", "context": CONTEXT, "colour": "red"}, 422, "colour"),
        ({"inputs": "where?"}, 422, "inputs: Input should be a valid dictionary"),
        ({"inputs": {"question": "q", "context": "c"}, "parameters": {"top_k": 101}}, 422, "top_k"),
        ({"inputs": {"question": "", "context": "c"}}, 422, "question is empty"),
        (
            {"inputs": {"question": "q", "context": "c"}, "parameters": {"temperature": 1}},
            422,
            "parameters.temperature: Extra inputs are not permitted",
        ),
        (["question", "context"], 422, "JSON object"),
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        ({"question": "q", "context": "word " * 1_100}, 413, "limit is 5,000"),
        ({"question": "q", "context": "word " * 5_000}, 413, "over 20,000 bytes"),
        ({"question": "where did the cat run ?", "context": CONTEXT * 70}, 413, "limit is 30 win"),
        (b"[" * 10_000, 400, "nests too deeply"),
        (b'{"question": ' + b"{" * 5_000, 400, "not valid JSON"),
        (b'{"question": "q", "context": "c", "top_k": ' + b"9" * 5_000 + b"}", 400, "not valid"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message_and_the_server_goes_on(
    server, body, status, message
):
    response = post(server, body)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert (
        post(server, {"question": "where did the cat run ?", "context": CONTEXT}).status_code == 200
    )


def test_read_answers_one_question_over_many_documents(server, answerer):
    documents = ["the red mat . the dog sat in paris .", "a big blue house .", CONTEXT]
    body = {"question": "where did the cat run ?", "documents": documents, "top_k": 3}
    response = httpx.post(server + "/read", json=body, timeout=60)
    assert response.status_code == 200
    answers = response.json()
    expected = answerer.read("where did the cat run ?", documents, top_k=3)
    assert len(answers) == len(expected) == 3
    assert all(got == pytest.approx(want) for got, want in zip(answers, expected))
    best = answers[0]
    assert documents[best["document"]][best["start"] : best["end"]] == best["answer"]
    threshold = httpx.post(server + "/read", json=body | {"score_threshold": 1.0}, timeout=60)
    assert threshold.status_code == 200 and threshold.json() == []


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"question": "q", "documents": []}, 422, "documents"),
        ({"question": "q", "documents": [CONTEXT, " "]}, 422, "document 1 is empty"),
        ({"question": "q", "documents": [CONTEXT, "word " * 1_100]}, 413, "document 1 has"),
        ({"question": "q", "documents": [CONTEXT] * 40}, 413, "limit is 30 windows"),
        ({"question": "q", "context": CONTEXT}, 422, "documents: Field required"),
    ],
)
def test_read_refuses_bad_requests_clearly(server, body, status, message):
    response = httpx.post(server + "/read", json=body, timeout=60)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_chunked_body_over_the_limit_is_refused(server):
    def chunks():
        for _ in range(30):
            yield b" " * 1_000

    response = httpx.post(
        server + "/answer",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 413


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, answerer):
    animals, places = ["cat", "dog"], ["london", "paris", "the park", "a big red house"]
    cases = []
    for i in range(48):
        animal, place = animals[i % 2], places[i % 4]
        other = places[(i + 1) % 4]
        context = f"the {animal} ran to {place} . the {'dog' if animal == 'cat' else 'cat'} ran to {other} ."
        cases.append((f"where did the {animal} run ?", context, 1 + i % 3))
    expected = [answerer(q, c, top_k=k) for q, c, k in cases]
    answerer.call_sizes.clear()
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(
            pool.map(
                lambda case: post(
                    server, {"question": case[0], "context": case[1], "top_k": case[2]}
                ),
                cases,
            )
        )
    assert all(response.status_code == 200 for response in responses)
    for response, want in zip(responses, expected):
        got = response.json()
        want = want if isinstance(want, list) else [want]
        got = got if isinstance(got, list) else [got]
        assert [(a["start"], a["end"], a["answer"]) for a in got] == [
            (a["start"], a["end"], a["answer"]) for a in want
        ]
        assert [a["score"] for a in got] == pytest.approx([a["score"] for a in want], rel=1e-4)
    assert sum(answerer.call_sizes) == len(cases)
    assert max(answerer.call_sizes) > 1


def test_mixed_traffic_never_fails_a_valid_request(server):
    kinds = ["valid", "empty", "oversized", "not json", "wrong type"]
    bodies = {
        "valid": ({"question": "where did the cat run ?", "context": CONTEXT}, 200),
        "empty": ({"question": " ", "context": CONTEXT}, 422),
        "oversized": ({"question": "q", "context": "x" * 30_000}, 413),
        "not json": (b'{"question": ', 400),
        "wrong type": ({"question": ["q"], "context": CONTEXT}, 422),
    }
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda i: (kinds[i % 5], post(server, bodies[kinds[i % 5]][0])), range(150))
        )
    for kind, response in results:
        assert response.status_code == bodies[kind][1], (kind, response.text)
        if kind == "valid":
            assert response.json()["answer"] == "london"
    assert httpx.get(server + "/health").json()["status"] == "ok"


class SlowModel:
    """The tiny model taking `seconds` more per window, so that model time is long and steady enough
    to measure on busy cores; counts the windows it runs."""

    def __init__(self, model, seconds):
        self.model, self.seconds, self.windows = model, seconds, 0

    @property
    def input_names(self):
        return self.model.input_names

    @property
    def backbone(self):
        return self.model.backbone

    def predict_on_batch(self, inputs):
        windows = len(inputs["token_ids"])
        time.sleep(self.seconds * windows)
        self.windows += windows
        return self.model.predict_on_batch(inputs)


QUESTION = "where did the cat run ?"
SHORT = {"question": QUESTION, "context": CONTEXT}
LONG = {"question": QUESTION, "context": CONTEXT * 58}  # 40 windows of the tiny model's 48 tokens


@pytest.fixture(scope="module")
def slow_answerer(answerer):
    """The tiny model at 40 ms a window, in turns of 4 windows: a long request is 10 turns."""
    return QuestionAnswerer(SlowModel(answerer.model, 0.04), answerer.tokenizer, 48, 16, 4)


@contextlib.contextmanager
def slow_server(slow_answerer, **limits):
    """A server over `slow_answerer` (`create_app`'s limits as given): yields its URL."""
    with serving(create_app(slow_answerer, **limits)) as url:
        yield url


def timed_post(url, body, timeout=60, transport=None):
    """`(response, seconds)`; the response is None when the client gave up first (and closed)."""
    began = time.perf_counter()
    try:
        if transport is None:
            response = post(url, body, timeout=timeout)
        else:
            with httpx.Client(transport=transport, timeout=timeout) as client:
                response = client.post(url + "/answer", json=body)
    except httpx.TimeoutException:
        response = None
    return response, time.perf_counter() - began


def queue(url):
    return httpx.get(url + "/health", timeout=10).json()["queue"]


def wait_for_queue(url, condition, seconds=20):
    """The /health queue once `condition(queue)` holds (polled for at most `seconds`)."""
    deadline = time.monotonic() + seconds
    while not condition(current := queue(url)):
        assert time.monotonic() < deadline, current
        time.sleep(0.02)
    return current


def send_and_close(url, body, cut=None):
    """Send `POST /answer` over a raw socket (only `cut` bytes of the body, if given), then close
    the connection without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /answer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head + body[:cut])


def wait_until(condition, seconds=20):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def settled(model, quiet=0.5, seconds=30):
    """The windows `model` has run, once it has run none for `quiet` seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        windows = model.windows
        time.sleep(quiet)
        if model.windows == windows:
            return windows
    raise AssertionError("the model kept running")


def test_abandoned_long_requests_do_not_delay_a_later_short_one(slow_answerer, answerer):
    long_windows = count_windows(answerer, parse_request(json.dumps(LONG), 10_000))
    assert long_windows == 40
    model = slow_answerer.model
    with slow_server(slow_answerer) as url:
        alone, long_seconds = timed_post(url, LONG)  # one long request's model time
        assert alone.status_code == 200
        ran = model.windows
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            given_up = list(pool.map(lambda _: timed_post(url, LONG, timeout=0.4), range(4)))
        assert [response for response, _ in given_up] == [None] * 4
        short, short_seconds = timed_post(url, SHORT)
        assert short.status_code == 200 and short.json()["answer"] == "london"
        abandoned_windows = settled(model) - ran - 1
    print(
        f"one long request alone: {long_seconds:.2f} s; a short one after 4 abandoned: "
        f"{short_seconds:.2f} s; windows run for the abandoned: {abandoned_windows} of 160"
    )
    # Before: the four were answered first (4 x 40 windows), the short one waited for all of them.
    assert short_seconds < long_seconds, (short_seconds, long_seconds)
    assert abandoned_windows < long_windows, abandoned_windows


def test_a_short_request_takes_a_turn_while_long_ones_are_answered(slow_answerer):
    model = slow_answerer.model
    with slow_server(slow_answerer) as url, concurrent.futures.ThreadPoolExecutor(2) as pool:
        _, long_seconds = timed_post(url, LONG)
        ran = model.windows
        running = [pool.submit(timed_post, url, LONG) for _ in range(2)]
        wait_until(lambda: model.windows >= ran + 4)  # a long one's first turn is done
        short, short_seconds = timed_post(url, SHORT)
        longs = [future.result()[0] for future in running]
    assert short.status_code == longs[0].status_code == longs[1].status_code == 200
    print(f"long alone: {long_seconds:.2f} s; a short one sent during two: {short_seconds:.2f} s")
    # Before: the short request waited for all of the long ones' windows.
    assert short_seconds < long_seconds / 2, (short_seconds, long_seconds)


def test_a_client_address_with_many_long_requests_gets_one_turn_in_two(slow_answerer):
    """Client A (from 127.0.0.2) sends three long requests, then B (from 127.0.0.3) one: the turns
    alternate between the addresses, so B's takes about twice its time alone, not four times."""
    model = slow_answerer.model

    def from_address(address):
        transport = httpx.HTTPTransport(local_address=address)
        return lambda: timed_post(url, LONG, transport=transport)

    with slow_server(slow_answerer) as url, concurrent.futures.ThreadPoolExecutor(3) as pool:
        _, long_seconds = timed_post(url, LONG)
        ran = model.windows
        a_requests = [pool.submit(from_address("127.0.0.2")) for _ in range(3)]
        wait_until(lambda: model.windows >= ran + 4)
        b_response, b_seconds = from_address("127.0.0.3")()
        assert all(future.result()[0].status_code == 200 for future in a_requests)
    assert b_response.status_code == 200
    print(f"long alone: {long_seconds:.2f} s; B's long one behind A's three: {b_seconds:.2f} s")
    # First come, first served (before), B waited for A's 120 windows and then ran its 40.
    assert b_seconds < 2.6 * long_seconds, (b_seconds, long_seconds)


def test_health_shows_the_queue_depth(slow_answerer):
    with slow_server(slow_answerer) as url, concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert queue(url) == {
            "requests": 0,
            "windows": 0,
            "max_requests": 64,
            "max_request_windows": 128,
        }
        running = pool.submit(timed_post, url, LONG)
        busy = wait_for_queue(url, lambda queue: queue["requests"] == 1)
        assert 0 < busy["windows"] <= 40
        assert running.result()[0].status_code == 200
        assert wait_for_queue(url, lambda queue: queue["requests"] == 0)["windows"] == 0


def test_a_full_queue_gives_503_with_retry_after(slow_answerer):
    with slow_server(slow_answerer, max_queue=2) as url:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            waiting = [pool.submit(timed_post, url, LONG, 3) for _ in range(2)]
            wait_for_queue(url, lambda queue: queue["requests"] == 2)
            refused = post(url, SHORT)
            assert [future.result()[0] for future in waiting] == [None, None]  # they give up
        assert refused.status_code == 503
        assert "the limit is 2" in refused.json()["error"]
        assert 1 <= int(refused.headers["retry-after"]) <= 600
        wait_for_queue(url, lambda queue: queue["requests"] == 0)
        assert post(url, SHORT).status_code == 200


def test_a_request_over_the_window_budget_gets_413_with_its_size(server, answerer):
    body = {"question": QUESTION, "context": CONTEXT * 70}
    windows = count_windows(answerer, parse_request(json.dumps(body), 10_000))
    response = post(server, body)
    assert response.status_code == 413
    message = response.json()["error"]
    assert re.search(rf"makes {windows} windows of 48 tokens; the limit is 30 windows", message)


class Records(logging.Handler):
    """Keeps every log record it sees."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextlib.contextmanager
def recorded_logs():
    """The records of the server's and uvicorn's loggers (uvicorn's do not reach the root)."""
    records = Records()
    loggers = [logging.getLogger(name) for name in ("keras_qa.serving", "uvicorn", "")]
    levels = [logger.level for logger in loggers]
    loggers[0].setLevel(logging.INFO)
    for logger in loggers:
        logger.addHandler(records)
    try:
        yield records.records
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeHandler(records)
            logger.setLevel(level)


def test_each_client_that_goes_away_logs_one_line_and_no_traceback(slow_answerer):
    with slow_server(slow_answerer) as url:
        with recorded_logs() as records:
            assert timed_post(url, LONG, timeout=0.3)[0] is None  # gives up waiting
            send_and_close(url, json.dumps(SHORT).encode(), cut=10)  # goes away mid-body
            deadline = time.monotonic() + 10
            while len({id(record) for record in records}) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # anything more would come now
        records = list({id(record): record for record in records}.values())  # root sees them too
        messages = [record.getMessage() for record in records]
        assert len(records) == 2, messages
        assert all(record.name.startswith("keras_qa.serving") for record in records), messages
        assert all(
            record.exc_info is None and "\n" not in text for record, text in zip(records, messages)
        )
        assert "went away; its request of 40 windows was dropped" in messages[0]
        assert "went away while sending its request" in messages[1]
        wait_for_queue(url, lambda queue: queue["requests"] == 0)


def rss_mb():
    """This process's resident memory (the server runs in it, in a thread), in MB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_memory_stays_flat_over_mixed_and_abandoned_requests(server):
    if not os.path.exists("/proc/self/status"):
        pytest.skip("reads the resident memory from /proc")
    # One client (making one costs ~50 ms), sending JSON as the API asks.
    client = httpx.Client(base_url=server, timeout=60, headers={"content-type": "application/json"})
    statuses = {
        json.dumps(SHORT): 200,
        "[" * 10_000: 400,
        json.dumps({"question": QUESTION, "context": CONTEXT * 70}): 413,
        json.dumps({"question": " ", "context": CONTEXT}): 422,
    }
    long = json.dumps({"question": QUESTION, "context": CONTEXT * 40}).encode()

    def send(index):
        """One of: a request the client abandons once sent, or mid-body, or one of `statuses`."""
        kind = index % (len(statuses) + 2)
        if kind >= len(statuses):
            return send_and_close(server, long, cut=None if kind == len(statuses) else 100)
        body, status = list(statuses.items())[kind]
        assert client.post("/answer", content=body).status_code == status

    with client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(send, range(100)))
        wait_for_queue(server, lambda queue: queue["requests"] == 0)
        after_100 = rss_mb()
        list(pool.map(send, range(100, 1_000)))
        wait_for_queue(server, lambda queue: queue["requests"] == 0)
        after_1000 = rss_mb()
        assert client.post("/answer", json=SHORT).json()["answer"] == "london"
    print(f"RSS after 100 requests: {after_100:.1f} MB, after 1,000: {after_1000:.1f} MB")
    assert after_1000 <= 1.10 * after_100, (after_100, after_1000)


def browser_available():
    if os.path.exists(CHROMIUM) and shutil.which("chromium"):
        try:
            import playwright.sync_api  # noqa: F401

            return True
        except ImportError:
            pass
    if os.environ.get("CI"):
        pytest.fail("CI must install Debian's chromium and playwright (see .ci/run)")
    return False


def test_the_page_in_a_real_browser_highlights_the_answer(server, tmp_path):
    if not browser_available():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium and the playwright package")
    from playwright.sync_api import sync_playwright

    # Words the tiny model was trained on (other words make its answer vary between training runs),
    # after an emoji: the page must count code points, as the server's offsets do.
    context_text = "🐈 " + CONTEXT
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(server + "/")
            page.fill("#context", context_text)
            page.fill("#question", "where did the cat run ?")
            page.click("#ask")
            page.wait_for_selector("#highlight", timeout=60_000)
            served = post(server, {"question": "where did the cat run ?", "context": context_text})
            assert page.inner_text("#highlight") == served.json()["answer"] == "london"
            assert page.inner_text("#answer-text") == "london"
            assert 0 < float(page.inner_text("#score")) <= 1
            assert page.inner_text("#passage") == context_text
            screenshot = os.environ.get("KERAS_QA_SCREENSHOT", str(tmp_path / "page.png"))
            page.screenshot(path=screenshot, full_page=True)
            page.fill("#question", "   ")
            page.evaluate("document.getElementById('question').required = false")
            page.click("#ask")
            page.wait_for_function("document.getElementById('error').textContent.length > 0")
            assert "question is empty" in page.inner_text("#error")
        finally:
            browser.close()
    assert os.path.getsize(screenshot) > 1_000


@pytest.fixture
def inference_client_online(monkeypatch):
    """huggingface_hub's client refuses even loopback when HF_HUB_OFFLINE is set."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_huggingface_hubs_inference_client_gets_the_pipelines_answers(
    server, answerer, inference_client_online
):
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    client = InferenceClient(model=server)  # it posts to the URL itself: POST /
    question = "where did the cat run ?"
    parameters = {
        "top_k": 3,
        "doc_stride": 8,
        "max_answer_len": 4,
        "max_seq_len": 32,
        "max_question_len": 16,
        "handle_impossible_answer": True,
        "align_to_words": False,
    }
    found = client.question_answering(question=question, context=CONTEXT, **parameters)
    assert len(found) == 3
    expected = QuestionAnsweringPipeline(answerer)(question=question, context=CONTEXT, **parameters)
    assert_same_answers([element.__dict__ for element in found], expected)
    one = client.question_answering(question=question, context=CONTEXT)
    assert CONTEXT[one.start : one.end] == one.answer
    with pytest.raises(HfHubHTTPError, match="max_seq_len \\(200\\) is more than the model's"):
        client.question_answering(question=question, context=CONTEXT, max_seq_len=200)


def test_the_async_inference_client_works_too(server, inference_client_online):
    import asyncio

    from huggingface_hub import AsyncInferenceClient

    async def ask():
        client = AsyncInferenceClient(model=server)
        return await client.question_answering(
            question="where did the cat run ?", context=CONTEXT, top_k=2
        )

    answers = asyncio.run(ask())
    assert len(answers) == 2 and all(CONTEXT[a.start : a.end] == a.answer for a in answers)


def test_openapi_docs_describe_the_payloads(server):
    assert httpx.get(server + "/docs").status_code == 200
    schema = httpx.get(server + "/openapi.json").json()
    root = schema["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "inputs" in json.dumps(root) and "max_answer_len" in json.dumps(root)
    assert "/read" in schema["paths"] and "/health" in schema["paths"]


def test_an_answer_json_cannot_hold_is_a_json_500():
    from keras_qa.serving.app import json_response

    response = json_response({"answer": "", "score": float("nan"), "start": 0, "end": 0})
    assert response.status_code == 500 and response.media_type == "application/json"
    assert "JSON cannot hold" in json.loads(response.body)["error"]
    assert json.loads(json_response({"score": 0.5}).body) == {"score": 0.5}


@pytest.fixture(scope="module")
def guarded_server(answerer):
    """The app with an API key, one allowed origin and a 1-second read timeout."""
    access = Access(cors_origins=("https://app.example",), api_key="s3cret", read_timeout=1.0)
    with serving(create_app(answerer, access=access)) as url:
        yield url


KEY = {"authorization": "Bearer s3cret", "content-type": "application/json"}


def test_a_careful_server_refuses_what_a_web_page_or_a_stranger_could_send(guarded_server):
    body = json.dumps(SHORT)
    answer = guarded_server + "/answer"
    assert httpx.post(answer, content=body, headers=KEY).json()["answer"] == "london"
    refused = {
        401: {"content-type": "application/json"},
        415: {**KEY, "content-type": "text/plain"},
        403: {**KEY, "origin": "http://evil.example"},
        400: {**KEY, "host": "evil.example"},
    }
    for status, headers in refused.items():
        response = httpx.post(answer, content=body, headers=headers)
        assert response.status_code == status and "error" in response.json(), response.text
    # The allowed origin gets its preflight answered, and its call too.
    preflight = httpx.options(
        answer,
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    allowed = httpx.post(answer, content=body, headers={**KEY, "origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert (
        httpx.get(guarded_server + "/health", headers={"host": "evil.example"}).status_code == 400
    )


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes(guarded_server):
    host, port = guarded_server.removeprefix("http://").split(":")
    body = json.dumps(SHORT).encode()
    head = (
        f"POST /answer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer s3cret\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(head + body[:10])  # half a body, then nothing
        received = b""
        while chunk := connection.recv(65536):  # returns b"" once the server closes
            received += chunk
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"did not arrive within 1 s" in received


def test_the_inference_client_sends_the_api_key_as_its_token(
    guarded_server, inference_client_online
):
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError, match="401"):
        InferenceClient(model=guarded_server).question_answering(question=QUESTION, context=CONTEXT)
    found = InferenceClient(model=guarded_server, token="s3cret").question_answering(
        question=QUESTION, context=CONTEXT
    )
    assert found.answer == "london"


def test_an_int8_answerer_is_served_and_its_health_says_int8(tiny_trained_model):
    pytest.importorskip("onnxruntime")
    int8 = QuestionAnswerer.from_pretrained(tiny_trained_model, quantize="int8")
    with serving(create_app(int8)) as url:
        health = httpx.get(url + "/health").json()
        context = "the red mat . the cat ran to london . the dog sat in paris ."
        found = post(url, {"question": "where did the cat run ?", "context": context})
    assert health["dtype_policy"] == "int8"
    assert found.status_code == 200
    assert found.json() == int8("where did the cat run ?", context)


def test_a_calibrated_answerer_serves_its_calibrated_scores_and_health_says_so(answerer):
    calibration = Calibration(weight=0.5, bias=-1.0)
    calibrated = QuestionAnswerer(
        answerer.model, answerer.tokenizer, 48, 16, calibration=calibration
    )
    context = "the red mat . the cat ran to london . the dog sat in paris ."
    with serving(create_app(calibrated)) as url:
        health = httpx.get(url + "/health").json()
        found = post(url, {"question": "where did the cat run ?", "context": context})
    assert health["calibrated_scores"] is True
    assert found.json() == pytest.approx(calibrated("where did the cat run ?", context))
    assert found.json()["score"] != pytest.approx(
        answerer("where did the cat run ?", context)["score"]
    )
