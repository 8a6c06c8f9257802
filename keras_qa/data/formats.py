"""The file formats and hubs examples come from, read into one flat schema (see `keras_qa.data.examples`).

SQuAD-format `.json` / `.json.gz` (v1.1 or v2.0), flat `.jsonl` / `.jsonl.gz` and `.parquet` files in
the Hugging Face "squad" schema, and Hugging Face datasets by name (online only).
"""

import gzip
import json
import os
import sys
import zlib

from keras_qa.data.records import RecordChecker, parse_int, short
from keras_qa.errors import DataFormatError
from keras_qa.files import read_json


def load_squad_json(path, on_error):
    return parse_squad(read_json(path, DataFormatError, parse_int=parse_int), path, on_error)


def parse_squad(document, path, on_error, articles=None):
    """Flatten a SQuAD-format document (`{"data": [{"title", "paragraphs": [...]}]}`)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataFormatError(
            f"{path}: not a SQuAD-format file: expected a JSON object with a 'data' list of articles"
        )
    checker = RecordChecker(path, on_error)
    data = document["data"]
    indices = range(len(data)) if articles is None else articles
    for article_index in indices:
        article = data[article_index]
        where = f"article {article_index}"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            checker.fail(where, "missing field 'paragraphs' (a list)")
            continue
        title = article.get("title")
        title = "" if title is None else title
        if title and isinstance(title, str):
            where = f"article {article_index} ({short(title)})"
        for paragraph_index, paragraph in enumerate(article["paragraphs"]):
            paragraph_where = f"{where}, paragraph {paragraph_index}"
            if not isinstance(paragraph, dict):
                checker.fail(paragraph_where, "a paragraph must be an object")
                continue
            context = paragraph.get("context")
            questions = paragraph.get("qas")
            if not isinstance(questions, list):
                checker.fail(paragraph_where, "missing field 'qas' (a list)")
                continue
            for question_index, qa in enumerate(questions):
                record_where = f"{paragraph_where}, question {question_index}"
                _add_squad_question(checker, record_where, qa, title, context)
    return checker.finish()


def _add_squad_question(checker, where, qa, title, context):
    """Check one question of a SQuAD-format paragraph and add it in the flat schema."""
    if not isinstance(qa, dict):
        checker.fail(where, "a question must be an object")
        return
    if "id" in qa:
        where = f"{where} (id {short(qa['id'])})"
    answers = qa.get("answers")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        checker.fail(
            where,
            f"field 'is_impossible' must be true or false, got {short(impossible)}",
            "is_impossible not a boolean",
        )
        return
    if impossible:
        answers = []
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        checker.fail(where, "missing field 'answers' (a list of objects)", "missing field")
        return
    missing = [
        f"answers[{i}].{key}"
        for i, answer in enumerate(answers)
        for key in ("text", "answer_start")
        if key not in answer
    ]
    if missing:
        checker.fail(where, f"missing field {missing[0]}", "missing field")
        return
    checker.add(
        where,
        {
            "id": qa.get("id"),
            "title": title,
            "context": context,
            "question": qa.get("question"),
            "answers": {
                "text": [answer["text"] for answer in answers],
                "answer_start": [answer["answer_start"] for answer in answers],
            },
        },
    )


def load_jsonl(path, on_error):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    checker = RecordChecker(path, on_error)
    for line_number, line in _numbered_lines(path, checker):
        if not line.strip():
            continue
        where = f"line {line_number}"
        record, problem = _decode_line(line)
        if problem is not None:
            checker.fail(where, problem, problem.split(" (")[0])
            continue
        checker.add_flat(where, record)
    return checker.finish()


def _numbered_lines(path, checker):
    """Yield `(line number, bytes)` of a possibly gzipped file; damage midway goes to `checker`.

    The lines read before a damaged or cut-short stretch are kept, so that `on_error="skip"` keeps
    their records; a file that cannot be read at all raises `DataFormatError`.
    """
    line_number = 0
    try:
        with (gzip.open if path.lower().endswith(".gz") else open)(path, "rb") as file:
            for line_number, line in enumerate(file, start=1):
                yield line_number, line
    except (OSError, EOFError, zlib.error) as error:
        if line_number == 0:
            raise DataFormatError(f"{path}: cannot be read ({error})") from error
        checker.stop(
            f"line {line_number + 1}",
            f"the file is damaged or cut short and cannot be read from here on ({error})",
        )


def _decode_line(line):
    """The JSON value of one line of bytes and `None`, or `None` and what is wrong with the line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, (
            f"not UTF-8 text (byte 0x{line[error.start]:02X} at byte {error.start + 1} of the line)"
        )
    try:
        return json.loads(text, parse_int=parse_int), None
    except ValueError as error:  # json.JSONDecodeError, or whatever else json refuses
        return None, f"not valid JSON ({error})"
    except RecursionError:
        return None, (
            f"JSON nested too deeply (over {sys.getrecursionlimit()} levels of lists or objects)"
        )


def load_parquet(path, on_error):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises several unrelated types for a bad file.
        raise DataFormatError(f"{path}: cannot be read as Parquet ({error})") from error
    checker = RecordChecker(path, on_error)
    for row_index, record in enumerate(rows):
        checker.add_flat(f"row {row_index}", record)
    return checker.finish()


def load_hub_dataset(name, split, on_error):
    if split is None:
        raise ValueError(
            f"load_examples({name!r}) reads a Hugging Face dataset and needs a split, "
            "for example split='train' or split='validation'."
        )
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"Loading the Hugging Face dataset {name!r} needs the `datasets` package."
        ) from error
    try:
        dataset = datasets.load_dataset(name, split=split)
    except Exception as error:  # `datasets` raises many types for offline, unknown and bad names.
        raise ValueError(
            f"Could not load the Hugging Face dataset {name!r} (split {split!r}): {error}. "
            "It is neither a local file (.json, .json.gz, .jsonl, .parquet) nor 'bundled'; "
            "loading a hub dataset needs network access. Offline, use load_examples('bundled', ...)."
        ) from error
    checker = RecordChecker(f"{name}[{split}]", on_error)
    for row_index, record in enumerate(dataset):
        checker.add_flat(f"row {row_index}", record)
    return checker.finish()
