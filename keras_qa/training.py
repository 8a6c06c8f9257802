"""Fine-tune a KerasHub encoder for extractive question answering, then evaluate it.

`fine_tune(TrainSettings(...))` runs the whole job: load examples, featurise, build the model, `fit` on
length-bucketed batches with checkpoints, save the model, decode the eval predictions and score them
with the official SQuAD metrics. `python -m keras_qa.train` is a command line over it, its flags made
from `TrainSettings`' fields.

What a run writes to its output directory:
- `model.keras`, `tokenizer/`, `keras_qa.json`: the trained model (`keras_qa.saving`);
- `metrics.json`: EM, F1, loss history, throughput, wall times, versions and every setting;
- `predictions.json`: `{id: answer}` on the eval data; `nbest_predictions.json`: each question's best
  answers with their probabilities and logits; for SQuAD v2.0 eval data `null_odds.json` (each
  question's null score less its best span's), and the no-answer threshold in `keras_qa.json`;
- `training_curves.png`: loss and accuracies against the training step;
- `checkpoint/` while training (`keras_qa.checkpoints`); `resume=True` continues from it. It is
  removed when the run ends well.
"""

import dataclasses
import functools
import math
import os
import shutil
import time
import warnings

import keras

from keras_qa import huggingface, reports
from keras_qa.backbones import load_backbone
from keras_qa.batching import BUCKET_WIDTH, BucketedBatches
from keras_qa.checkpoints import (
    TrainingCheckpoint,
    checkpoint_directory,
    new_state,
    restore,
    state_to_resume,
)
from keras_qa.data import BUNDLED_SOURCES, load_examples, with_neighbouring_contexts
from keras_qa.errors import SettingsError
from keras_qa.evaluation import EpochEvaluation, evaluate_answers, write_details
from keras_qa.features import (
    concatenate_features,
    largest_doc_stride,
    long_context_windows,
    prepare_eval_features,
    prepare_train_features,
)
from keras_qa.files import ensure_writable_directory, write_json_atomically
from keras_qa.model import QuestionAnsweringModel
from keras_qa.optimization import make_optimizer
from keras_qa.runtime import (
    DISTRIBUTE_CHOICES,
    PRECISIONS,
    backend_name,
    distribution_scope,
    estimated_cpu_hours,
    fast_bfloat16_products,
    has_accelerator,
    keep_freed_memory,
    plan_distribution,
    process_share,
    resolve_precision,
    versions,
    without_distribution,
    writes_files,
)
from keras_qa.saving import save_trained_model, update_config
from keras_qa.sources import download_hugging_face_files, resolve_model_source
from keras_qa.tokenizer import load_tokenizer

# Beyond this many windows x epochs, a CPU-only run warns how long it will take.
LONG_CPU_RUN_WINDOWS = 50_000


def setting(default, help, **flag):
    """A `TrainSettings` field: its default, the help of its command-line flag, and flag options
    (`choices`; `none`: the words that mean None on the command line)."""
    return dataclasses.field(default=default, metadata={"help": help, **flag})


