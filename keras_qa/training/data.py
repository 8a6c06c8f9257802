"""A run's data: its examples, tokenizer and features, long-context windows added where asked."""

import functools
import os

from keras_qa.checkpoints.loading import load_tokenizer
from keras_qa.data.bundled import BUNDLED_SOURCES, with_neighbouring_contexts
from keras_qa.data.examples import load_examples
from keras_qa.errors import SettingsError
from keras_qa.text.features import (
    concatenate_features,
    long_context_windows,
    prepare_eval_features,
    prepare_train_features,
)


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


class RunData:
    """A run's examples, tokenizer and features; eval features are made when first needed."""

    def __init__(self, settings):
        self.settings = settings
        self.train_examples = load_split(
            settings.train_data, settings.train_split, "train", settings.max_train_examples
        )
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

    def _add_long_context_windows(self):
        """Pairs of long-context windows (one holding the answer, one not), to the asked share."""
        settings = self.settings
        long_examples = with_neighbouring_contexts(self.train_examples)
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
            self.eval_examples, self.tokenizer, self.settings.max_length, self.settings.doc_stride
        )
