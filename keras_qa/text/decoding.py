"""From start and end logits back to answer text: n-best span decoding over all windows.

For each window, the `n_best` highest start logits and the `n_best` highest end logits inside the
context are paired; a pair is a candidate when end >= start and it spans at most `max_answer_length`
tokens, and its score is start logit + end logit (Hugging Face's utils_qa.py). An example's answer is
its best candidate over all of its windows, cut from the original context through the token offsets.

For SQuAD v2.0, the null score of an example is the smallest [CLS] score (start + end logit at index 0)
over its windows, and the empty answer wins when null score > best score + `null_threshold`.

Spans of different windows of one long context compete by their score; `window_scores` offers ways to
put the windows on one scale first (`WINDOW_SCORES`).

Everything is computed with array operations over all windows at once.
"""

import numpy as np

from keras_qa.text.layouts import CLS_INDEX

# How spans of different windows are made comparable: "raw" start + end logits (utils_qa.py);
# "null_relative", each window's logits less its [CLS] logits (a span must beat its own window's
# "not here"); "window_softmax", log-probabilities over each window's context tokens and [CLS] (the
# question-answering pipeline's score).
WINDOW_SCORES = ("raw", "null_relative", "window_softmax")
# Windows whose span candidates are paired at once (bounds the decoder's memory on large eval sets),
# fewer when each window pairs more than the default 20 x 20 candidates.
WINDOW_CHUNK = 8192
PAIRS_PER_CHUNK = WINDOW_CHUNK * 20 * 20


