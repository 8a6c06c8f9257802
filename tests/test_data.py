import gzip
import json
import warnings
import zlib

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


# Files damaged or cut short, and records no JSON reader can take: each is a DataFormatError that
# names the file and, where there is one, the record.


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


@pytest.mark.parametrize("digits", [4_301, 20_000])
def test_an_answer_start_too_long_for_python_names_the_record(tmp_path, digits):
    number = "7" * digits
    squad = tmp_path / "long.json"
    squad.write_text(json.dumps(squad_document([GOOD])).replace("12}", number + "}"))
    with pytest.raises(
        DataFormatError, match=f"answer_start\\[0\\] is <a {digits}-digit number>"
    ) as e:
        keras_qa.load_examples(str(squad))
    assert f"{squad}: article 0 ('Cats'), paragraph 0, question 0 (id 'a')" in str(e.value)
    jsonl = tmp_path / "long.jsonl"
    records = [json.dumps(flat("a")), json.dumps(flat("b")).replace("[12]", f"[{number}]")]
    jsonl.write_text("\n".join(records), encoding="utf-8")
    with pytest.raises(DataFormatError, match="long.jsonl: line 2 \\(id 'b'\\): answer_start out"):
        keras_qa.load_examples(str(jsonl))
    with pytest.warns(UserWarning, match="1 answer_start out of range"):
        assert len(keras_qa.load_examples(str(jsonl), on_error="skip")) == 1


# Values no later stage can use: caught at load time, naming the file and the record.

SURROGATE_CASES = {
    "question": ({"question": "Wh\udc80ere?"}, "field 'question' .* U\\+DC80 at character 2"),
    "half-emoji": (
        {"context": "The cat sat on the mat \ud83d"},
        "field 'context' .* U\\+D83D at character 23",
    ),
    "answer": (
        {"answers": {"text": ["on the \udfff"], "answer_start": [12]}},
        "answers.text\\[0\\] holds a lone surrogate U\\+DFFF",
    ),
    "title": ({"title": "Ca\ud800ts"}, "field 'title' holds a lone surrogate U\\+D800"),
}


@pytest.mark.parametrize("change, message", SURROGATE_CASES.values(), ids=SURROGATE_CASES)
def test_a_lone_surrogate_in_a_jsonl_record_is_named(tmp_path, change, message):
    path = tmp_path / "escaped.jsonl"
    path.write_text(json.dumps(flat("a")) + "\n" + json.dumps(flat("b", **change)) + "\n")
    with pytest.raises(DataFormatError, match=f"escaped.jsonl: line 2 \\(id 'b'\\): {message}"):
        keras_qa.load_examples(str(path))
    with pytest.warns(UserWarning, match="1 lone surrogate in text"):
        assert [e["id"] for e in keras_qa.load_examples(str(path), on_error="skip")] == ["a"]


def test_a_lone_surrogate_in_a_squad_question_is_named(tmp_path):
    question = GOOD | {"id": "b", "question": "Who sat \ud800 here?"}
    path = write_json(tmp_path / "escaped.json", squad_document([GOOD, question]))
    with pytest.raises(DataFormatError, match="field 'question' holds a lone surrogate") as e:
        keras_qa.load_examples(path)
    assert f"{path}: article 0 ('Cats'), paragraph 0, question 1 (id 'b')" in str(e.value)


EMPTY_CASES = {
    "empty-context": ("context", "", "field 'context' is empty"),
    "blank-context": ("context", " \n\t ", "field 'context' is empty or only whitespace"),
    "empty-question": ("question", "", "field 'question' is empty"),
    "ideographic-space": ("question", "\u3000 ", "field 'question' is empty or only whitespace"),
}


@pytest.mark.parametrize("key, value, message", EMPTY_CASES.values(), ids=EMPTY_CASES)
def test_an_empty_context_or_question_is_named(tmp_path, key, value, message):
    unanswerable = {"text": [], "answer_start": []}
    path = tmp_path / "empty.jsonl"
    bad = flat("b", **{key: value, "answers": unanswerable})
    path.write_text(json.dumps(flat("a")) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataFormatError, match=f"empty.jsonl: line 2 \\(id 'b'\\): {message}"):
        keras_qa.load_examples(str(path))
    question = {"id": "c", "question": "Q?", "is_impossible": True, "answers": []}
    document = squad_document([question | ({key: value} if key == "question" else {})])
    if key == "context":
        document["data"][0]["paragraphs"][0]["context"] = value
    squad_path = write_json(tmp_path / "empty.json", document)
    with pytest.raises(DataFormatError, match=message) as e:
        keras_qa.load_examples(squad_path)
    assert f"{squad_path}: article 0 ('Cats'), paragraph 0, question 0 (id 'c')" in str(e.value)


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, [False]])
def test_is_impossible_must_be_a_json_boolean(tmp_path, value):
    question = GOOD | {"id": "b", "is_impossible": value}
    path = write_json(tmp_path / "v2.json", squad_document([GOOD, question], version="v2.0"))
    with pytest.raises(DataFormatError, match="field 'is_impossible' must be true or false") as e:
        keras_qa.load_examples(path)
    assert f"{path}: article 0 ('Cats'), paragraph 0, question 1 (id 'b')" in str(e.value)
    with pytest.warns(UserWarning, match="1 is_impossible not a boolean"):
        assert [e["id"] for e in keras_qa.load_examples(path, on_error="skip")] == ["a"]


