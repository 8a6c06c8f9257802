"""Scoring a model on examples: logits, answers, the official SQuAD scores, during and after training.

    examples + features -> predict_logits -> decode_answers -> squad_score
"""

import math
import os

import keras

from keras_qa.batching import BUCKET_WIDTH, predict_logits
from keras_qa.files import write_json_atomically
from keras_qa.metrics import exact_match, squad_score, squad_version
from keras_qa.postprocess import decode_answers, nbest_predictions


def evaluate_answers(
    model,
    examples,
    features,
    batch_size=64,
    bucket_width=BUCKET_WIDTH,
    n_best=20,
    max_answer_length=30,
    verbose=0,
    null_threshold=None,
    details=False,
):
    """Predict, decode and score: `(predictions, scores)` with the official SQuAD metrics.

    Data with unanswerable questions is scored as SQuAD v2.0: a question is answered "" when its null
    score beats its best span by more than `null_threshold` (its `null_odds`); the official
    evaluation's best thresholds are added (`best_f1`, `best_f1_thresh`, ...), and with
    `null_threshold=None` the best-F1 threshold on these examples is used and reported as
    `scores["null_score_diff_threshold"]`. Other data is scored as SQuAD v1.1.
    `scores["squad_version"]` says which.

    Args:
        model: a `QuestionAnsweringModel`.
        examples: the examples, with their answers.
        features: `prepare_eval_features(examples, ...)`.
        batch_size, bucket_width: see `predict_logits`.
        n_best, max_answer_length: see `decode_answers`.
        verbose: 1 for a progress bar.
        null_threshold: SQuAD v2.0 only; see above.
        details: also return `{"nbest": nbest_predictions(...), "null_odds": {id: null_odds} or
            None}` (run_qa.py's `nbest_predictions.json` and `null_odds.json`).
    """
    start_logits, end_logits = predict_logits(
        model, features, batch_size, bucket_width, verbose=verbose
    )
    version = squad_version(examples)
    texts, decoded, nbest = decode_with_details(
        examples, features, start_logits, end_logits, n_best, max_answer_length, version == 2
    )
    if version == 2:
        predictions, scores = answer_or_abstain(examples, texts, decoded, null_threshold)
    else:
        predictions, scores = texts, squad_score(texts, examples, version=1)
    scores |= {"squad_version": version}
    if not details:
        return predictions, scores
    null_odds = null_odds_of(decoded) if version == 2 else None
    return predictions, scores, {"nbest": nbest, "null_odds": null_odds}


def decode_with_details(
    examples, features, start_logits, end_logits, n_best, max_answer_length, include_null
):
    """`(texts, decoded, nbest)`: each example's best span ("" when none), its scores
    (`decode_answers`' `return_scores`) and its `nbest_predictions`."""
    decoding = {"n_best": n_best, "max_answer_length": max_answer_length}
    texts, decoded = decode_answers(
        examples, features, start_logits, end_logits, return_scores=True, **decoding
    )
    nbest = nbest_predictions(
        examples, features, start_logits, end_logits, include_null=include_null, **decoding
    )
    return texts, decoded, nbest


def null_odds_of(decoded):
    """`{id: null score less the best span's}` (run_qa.py's `null_odds.json`)."""
    return {qid: values["null_odds"] for qid, values in decoded.items()}


def answer_or_abstain(examples, texts, decoded, null_threshold=None):
    """SQuAD v2.0: `(predictions, scores)`, "" where the null odds pass the threshold
    (`null_threshold`, or the best-F1 one on these examples when None; in
    `scores["null_score_diff_threshold"]`). The official best thresholds are in `scores` too."""
    null_odds = null_odds_of(decoded)
    # The official sweep: the best spans' texts, each dropped once its null odds pass a threshold.
    sweep = squad_score(
        texts, examples, version=2, no_answer_probabilities=null_odds,
        no_answer_threshold=math.inf,
    )
    threshold = sweep["best_f1_thresh"] if null_threshold is None else float(null_threshold)
    predictions = {qid: "" if null_odds[qid] > threshold else text for qid, text in texts.items()}
    scores = squad_score(predictions, examples, version=2)
    best = {name: value for name, value in sweep.items() if name.startswith("best_")}
    return predictions, scores | best | {"null_score_diff_threshold": threshold}


def write_details(directory, details):
    """`nbest_predictions.json` and, for SQuAD v2.0, `null_odds.json` (run_qa.py's names) into
    `directory`, each written atomically."""
    write_json_atomically(os.path.join(directory, "nbest_predictions.json"), details["nbest"])
    if details["null_odds"] is not None:
        # A question with no span at all has infinite null odds; JSON has no infinity.
        odds = {qid: max(-1e30, min(1e30, value)) for qid, value in details["null_odds"].items()}
        write_json_atomically(os.path.join(directory, "null_odds.json"), odds)


class EpochEvaluation(keras.callbacks.Callback):
    """Scores the eval data at the end of every epoch and adds EM / F1 to the epoch's logs.

    Args:
        examples, features: as `evaluate_answers` takes them.
        **options: `evaluate_answers`' other arguments.
    """

    def __init__(self, examples, features, **options):
        super().__init__()
        self.examples, self.features, self.options = examples, features, options

    def on_epoch_end(self, epoch, logs=None):
        _, scores = evaluate_answers(self.model, self.examples, self.features, **self.options)
        if logs is not None:
            logs["eval_f1"] = scores["f1"]
            logs["eval_exact"] = exact_match(scores)
        print(f"\nepoch {epoch + 1}: eval F1 {scores['f1']:.2f}", flush=True)