def decode_spans(
    features, start_logits, end_logits, num_examples=None, n_best=20, max_answer_length=30, top_k=1
):
    """The `top_k` best spans of each example, as arrays.

    Args:
        features: the dict from `prepare_eval_features` (`offsets` and `example_index` are used).
        start_logits, end_logits: arrays of shape `(windows, sequence_length)`; a sequence shorter
            than the features' is fine when the features were padded beyond it.
        num_examples: how many examples the features cover (default: the largest example index + 1).
        n_best: how many start and how many end positions of each window are paired.
        max_answer_length: the longest answer, in tokens.
        top_k: how many spans to keep per example; no more columns are made than there are span
            candidates over all windows, so a huge `top_k` costs no more memory than the windows.

    Returns:
        A dict of arrays with a leading `(num_examples, min(top_k, candidates))` shape: `score`
        (-inf where there is no candidate), `start_char`, `end_char` (-1 where none), `window`,
        `start_token`, `end_token`; and `null_score` of shape `(num_examples,)`.
    """
    if "offsets" not in features or "example_index" not in features:
        raise ValueError(
            "decode needs the features from prepare_eval_features (with 'offsets' and "
            "'example_index'); training features carry no offsets."
        )
    start_logits = np.asarray(start_logits, dtype=np.float32)
    end_logits = np.asarray(end_logits, dtype=np.float32)
    example_index = np.asarray(features["example_index"])
    windows, length = start_logits.shape
    offsets = np.asarray(features["offsets"])[:, :length]
    if end_logits.shape != start_logits.shape or offsets.shape[:2] != (windows, length):
        raise ValueError(
            f"start_logits {start_logits.shape}, end_logits {end_logits.shape} and the features' "
            f"offsets {np.shape(features['offsets'])} do not describe the same windows."
        )
    if num_examples is None:
        num_examples = int(example_index.max()) + 1 if windows else 0
    if n_best < 1 or max_answer_length < 1 or top_k < 1:
        raise ValueError("n_best, max_answer_length and top_k must be at least 1.")

    # Windows are paired in chunks: the (windows, n_best, n_best) pair arrays of a large eval set at
    # once would take gigabytes.
    parts = []
    chunk = max(1, min(WINDOW_CHUNK, PAIRS_PER_CHUNK // min(n_best, max(length, 1)) ** 2))
    for begin in range(0, max(windows, 1), chunk):
        rows = slice(begin, begin + chunk)
        part = _window_candidates(
            start_logits[rows], end_logits[rows], offsets[rows], n_best, max_answer_length, top_k
        )
        part["window"] += begin
        parts.append(part)
    candidates = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    top_k = max(1, min(top_k, len(candidates["score"])))
    result = _best_per_example(candidates, example_index, num_examples, top_k)
    null_score = np.full(num_examples, np.inf, dtype=np.float32)
    np.minimum.at(null_score, example_index, start_logits[:, CLS_INDEX] + end_logits[:, CLS_INDEX])
    result["null_score"] = null_score
    return result


def _window_candidates(start_logits, end_logits, offsets, n_best, max_answer_length, top_k):
    """The `top_k` best (start, end) pairs of every window, flattened: a dict of arrays."""
    windows, length = start_logits.shape
    in_context = offsets[:, :, 0] >= 0
    masked_start = np.where(in_context, start_logits, -np.inf)
    masked_end = np.where(in_context, end_logits, -np.inf)
    n = min(n_best, length)
    start_index = _top_indices(masked_start, n)
    end_index = _top_indices(masked_end, n)
    start_score = np.take_along_axis(masked_start, start_index, axis=1)
    end_score = np.take_along_axis(masked_end, end_index, axis=1)

    # Every (start, end) pair of a window: shape (windows, n, n).
    span_length = end_index[:, None, :] - start_index[:, :, None] + 1
    score = start_score[:, :, None] + end_score[:, None, :]
    valid = (span_length >= 1) & (span_length <= max_answer_length) & np.isfinite(score)
    score = np.where(valid, score, -np.inf).reshape(windows, n * n)

    # A window has at most `max_answer_length` valid spans per start.
    k = min(top_k, n * n, n * max_answer_length)
    pair = _top_indices(score, k)
    window = np.repeat(np.arange(windows), k)
    start_token = np.take_along_axis(start_index, pair // n, axis=1).reshape(-1)
    end_token = np.take_along_axis(end_index, pair % n, axis=1).reshape(-1)
    return {
        "score": np.take_along_axis(score, pair, axis=1).reshape(-1),
        "start_char": offsets[window, start_token, 0],
        "end_char": offsets[window, end_token, 1],
        "window": window,
        "start_token": start_token,
        "end_token": end_token,
    }


def _best_per_example(candidates, example_index, num_examples, top_k):
    """The `top_k` best candidates of each example over all its windows, as `(examples, top_k)`
    arrays; the same characters found by two overlapping windows count once, with their better
    score."""
    score, start_char, end_char = (candidates[k] for k in ("score", "start_char", "end_char"))
    example = example_index[candidates["window"]]
    # Order by example, then characters, then score (best first), and drop repeated characters.
    order = np.lexsort((-score, end_char, start_char, example))
    same_as_previous = np.zeros(len(order), dtype=bool)
    same_as_previous[1:] = (
        (example[order][1:] == example[order][:-1])
        & (start_char[order][1:] == start_char[order][:-1])
        & (end_char[order][1:] == end_char[order][:-1])
    )
    order = order[~same_as_previous & np.isfinite(score[order])]
    order = order[np.lexsort((-score[order], example[order]))]
    ranked_example = example[order]
    group_start = np.searchsorted(ranked_example, ranked_example, side="left")
    rank = np.arange(len(order)) - group_start
    keep = rank < top_k
    order, rank, ranked_example = order[keep], rank[keep], ranked_example[keep]

    result = {}
    for name, values in candidates.items():
        empty = -np.inf if name == "score" else -1
        dtype = np.float32 if name == "score" else np.int64
        result[name] = np.full((num_examples, top_k), empty, dtype=dtype)
        result[name][ranked_example, rank] = values[order]
    return result


def decode_answers(
    examples,
    features,
    start_logits,
    end_logits,
    n_best=20,
    max_answer_length=30,
    null_threshold=None,
    return_scores=False,
    window_score="null_relative",
):
    """The best answer text of every example.

    Args:
        examples: the examples the features were made from.
        features: the dict from `prepare_eval_features`.
        start_logits, end_logits: the model's logits, `(windows, sequence_length)`.
        n_best: start and end candidates per window.
        max_answer_length: the longest answer, in tokens.
        null_threshold: `None` for SQuAD v1.1 (always answer). A number for SQuAD v2.0: the answer is
            "" when the null score exceeds the best span score by more than this.
        return_scores: also return, per id, `{"score", "null_score", "null_odds"}`, where
            `null_odds = null_score - score` (a no-answer score for `squad_score`).
        window_score: how spans of different windows compete (`WINDOW_SCORES`); the null score is
            on the same scale. "null_relative" (the default) scored best over long contexts
            (docs/answering.md, "Long documents"); it ranks the spans of one window as "raw" does.

    Returns:
        `{id: answer text}`, and the scores dict when `return_scores` is True. An example with no
        valid span in any window gets "".

    Example:
    >>> from keras_qa import load_examples, load_trained_model, predict_logits, prepare_eval_features
    >>> model, tokenizer, config = load_trained_model(model_dir)  # a folder keras_qa.train wrote
    >>> examples = load_examples(tiny_data)[:3]
    >>> features = prepare_eval_features(examples, tokenizer, config["max_length"], 16)
    >>> start_logits, end_logits = predict_logits(model, features)
    >>> answers = decode_answers(examples, features, start_logits, end_logits)
    >>> [answers[e["id"]] in e["context"] for e in examples]
    [True, True, True]
    """
    start_scores, end_scores = window_scores(
        start_logits, end_logits, features.get("offsets"), window_score
    )
    spans = decode_spans(
        features,
        start_scores,
        end_scores,
        num_examples=len(examples),
        n_best=n_best,
        max_answer_length=max_answer_length,
    )
    answers, scores = _texts_and_scores(examples, spans, null_threshold)
    return (answers, scores) if return_scores else answers


def _texts_and_scores(examples, spans, null_threshold):
    """Each example's best span cut from its context ("" for none, or for "no answer" under a
    `null_threshold`), and its scores."""
    answers, scores = {}, {}
    for i, example in enumerate(examples):
        score = float(spans["score"][i, 0])
        null_score = float(spans["null_score"][i])
        text = ""
        if np.isfinite(score):
            text = example["context"][spans["start_char"][i, 0] : spans["end_char"][i, 0]]
        if null_threshold is not None and null_score > score + null_threshold:
            text = ""
        answers[example["id"]] = text
        scores[example["id"]] = {
            "score": score,
            "null_score": null_score,
            "null_odds": null_score - score,
        }
    return answers, scores


def window_scores(start_logits, end_logits, offsets, method="raw"):
    """Start and end scores put on one scale across windows (see `WINDOW_SCORES`).

    Example:
    >>> offsets = np.array([[[-1, -1], [0, 3]], [[-1, -1], [4, 7]]])
    >>> start = np.array([[5.0, 2.0], [0.0, 1.0]])
    >>> window_scores(start, start, offsets, "null_relative")[0]
    array([[ 0., -3.],
           [ 0.,  1.]], dtype=float32)
    """
    if method == "raw":
        return np.asarray(start_logits, np.float32), np.asarray(end_logits, np.float32)
    if method == "null_relative":
        start, end = (np.asarray(x, np.float32) for x in (start_logits, end_logits))
        return start - start[:, CLS_INDEX, None], end - end[:, CLS_INDEX, None]
    if method == "window_softmax":
        return (
            window_log_probabilities(start_logits, offsets),
            window_log_probabilities(end_logits, offsets),
        )
    raise ValueError(f"window_score must be one of {', '.join(WINDOW_SCORES)}; got {method!r}")


def window_log_probabilities(logits, offsets):
    """Log-probabilities over each window's context tokens and [CLS]; -inf elsewhere.

    Hugging Face's question-answering pipeline scores a span as P(start) x P(end), each a softmax over
    one window's context tokens and [CLS]; decoding these with `decode_spans` ranks spans that way.

    Args:
        logits: start or end logits, `(windows, length)`.
        offsets: the features' `offsets`, `(windows, >= length, 2)`.

    Example:
    >>> offsets = np.array([[[-1, -1], [0, 3], [4, 7], [-1, -1]]])
    >>> np.exp(window_log_probabilities(np.zeros((1, 4)), offsets)).round(3)
    array([[0.333, 0.333, 0.333, 0.   ]], dtype=float32)
    """
    logits = np.asarray(logits, dtype=np.float64)
    allowed = np.asarray(offsets)[:, : logits.shape[1], 0] >= 0
    allowed[:, CLS_INDEX] = True
    masked = np.where(allowed, logits, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(masked - top).sum(axis=1, keepdims=True)) + top
    return (masked - log_total).astype(np.float32)


def pipeline_window_spans(
    start_logits, end_logits, allowed, top_k, max_answer_len, null_score=None
):
    """One window's best spans as transformers' question-answering pipeline (4.x) ranks them.

    The pipeline's own computation, kept as it is so that its answers come back: a softmax over the
    allowed tokens (context tokens and [CLS]) for the start and for the end; "no answer" scores
    P(start = first token) x P(end = first token); then the first token is set to 0 and the `top_k`
    best of all pairs with `0 <= end - start < max_answer_len` are taken, and those whose start or
    end is not allowed dropped. When a window has fewer than `top_k` spans of probability above 0,
    the pipeline also returns some of probability 0, possibly ending before they start; so does this.

    Args:
        start_logits, end_logits: one window's logits over its real tokens (no padding), `(n,)`.
        allowed: a boolean array `(n,)`: the tokens an answer may use (context tokens and [CLS]).
        top_k: how many spans to take before dropping (the pipeline takes `2 * top_k + 10` when it
            widens answers to words).
        max_answer_len: the longest span, in tokens.
        null_score: the lowest "no answer" score seen in earlier windows, or None.

    Returns:
        `(starts, ends, scores, null_score)`: NumPy arrays of the spans, best first, and the lowest
        "no answer" score including this window's.

    Example:
    >>> spans = pipeline_window_spans(np.array([0.0, 3.0, 0.0]), np.array([0.0, 0.0, 3.0]),
    ...                               np.array([True, True, True]), 1, 15)
    >>> spans[0].tolist(), spans[1].tolist()
    ([1], [2])
    """
    start, end = (
        np.where(allowed, np.asarray(logits, np.float32), np.float32(-10000.0))[None]
        for logits in (start_logits, end_logits)
    )
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    window_null = float(start[0, 0] * end[0, 0])
    null_score = window_null if null_score is None else min(null_score, window_null)
    start[0, 0] = end[0, 0] = 0.0
    candidates = np.tril(np.triu(np.matmul(start[..., None], end[:, None])), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) <= top_k:  # the pipeline fails when they are equal (argpartition out of range)
        order = np.argsort(-flat)
    else:
        chosen = np.argpartition(-flat, top_k)[0:top_k]
        order = chosen[np.argsort(-flat[chosen])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    # As the pipeline tests membership (against the row and the column indices of the allowed
    # tokens, so index 0 always passes).
    usable = np.concatenate([np.zeros(1, np.int64), np.flatnonzero(allowed)])
    keep = np.isin(starts, usable) & np.isin(ends, usable)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends], null_score


def widen_to_words(offsets, start_token, end_token, continues_word):
    """The characters of a span widened to the whole words its first and last tokens belong to.

    Words are the tokenizer's pre-tokens, as in Hugging Face's pipeline (`word_ids`): WordPiece's
    "##" pieces continue a word, and so do the later pieces of a byte-level BPE or SentencePiece word.

    Args:
        offsets: one window's `offsets` `(length, 2)`.
        start_token, end_token: the span's first and last token in that window.
        continues_word: one window's `continues_word` `(length,)` (`prepare_eval_features`): True
            for a token that continues the word of the token before it.

    Returns:
        `(start_char, end_char)`.

    Example:
    >>> offsets = np.array([[0, 3], [4, 8], [8, 10]])  # "the", "gold", "##en"
    >>> widen_to_words(offsets, 1, 1, np.array([False, False, True]))
    (4, 10)
    """
    first, last = int(start_token), int(end_token)
    while first > 0 and offsets[first - 1, 0] >= 0 and continues_word[first]:
        first -= 1
    while last + 1 < len(offsets) and offsets[last + 1, 0] >= 0 and continues_word[last + 1]:
        last += 1
    return int(offsets[first, 0]), int(offsets[last, 1])


def _top_indices(values, k):
    """Indices of the k largest values of each row (in no particular order)."""
    if k >= values.shape[1]:
        return np.broadcast_to(np.arange(values.shape[1]), values.shape).copy()
    return np.argpartition(-values, k - 1, axis=1)[:, :k]
