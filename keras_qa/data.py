"""Load SQuAD-style question answering examples from any supported source.

Every source comes back in one shape, the Hugging Face "squad" schema, one dict per question, in the
source's order:

    {"id": str, "title": str, "context": str, "question": str,
     "answers": {"text": [str, ...], "answer_start": [int, ...]}}

SQuAD v2.0 questions marked `is_impossible` have empty answer lists.

Sources:
- `"bundled"`: the official SQuAD v1.1 dev set shipped inside keras-qa (CC BY-SA 4.0), with the splits
  `"train"` (articles 0-37, 8,582 questions), `"eval"` (articles 38-47, 1,988) and `None` / `"all"`;
  and the same questions over long contexts, `"train-long"`, `"eval-long"` and `"all-long"`: each
  question's paragraph inside up to four neighbouring paragraphs of its article on each side
  (`with_neighbouring_contexts`), so that a context spans several windows as a document would; and
  `"train-v2"`, `"eval-v2"`, `"all-v2"`: each question followed by an unanswerable copy, the question
  over a paragraph of another article (`with_unanswerable_copies`), an offline SQuAD v2.0-style check.
- a path to a SQuAD-format `.json` or `.json.gz` file (v1.1 or v2.0); `split` is not used.
- a path to a flat `.jsonl` (also `.jsonl.gz`) or `.parquet` file in the Hugging Face "squad" schema.
- a Hugging Face dataset name such as `"squad"` or `"squad_v2"`, loaded through `datasets` (online only);
  `split` is required (`"train"`, `"validation"`, slices such as `"train[:1000]"`).
"""

import gzip
import json
import os
import reprlib
import sys
import warnings
import zlib
from importlib import resources

from keras_qa.errors import KerasQAError
from keras_qa.files import read_json

BUNDLED_SOURCES = ("bundled", "embedded")
BUNDLED_FILE = "squad-v1.1-dev.json.gz"
# Articles of the bundled dev set that make up each named split.
# A bundled split's name with this suffix puts each paragraph inside its neighbours.
LONG_SUFFIX = "-long"
# A bundled split's name with this suffix adds an unanswerable copy of each question (SQuAD v2.0-style).
UNANSWERABLE_SUFFIX = "-v2"
UNANSWERABLE_ID_SUFFIX = "-unanswerable"
LONG_CONTEXT_RADIUS = 4
PARAGRAPH_SEPARATOR = "\n\n"
BUNDLED_SPLITS = {
    "train": range(0, 38),
    "eval": range(38, 48),
    "all": range(0, 48),
}


# Short reprs of whatever a file holds, for error messages (a bad value may be megabytes long).
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


class DataFormatError(KerasQAError, ValueError):
    """A question answering record is malformed. The message names the file and the record."""


class _LongNumber:
    """A JSON integer too long for Python to convert, kept so the record check can name its record."""

    def __init__(self, digits):
        self.digits = len(digits)

    def __repr__(self):
        return f"<a {self.digits}-digit number>"


def _parse_int(digits):
    try:
        return int(digits)
    except ValueError:  # over the interpreter's int-string conversion limit (4,300 digits)
        return _LongNumber(digits)


def _short(value):
    """`repr(value)`, cut to about 80 characters."""
    if isinstance(value, str) and len(value) <= _REPR.maxstring:
        return repr(value)  # the common case (ids, titles), without reprlib's overhead
    return _REPR.repr(value)


