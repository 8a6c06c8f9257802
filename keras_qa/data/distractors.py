"""Distractors: training paragraphs joined with another paragraph of their article, one that does not
answer the question.

A model trained only on paragraphs learns that the text it reads is about its question, so inside a
long document every paragraph's best span looks as good as the right one. Joining a share of the
training paragraphs with the paragraph of their article that shares most of the question's words and
holds none of its answers makes the start / end softmax rank the right paragraph's spans over a hard
wrong one's, as it must over a document (the "merge" of Clark and Gardner, 2018). The question stays a
single window of about twice a paragraph's tokens, cheaper than the full-length windows of
`--long-context-share`.
"""

import re

import numpy as np

from keras_qa.data.bundled import paragraphs_by_title, within_paragraphs

_WORD = re.compile(r"\w+")
# Words that tell nothing about where an answer is.
_STOP_WORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or that the "
    "their this to was were what when where which who whom whose why with".split()
)


def question_words(text):
    """The lowercase words of a text, without stop words.

    Example:
    >>> sorted(question_words("Who won Super Bowl 50?"))
    ['50', 'bowl', 'super', 'won']
    """
    return set(_WORD.findall(text.lower())) - _STOP_WORDS


def with_distractors(examples, share, seed=0):
    """The examples, a random `share` of them with their context joined (by a blank line, before or
    after it at random) to the paragraph of their article (same `title`) that shares most of the
    question's words and holds none of its answers (any case); their `answer_start`s move with it.

    Args:
        examples: examples in `load_examples`' schema.
        share: the share of the examples that get a distractor, in [0, 1]. Unanswerable examples
            and those whose article has no other paragraph without the answer keep their context.
        seed: which examples are drawn, and on which side their distractor goes.

    Returns:
        A new list of the examples, in their order; ids and questions stay.

    Example:
    >>> examples = [
    ...     {"id": "a", "title": "t", "context": "Cats purr.", "question": "What do cats do?",
    ...      "answers": {"text": ["purr"], "answer_start": [5]}},
    ...     {"id": "b", "title": "t", "context": "Dogs bark.", "question": "Who barks?",
    ...      "answers": {"text": ["Dogs"], "answer_start": [0]}}]
    >>> joined = with_distractors(examples, 1.0)[0]
    >>> joined["context"], joined["answers"]
    ('Dogs bark.\\n\\nCats purr.', {'text': ['purr'], 'answer_start': [17]})
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], not {share!r}")
    rng = np.random.default_rng(seed)
    count = round(share * len(examples))
    chosen = set(rng.permutation(len(examples))[:count].tolist())
    before = rng.random(len(examples)) < 0.5
    words = {
        title: [(context, question_words(context)) for context in contexts]
        for title, contexts in paragraphs_by_title(examples).items()
    }
    joined = []
    for index, example in enumerate(examples):
        distractor = None
        if index in chosen and example["answers"]["text"]:
            distractor = _hardest_paragraph(example, words[example["title"]])
        if distractor is None:
            joined.append(example)
        elif before[index]:
            joined.append(within_paragraphs(example, [distractor, example["context"]], 1))
        else:
            joined.append(within_paragraphs(example, [example["context"], distractor], 0))
    return joined


def _hardest_paragraph(example, paragraphs):
    """The paragraph (other than the example's) sharing most of its question's words and holding
    none of its answers; the first of equals; None when there is none."""
    asked = question_words(example["question"])
    answers = [text.lower() for text in example["answers"]["text"] if text.strip()]
    best, best_overlap = None, -1
    for context, context_words in paragraphs:
        if context == example["context"]:
            continue
        overlap = len(asked & context_words)
        if overlap > best_overlap and not any(answer in context.lower() for answer in answers):
            best, best_overlap = context, overlap
    return best
