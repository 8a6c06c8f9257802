"""Turn question answering examples into model features, in NumPy.

Each example becomes one or more windows laid out as the checkpoint's tokenizer says
(`keras_qa.text.layouts.PairLayout`), for BERT

    [CLS] question [SEP] context tokens [ws, we) [SEP] [PAD] ...

and for RoBERTa `<s> question </s></s> context </s> <pad> ...`, as in the keras.io example and Hugging
Face's run_qa.py: the question is left-stripped and comes first, only the context is cut, and a long
context is covered by overlapping windows of `max_length - len(question) - special tokens` context
tokens that share `doc_stride` tokens with the window before. Training labels are the tokens holding the
first answer's first and last characters; a window that does not hold the whole answer is labelled with
the first token's index ([CLS] or <s>), 0.

Contexts are tokenized once each (SQuAD has several questions per paragraph), windows and labels are
computed with array operations, and the result is a dict of NumPy arrays that any backend can consume.
"""

import warnings

import numpy as np

from keras_qa.errors import caller_stacklevel
from keras_qa.text.layouts import CLS_INDEX
from keras_qa.text.tokenizer import QATokenizer

# The longest context, in characters, featurised in one go: a million characters make under a
# thousand windows at 384 / 128 and take seconds, while far longer texts cost minutes and gigabytes
# with no sign of progress; they are refused, to be split into parts.
MAX_CONTEXT_CHARS = 1_000_000
# [CLS] question [SEP] context [SEP]: BERT's layout, the fewest special tokens of the supported ones.
SPECIAL_TOKENS_PER_WINDOW = 3
# Features that only evaluation and inference read.
EVAL_ONLY_FEATURES = ("offsets", "continues_word")


def largest_doc_stride(max_length, special_tokens=SPECIAL_TOKENS_PER_WINDOW):
    """The largest `doc_stride` windows of `max_length` tokens allow: each window keeps a question
    token, the `special_tokens` and more than `doc_stride` context tokens, so that the stride moves."""
    return max_length - special_tokens - 2


def prepare_train_features(examples, tokenizer, max_length=384, doc_stride=128):
    """Windows and span labels for training.

    Args:
        examples: a list of example dicts (`load_examples`' schema).
        tokenizer: a `QATokenizer` (`keras_qa.prepare_train_features` also takes any model source
            `keras_qa.load_tokenizer` accepts).
        max_length: tokens per window, special tokens included.
        doc_stride: context tokens that consecutive windows of one example share.

    Returns:
        A dict of NumPy arrays, one row per window: `token_ids`, `segment_ids`, `padding_mask`
        (int32, `(windows, max_length)`), `start_positions`, `end_positions` (int32, the answer's first
        and last token, or 0 for [CLS]) and `example_index` (the example each window comes from).

    Example:
    >>> examples = [{"id": "q1", "title": "", "context": "The cat sat on the mat.",
    ...              "question": "Where did the cat sit?",
    ...              "answers": {"text": ["on the mat"], "answer_start": [8]}}]
    >>> from keras_qa import load_tokenizer
    >>> features = prepare_train_features(examples, load_tokenizer("minilm"), 32, 8)
    >>> features["token_ids"].shape, features["start_positions"], features["end_positions"]
    ((1, 32), array([10], dtype=int32), array([12], dtype=int32))
    """
    windows = _Windows(examples, tokenizer, max_length, doc_stride)
    features = windows.model_inputs()
    features["start_positions"], features["end_positions"] = windows.labels()
    features["example_index"] = windows.example_index
    return features


def prepare_eval_features(examples, tokenizer, max_length=384, doc_stride=128, as_pipeline=False):
    """Windows and character offsets for evaluation and inference.

    Args:
        examples, tokenizer, max_length, doc_stride: as `prepare_train_features`.
        as_pipeline: take texts as transformers' question-answering pipeline does: the question
            as given (not left-stripped), and a question or context with no tokens (only spaces)
            allowed; only an empty string is refused.

    Returns:
        A dict of NumPy arrays: `token_ids`, `segment_ids`, `padding_mask`, `example_index`, `offsets`
        (int32, `(windows, max_length, 2)`: the characters of the example's context that each token
        covers, -1 for tokens outside the context), `continues_word` (bool, `(windows, max_length)`:
        the token continues the word of the token before it, both in the context), and
        `start_positions`, `end_positions` (the training labels, for a validation loss; 0 for
        unanswerable examples).
    """
    windows = _Windows(examples, tokenizer, max_length, doc_stride, as_pipeline)
    features = windows.model_inputs()
    features["start_positions"], features["end_positions"] = windows.labels()
    features["example_index"] = windows.example_index
    features["offsets"], features["continues_word"] = windows.offsets()
    return features


