"""Fine-tune a KerasHub encoder for extractive question answering, then evaluate it.

`fine_tune(TrainSettings(...))` runs the whole job: load examples, featurise, build the model, `fit` on
length-bucketed batches with checkpoints, save the model, decode the eval predictions and score them
with the official SQuAD metrics. `python -m keras_qa.train` is a command line over it, its flags made
from `TrainSettings`' fields.

What a run writes to its output directory:
- `model.keras`, `tokenizer/`, `keras_qa.json`: the trained model (`keras_qa.checkpoints.saving`);
- `metrics.json`: EM, F1, loss history, throughput, wall times, versions and every setting;
- `predictions.json`: `{id: answer}` on the eval data; `nbest_predictions.json`: each question's best
  answers with their probabilities and logits; for SQuAD v2.0 eval data `null_odds.json` (each
  question's null score less its best span's), and the no-answer threshold in `keras_qa.json`;
- `training_curves.png`: loss and accuracies against the training step, and the eval answers'
  reliability diagram (score against the share right);
- the score calibration in `keras_qa.json` (`calibration`), fitted on the held-out training
  articles' questions (`calibration_share`), with its figures in `metrics.json`;
- `checkpoint/` while training (`keras_qa.training.resume`); `resume=True` continues from it. It is
  removed when the run ends well.
"""

import dataclasses
import math
import os
import shutil
import time
import warnings

import keras

from keras_qa.checkpoints.loading import load_backbone, load_trained_span_head
from keras_qa.checkpoints.saving import save_trained_model, update_config
from keras_qa.checkpoints.sources import CONFIG_FILE, is_trained_model
from keras_qa.errors import SettingsError
from keras_qa.evaluation.calibrating import answers_calibration, fit_model_calibration
from keras_qa.evaluation.scoring import EpochEvaluation, evaluate_answers, write_details
from keras_qa.files import ensure_writable_directory, write_json_atomically
from keras_qa.models.batching import BucketedBatches
from keras_qa.models.task import QuestionAnsweringModel
from keras_qa.runtime.allocator import keep_freed_memory
from keras_qa.runtime.backend import backend_name, has_accelerator, versions
from keras_qa.runtime.distribution import (
    distribution_scope,
    plan_distribution,
    process_share,
    without_distribution,
    writes_files,
)
from keras_qa.runtime.precision import resolve_precision
from keras_qa.runtime.xla_cpu import fast_bfloat16_products
from keras_qa.training import reports
from keras_qa.training.data import RunData
from keras_qa.training.optimization import make_optimizer
from keras_qa.training.resume import (
    TrainingCheckpoint,
    checkpoint_directory,
    new_state,
    restore,
    state_to_resume,
)
from keras_qa.training.settings import check_settings

# Beyond this many windows x epochs, a CPU-only run warns how long it will take.
LONG_CPU_RUN_WINDOWS = 50_000


def fine_tune(settings, verbose=1, callbacks=()):
    """Train and evaluate as `settings` say; return the metrics dict that `metrics.json` holds.

    Args:
        settings: a `TrainSettings`.
        verbose: 1 for Keras progress bars and a summary, 0 for silence.
        callbacks: more Keras callbacks for `fit` (TensorBoard, early stopping, ...).

    Example:
    >>> from keras_qa import TrainSettings
    >>> settings = TrainSettings(model=tiny_preset, train_data=tiny_data, eval_data=tiny_data,
    ...     max_length=48, doc_stride=16, learning_rate=3e-3, bucket_width=16,
    ...     output_dir=os.path.join(scratch_dir, "run"))
    >>> metrics = fine_tune(settings, verbose=0)
    >>> {"exact_match", "f1"} <= set(metrics["eval"])
    True
    >>> os.path.isfile(os.path.join(scratch_dir, "run", "model.keras"))
    True
    """
    previous_policy = keras.mixed_precision.dtype_policy()
    try:
        return _fine_tune(settings, verbose, list(callbacks))
    finally:
        # The run's precision is a global Keras setting; leave it as it was.
        keras.mixed_precision.set_dtype_policy(previous_policy)


