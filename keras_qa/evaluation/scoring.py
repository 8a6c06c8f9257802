"""Scoring a model on examples: logits, answers, the official SQuAD scores, during and after training.

examples + features -> predict_logits -> decode_answers -> squad_score
"""

import math
import os

import keras
import numpy as np

from keras_qa.evaluation.squad_metrics import exact_match, squad_score, squad_version
from keras_qa.files import write_json_atomically
from keras_qa.models.batching import BUCKET_WIDTH, predict_logits
from keras_qa.text.decoding import decode_answers, decode_spans, window_scores
from keras_qa.text.features import prepare_eval_features
from keras_qa.text.layouts import CLS_INDEX

# Questions per model call when answering a file: the progress bar moves, and memory stays flat.
PREDICTION_CHUNK = 64


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
            None, "log_odds": {id: the best span's log-odds}}` (run_qa.py's
            `nbest_predictions.json` and `null_odds.json`; the log-odds are what calibration maps).
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
    details = {"nbest": nbest, "null_odds": null_odds, "log_odds": log_odds_of(decoded)}
    return predictions, scores, details


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


def log_odds_of(decoded):
    """`{id: the best span's score}`: under the default "null_relative" decoding its log-odds
    against its window's "not here" (what calibration maps to a probability)."""
    return {qid: values["score"] for qid, values in decoded.items()}


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
        texts,
        examples,
        version=2,
        no_answer_probabilities=null_odds,
        no_answer_threshold=math.inf,
    )
    threshold = sweep["best_f1_thresh"] if null_threshold is None else float(null_threshold)
    predictions = {qid: "" if null_odds[qid] > threshold else text for qid, text in texts.items()}
    scores = squad_score(predictions, examples, version=2)
    best = {name: value for name, value in sweep.items() if name.startswith("best_")}
    return predictions, scores | best | {"null_score_diff_threshold": threshold}


def answer_examples(
    answerer,
    examples,
    n_best=20,
    max_answer_length=30,
    doc_stride=None,
    abstain=False,
    null_threshold=None,
    verbose=1,
):
    """Every example answered by `answerer` as training's evaluation answers, a chunk at a time.

    Args:
        answerer: a `QuestionAnswerer` (its model, tokenizer, windows and batch size are used).
        examples: examples in `load_examples`' schema.
        n_best, max_answer_length: as `decode_answers` takes them.
        doc_stride: context tokens consecutive windows share (None: the answerer's).
        abstain: let "no answer" compete (SQuAD v2.0 data), returned as "".
        null_threshold: with `abstain`, "" wins when the null odds pass this (None: the answerer's).
        verbose: 1 for a progress bar.

    Returns:
        `(predictions, details)`: `{id: answer}`, and `write_details`' dict with `"log_odds"`
        (`{id: the best span's log-odds}`) added.
    """
    doc_stride = answerer.doc_stride if doc_stride is None else doc_stride
    texts, decoded, nbest = {}, {}, {}
    progress = keras.utils.Progbar(len(examples), unit_name="question", verbose=verbose)
    for begin in range(0, len(examples), PREDICTION_CHUNK):
        chunk = examples[begin : begin + PREDICTION_CHUNK]
        features = prepare_eval_features(chunk, answerer.tokenizer, answerer.max_length, doc_stride)
        logits = predict_logits(answerer.model, features, answerer.batch_size)
        found = decode_with_details(chunk, features, *logits, n_best, max_answer_length, abstain)
        for collected, part in zip((texts, decoded, nbest), found):
            collected.update(part)
        progress.update(begin + len(chunk))
    predictions = texts
    details = {"nbest": nbest, "null_odds": None, "log_odds": log_odds_of(decoded)}
    if abstain:
        threshold = answerer.null_threshold if null_threshold is None else null_threshold
        predictions, _ = answer_or_abstain(examples, texts, decoded, threshold)
        details["null_odds"] = null_odds_of(decoded)
    return predictions, details


# run_qa.py's names of the files `write_details` writes beside the predictions.
DETAIL_FILES = ("nbest_predictions.json", "null_odds.json")