def long_context_windows(features, count, seed=0, examples=None):
    """A sample of about `count` windows of long contexts, as training features, in pairs: for each
    sampled question, one window that holds its answer (labelled with the answer's span) and one that
    does not (labelled [CLS], "the answer is not here").

    Nearly every window of a long context is full-length, and nearly every paragraph's window is
    short: a model shown only long "not here" windows learns that a full window says [CLS], which tells
    none of a long context's windows apart. Pairs of one question over one long context differ only
    in whether the window holds the answer, so that is what the model learns.

    Args:
        features: features of long-context examples (`prepare_eval_features`, or
            `prepare_train_features` when `examples` is None).
        count: how many windows to take (`count // 2` pairs; fewer when fewer questions have both
            kinds of window).
        seed: the sample's seed.
        examples: when given (with eval features, which keep offsets), windows whose text holds one
            of their question's answers anyway (a neighbouring paragraph naming the same thing) are
            not taken as "not here".

    Returns:
        A features dict of the sampled windows, without the eval-only arrays; each pair's two windows
        keep their question's `example_index`.

    Example:
    >>> from keras_qa import load_examples, load_tokenizer, prepare_train_features
    >>> from keras_qa.data.bundled import with_neighbouring_contexts
    >>> examples = with_neighbouring_contexts(load_examples("bundled", split="train")[:20])
    >>> features = prepare_train_features(examples, load_tokenizer("minilm"), 128, 32)
    >>> pairs = long_context_windows(features, 10)
    >>> [int((pairs["start_positions"] > 0).sum()), int((pairs["start_positions"] == 0).sum())]
    [5, 5]
    """
    labels = np.asarray(features["start_positions"])
    example_index = np.asarray(features["example_index"])
    holds_span = labels != CLS_INDEX
    not_here = ~holds_span
    if examples is not None:
        for row in np.flatnonzero(not_here):
            not_here[row] = not _holds_an_answer(features, row, examples)
    rng = np.random.default_rng(seed)
    # One window of each kind per question, drawn at random among that question's windows.
    order = rng.permutation(len(labels))
    answer_rows = _first_row_per_example(order[holds_span[order]], example_index)
    not_here_rows = _first_row_per_example(order[not_here[order]], example_index)
    questions = np.intersect1d(list(answer_rows), list(not_here_rows))
    chosen = rng.choice(questions, min(int(count) // 2, len(questions)), replace=False)
    pairs = [answer_rows[q] for q in chosen] + [not_here_rows[q] for q in chosen]
    rows = np.sort(np.asarray(pairs, dtype=np.int64))
    names = [name for name in features if name not in EVAL_ONLY_FEATURES]
    return {name: np.asarray(features[name])[rows] for name in names}


def _first_row_per_example(rows, example_index):
    """`{example index: the first of `rows` that belongs to it}`."""
    examples, first = np.unique(example_index[rows], return_index=True)
    return dict(zip(examples.tolist(), rows[first].tolist()))


def _holds_an_answer(features, row, examples):
    """Whether the context text of window `row` contains one of its example's answers (any case)."""
    offsets = features["offsets"][row]
    offsets = offsets[offsets[:, 0] >= 0]
    example = examples[features["example_index"][row]]
    text = example["context"][offsets[0, 0] : offsets[-1, 1]].lower()
    answers = (example.get("answers") or {}).get("text") or []
    return any(answer.strip().lower() in text for answer in answers if answer.strip())


def concatenate_features(first, second):
    """The windows of two features dicts, one after the other; `second`'s example indices are moved
    past `first`'s so that they stay distinct."""
    shift = int(first["example_index"].max()) + 1 if len(first["example_index"]) else 0
    joined = {name: np.concatenate([first[name], second[name]]) for name in first}
    joined["example_index"][len(first["example_index"]) :] += shift
    return joined


class _Windows:
    """The windows of a list of examples: which tokens go where, computed once."""

    def __init__(self, examples, tokenizer, max_length, doc_stride, as_pipeline=False):
        max_length, doc_stride = int(max_length), int(doc_stride)
        if not isinstance(tokenizer, QATokenizer):
            raise TypeError(
                f"tokenizer must be a QATokenizer, got {type(tokenizer).__name__}; build one from a "
                "model source with keras_qa.load_tokenizer (keras_qa.prepare_*_features do it)"
            )
        self.layout = tokenizer.layout
        special = self.layout.special_token_count
        # Every window must keep more than doc_stride context tokens, so the stride moves forward.
        max_question_tokens = max_length - special - doc_stride - 1
        if doc_stride < 0 or doc_stride > largest_doc_stride(max_length, special):
            raise ValueError(
                f"max_length={max_length} and doc_stride={doc_stride} leave no room: max_length "
                f"must be at least doc_stride + {special + 2} and doc_stride >= 0."
            )
        self.tokenizer = tokenizer
        self.max_length = max_length
        examples = list(examples)
        self.examples = examples
        questions, context_ids = self._check_and_index(examples, as_pipeline)
        self.context_index = np.fromiter(
            (context_ids[example["context"]] for example in examples),
            dtype=np.int64,
            count=len(examples),
        )
        self._encode(list(context_ids), questions, allow_no_tokens=as_pipeline)
        question_lengths = self._cut_questions(max_question_tokens, doc_stride)
        self._place_windows(question_lengths, doc_stride)

    def _encode(self, unique_contexts, questions, allow_no_tokens):
        """Tokenize every distinct context and every question once; refuse texts with no tokens
        unless allowed."""
        examples = self.examples
        encoded_contexts = self.tokenizer.encode(unique_contexts, words=True)
        self.encoded_questions = self.tokenizer.encode(questions)
        for i, (ids, *_) in enumerate(encoded_contexts):
            if len(ids) == 0 and not allow_no_tokens:
                position = int(np.flatnonzero(self.context_index == i)[0])
                raise ValueError(
                    f"Example {position} (id {examples[position]['id']!r}): the context has no "
                    "tokens (only whitespace or control characters)."
                )
        for i, (ids, _) in enumerate(self.encoded_questions):
            if len(ids) == 0 and not allow_no_tokens:
                raise ValueError(
                    f"Example {i} (id {examples[i]['id']!r}): the question has no tokens "
                    "(only whitespace or control characters)."
                )
        # All contexts' tokens in one flat array; a context's tokens start at context_base[c].
        self.context_lengths = np.array([len(ids) for ids, *_ in encoded_contexts], dtype=np.int64)
        self.context_base = np.concatenate([[0], np.cumsum(self.context_lengths)[:-1]])
        self.flat_context_ids = np.concatenate([ids for ids, *_ in encoded_contexts])
        self.flat_context_offsets = np.concatenate([offsets for _, offsets, _ in encoded_contexts])
        self.flat_continues_word = np.concatenate([words for *_, words in encoded_contexts])
        self.encoded_contexts = encoded_contexts

    def _cut_questions(self, max_question_tokens, doc_stride):
        """Cut questions to `max_question_tokens` (with a warning); return their lengths."""
        question_lengths = np.array([len(ids) for ids, _ in self.encoded_questions], dtype=np.int64)
        cut = question_lengths > max_question_tokens
        if cut.any():
            warnings.warn(
                f"{int(cut.sum())} question(s) are longer than {max_question_tokens} tokens and were "
                f"cut to their first {max_question_tokens} tokens (first: example "
                f"{int(np.flatnonzero(cut)[0])}), so that each window of max_length="
                f"{self.max_length} keeps more than doc_stride={doc_stride} context tokens.",
                stacklevel=caller_stacklevel(),
            )
        question_lengths = np.minimum(question_lengths, max_question_tokens)
        self.question_ids = [
            ids[:n] for (ids, _), n in zip(self.encoded_questions, question_lengths)
        ]
        return question_lengths

    def _place_windows(self, question_lengths, doc_stride):
        """Windows per example, as in `tokenizers`' overflow: starts 0, step, 2 step, ... until a
        window reaches the end of the context."""
        capacity = self.max_length - self.layout.special_token_count - question_lengths
        step = capacity - doc_stride
        n_context = self.context_lengths[self.context_index]
        counts = 1 + np.maximum(0, -(-(n_context - capacity) // step))
        self.example_index = np.repeat(np.arange(len(self.examples)), counts).astype(np.int32)
        first_window = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(self.example_index)) - np.repeat(first_window, counts)
        ex = self.example_index
        self.window_start = rank * step[ex]
        self.window_stop = np.minimum(self.window_start + capacity[ex], n_context[ex])
        self.question_length = question_lengths[ex]
        # Position of the window's first context token in the model input.
        self.context_position = self.layout.context_position(self.question_length)

    @staticmethod
    def _check_and_index(examples, as_pipeline):
        questions = []
        context_ids = {}
        for i, example in enumerate(examples):
            question, context = example.get("question"), example.get("context")
            # The pipeline refuses only empty strings; keras-qa also texts of spaces alone.
            if not isinstance(question, str) or not (question if as_pipeline else question.strip()):
                raise ValueError(f"Example {i} (id {example.get('id')!r}): the question is empty.")
            if not isinstance(context, str) or not (context if as_pipeline else context.strip()):
                raise ValueError(f"Example {i} (id {example.get('id')!r}): the context is empty.")
            if len(context) > MAX_CONTEXT_CHARS:
                raise ValueError(
                    f"Example {i} (id {example.get('id')!r}): the context has {len(context):,} "
                    f"characters, more than keras_qa.text.features.MAX_CONTEXT_CHARS "
                    f"({MAX_CONTEXT_CHARS:,}); split the document and ask each part"
                )
            questions.append(question if as_pipeline else question.lstrip())
            context_ids.setdefault(context, len(context_ids))
        return questions, context_ids

    def model_inputs(self):
        count = len(self.example_index)
        token_ids = np.full((count, self.max_length), self.tokenizer.pad_token_id, dtype=np.int32)
        segment_ids = np.zeros((count, self.max_length), dtype=np.int32)
        padding_mask = np.zeros((count, self.max_length), dtype=np.int32)
        for row, example in enumerate(self.example_index):
            base = self.context_base[self.context_index[example]]
            context = self.flat_context_ids[
                base + self.window_start[row] : base + self.window_stop[row]
            ]
            ids, types = self.layout.window(self.question_ids[example], context)
            token_ids[row, : len(ids)] = ids
            segment_ids[row, : len(ids)] = types
            padding_mask[row, : len(ids)] = 1
        return {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}

    def offsets(self):
        """`offsets` and `continues_word` of every window (see `prepare_eval_features`)."""
        count = len(self.example_index)
        offsets = np.full((count, self.max_length, 2), -1, dtype=np.int32)
        continues_word = np.zeros((count, self.max_length), dtype=bool)
        for row, example in enumerate(self.example_index):
            begin = self.context_position[row]
            base = self.context_base[self.context_index[example]]
            stop = begin + self.window_stop[row] - self.window_start[row]
            tokens = slice(base + self.window_start[row], base + self.window_stop[row])
            offsets[row, begin:stop] = self.flat_context_offsets[tokens]
            continues_word[row, begin:stop] = self.flat_continues_word[tokens]
        # A window's first token continues no word inside the window.
        continues_word[np.arange(count), self.context_position] = False
        return offsets, continues_word

    def labels(self):
        """The first answer's first and last token in each window, or [CLS] where it is not inside."""
        first_token = np.full(len(self.examples), -1, dtype=np.int64)
        last_token = np.full(len(self.examples), -1, dtype=np.int64)
        for i, example in enumerate(self.examples):
            span = _answer_characters(example)
            if span is None:
                continue
            start_char, end_char = span
            _, offsets, _ = self.encoded_contexts[self.context_index[i]]
            # The last token starting at or before the answer, the first ending at or after it.
            first_token[i] = np.searchsorted(offsets[:, 0], start_char, side="right") - 1
            last_token[i] = np.searchsorted(offsets[:, 1], end_char, side="left")
        ex = self.example_index
        first, last = first_token[ex], last_token[ex]
        inside = (first >= self.window_start) & (last < self.window_stop) & (first >= 0)
        inside &= last >= first
        start_positions = np.where(inside, first - self.window_start + self.context_position, 0)
        end_positions = np.where(inside, last - self.window_start + self.context_position, 0)
        return start_positions.astype(np.int32), end_positions.astype(np.int32)


def _answer_characters(example):
    """`(start, end)` characters of the example's first answer, whitespace trimmed, or None."""
    answers = example.get("answers") or {}
    texts, starts = answers.get("text") or [], answers.get("answer_start") or []
    if not texts:
        return None
    text, start = texts[0], int(starts[0])
    start_char = start + (len(text) - len(text.lstrip()))
    end_char = start + len(text.rstrip())
    if end_char <= start_char:
        return None
    return start_char, end_char