def _fine_tune(settings, verbose, callbacks):
    started = time.perf_counter()
    check_settings(settings)
    keep_freed_memory()
    # First: in a job of several processes it joins the job before any JAX computation.
    distribution = plan_distribution(settings.distribute, settings.batch_size)
    writer = writes_files()
    settings_dict = dataclasses.asdict(settings)
    if writer:
        _prepare_output_dir(settings.output_dir, settings.overwrite)
    saved_state = state_to_resume(settings.output_dir, settings_dict, settings.resume)
    if verbose and distribution["kind"] == "data":
        print(_distribution_line(distribution), flush=True)
    keras.utils.set_random_seed(settings.seed)
    policy = resolve_precision(settings.mixed_precision)
    keras.mixed_precision.set_dtype_policy(policy)
    # Variables take their device layout when they are created: all model work is in the scope;
    # the train and predict steps are traced in it, with the fast products where they apply.
    with distribution_scope(distribution), fast_bfloat16_products(policy, distribution) as fast:
        data, model, state, throughput = _train(
            settings, settings_dict, saved_state, callbacks, verbose
        )
        if writer:
            with without_distribution():
                config = _answering_config(settings)
                save_trained_model(model, data.tokenizer, settings.output_dir, **config)
        metrics = {"backend": backend_name(), "dtype_policy": policy, "distribution": distribution}
        metrics["fast_bfloat16_products"] = fast
        metrics |= {"train_examples": len(data.train_examples), **throughput}
        metrics["distractors"] = data.distractors
        metrics["long_context_windows"] = data.long_context_windows
        metrics |= {"history": state["history"], "step_history": state["steps"]}
        calibration, metrics["calibration"] = _calibrate(model, data, settings, writer)
        if data.eval_examples is not None:
            metrics["eval"] = _evaluate(model, data, settings, verbose, writer, calibration)
    metrics |= {"wall_seconds": time.perf_counter() - started, "settings": settings_dict}
    if writer:
        _write_reports(metrics, state, settings, verbose)
    return metrics


def _train(settings, settings_dict, saved_state, callbacks, verbose):
    """Build the model, train it (from `saved_state` when resuming); return what the report needs."""
    backbone = _load_backbone(settings)
    data = RunData(settings)
    model = QuestionAnsweringModel(backbone)
    load_trained_span_head(model, settings.model)
    batches = _training_batches(settings, data.train_features, model.input_names)
    total_steps = len(batches) * settings.epochs
    model.compile(optimizer=_optimizer(settings, total_steps))
    _warn_if_long_on_cpu(model.backbone, data.train_features, settings)
    state = new_state(settings_dict)
    if saved_state is not None:
        restore(model, settings.output_dir, state, saved_state, len(batches))
    callbacks = _callbacks(callbacks, data, settings, state, total_steps)
    throughput = _fit(model, batches, data.train_features, settings, state, callbacks, verbose)
    _check_converged(state)
    return data, model, state, throughput


