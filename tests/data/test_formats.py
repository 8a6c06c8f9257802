import gzip
import json
import zlib

import pytest

import keras_qa
from keras_qa.errors import DataFormatError
from tests.data.squad_files import GOOD, flat, squad_document, write_json


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


def jsonl_bytes(count):
    return "".join(json.dumps(flat(f"q{i}")) + "\n" for i in range(count)).encode("utf-8")


def damaged_gzip(content, garbage=b"\xfe" * 64):
    """`content` gzipped without compression, then bytes that are no deflate block (zlib.error)."""
    compressor = zlib.compressobj(level=0, wbits=31)
    return compressor.compress(content) + compressor.flush(zlib.Z_FULL_FLUSH) + garbage


def assert_kept_a_prefix(examples, total):
    assert 0 < len(examples) < total
    assert [e["id"] for e in examples] == [f"q{i}" for i in range(len(examples))]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: damaged_gzip(data), id="deflate-error"),
        pytest.param(lambda data: gzip.compress(data, compresslevel=0)[:-30_000], id="cut-short"),
    ],
)
def test_a_damaged_jsonl_gz_names_the_line_where_reading_stopped(tmp_path, damage):
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(damage(jsonl_bytes(2_000)))
    with pytest.raises(DataFormatError, match="line [0-9]+: the file is damaged or cut short"):
        keras_qa.load_examples(str(path))
    with pytest.warns(
        UserWarning, match="stopped reading at line [0-9]+: the file is damaged"
    ) as w:
        examples = keras_qa.load_examples(str(path), on_error="skip")
    assert_kept_a_prefix(examples, 2_000)
    message = str(w[0].message)
    assert str(path) in message and f"line {len(examples) + 1}:" in message
    assert f"kept {len(examples)}" in message


def test_a_jsonl_gz_that_is_not_gzip_at_all_is_an_error_even_when_skipping(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(jsonl_bytes(3))
    with pytest.raises(DataFormatError, match="plain.jsonl.gz: cannot be read .*gzip"):
        keras_qa.load_examples(str(path), on_error="skip")


def test_a_squad_json_gz_damaged_midway_names_the_file(tmp_path):
    document = squad_document([GOOD | {"id": f"q{i}"} for i in range(3_000)])
    path = tmp_path / "dev.json.gz"
    path.write_bytes(damaged_gzip(json.dumps(document).encode("utf-8")))
    with pytest.raises(DataFormatError, match="cannot be read as gzip: the file is damaged") as e:
        keras_qa.load_examples(str(path), on_error="skip")
    assert str(path) in str(e.value)


def test_a_jsonl_line_that_is_not_utf8_is_a_bad_record(tmp_path):
    path = tmp_path / "windows.jsonl"
    smart_quotes = json.dumps(flat("b", question="\u201cWhere\u201d?"), ensure_ascii=False)
    lines = [json.dumps(flat("a")).encode(), smart_quotes.encode("cp1252"), jsonl_bytes(1)]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataFormatError, match="windows.jsonl: line 2: not UTF-8 text \\(byte 0x93"):
        keras_qa.load_examples(str(path))
    with pytest.warns(
        UserWarning, match="skipped 1 malformed record\\(s\\) \\(1 not UTF-8 text\\)"
    ):
        examples = keras_qa.load_examples(str(path), on_error="skip")
    assert [e["id"] for e in examples] == ["a", "q0"]


def test_deeply_nested_json_is_a_bad_record_in_jsonl_and_a_bad_file_in_squad_json(tmp_path):
    jsonl = tmp_path / "deep.jsonl"
    nested = '{"id": "b", "answers": ' + "[" * 50_000 + "]" * 50_000 + "}"
    jsonl.write_text(json.dumps(flat("a")) + "\n" + nested + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="deep.jsonl: line 2: JSON nested too deeply"):
        keras_qa.load_examples(str(jsonl))
    with pytest.warns(UserWarning, match="1 JSON nested too deeply"):
        assert len(keras_qa.load_examples(str(jsonl), on_error="skip")) == 1
    squad = tmp_path / "deep.json"
    squad.write_text('{"data": ' + '{"a": [' * 30_000 + "]}" * 30_000 + "}", encoding="utf-8")
    with pytest.raises(DataFormatError, match="deep.json: cannot be read: .*nested too deeply"):
        keras_qa.load_examples(str(squad))