@dataclasses.dataclass
class TrainSettings:
    """Every setting of a fine-tuning run. The defaults are the offline quickstart recipe.

    The quickstart fine-tunes all-MiniLM-L6-v2 on the bundled "train" split and scores the bundled
    "eval" split: 384 / 128 windows, batch 16 bucketed by length, one epoch, AdamW at 2e-4 peak with
    weight decay 0.01 on run_qa.py's schedule (10% linear warm-up, then linear decay), dropout 0. The
    README explains each value. Each field's help is the help of its `python -m keras_qa.train` flag.

    Example:
    >>> TrainSettings(epochs=2).batch_size
    16
    """

    model: str = setting(
        "minilm",
        "model source: minilm, a KerasHub preset name, hf://org/name, a local Hugging Face or "
        "KerasHub folder",
    )
    train_data: str = setting(
        "bundled",
        "any load_examples source: bundled, a .json/.json.gz/.jsonl/.parquet file, or a Hugging "
        "Face dataset name",
    )
    train_split: str | None = setting(
        None, "split of --train-data (default: bundled: train; hub datasets: train)"
    )
    eval_data: str | None = setting(
        "bundled", "any load_examples source, or none to skip evaluation"
    )
    eval_split: str | None = setting(
        None, "split of --eval-data (default: bundled: eval; hub datasets: validation)"
    )
    max_length: int = setting(384, "tokens per window, special tokens included")
    doc_stride: int = setting(128, "context tokens shared by consecutive windows")
    epochs: int = setting(1, "passes over the training data")
    batch_size: int = setting(16, "windows per training step")
    learning_rate: float = setting(2e-4, "peak learning rate")
    warmup: float = setting(0.1, "share of the steps spent in linear warm-up")
    weight_decay: float = setting(0.01, "AdamW weight decay; 0 means Adam")
    dropout: float | None = setting(
        0.0, "backbone dropout, or 'checkpoint' to keep the checkpoint's", none=("checkpoint",)
    )
    distribute: str = setting(
        "auto",
        "data: data parallel over every device (JAX keras.distribution, TensorFlow "
        "MirroredStrategy; --batch-size is the global batch and must divide by the device count); "
        "auto: data parallel over all accelerators when there are two or more, and over every "
        "process's devices in a JAX job (the KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and "
        "_PROCESS_ID variables); none: one device",
        choices=DISTRIBUTE_CHOICES,
    )
    mixed_precision: str = setting(
        "auto",
        "auto: mixed_float16 on a GPU; mixed_bfloat16 on a CPU with bfloat16 instructions (on "
        "JAX with its products moved to XLA's fast bfloat16 path); float32 otherwise",
        choices=("off", "float16", "bfloat16", "auto"),
    )
    max_train_examples: int | None = setting(
        None, "use only the first N training questions (none or all: every one)", none=("all",)
    )
    max_eval_examples: int | None = setting(
        None, "use only the first N eval questions (none or all: every one)", none=("all",)
    )
    output_dir: str = setting("runs/quickstart", "where the model and reports go")
    seed: int = setting(0, "seed of the head's initialisation and of the batch order")
    resume: bool = setting(
        False, "continue the unfinished run in --output-dir from its last checkpoint"
    )
    checkpoint_every: int = setting(200, "also checkpoint every N steps (0: epoch ends only)")
    bucket_width: int | None = setting(
        BUCKET_WIDTH, "pad batches to multiples of this many tokens; none pads to --max-length"
    )
    eval_batch_size: int = setting(64, "windows per prediction batch in evaluation")
    n_best: int = setting(
        20,
        "start and end candidates per window when decoding answers, and the answers per question "
        "in nbest_predictions.json",
        aliases=("--n-best-size",),
    )
    max_answer_length: int = setting(30, "the longest answer, in tokens")
    null_score_diff_threshold: float | None = setting(
        None,
        "SQuAD v2.0 eval data: answer \"\" when the null score beats the best span's by more than "
        "this; none: the threshold of the best eval F1 (saved with the model for answering)",
    )
    eval_every_epoch: bool = setting(
        False, "also score the eval data after every epoch (adds eval_f1 to the history)"
    )
    long_context_share: float = setting(
        0.0,
        "add this many windows per training window (0.3: 3 in 10 more) from long contexts (each "
        "question's context among its neighbours, as the *-long splits), in pairs of one "
        "question: a window that holds its answer and one that holds neither the answer nor its "
        "text (labelled [CLS]): they teach windows to say 'not here'",
    )


RECIPES = {
    "quickstart": {},
    # The keras.io example: DistilBERT cased, SQuAD v1.1, Adam 5e-5, batch 32, 1 epoch, 384 / 128,
    # mixed_float16 on a GPU.
    "keras-io": {
        "model": "distil_bert_base_en",
        "train_data": "squad",
        "eval_data": "squad",
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 5e-5,
        "warmup": 0.0,
        "weight_decay": 0.0,
        "dropout": None,
        "mixed_precision": "auto",
    },
}