def _prepare_output_dir(path, overwrite):
    """Create the output directory, or refuse one that cannot take the run's files, or that holds a
    trained model the run would replace (unless `overwrite`)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise SettingsError(f"--output-dir {path} is a file, not a directory")
    if is_trained_model(path) and not overwrite:
        raise FileExistsError(
            f"--output-dir {path} holds a trained model ({CONFIG_FILE}); choose another "
            "--output-dir, or pass --overwrite to replace it"
        )
    try:
        ensure_writable_directory(path)
    except OSError as error:
        raise SettingsError(f"--output-dir {path} is not writable ({error.strerror})") from error


def _load_backbone(settings):
    """The backbone, refused when its positions are fewer than `max_length`."""
    overrides = {} if settings.dropout is None else {"dropout": settings.dropout}
    backbone = load_backbone(settings.model, **overrides)
    positions = getattr(backbone, "max_sequence_length", None)
    if positions is not None and settings.max_length > positions:
        raise SettingsError(
            f"--max-length {settings.max_length} is longer than the {positions} positions of "
            f"{settings.model!r}; use --max-length {positions} or less"
        )
    return backbone


def _check_converged(state):
    """Refuse to save a model whose training loss went to NaN or infinity."""
    losses = [entry["loss"] for entry in state["history"] if "loss" in entry]
    if losses and not math.isfinite(losses[-1]):
        raise SettingsError(
            f"training diverged: the loss of epoch {len(losses)} is {losses[-1]}; nothing was "
            "saved. Lower --learning-rate (or check the data)."
        )


def _distribution_line(distribution):
    return (
        f"data parallel: {distribution['processes']} process(es), {distribution['devices']} "
        f"devices, {distribution['per_device_batch']} windows per device per step"
    )


def _training_batches(settings, features, input_names, epoch=0, skip=0):
    # Every batch is a full global batch (the last one padded with rows of weight 0), so that it
    # divides over the devices, and one device and several compute the same.
    return BucketedBatches(
        features,
        settings.batch_size,
        settings.bucket_width,
        shuffle=True,
        seed=settings.seed,
        targets=True,
        input_names=input_names,
        epoch=epoch,
        skip=skip,
        pad_to=settings.batch_size,
        share=process_share(),
    )


def _optimizer(settings, total_steps):
    return make_optimizer(
        settings.learning_rate, total_steps, settings.warmup, settings.weight_decay
    )


def _warn_if_long_on_cpu(backbone, features, settings):
    windows = len(features["example_index"])
    if has_accelerator() or windows * settings.epochs <= LONG_CPU_RUN_WINDOWS:
        return
    mean_tokens = float(features["padding_mask"].sum(axis=1).mean())
    hours = estimated_cpu_hours(backbone, windows, settings.epochs, mean_tokens)
    warnings.warn(
        f"Training on the CPU only: {windows:,} windows x {settings.epochs} epoch(s) with a "
        f"{backbone.count_params() / 1e6:.0f}M-parameter model will take roughly {hours:.0f} "
        "hours here. A GPU, the MiniLM backbone or --max-train-examples make it shorter.",
        stacklevel=4,
    )


def _callbacks(callbacks, data, settings, state, total_steps):
    """The caller's callbacks, then the epoch evaluation (if asked) and the checkpoint."""
    checkpoint = TrainingCheckpoint(
        checkpoint_directory(settings.output_dir),
        settings.checkpoint_every,
        state,
        log_every=max(1, total_steps // 100),
        writes=writes_files(),
    )
    callbacks = [*callbacks, checkpoint]
    if data.eval_examples is not None and settings.eval_every_epoch:
        # Before the checkpoint, so that the epoch's scores are in the history it saves.
        evaluation = EpochEvaluation(data.eval_examples, data.eval_features, **_decoding(settings))
        callbacks.insert(0, evaluation)
    return callbacks


def _fit(model, batches, features, settings, state, callbacks, verbose):
    """Train until the last epoch, first finishing an interrupted one; return throughput figures."""

    checkpoint = next(c for c in callbacks if isinstance(c, TrainingCheckpoint))

    def fit_until(dataset, epochs):
        checkpoint.batches = dataset  # it counts the windows of each step
        model.fit(
            dataset.as_fit_input(),
            epochs=epochs,
            initial_epoch=state["epoch"],
            callbacks=[dataset.epoch_callback(), *callbacks],
            verbose=verbose,
            # The batches shuffle themselves from the seed, so that a resumed epoch replays the
            # same order; Keras would otherwise reorder them with its own random state.
            shuffle=False,
        )

    started = time.perf_counter()
    windows = len(features["example_index"])
    trained_windows, fetch_seconds = 0, 0.0
    if state["epoch"] < settings.epochs and state["step_in_epoch"]:
        # Finish the interrupted epoch with the batches it had not reached, in the same order.
        remainder = _training_batches(
            settings, features, model.input_names, state["epoch"], state["step_in_epoch"]
        )
        trained_windows += len(remainder.window_order)
        fit_until(remainder, state["epoch"] + 1)
        fetch_seconds += remainder.fetch_seconds
    if state["epoch"] < settings.epochs:
        batches.start_at(state["epoch"])
        trained_windows += windows * (settings.epochs - state["epoch"])
        fit_until(batches, settings.epochs)
    seconds = time.perf_counter() - started
    fetch_seconds += batches.fetch_seconds
    return {
        "train_windows": windows,
        "train_seconds": seconds,
        "train_windows_per_second": trained_windows / seconds if seconds else None,
        # Features are computed once and kept in memory for every epoch; this is the share of the
        # training time spent cutting batches out of them (the model waits for it on JAX and
        # torch; TensorFlow prefetches it beside the step).
        "data_wait_share": fetch_seconds / seconds if seconds else None,
    }


def _decoding(settings):
    """`evaluate_answers`' options from the settings."""
    return {
        "batch_size": settings.eval_batch_size,
        "bucket_width": settings.bucket_width,
        "n_best": settings.n_best,
        "max_answer_length": settings.max_answer_length,
    }


def _calibrate(model, data, settings, writer):
    """Fit the score calibration on the held-out training questions and save it in
    `keras_qa.json` (if `writer`); `(calibration or None, its figures or None)`."""
    if not data.calibration_examples:
        return None, None
    started = time.perf_counter()
    try:
        calibration, report = fit_model_calibration(
            model,
            data.tokenizer,
            data.calibration_examples,
            settings.max_length,
            settings.answering_doc_stride,
            neighbours=data.neighbour_examples,
            batch_size=settings.eval_batch_size,
            n_best=settings.n_best,
            max_answer_length=settings.max_answer_length,
        )
    except ValueError as error:  # e.g. every held-out answer right: nothing to fit
        warnings.warn(f"the scores stay uncalibrated: {error}", stacklevel=2)
        return None, {"skipped": str(error)}
    if writer:
        update_config(settings.output_dir, calibration=calibration.get_config())
    return calibration, report | calibration.get_config() | {
        "seconds": time.perf_counter() - started
    }


def _evaluate(model, data, settings, verbose, writer, calibration=None):
    """Score the eval data, write (if `writer`) `predictions.json` and `nbest_predictions.json` (and
    for SQuAD v2.0 data `null_odds.json`, and the no-answer threshold into `keras_qa.json`); return
    the scores with their cost and their calibration figures (`answers_calibration`)."""
    started = time.perf_counter()
    features = data.eval_features
    predictions, scores, details = evaluate_answers(
        model,
        data.eval_examples,
        features,
        verbose=verbose,
        null_threshold=settings.null_score_diff_threshold,
        details=True,
        **_decoding(settings),
    )
    seconds = time.perf_counter() - started
    if writer:
        write_json_atomically(os.path.join(settings.output_dir, "predictions.json"), predictions)
        write_details(settings.output_dir, details)
    if writer and "null_score_diff_threshold" in scores:
        threshold = scores["null_score_diff_threshold"]
        update_config(settings.output_dir, null_score_diff_threshold=threshold)
    windows = len(features["example_index"])
    scores["calibration"] = answers_calibration(
        data.eval_examples, predictions, details["log_odds"], calibration
    )
    return scores | {
        "examples": len(data.eval_examples),
        "windows": windows,
        "seconds": seconds,
        "windows_per_second": windows / seconds,
    }


def _answering_config(settings):
    """What answering with the trained model needs besides its weights (`keras_qa.json`)."""
    return {
        "max_length": settings.max_length,
        "doc_stride": settings.answering_doc_stride,
        "n_best": settings.n_best,
        "max_answer_length": settings.max_answer_length,
        "base_model": settings.model,
    }


def _write_reports(metrics, state, settings, verbose):
    """`metrics.json` and the training curves; the checkpoint goes once they are written."""
    metrics["versions"] = versions()
    write_json_atomically(os.path.join(settings.output_dir, "metrics.json"), metrics)
    reliability = metrics.get("eval", {}).get("calibration", {}).get("reliability")
    curves = os.path.join(settings.output_dir, "training_curves.png")
    reports.plot_history(state["steps"], curves, reliability)
    shutil.rmtree(checkpoint_directory(settings.output_dir), ignore_errors=True)
    if verbose:
        print(reports.summary(metrics, settings.output_dir))


def estimated_cpu_hours(backbone, windows, epochs, mean_tokens):
    """A rough CPU training time: about 6 FLOPs per weight per token at ~100 GFLOP/s."""
    embedding = getattr(backbone, "token_embedding", None)
    weights = backbone.count_params() - (embedding.count_params() if embedding else 0)
    return 6 * weights * mean_tokens * windows * epochs / 100e9 / 3600
