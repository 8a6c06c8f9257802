import json

import pytest

import keras_qa
from keras_qa.errors import DataFormatError
from tests.data.squad_files import GOOD, flat, squad_document, write_json


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
