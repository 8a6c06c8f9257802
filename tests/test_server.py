import concurrent.futures
import json
import os
import shutil
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from keras_qa.pipeline import QuestionAnswerer  # noqa: E402
from keras_qa.server import create_app, parse_request  # noqa: E402

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


@pytest.fixture(scope="module")
def server(answerer):
    """The app served by uvicorn on a free loopback port, in a thread."""
    app = create_app(answerer, max_body_bytes=20_000, max_context_chars=5_000)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def post(url, body, **kwargs):
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(
        url + "/answer",
        content=content,
        headers={"content-type": "application/json"},
        timeout=60,
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
    answers = hugging_face.json()
    assert len(answers) == 2 and answers[0] == pytest.approx(body)
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
        ({"inputs": "where?"}, 422, "Hugging Face payload"),
        (["question", "context"], 422, "JSON object"),
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        ({"question": "q", "context": "word " * 1_100}, 413, "limit is 5,000"),
        ({"question": "q", "context": "word " * 5_000}, 413, "over 20,000 bytes"),
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


def test_a_chunked_body_over_the_limit_is_refused(server):
    def chunks():
        for _ in range(30):
            yield b" " * 1_000

    response = httpx.post(server + "/answer", content=chunks(), timeout=60)
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


def test_parse_request_reads_both_payloads():
    plain = parse_request(json.dumps({"question": "q", "context": "c", "top_k": 2}), 100)
    hugging_face = parse_request(
        json.dumps({"inputs": {"question": "q", "context": "c"}, "parameters": {"top_k": 2}}), 100
    )
    assert plain == hugging_face and plain.top_k == 2


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