@pytest.mark.parametrize("title", [7, ["Cats"], {"en": "Cats"}, True])
def test_a_title_that_is_not_a_string_is_named(tmp_path, title):
    document = squad_document([GOOD])
    document["data"][0]["title"] = title
    path = write_json(tmp_path / "titled.json", document)
    with pytest.raises(DataFormatError, match="field 'title' must be a string") as e:
        keras_qa.load_examples(path)
    assert f"{path}: article 0, paragraph 0, question 0 (id 'a')" in str(e.value)
    jsonl = tmp_path / "titled.jsonl"
    jsonl.write_text(json.dumps(flat("a", title=title)) + "\n")
    with pytest.raises(DataFormatError, match="line 1 \\(id 'a'\\): field 'title' must be a str"):
        keras_qa.load_examples(str(jsonl))


def test_a_null_or_absent_title_is_an_empty_string(tmp_path):
    document = squad_document([GOOD])
    document["data"][0]["title"] = None
    [example] = keras_qa.load_examples(write_json(tmp_path / "untitled.json", document))
    assert example["title"] == ""
    del document["data"][0]["title"]
    [example] = keras_qa.load_examples(write_json(tmp_path / "untitled.json", document))
    assert example["title"] == ""


def test_skipping_counts_each_kind_of_invalid_value(tmp_path):
    path = tmp_path / "mixed.jsonl"
    records = [
        flat("a"),
        flat("b", context="   ", answers={"text": [], "answer_start": []}),
        flat("c", question="Wh\ud800?"),
        flat("d", title=3),
        flat("e"),
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    expected = (
        "skipped 3 malformed record\\(s\\) \\(1 empty context, 1 lone surrogate in text, "
        "1 title not a string\\); kept 2"
    )
    with pytest.warns(UserWarning, match=expected):
        examples = keras_qa.load_examples(str(path), on_error="skip")
    assert [e["id"] for e in examples] == ["a", "e"]


def test_a_huge_bad_value_is_cut_short_in_the_message(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps(flat("x" * 1_000_000, title=["y" * 1_000_000])) + "\n")
    with pytest.raises(DataFormatError, match="field 'title' must be a string") as e:
        keras_qa.load_examples(str(path))
    assert str(path) in str(e.value) and len(str(e.value)) < 500


def test_the_long_split_puts_each_paragraph_inside_its_neighbours():
    short = keras_qa.load_examples("bundled", split="eval")
    long = keras_qa.load_examples("bundled", split="eval-long")
    assert [e["id"] for e in long] == [e["id"] for e in short]
    for a, b in zip(short, long):
        assert a["question"] == b["question"] and a["answers"]["text"] == b["answers"]["text"]
        assert a["context"] in b["context"]
        shift = b["context"].index(a["context"])
        for text, start, moved in zip(
            a["answers"]["text"], a["answers"]["answer_start"], b["answers"]["answer_start"]
        ):
            assert moved == start + shift
            assert b["context"][moved : moved + len(text)] == text  # the offsets cut the answers
    mean_words = sum(len(e["context"].split()) for e in long) / len(long)
    assert mean_words > 5 * sum(len(e["context"].split()) for e in short) / len(short)
    assert keras_qa.load_examples("bundled", split="eval-long") == long  # deterministic
    with pytest.raises(ValueError, match="'eval-long'"):
        keras_qa.load_examples("bundled", split="dev-long")


def test_the_v2_split_adds_an_unanswerable_copy_of_each_question():
    from keras_qa.data import with_unanswerable_copies
    from keras_qa.metrics import squad_version

    answerable = keras_qa.load_examples("bundled", split="eval")
    mixed = keras_qa.load_examples("bundled", split="eval-v2")
    assert mixed[::2] == answerable and len(mixed) == 2 * len(answerable)
    assert squad_version(mixed) == 2 and len({e["id"] for e in mixed}) == len(mixed)
    titles = {e["context"]: e["title"] for e in answerable}
    for original, copy in zip(mixed[::2], mixed[1::2]):
        assert copy["id"] == original["id"] + "-unanswerable" and copy["answers"]["text"] == []
        assert copy["question"] == original["question"]
        assert titles[copy["context"]] != original["title"]  # another article's paragraph
    with pytest.raises(ValueError, match="one title found"):
        with_unanswerable_copies([answerable[0]])
