import json

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn) is not installed")

from keras_qa.serving.requests import parse_request  # noqa: E402


def test_parse_request_reads_both_payloads():
    plain = parse_request(json.dumps({"question": "q", "context": "c", "top_k": 2}), 100)
    assert (plain.question, plain.context, plain.top_k) == ("q", "c", 2)
    hugging_face = parse_request(
        json.dumps({"inputs": {"question": "q", "context": "c"}, "parameters": {"top_k": 2}}), 100
    )
    assert (hugging_face.question, hugging_face.context) == ("q", "c")
    assert hugging_face.settings == {"top_k": 2}
    bare = parse_request(
        json.dumps({"inputs": {"question": "q", "context": "c"}, "parameters": None}), 100
    )
    assert bare.settings == {}
