"""Scoring a model on examples: logits, answers, the official SQuAD scores, during and after training.

    examples + features -> predict_logits -> decode_answers -> squad_score
"""

import keras

from keras_qa.batching import BUCKET_WIDTH, predict_logits
from keras_qa.metrics import exact_match, squad_score, squad_version
from keras_qa.postprocess import decode_answers


def evaluate_answers(
    model,
    examples,
    features,
    batch_size=64,
    bucket_width=BUCKET_WIDTH,
    n_best=20,
    max_answer_length=30,
    verbose=0,
):
    """Predict, decode and score: `(predictions, scores)` with the official SQuAD metrics.

    Data with unanswerable questions is scored as SQuAD v2.0, decoding with the null score; other
    data as SQuAD v1.1. `scores["squad_version"]` says which.

    Args:
        model: a `QuestionAnsweringModel`.
        examples: the examples, with their answers.
        features: `prepare_eval_features(examples, ...)`.
        batch_size, bucket_width: see `predict_logits`.
        n_best, max_answer_length: see `decode_answers`.
        verbose: 1 for a progress bar.
    """
    start_logits, end_logits = predict_logits(
        model, features, batch_size, bucket_width, verbose=verbose
    )
    version = squad_version(examples)
    predictions = decode_answers(
        examples,
        features,
        start_logits,
        end_logits,
        n_best=n_best,
        max_answer_length=max_answer_length,
        null_threshold=0.0 if version == 2 else None,
    )
    scores = squad_score(predictions, examples, version=version)
    return predictions, scores | {"squad_version": version}


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
