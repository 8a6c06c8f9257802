import gzip
import json
import warnings

import pytest

import keras_qa
from keras_qa.data import DataFormatError


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


def test_bundled_splits_are_disjoint_articles_with_the_documented_counts():
    train = keras_qa.load_examples("bundled", split="train")
    evaluation = keras_qa.load_examples("bundled", split="eval")
    everything = keras_qa.load_examples("bundled")
    assert (len(train), len(evaluation), len(everything)) == (8582, 1988, 10570)
    assert {e["title"] for e in train}.isdisjoint({e["title"] for e in evaluation})
    assert [e["id"] for e in everything] == [e["id"] for e in train + evaluation]
    assert len({e["id"] for e in everything}) == 10570
    for example in everything:
        for text, start in zip(example["answers"]["text"], example["answers"]["answer_start"]):
            assert example["context"][start : start + len(text)] == text


def test_bundled_split_names_are_checked():
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        keras_qa.load_examples("bundled", split="validation")


def test_bundled_data_carries_its_license():
    readme = keras_qa.data.bundled_path().replace("squad-v1.1-dev.json.gz", "README.md")
    with open(readme, encoding="utf-8") as file:
        text = file.read()
    assert "CC BY-SA 4.0" in text and "Rajpurkar" in text


@pytest.mark.parametrize("compress", [False, True])
def test_squad_v1_file_round_trips(tmp_path, compress):
    name = "data.json.gz" if compress else "data.json"
    path = write_json(tmp_path / name, squad_document([GOOD]), compress)
    [example] = keras_qa.load_examples(path)
    assert example == {
        "id": "a",
        "title": "Cats",
        "context": "The cat sat on the mat.",
        "question": "Where?",
        "answers": {"text": ["on the mat"], "answer_start": [12]},
    }


def test_squad_v2_impossible_questions_have_empty_answers(tmp_path):
    impossible = {
        "id": "b",
        "question": "Why?",
        "is_impossible": True,
        "answers": [],
        "plausible_answers": [{"text": "mat", "answer_start": 19}],
    }
    path = write_json(tmp_path / "v2.json", squad_document([GOOD, impossible], version="v2.0"))
    examples = keras_qa.load_examples(path)
    assert [e["id"] for e in examples] == ["a", "b"]
    assert examples[1]["answers"] == {"text": [], "answer_start": []}


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


def test_jsonl_and_parquet_in_the_hugging_face_schema(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [
        flat("a"),
        flat("b", question="What sat?", answers={"text": ["The cat"], "answer_start": [0]}),
    ]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    parquet = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    assert keras_qa.load_examples(str(jsonl)) == records
    assert keras_qa.load_examples(parquet) == records


@pytest.mark.parametrize(
    "question, message",
    [
        ({"id": "a", "answers": [{"text": "cat", "answer_start": 4}]}, "missing field 'question'"),
        ({"id": "a", "question": "Q?"}, "missing field 'answers'"),
        (
            {"id": "a", "question": "Q?", "answers": [{"text": "cat"}]},
            "missing field answers\\[0\\].answer_start",
        ),
        (
            {"id": "a", "question": "Q?", "answers": [{"text": "mat.", "answer_start": 20}]},
            "answer_start out of range",
        ),
        (
            {"id": "a", "question": "Q?", "answers": [{"text": "dog", "answer_start": 4}]},
            "does not match the context at answer_start: answers.text\\[0\\]='dog'",
        ),
    ],
)
def test_bad_squad_records_name_file_and_record(tmp_path, question, message):
    path = write_json(tmp_path / "bad.json", squad_document([GOOD | {"id": "ok"}, question]))
    with pytest.raises(DataFormatError, match=message) as error:
        keras_qa.load_examples(path)
    assert str(path) in str(error.value)
    assert "article 0 ('Cats'), paragraph 0, question 1" in str(error.value)


def test_duplicate_ids_are_an_error(tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text(json.dumps(flat("x")) + "\n" + json.dumps(flat("x")) + "\n")
    with pytest.raises(DataFormatError, match="line 2 \\(id 'x'\\): duplicate id .*line 1"):
        keras_qa.load_examples(str(path))


def test_skipping_reports_how_many_records_were_dropped(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps(flat("a")),
        "{not json",
        json.dumps(flat("b", answers={"text": ["dog"], "answer_start": [4]})),
        json.dumps(flat("c")),
    ]
    path.write_text("\n".join(lines))
    with pytest.warns(UserWarning, match="skipped 2 malformed record\\(s\\).*kept 2"):
        examples = keras_qa.load_examples(str(path), on_error="skip")
    assert [e["id"] for e in examples] == ["a", "c"]


def test_clean_files_load_without_warnings(tmp_path):
    path = write_json(tmp_path / "ok.json", squad_document([GOOD]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_qa.load_examples(path)


def test_unreadable_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json: no such file"):
        keras_qa.load_examples(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    with pytest.raises(DataFormatError, match="broken.json: not valid JSON"):
        keras_qa.load_examples(str(broken))
    not_squad = write_json(tmp_path / "list.json", [1, 2])
    with pytest.raises(DataFormatError, match="not a SQuAD-format file"):
        keras_qa.load_examples(not_squad)
    other = tmp_path / "data.csv"
    other.write_text("a,b\n")
    with pytest.raises(ValueError, match="unsupported file type"):
        keras_qa.load_examples(str(other))


def test_hub_dataset_names_go_through_datasets(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return [flat("h1")]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    assert keras_qa.load_examples("squad", split="validation") == [flat("h1")]
    assert calls == [("squad", "validation")]
    with pytest.raises(ValueError, match="needs a split"):
        keras_qa.load_examples("squad")


def test_hub_failures_explain_that_network_is_needed(monkeypatch):
    import datasets

    def offline(name, split):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ValueError, match="needs network access"):
        keras_qa.load_examples("squad_v2", split="train")
