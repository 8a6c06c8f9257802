import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

import keras_qa  # noqa: E402


@pytest.fixture(scope="session")
def minilm_tokenizer():
    return keras_qa.load_tokenizer("minilm")


@pytest.fixture(scope="session")
def bundled_examples():
    return keras_qa.load_examples("bundled")


def make_example(context, question, answer=None, answer_start=None, qid="q0"):
    """A one-question example; the answer's start is found in the context unless given."""
    if answer is None:
        answers = {"text": [], "answer_start": []}
    else:
        start = context.index(answer) if answer_start is None else answer_start
        answers = {"text": [answer], "answer_start": [start]}
    return {"id": qid, "title": "", "context": context, "question": question, "answers": answers}