def recipe_settings(recipe="quickstart", **overrides):
    """The `TrainSettings` of a named recipe, with overrides.

    Example:
    >>> recipe_settings("keras-io", epochs=2).learning_rate
    5e-05
    """
    if recipe not in RECIPES:
        raise SettingsError(f"Unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    return TrainSettings(**{**RECIPES[recipe], **overrides})


def check_settings(settings):
    """Refuse settings that cannot work, before any work starts, naming every problem.

    Raises:
        SettingsError: one line per problem, joined; the `python -m keras_qa.train` flag named.

    Example:
    >>> check_settings(TrainSettings(epochs=0, learning_rate=float("nan")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keras_qa.errors.SettingsError: --epochs must be an integer >= 1, not 0; --learning-rate must ...
    """
    problems = [
        problem
        for field in dataclasses.fields(settings)
        if (problem := _setting_problem(field, getattr(settings, field.name)))
    ]
    if not problems and settings.doc_stride > largest_doc_stride(settings.max_length):
        problems.append(
            f"--doc-stride ({settings.doc_stride}) must leave room in --max-length "
            f"({settings.max_length}) for the question and 3 special tokens: at most "
            f"{largest_doc_stride(settings.max_length)}"
        )
    if problems:
        raise SettingsError("; ".join(problems))


# The smallest value of each numeric setting (None where None is also allowed).
_MINIMUM = {
    "max_length": 16,
    "doc_stride": 0,
    "epochs": 1,
    "batch_size": 1,
    "max_train_examples": 1,
    "max_eval_examples": 1,
    "seed": 0,
    "checkpoint_every": 0,
    "bucket_width": 1,
    "eval_batch_size": 1,
    "n_best": 1,
    "max_answer_length": 1,
}
# Settings that are shares or rates: [lowest, highest).
_RANGES = {
    "warmup": (0.0, 1.0),
    "weight_decay": (0.0, math.inf),
    "dropout": (0.0, 1.0),
    "long_context_share": (0.0, math.inf),
}


def _setting_problem(field, value):
    """What is wrong with one setting's value, or None."""
    flag = "--" + field.name.replace("_", "-")
    if value is None and "| None" in str(field.type):
        return None
    if field.name in _MINIMUM:
        if isinstance(value, bool) or not isinstance(value, int) or value < _MINIMUM[field.name]:
            return f"{flag} must be an integer >= {_MINIMUM[field.name]}, not {value!r}"
    elif field.name == "learning_rate":
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            return f"{flag} must be a finite number > 0, not {value!r}"
    elif field.name in _RANGES:
        low, high = _RANGES[field.name]
        if not _is_number(value) or not low <= value < high:
            return f"{flag} must be a number in [{low:g}, {high:g}), not {value!r}"
    elif field.name == "distribute" and value not in DISTRIBUTE_CHOICES:
        return f"{flag} must be one of {', '.join(DISTRIBUTE_CHOICES)}; not {value!r}"
    elif field.name == "mixed_precision":
        if value != "auto" and value not in PRECISIONS and value not in PRECISIONS.values():
            return f"{flag} must be one of off, float16, bfloat16, auto; not {value!r}"
    elif field.type is str and (not isinstance(value, str) or not value):
        return f"{flag} must be a non-empty string, not {value!r}"
    return None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fine_tune(settings, verbose=1, callbacks=()):
    """Train and evaluate as `settings` say; return the metrics dict that `metrics.json` holds.

    Args:
        settings: a `TrainSettings`.
        verbose: 1 for Keras progress bars and a summary, 0 for silence.
        callbacks: more Keras callbacks for `fit` (TensorBoard, early stopping, ...).

    Example:
    >>> settings = TrainSettings(model=tiny_preset, train_data=tiny_data, eval_data=tiny_data,
    ...     max_length=48, doc_stride=16, learning_rate=3e-3, bucket_width=16,
    ...     output_dir=os.path.join(scratch_dir, "run"))
    >>> metrics = fine_tune(settings, verbose=0)
    >>> sorted(metrics["eval"])[:3], os.path.isfile(os.path.join(scratch_dir, "run", "model.keras"))
    (['exact_match', 'examples', 'f1'], True)
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
        _prepare_output_dir(settings.output_dir)
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
        metrics["long_context_windows"] = data.long_context_windows
        metrics |= {"history": state["history"], "step_history": state["steps"]}
        if data.eval_examples is not None:
            metrics["eval"] = _evaluate(model, data, settings, verbose, writer)
    metrics |= {"wall_seconds": time.perf_counter() - started, "settings": settings_dict}
    if writer:
        _write_reports(metrics, state, settings, verbose)
    return metrics


def _train(settings, settings_dict, saved_state, callbacks, verbose):
    """Build the model, train it (from `saved_state` when resuming); return what the report needs."""
    backbone = _load_backbone(settings)
    data = _Data(settings)
    model = QuestionAnsweringModel(backbone)
    _start_from_a_trained_head(model, settings.model)
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


class _Data:
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


def _prepare_output_dir(path):
    """Create the output directory, or refuse one that cannot take the run's files."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise SettingsError(f"--output-dir {path} is a file, not a directory")
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


def _start_from_a_trained_head(model, source):
    """Start from the span head of a Hugging Face question-answering checkpoint, where it has one."""
    source = resolve_model_source(source)
    folder = source.location
    if source.kind == "hf_hub":  # already downloaded with the backbone
        folder = download_hugging_face_files(source.location, huggingface.MODEL_FILES)
    elif source.kind != "huggingface_folder":
        return
    if huggingface.has_span_head(folder):
        huggingface.check_question_answering_type(folder)
        huggingface.load_span_head(model, folder)


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


def _evaluate(model, data, settings, verbose, writer):
    """Score the eval data, write (if `writer`) `predictions.json` and `nbest_predictions.json` (and
    for SQuAD v2.0 data `null_odds.json`, and the no-answer threshold into `keras_qa.json`); return
    the scores with their cost."""
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
        "doc_stride": settings.doc_stride,
        "n_best": settings.n_best,
        "max_answer_length": settings.max_answer_length,
        "base_model": settings.model,
    }


def _write_reports(metrics, state, settings, verbose):
    """`metrics.json` and the training curves; the checkpoint goes once they are written."""
    metrics["versions"] = versions()
    write_json_atomically(os.path.join(settings.output_dir, "metrics.json"), metrics)
    reports.plot_history(state["steps"], os.path.join(settings.output_dir, "training_curves.png"))
    shutil.rmtree(checkpoint_directory(settings.output_dir), ignore_errors=True)
    if verbose:
        print(reports.summary(metrics, settings.output_dir))
