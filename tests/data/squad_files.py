"""SQuAD-format documents and flat records written to files, for the data tests."""

import gzip
import json


def squad_document(questions, context="The cat sat on the mat.", version="1.1"):
    return {
        "version": version,
        "data": [{"title": "Cats", "paragraphs": [{"context": context, "qas": questions}]}],
    }


def write_json(path, document, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8") as file:
        json.dump(document, file)
    return str(path)


GOOD = {"id": "a", "question": "Where?", "answers": [{"text": "on the mat", "answer_start": 12}]}


def flat(qid="a", **changes):
    record = {
        "id": qid,
        "title": "Cats",
        "context": "The cat sat on the mat.",
        "question": "Where?",
        "answers": {"text": ["on the mat"], "answer_start": [12]},
    }
    record.update(changes)
    return record
