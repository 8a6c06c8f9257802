"""The SQuAD v1.1 dev set shipped inside keras-qa, its named splits, and their long-context and
unanswerable variants.

Splits: `"train"` (articles 0-37, 8,582 questions), `"eval"` (articles 38-47, 1,988) and `None` /
`"all"`; with the suffix `"-long"` each question's paragraph sits inside up to four neighbouring
paragraphs of its article on each side (`with_neighbouring_contexts`), so that a context spans several
windows as a document would; with `"-v2"` each question is followed by an unanswerable copy, the
question over a paragraph of another article (`with_unanswerable_copies`), an offline SQuAD
v2.0-style check.
"""

from importlib import resources

from keras_qa.data.formats import parse_squad
from keras_qa.data.records import parse_int
from keras_qa.errors import DataFormatError
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


def bundled_path():
    """The path of the bundled SQuAD v1.1 dev file (`squad-v1.1-dev.json.gz`)."""
    return str(resources.files("keras_qa") / "datasets" / BUNDLED_FILE)


def load_bundled(split, on_error):
    split = "all" if split is None else split
    variants = {
        LONG_SUFFIX: with_neighbouring_contexts,
        UNANSWERABLE_SUFFIX: with_unanswerable_copies,
    }
    suffix = next((suffix for suffix in variants if split.endswith(suffix)), None)
    articles = split.removesuffix(suffix) if suffix else split
    if articles not in BUNDLED_SPLITS:
        names = [name + end for end in ("", *variants) for name in sorted(BUNDLED_SPLITS)]
        raise ValueError(
            f"Unknown split {split!r} for the bundled SQuAD data; choose one of {names} or None."
        )
    path = bundled_path()
    document = read_json(path, DataFormatError, parse_int=parse_int)
    examples = parse_squad(document, path, on_error, articles=BUNDLED_SPLITS[articles])
    return variants[suffix](examples) if suffix else examples


def paragraphs_by_title(examples):
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
    contexts = paragraphs_by_title(examples)
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
    articles = paragraphs_by_title(examples)
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
        widened.append(within_paragraphs(example, contexts[first:last], index - first))
    return widened


def within_paragraphs(example, paragraphs, position):
    """The example with its context set among `paragraphs` (it is `paragraphs[position]`), joined
    by a blank line; its answers' `answer_start` move by what now precedes it.

    Example:
    >>> example = {"id": "b", "context": "Two cats.", "question": "?",
    ...            "answers": {"text": ["cats"], "answer_start": [4]}}
    >>> widened = within_paragraphs(example, ["One.", "Two cats.", "Six."], 1)
    >>> widened["context"], widened["answers"]
    ('One.\\n\\nTwo cats.\\n\\nSix.', {'text': ['cats'], 'answer_start': [10]})
    """
    shift = sum(len(text) + len(PARAGRAPH_SEPARATOR) for text in paragraphs[:position])
    answers = example["answers"]
    return example | {
        "context": PARAGRAPH_SEPARATOR.join(paragraphs),
        "answers": {
            "text": list(answers["text"]),
            "answer_start": [start + shift for start in answers["answer_start"]],
        },
    }
