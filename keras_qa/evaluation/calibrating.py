"""Calibrating a model's scores on answered questions, and the calibration figures of a set of answers.

    examples -> features -> predict_logits -> decode_answers (each answer's log-odds) -> exact match
        -> fit_calibration -> `Calibration` (saved in keras_qa.json as "calibration")

A model's answers are fitted twice over: each question over its own paragraph (one window), and over
its paragraph among its article's neighbours (`with_neighbouring_contexts`: several windows, where
wrong windows compete), so that the probability holds for short and long contexts alike.
"""

import numpy as np

from keras_qa.data.bundled import with_neighbouring_contexts
from keras_qa.evaluation.squad_metrics import normalize_answer
from keras_qa.models.batching import predict_logits
from keras_qa.text.calibration import (
    Calibration,
    expected_calibration_error,
    fit_calibration,
    precision_threshold,
    reliability,
)
from keras_qa.text.decoding import decode_answers
from keras_qa.text.features import prepare_eval_features


def is_exact_match(prediction, answers):
    """Whether a predicted text equals one of the gold answers after SQuAD's normalisation; a
    non-empty prediction for a question without answers is wrong, an empty one right.

    Example:
    >>> is_exact_match("the Broncos", ["Denver Broncos", "Broncos"])
    True
    """
    if not answers:
        return prediction == ""
    return any(normalize_answer(prediction) == normalize_answer(gold) for gold in answers)


def answer_log_odds(examples, features, start_logits, end_logits, n_best=20, max_answer_length=30):
    """`(log_odds, correct)`: each example's best answer's log-odds score (its start + end logit
    less its window's [CLS] logits) and whether it is an exact match; examples
    with no span at all are left out."""
    texts, scores = decode_answers(
        examples,
        features,
        start_logits,
        end_logits,
        n_best=n_best,
        max_answer_length=max_answer_length,
        return_scores=True,
    )
    log_odds, correct = [], []
    for example in examples:
        score = scores[example["id"]]["score"]
        if np.isfinite(score):
            log_odds.append(score)
            correct.append(is_exact_match(texts[example["id"]], example["answers"]["text"]))
    return np.asarray(log_odds, np.float64), np.asarray(correct, bool)


def model_log_odds(model, tokenizer, examples, max_length, doc_stride, batch_size=64, **decoding):
    """`answer_log_odds` of a model's answers to `examples`."""
    features = prepare_eval_features(examples, tokenizer, max_length, doc_stride)
    start_logits, end_logits = predict_logits(model, features, batch_size)
    return answer_log_odds(examples, features, start_logits, end_logits, **decoding)


def long_context_examples(examples, neighbours=None):
    """The examples, each over its context set among the neighbouring contexts of its article
    (`with_neighbouring_contexts` over `neighbours`, which hold `examples`; default `examples`).

    Example:
    >>> article = [{"id": i, "title": "t", "context": c, "question": "?",
    ...             "answers": {"text": [c[:3]], "answer_start": [0]}}
    ...            for i, c in enumerate(["One.", "Two.", "Six."])]
    >>> [e["context"] for e in long_context_examples(article[1:2], article)]
    ['One.\\n\\nTwo.\\n\\nSix.']
    """
    ids = {example["id"] for example in examples}
    widened = with_neighbouring_contexts(neighbours if neighbours else examples)
    return [example for example in widened if example["id"] in ids]