def write_details(directory, details):
    """`nbest_predictions.json` and, for SQuAD v2.0, `null_odds.json` (`DETAIL_FILES`) into
    `directory`, each written atomically."""
    write_json_atomically(os.path.join(directory, DETAIL_FILES[0]), details["nbest"])
    if details["null_odds"] is not None:
        # A question with no span at all has infinite null odds; JSON has no infinity.
        odds = {qid: max(-1e30, min(1e30, value)) for qid, value in details["null_odds"].items()}
        write_json_atomically(os.path.join(directory, DETAIL_FILES[1]), odds)


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


def nbest_predictions(
    examples,
    features,
    start_logits,
    end_logits,
    n_best=20,
    max_answer_length=30,
    include_null=False,
    window_score="null_relative",
):
    """run_qa.py's `nbest_predictions.json`: each example's best answers with their probabilities.

    The spans are ranked as `decode_answers` ranks them (`window_score`), so the first is its answer;
    `probability` is a softmax over the listed answers' ranking scores (within one window that is
    run_qa.py's softmax over start + end logits, which only shifts them). With `include_null` (SQuAD
    v2.0 data), "no answer" is ranked among them as `""` with the [CLS] logits of the window where
    they sum lowest, and added last when it is not among the `n_best` (as run_qa.py does).

    Args:
        examples, features, start_logits, end_logits, n_best, max_answer_length, window_score: as
            `decode_answers` takes them (`n_best` is also how many answers are listed).
        include_null: also list "no answer".

    Returns:
        `{id: [{"text", "probability", "start_logit", "end_logit"}, ...]}`, best first; an example
        with no span at all gets run_qa.py's `[{"text": "empty", ...}]`.
    """
    start_logits = np.asarray(start_logits, np.float32)
    end_logits = np.asarray(end_logits, np.float32)
    ranks = window_scores(start_logits, end_logits, features.get("offsets"), window_score)
    spans = decode_spans(
        features,
        *ranks,
        num_examples=len(examples),
        n_best=n_best,
        max_answer_length=max_answer_length,
        top_k=n_best,
    )
    lowest_null = _lowest_null_windows(start_logits, end_logits, features, len(examples))
    listed = {}
    for i, example in enumerate(examples):
        entries = _span_entries(example["context"], spans, i, start_logits, end_logits)
        if include_null:
            window = lowest_null[i]
            null = (
                float(spans["null_score"][i]),
                "",
                start_logits[window, CLS_INDEX],
                end_logits[window, CLS_INDEX],
            )
            entries = sorted(entries + [null], key=lambda entry: -entry[0])
            entries = entries[:n_best] + ([] if null in entries[:n_best] else [null])
        listed[example["id"]] = _with_probabilities(entries or [(0.0, "empty", 0.0, 0.0)])
    return listed


def _lowest_null_windows(start_logits, end_logits, features, num_examples):
    """Each example's window whose [CLS] logits sum lowest (the first such, as argmin picks)."""
    example_index = np.asarray(features["example_index"])
    raw_null = start_logits[:, CLS_INDEX] + end_logits[:, CLS_INDEX]
    by_null = np.lexsort((raw_null, example_index))
    return by_null[np.searchsorted(example_index[by_null], np.arange(num_examples))]


def _with_probabilities(entries):
    """`nbest_predictions`' dicts of `(ranking score, text, start logit, end logit)` entries, with a
    softmax over the ranking scores."""
    scores = np.array([entry[0] for entry in entries], np.float64)
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    return [
        {
            "text": text,
            "probability": float(probability),
            "start_logit": float(start),
            "end_logit": float(end),
        }
        for (_, text, start, end), probability in zip(entries, probabilities)
    ]


def _span_entries(context, spans, index, start_logits, end_logits):
    """`(ranking score, text, start logit, end logit)` of example `index`'s decoded spans."""
    entries = []
    for rank in np.flatnonzero(np.isfinite(spans["score"][index])):
        window = spans["window"][index, rank]
        first, last = spans["start_char"][index, rank], spans["end_char"][index, rank]
        entries.append(
            (
                float(spans["score"][index, rank]),
                context[first:last],
                start_logits[window, spans["start_token"][index, rank]],
                end_logits[window, spans["end_token"][index, rank]],
            )
        )
    return entries
