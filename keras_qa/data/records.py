"""Checks one question answering record at a time, and names the file and the record when one is wrong.

Every loader (`keras_qa.data.formats`) hands its records to a `RecordChecker`, which either raises a
`DataFormatError` for the first bad one or, with `on_error="skip"`, counts the bad ones and warns once.
"""

import reprlib
import warnings

from keras_qa.errors import DataFormatError

# Short reprs of whatever a file holds, for error messages (a bad value may be megabytes long).
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


class _LongNumber:
    """A JSON integer too long for Python to convert, kept so the record check can name its record."""

    def __init__(self, digits):
        self.digits = len(digits)

    def __repr__(self):
        return f"<a {self.digits}-digit number>"


def parse_int(digits):
    """The int of a JSON integer's digits, or a `_LongNumber` past Python's limit."""
    try:
        return int(digits)
    except ValueError:  # over the interpreter's int-string conversion limit (4,300 digits)
        return _LongNumber(digits)


def short(value):
    """`repr(value)`, cut to about 80 characters."""
    if isinstance(value, str) and len(value) <= _REPR.maxstring:
        return repr(value)  # the common case (ids, titles), without reprlib's overhead
    return _REPR.repr(value)


class RecordChecker:
    """Validates records one by one, and raises or counts the bad ones."""

    def __init__(self, source, on_error):
        self.source = source
        self.on_error = on_error
        self.examples = []
        self.first_seen = {}
        self.skipped = {}
        self.stopped = None

    def fail(self, where, problem, kind=None):
        """Raise for a bad record, or count it under `kind` (a short reason) when skipping."""
        if self.on_error == "raise":
            raise DataFormatError(f"{self.source}: {where}: {problem}")
        kind = kind or problem
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

    def stop(self, where, problem):
        """Raise for a file that cannot be read past `where`, or note it for the warning when skipping."""
        if self.on_error == "raise":
            raise DataFormatError(f"{self.source}: {where}: {problem}")
        self.stopped = f"{where}: {problem}"

    def add_flat(self, where, record):
        if not isinstance(record, dict):
            self.fail(where, "a record must be an object")
            return
        if "id" in record:
            where = f"{where} (id {short(record['id'])})"
        for key in ("id", "context", "question", "answers"):
            if key not in record:
                self.fail(where, f"missing field {key!r}", "missing field")
                return
        answers = record["answers"]
        if (
            not isinstance(answers, dict)
            or not isinstance(answers.get("text"), list)
            or not isinstance(answers.get("answer_start"), list)
        ):
            self.fail(where, "field 'answers' must be {'text': [...], 'answer_start': [...]}")
            return
        self.add(
            where,
            {
                "id": record["id"],
                "title": "" if record.get("title") is None else record["title"],
                "context": record["context"],
                "question": record["question"],
                "answers": {
                    "text": list(answers["text"]),
                    "answer_start": list(answers["answer_start"]),
                },
            },
        )

    def add(self, where, example):
        kind, problem = _find_problem(example)
        if problem is None and example["id"] in self.first_seen:
            kind = "duplicate id"
            problem = f"duplicate id (first seen at {self.first_seen[example['id']]})"
        if problem is not None:
            self.fail(where, problem, kind)
            return
        self.first_seen[example["id"]] = where
        self.examples.append(example)

    def finish(self):
        """The examples kept, after a warning that says what was skipped and where reading stopped."""
        messages = []
        if self.skipped:
            total = sum(self.skipped.values())
            reasons = ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())
            messages.append(f"skipped {total} malformed record(s) ({reasons})")
        if self.stopped:
            messages.append(f"stopped reading at {self.stopped}")
        if messages:
            warnings.warn(
                f"{self.source}: {'; '.join(messages)}; kept {len(self.examples)}.", stacklevel=3
            )
        return self.examples


def _find_problem(example):
    """What is wrong with one flat example: `(short reason, message)`, or `(None, None)`."""
    kind, problem = _find_text_problem(example)
    if problem is None:
        kind, problem = _find_answer_problem(example)
    return kind, problem


def _find_text_problem(example):
    """What is wrong with the id, title, context or question of a flat example, if anything."""
    identifier = example["id"]
    if identifier is None:
        return "missing field", "missing field 'id' (a non-empty string)"
    if not isinstance(identifier, str) or not identifier:
        return "id not a non-empty string", (
            f"field 'id' must be a non-empty string, got {short(identifier)}"
        )
    if not isinstance(example["title"], str):
        return (
            "title not a string",
            f"field 'title' must be a string, got {short(example['title'])}",
        )
    for key in ("context", "question"):
        value = example[key]
        if value is None:
            return "missing field", f"missing field {key!r} (a string)"
        if not isinstance(value, str):
            return f"{key} not a string", f"field {key!r} must be a string, got {short(value)}"
        if not value.strip():
            return f"empty {key}", f"field {key!r} is empty or only whitespace: {short(value)}"
    for key in ("id", "title", "context", "question"):
        if not example[key].isascii():  # a flag lookup: most fields are ASCII
            problem = _surrogate_problem(example[key], f"field {key!r}")
            if problem:
                return "lone surrogate in text", problem
    return None, None


def _surrogate_problem(text, name):
    """Say where `text` holds a lone UTF-16 surrogate, or return None.

    Python strings can hold lone surrogates (from JSON escapes such as "\\ud800"), but they are not
    Unicode text: tokenizers, UTF-8 writers and terminals refuse them.
    """
    # Surrogates are the only code points UTF-8 cannot encode, and encoding is fast.
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as error:
        position = error.start
    return (
        f"{name} holds a lone surrogate U+{ord(text[position]):04X} at character {position}, "
        "which is not valid Unicode text (often a \\ud800-style escape from a broken encoder); "
        "fix or remove it"
    )


def _find_answer_problem(example):
    """What is wrong with the answers of a flat example, if anything."""
    context = example["context"]
    texts = example["answers"]["text"]
    starts = example["answers"]["answer_start"]
    if len(texts) != len(starts):
        return "answer lists differ in length", (
            f"answers has {len(texts)} text(s) but {len(starts)} answer_start value(s)"
        )
    for i, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(text, str) or not text.strip():
            return "empty answer", f"answers.text[{i}] is empty or not a string: {short(text)}"
        if isinstance(start, bool) or not isinstance(start, int):
            if isinstance(start, _LongNumber):
                return "answer_start out of range", (
                    f"answer_start out of range: answers.answer_start[{i}] is {start!r}"
                )
            return "answer_start not an integer", (
                f"answers.answer_start[{i}] is not an integer: {short(start)}"
            )
        if start < 0 or start + len(text) > len(context):
            return "answer_start out of range", (
                f"answer_start out of range: answers.answer_start[{i}]={start} with an answer of "
                f"{len(text)} characters, but the context has {len(context)} characters"
            )
        found = context[start : start + len(text)]
        if found != text:
            # The context has no surrogates by now, so an answer that holds one cannot match it.
            problem = _surrogate_problem(text, f"answers.text[{i}]")
            if problem:
                return "lone surrogate in text", problem
            return "answer text does not match the context", (
                f"answer text does not match the context at answer_start: answers.text[{i}]="
                f"{short(text)}, context[{start}:{start + len(text)}]={short(found)}"
            )
    return None, None