def fit_model_calibration(
    model,
    tokenizer,
    examples,
    max_length,
    doc_stride,
    neighbours=None,
    batch_size=64,
    long_contexts=True,
    **decoding,
):
    """Fit a model's calibration on answered examples, over their own contexts and over long ones.

    Args:
        model: a `QuestionAnsweringModel` (or anything `predict_logits` runs).
        tokenizer: its `QATokenizer`.
        examples: answerable examples the model was not trained on.
        max_length, doc_stride: the model's windows.
        neighbours: the examples whose contexts surround `examples`' in long contexts (for a
            training run, the whole training split; default `examples` themselves).
        batch_size: windows per model call.
        long_contexts: also fit on each example over its context among its neighbours.
        **decoding: `n_best`, `max_answer_length`.

    Returns:
        `(calibration, report)`: the `Calibration`, and `scores_report` of its probabilities on the
        answers it was fitted on, with `"answers"` per context kind.
    """
    windows = (max_length, doc_stride, batch_size)
    short = model_log_odds(model, tokenizer, examples, *windows, **decoding)
    long = (np.zeros(0), np.zeros(0, bool))
    if long_contexts:
        long_examples = long_context_examples(examples, neighbours)
        long = model_log_odds(model, tokenizer, long_examples, *windows, **decoding)
    log_odds = np.concatenate([short[0], long[0]])
    correct = np.concatenate([short[1], long[1]])
    calibration = fit_calibration(log_odds, correct)
    report = scores_report(log_odds, correct, calibration)
    report["answers"] = {"paragraph": len(short[0]), "long_context": len(long[0])}
    return calibration, report


def calibration_report(scores, correct):
    """The calibration figures of answers' scores: expected calibration error (10 bins), the score
    threshold that keeps 90% of the answers right, and the reliability table.

    Example:
    >>> report = calibration_report([0.9, 0.8, 0.3, 0.2], [True, True, False, True])
    >>> report["expected_calibration_error"], report["threshold_90"]["threshold"]
    (0.35, 0.8)
    """
    return {
        "expected_calibration_error": expected_calibration_error(scores, correct),
        "threshold_90": precision_threshold(scores, correct),
        "reliability": reliability(scores, correct),
    }


def answers_calibration(examples, predictions, log_odds, calibration=None):
    """The calibration figures of a set of answers (`calibration_report`), with their scores as
    answering gives them: `calibration`'s probabilities, or without one the uncalibrated
    `sigmoid(log_odds)` that `QuestionAnswerer.read` returns; both ECEs are reported.

    Args:
        examples: the examples, with their answers.
        predictions: `{id: answer text}`; questions answered "" (no answer) are left out.
        log_odds: `{id: the answer's log-odds}` (`evaluate_answers`' details).
        calibration: a `Calibration`, or None.
    """
    ids = [e["id"] for e in examples if predictions.get(e["id"]) and np.isfinite(log_odds[e["id"]])]
    gold = {example["id"]: example["answers"]["text"] for example in examples}
    correct = np.array([is_exact_match(predictions[i], gold[i]) for i in ids], bool)
    values = np.array([log_odds[i] for i in ids], np.float64)
    return scores_report(values, correct, calibration) | {"answers": len(ids)}


def scores_report(log_odds, correct, calibration=None):
    """`calibration_report` of answers scored with `calibration` (or, without one, with the
    uncalibrated `sigmoid(log_odds)`), saying which (`"scores"`), and the uncalibrated ECE."""
    uncalibrated = Calibration(weight=1.0, bias=0.0).probability(log_odds)
    scores = calibration.probability(log_odds) if calibration else uncalibrated
    report = calibration_report(scores, correct)
    report["scores"] = "calibrated" if calibration else "uncalibrated"
    report["uncalibrated_expected_calibration_error"] = expected_calibration_error(
        uncalibrated, correct
    )
    return report


def calibration_line(report):
    """One line on how far scores are from the share of right answers (the expected calibration
    error, ECE) and the score that keeps 90% of the answers right.

    Example:
    >>> print(calibration_line({"scores": "calibrated", "expected_calibration_error": 0.031,
    ...     "uncalibrated_expected_calibration_error": 0.12,
    ...     "threshold_90": {"threshold": 0.62, "kept": 0.71, "precision": 0.9}}))
    calibrated scores: ECE 0.031 (uncalibrated 0.120); 90% right at score >= 0.620 (71.0% of answers)
    """
    line = f"{report['scores']} scores: ECE {report['expected_calibration_error']:.3f}"
    if report["scores"] == "calibrated":
        line += f" (uncalibrated {report['uncalibrated_expected_calibration_error']:.3f})"
    threshold = report["threshold_90"]
    if threshold["threshold"] is None:
        return line + "; no score threshold keeps 90% of answers right"
    return line + (
        f"; 90% right at score >= {threshold['threshold']:.3f} "
        f"({100 * threshold['kept']:.1f}% of answers)"
    )
