"""The official SQuAD scores: v1.1 exact match and F1, and v2.0 with its no-answer breakdown.

These follow the official evaluation scripts (evaluate-v1.1.py and evaluate-v2.0.py) rule for rule:
answers are normalised (lowercased, punctuation removed, the articles a/an/the dropped, whitespace
collapsed), F1 is computed on the multiset of normalised tokens, and each question takes its best score
over its ground truths. One deliberate, documented choice: a question with no prediction scores 0 in both
versions (v1.1's rule; the v2.0 script instead leaves it out of the total, which would reward skipping
hard questions).
"""

import collections
import re
import string
import warnings

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    """Lowercase, remove punctuation, articles and extra whitespace (the official normalisation)."""
    text = text.lower()
    text = "".join(character for character in text if character not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction, ground_truth):
    """1.0 when the normalised texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction, ground_truth, version=1):
    """Token-multiset F1 of the normalised texts.

    Texts that normalise to nothing score 0 under v1.1; under v2.0 two of them agree (1.0), since ""
    is how a model says "no answer".
    """
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    if version == 2 and (not prediction_tokens or not truth_tokens):
        return float(prediction_tokens == truth_tokens)
    common = collections.Counter(prediction_tokens) & collections.Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_score(
    predictions, examples, version=1, no_answer_probabilities=None, no_answer_threshold=1.0
):
    """Score predictions against examples with the official SQuAD rules.

    Args:
        predictions: `{id: answer text}`; "" predicts "no answer" (SQuAD v2.0).
        examples: the examples (`load_examples`' schema) with their ground-truth answers.
        version: 1 (SQuAD v1.1) or 2 (SQuAD v2.0).
        no_answer_probabilities: v2.0 only, optional `{id: probability that there is no answer}`;
            adds `best_exact`, `best_exact_thresh`, `best_f1`, `best_f1_thresh`.
        no_answer_threshold: v2.0 only: a question whose no-answer probability exceeds this is
            scored as answered "" (the official script's `--na-prob-thresh`, default 1.0).

    Returns:
        v1.1: `{"exact_match", "f1", "total"}` in percent. v2.0: `{"exact", "f1", "total"}` plus
        `HasAns_exact/f1/total` and `NoAns_exact/f1/total` where such questions exist, and the best
        thresholds when `no_answer_probabilities` is given.

    Example:
    >>> examples = [{"id": "q", "context": "The cat sat.", "question": "Who sat?",
    ...              "answers": {"text": ["The cat"], "answer_start": [0]}}]
    >>> squad_score({"q": "cat"}, examples)
    {'exact_match': 100.0, 'f1': 100.0, 'total': 1}
    """
    if version in (1, "1", "1.1", "v1", "v1.1"):
        version = 1
    elif version in (2, "2", "2.0", "v2", "v2.0"):
        version = 2
    else:
        raise ValueError(f"version must be 1 (SQuAD v1.1) or 2 (SQuAD v2.0), got {version!r}")
    if not isinstance(predictions, dict):
        raise TypeError("predictions must be a dict {id: answer text}")
    missing = [example["id"] for example in examples if example["id"] not in predictions]
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(examples)} questions have no prediction and score 0 "
            f"(first: {missing[0]!r}).",
            stacklevel=2,
        )
    if version == 1:
        return _score_v1(predictions, examples)
    return _score_v2(predictions, examples, no_answer_probabilities, no_answer_threshold)


def squad_version(examples):
    """2 when some question has no answer (SQuAD v2.0 data), else 1.

    Example:
    >>> squad_version([{"answers": {"text": ["x"]}}, {"answers": {"text": []}}])
    2
    """
    return 2 if any(not example["answers"]["text"] for example in examples) else 1


def exact_match(scores):
    """The exact-match figure of `squad_score`'s result, whichever version made it."""
    return scores["exact_match"] if "exact_match" in scores else scores["exact"]


def _score_v1(predictions, examples):
    exact = f1 = 0.0
    for example in examples:
        prediction = predictions.get(example["id"])
        if prediction is None:
            continue
        truths = example["answers"]["text"]
        if not truths:
            raise ValueError(
                f"Example {example['id']!r} has no ground-truth answer; SQuAD v1.1 scoring needs "
                "one per question. Use version=2 for data with unanswerable questions."
            )
        exact += max(exact_match_score(prediction, truth) for truth in truths)
        f1 += max(f1_score(prediction, truth) for truth in truths)
    total = len(examples)
    return {
        "exact_match": 100.0 * exact / total if total else 0.0,
        "f1": 100.0 * f1 / total if total else 0.0,
        "total": total,
    }


def _score_v2(predictions, examples, no_answer_probabilities, no_answer_threshold):
    exact_raw, f1_raw, has_answer = {}, {}, {}
    for example in examples:
        qid = example["id"]
        truths = [text for text in example["answers"]["text"] if normalize_answer(text)]
        has_answer[qid] = bool(truths)
        truths = truths or [""]
        prediction = predictions.get(qid)
        if prediction is None:
            exact_raw[qid] = f1_raw[qid] = 0.0
            continue
        exact_raw[qid] = max(exact_match_score(prediction, truth) for truth in truths)
        f1_raw[qid] = max(f1_score(prediction, truth, version=2) for truth in truths)

    probabilities = no_answer_probabilities or {qid: 0.0 for qid in exact_raw}
    exact = _apply_no_answer_threshold(exact_raw, probabilities, has_answer, no_answer_threshold)
    f1 = _apply_no_answer_threshold(f1_raw, probabilities, has_answer, no_answer_threshold)
    result = _summary(exact, f1, list(exact))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [qid for qid, has in has_answer.items() if has == wanted]
        if ids:
            for key, value in _summary(exact, f1, ids).items():
                result[f"{prefix}_{key}"] = value
    if no_answer_probabilities is not None:
        missing = [qid for qid in exact_raw if qid not in no_answer_probabilities]
        if missing:
            raise ValueError(
                f"no_answer_probabilities lacks {len(missing)} question id(s), first {missing[0]!r}"
            )
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, threshold = _best_threshold(predictions, raw, no_answer_probabilities, has_answer)
            result[f"best_{name}"] = best
            result[f"best_{name}_thresh"] = threshold
    return result


def _summary(exact, f1, ids):
    total = len(ids)
    return {
        "exact": 100.0 * sum(exact[qid] for qid in ids) / total if total else 0.0,
        "f1": 100.0 * sum(f1[qid] for qid in ids) / total if total else 0.0,
        "total": total,
    }


def _apply_no_answer_threshold(scores, probabilities, has_answer, threshold):
    return {
        qid: float(not has_answer[qid]) if probabilities[qid] > threshold else score
        for qid, score in scores.items()
    }


def _best_threshold(predictions, scores, probabilities, has_answer):
    """The official `find_best_thresh`: sweep thresholds over the sorted no-answer probabilities."""
    current = best = sum(1 for qid in scores if not has_answer[qid])
    best_threshold = 0.0
    for qid in sorted(scores, key=lambda qid: probabilities[qid]):
        if has_answer[qid]:
            difference = scores[qid]
        else:
            difference = -1 if predictions.get(qid) else 0
        current += difference
        if current > best:
            best = current
            best_threshold = probabilities[qid]
    return 100.0 * best / len(scores) if scores else 0.0, float(best_threshold)
