"""A run's data: its examples (less the articles held out for calibration, a share of them joined with
a distractor paragraph), tokenizer and features, long-context windows added where asked."""

import collections
import functools
import os

import numpy as np

from keras_qa.checkpoints.loading import load_tokenizer
from keras_qa.data.bundled import BUNDLED_SOURCES, with_neighbouring_contexts
from keras_qa.data.distractors import with_distractors
from keras_qa.data.examples import load_examples
from keras_qa.errors import SettingsError
from keras_qa.text.features import (
    concatenate_features,
    long_context_windows,
    prepare_eval_features,
    prepare_train_features,
)

# Held-out questions enough to fit a score calibration: more only takes training data away.
MAX_CALIBRATION_QUESTIONS = 1000


def load_split(source, split, role, limit=None):
    """Examples for one role ("train" or "eval"), with the split a source needs by default."""
    if split is None and source in BUNDLED_SOURCES:
        split = role
    elif split is None and not os.path.exists(source):
        split = "train" if role == "train" else "validation"  # a Hugging Face dataset
    examples = load_examples(source, split=split)
    if limit is not None:
        examples = examples[:limit]
    if not examples:
        raise SettingsError(f"No {role} examples in {source!r} (split {split!r}).")
    return examples


def hold_out_articles(examples, share, seed=0, max_questions=MAX_CALIBRATION_QUESTIONS):
    """`(kept, held_out)`: whole articles (examples of one `title`) drawn at random until they hold
    `share` of the questions (at least one article, never all of them, at most about
    `max_questions`), and of them only the answerable questions. Whole articles, because a model
    trained on an article's other paragraphs answers its held-out ones more often right than the
    new documents it will be asked about: a calibration fitted on them would be too confident.

    Example:
    >>> examples = [{"id": str(i), "title": f"article {i // 4}", "answers": {"text": ["x"]}}
    ...             for i in range(16)]
    >>> kept, held_out = hold_out_articles(examples, 0.2)
    >>> len(kept), len({e["title"] for e in held_out})
    (12, 1)
    """
    titles = list(dict.fromkeys(example["title"] for example in examples))
    if share <= 0 or len(titles) < 2:
        return examples, []
    questions = collections.Counter(example["title"] for example in examples)
    wanted = min(share * len(examples), max_questions)
    held, total = set(), 0
    for index in np.random.default_rng(seed).permutation(len(titles))[:-1].tolist():
        held.add(titles[index])
        total += questions[titles[index]]
        if total >= wanted:
            break
    kept = [example for example in examples if example["title"] not in held]
    held_out = [e for e in examples if e["title"] in held and e["answers"]["text"]]
    return kept, held_out


class RunData:
    """A run's examples, tokenizer and features; eval features are made when first needed."""

    def __init__(self, settings):
        self.settings = settings
        self.train_examples = load_split(
            settings.train_data, settings.train_split, "train", settings.max_train_examples
        )
        # Articles held out of training, whose questions fit the score calibration afterwards.
        self.neighbour_examples = self.train_examples
        self.train_examples, self.calibration_examples = hold_out_articles(
            self.train_examples, settings.calibration_share, settings.seed
        )
        # The training questions over their own paragraphs, before distractors join some.
        self.paragraph_examples = self.train_examples
        self.distractors = 0
        if settings.distractor_share:
            self._add_distractors()
        self.eval_examples = None
        if settings.eval_data:
            self.eval_examples = load_split(
                settings.eval_data, settings.eval_split, "eval", settings.max_eval_examples
            )
        self.tokenizer = load_tokenizer(settings.model)
        self.train_features = prepare_train_features(
            self.train_examples, self.tokenizer, settings.max_length, settings.doc_stride
        )
        self.long_context_windows = 0
        if settings.long_context_share:
            self._add_long_context_windows()

    def _add_distractors(self):
        """A share of the training paragraphs joined with a hard paragraph of their article."""
        self.train_examples = with_distractors(
            self.paragraph_examples, self.settings.distractor_share, self.settings.seed
        )
        self.distractors = sum(
            joined["context"] != example["context"]
            for joined, example in zip(self.train_examples, self.paragraph_examples)
        )

    def _add_long_context_windows(self):
        """Pairs of long-context windows (one holding the answer, one not), to the asked share."""
        settings = self.settings
        long_examples = with_neighbouring_contexts(self.paragraph_examples)
        # Eval features keep the offsets that tell which windows hold an answer's text anyway.
        long_features = prepare_eval_features(
            long_examples, self.tokenizer, settings.max_length, settings.doc_stride
        )
        count = round(settings.long_context_share * len(self.train_features["example_index"]))
        extra = long_context_windows(long_features, count, settings.seed, long_examples)
        self.long_context_windows = len(extra["example_index"])
        self.train_features = concatenate_features(self.train_features, extra)

    @functools.cached_property
    def eval_features(self):
        return prepare_eval_features(
            self.eval_examples,
            self.tokenizer,
            self.settings.max_length,
            self.settings.answering_doc_stride,
        )