def load_examples(source, split=None, on_error="raise"):
    """Load question answering examples as a list of dicts in the Hugging Face "squad" schema.

    Args:
        source: `"bundled"`, a path to a `.json`, `.json.gz`, `.jsonl`, `.jsonl.gz` or `.parquet` file,
            or a Hugging Face dataset name (`"squad"`, `"squad_v2"`, ...).
        split: for `"bundled"`, `"train"`, `"eval"` or `None`/`"all"`; for a Hugging Face dataset, the
            split to load (required); ignored for files.
        on_error: `"raise"` (default) stops at the first malformed record with a `DataFormatError` that
            names the file and the record; `"skip"` drops malformed records and warns with how many
            were dropped and why. Malformed means anything a later stage could not use: a missing or
            empty id, context or question, a title that is not a string, text holding a lone
            surrogate (not Unicode), `is_impossible` that is not true or false, an answer that is not
            found at its `answer_start`, or a line that is not UTF-8 JSON. A `.jsonl` / `.jsonl.gz`
            file damaged or cut short midway keeps, under `"skip"`, the records before the damage,
            and the warning names the line where reading stopped. A file that cannot be read at all
            is a `DataFormatError` either way.

    Returns:
        A list of example dicts, one per question, in the source's order.

    Example:
    >>> examples = load_examples("bundled", split="eval")
    >>> len(examples)
    1988
    >>> sorted(examples[0])
    ['answers', 'context', 'id', 'question', 'title']
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    source = os.fspath(source)
    if source in BUNDLED_SOURCES:
        return _load_bundled(split, on_error)
    lowered = source.lower()
    if lowered.endswith((".json", ".json.gz")):
        return _load_squad_json(source, on_error)
    if lowered.endswith((".jsonl", ".jsonl.gz")):
        return _load_jsonl(source, on_error)
    if lowered.endswith(".parquet"):
        return _load_parquet(source, on_error)
    if os.path.exists(source):
        raise ValueError(
            f"{source}: unsupported file type. Use .json / .json.gz (SQuAD format), "
            ".jsonl / .jsonl.gz or .parquet (Hugging Face 'squad' schema)."
        )
    return _load_hub_dataset(source, split, on_error)


def bundled_path():
    """The path of the bundled SQuAD v1.1 dev file (`squad-v1.1-dev.json.gz`)."""
    return str(resources.files("keras_qa") / "datasets" / BUNDLED_FILE)


def _load_bundled(split, on_error):
    split = "all" if split is None else split
    variants = {LONG_SUFFIX: with_neighbouring_contexts, UNANSWERABLE_SUFFIX: with_unanswerable_copies}
    suffix = next((suffix for suffix in variants if split.endswith(suffix)), None)
    articles = split.removesuffix(suffix) if suffix else split
    if articles not in BUNDLED_SPLITS:
        names = [name + end for end in ("", *variants) for name in sorted(BUNDLED_SPLITS)]
        raise ValueError(
            f"Unknown split {split!r} for the bundled SQuAD data; choose one of {names} or None."
        )
    path = bundled_path()
    document = read_json(path, DataFormatError, parse_int=_parse_int)
    examples = _parse_squad(document, path, on_error, articles=BUNDLED_SPLITS[articles])
    return variants[suffix](examples) if suffix else examples


def _paragraphs_by_title(examples):
    """`{title: [context, ...]}`, titles and contexts in the order they first appear."""
    articles = {}
    for example in examples:
        articles.setdefault(example["title"], {}).setdefault(example["context"], None)
    return {title: list(contexts) for title, contexts in articles.items()}


def with_unanswerable_copies(examples):
    """Each example followed by an unanswerable copy: its question over a paragraph of another
    article (the next title's paragraph at the same position, wrapping around), no answers, id ending
    in "-unanswerable". SQuAD v2.0-style data from v1.1 data, deterministic.

    Example:
    >>> examples = [
    ...     {"id": "a", "title": "t", "context": "One.", "question": "?",
    ...      "answers": {"text": ["One"], "answer_start": [0]}},
    ...     {"id": "b", "title": "u", "context": "Two cats.", "question": "?",
    ...      "answers": {"text": ["cats"], "answer_start": [4]}}]
    >>> copy = with_unanswerable_copies(examples)[1]
    >>> copy["id"], copy["context"], copy["answers"]
    ('a-unanswerable', 'Two cats.', {'text': [], 'answer_start': []})
    """
    contexts = _paragraphs_by_title(examples)
    titles = list(contexts)
    if len(titles) < 2:
        raise ValueError("unanswerable copies take a paragraph of another article: one title found")
    mixed = []
    for example in examples:
        title = example["title"]
        position = contexts[title].index(example["context"])
        other = contexts[titles[(titles.index(title) + 1) % len(titles)]]
        copy = {
            **example,
            "id": example["id"] + UNANSWERABLE_ID_SUFFIX,
            "context": other[position % len(other)],
            "answers": {"text": [], "answer_start": []},
        }
        mixed += [example, copy]
    return mixed


def with_neighbouring_contexts(examples, radius=LONG_CONTEXT_RADIUS):
    """The examples, each context set inside up to `radius` neighbouring contexts of its title.

    Contexts of one title (an article) keep the order in which they first appear; each example's
    context becomes itself with up to `radius` of them before and after it, joined by a blank line, and
    its answers' `answer_start` move by what now precedes it. Questions and ids stay. Deterministic, so
    that scores over it compare. Examples without a title are neighbours of each other.

    Args:
        examples: examples in `load_examples`' schema.
        radius: neighbouring contexts on each side.

    Example:
    >>> examples = [
    ...     {"id": "a", "title": "t", "context": "One.", "question": "?",
    ...      "answers": {"text": ["One"], "answer_start": [0]}},
    ...     {"id": "b", "title": "t", "context": "Two cats.", "question": "?",
    ...      "answers": {"text": ["cats"], "answer_start": [4]}}]
    >>> widened = with_neighbouring_contexts(examples)[1]
    >>> widened["context"], widened["answers"]
    ('One.\\n\\nTwo cats.', {'text': ['cats'], 'answer_start': [10]})
    """
    articles = _paragraphs_by_title(examples)
    positions = {
        (title, context): index
        for title, contexts in articles.items()
        for index, context in enumerate(contexts)
    }
    widened = []
    for example in examples:
        contexts = articles[example["title"]]
        index = positions[(example["title"], example["context"])]
        first, last = max(0, index - radius), min(len(contexts), index + radius + 1)
        shift = sum(len(text) + len(PARAGRAPH_SEPARATOR) for text in contexts[first:index])
        answers = example["answers"]
        widened.append(
            example
            | {
                "context": PARAGRAPH_SEPARATOR.join(contexts[first:last]),
                "answers": {
                    "text": list(answers["text"]),
                    "answer_start": [start + shift for start in answers["answer_start"]],
                },
            }
        )
    return widened

def _load_squad_json(path, on_error):
    return _parse_squad(read_json(path, DataFormatError, parse_int=_parse_int), path, on_error)


def _parse_squad(document, path, on_error, articles=None):
    """Flatten a SQuAD-format document (`{"data": [{"title", "paragraphs": [...]}]}`)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataFormatError(
            f"{path}: not a SQuAD-format file: expected a JSON object with a 'data' list of articles"
        )
    checker = _RecordChecker(path, on_error)
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
            where = f"article {article_index} ({_short(title)})"
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
        where = f"{where} (id {_short(qa['id'])})"
    answers = qa.get("answers")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        checker.fail(
            where,
            f"field 'is_impossible' must be true or false, got {_short(impossible)}",
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


def _load_jsonl(path, on_error):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    checker = _RecordChecker(path, on_error)
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
        return json.loads(text, parse_int=_parse_int), None
    except ValueError as error:  # json.JSONDecodeError, or whatever else json refuses
        return None, f"not valid JSON ({error})"
    except RecursionError:
        return None, (
            f"JSON nested too deeply (over {sys.getrecursionlimit()} levels of lists or objects)"
        )


def _load_parquet(path, on_error):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises several unrelated types for a bad file.
        raise DataFormatError(f"{path}: cannot be read as Parquet ({error})") from error
    checker = _RecordChecker(path, on_error)
    for row_index, record in enumerate(rows):
        checker.add_flat(f"row {row_index}", record)
    return checker.finish()


def _load_hub_dataset(name, split, on_error):
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
    checker = _RecordChecker(f"{name}[{split}]", on_error)
    for row_index, record in enumerate(dataset):
        checker.add_flat(f"row {row_index}", record)
    return checker.finish()


class _RecordChecker:
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
            where = f"{where} (id {_short(record['id'])})"
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
            f"field 'id' must be a non-empty string, got {_short(identifier)}"
        )
    if not isinstance(example["title"], str):
        return (
            "title not a string",
            f"field 'title' must be a string, got {_short(example['title'])}",
        )
    for key in ("context", "question"):
        value = example[key]
        if value is None:
            return "missing field", f"missing field {key!r} (a string)"
        if not isinstance(value, str):
            return f"{key} not a string", f"field {key!r} must be a string, got {_short(value)}"
        if not value.strip():
            return f"empty {key}", f"field {key!r} is empty or only whitespace: {_short(value)}"
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
            return "empty answer", f"answers.text[{i}] is empty or not a string: {_short(text)}"
        if isinstance(start, bool) or not isinstance(start, int):
            if isinstance(start, _LongNumber):
                return "answer_start out of range", (
                    f"answer_start out of range: answers.answer_start[{i}] is {start!r}"
                )
            return "answer_start not an integer", (
                f"answers.answer_start[{i}] is not an integer: {_short(start)}"
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
                f"{_short(text)}, context[{start}:{start + len(text)}]={_short(found)}"
            )
    return None, None
