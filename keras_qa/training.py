"""Fine-tune a KerasHub encoder for extractive question answering, then evaluate it.

`fine_tune(TrainSettings(...))` runs the whole job: load examples, featurise, build the model, `fit` on
length-bucketed batches with checkpoints, save the model atomically, decode the eval predictions and
score them with the official SQuAD metrics. `python -m keras_qa.train` is a command line over it.

What a run writes to its output directory:
- `model.keras`, `tokenizer/`, `keras_qa.json`: the trained model, its tokenizer and the settings
  inference needs (`keras_qa.load_trained_model` reads them);
- `metrics.json`: EM, F1, loss history, throughput, wall times, versions and every setting;
- `predictions.json`: `{id: answer}` on the eval data;
- `training_curves.png`: loss and accuracies against the training step;
- `checkpoint/` while training: weights and optimizer state every `checkpoint_every` steps and at each
  epoch end, written atomically; `resume=True` continues from it. It is removed when the run ends well.
"""

import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
import warnings

import keras
import numpy as np

import keras_qa
from keras_qa import backbones as backbones_module
from keras_qa.batching import BucketedBatches, predict_logits
from keras_qa.data import BUNDLED_SOURCES, load_examples
from keras_qa.features import prepare_eval_features, prepare_train_features
from keras_qa.metrics import squad_score
from keras_qa.model import QuestionAnsweringModel
from keras_qa.optimization import make_optimizer
from keras_qa.postprocess import decode_answers
from keras_qa.tokenizer import QATokenizer, load_tokenizer

MODEL_FILE = "model.keras"
TOKENIZER_DIR = "tokenizer"
CHECKPOINT_DIR = "checkpoint"
PRECISIONS = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


@dataclasses.dataclass
class TrainSettings:
    """Every setting of a fine-tuning run. The defaults are the offline quickstart recipe.

    The quickstart recipe (all-MiniLM-L6-v2 on the bundled "train" split, scored on "eval"): 384 / 128
    windows, batch 16 bucketed by length, 1 epoch (two would pass 30 minutes on 2 CPU cores with JAX),
    AdamW at 2e-4 peak with weight decay 0.01, 10% linear warm-up then linear decay (run_qa.py's
    schedule; 1e-4 reached only F1 67.0 in one epoch), dropout 0 (on JAX, attention dropout's random
    numbers cost about 40% of a CPU training step; one epoch on 8,792 windows needs no dropout).
    """

    model: str = "minilm"
    train_data: str = "bundled"
    train_split: str | None = None
    eval_data: str | None = "bundled"
    eval_split: str | None = None
    max_length: int = 384
    doc_stride: int = 128
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 2e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    dropout: float | None = 0.0
    mixed_precision: str = "auto"
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    output_dir: str = "runs/quickstart"
    seed: int = 0
    resume: bool = False
    checkpoint_every: int = 200
    bucket_width: int | None = 32
    eval_batch_size: int = 64
    n_best: int = 20
    max_answer_length: int = 30
    eval_every_epoch: bool = False


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
    """The `TrainSettings` of a named recipe, with overrides."""
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    return TrainSettings(**{**RECIPES[recipe], **overrides})


def has_accelerator():
    """Whether the current Keras backend sees a GPU or TPU."""
    backend = keras.backend.backend()
    # Each framework has its own device query; there is no backend-agnostic one in Keras.
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def cpu_has_bfloat16():
    """Whether this CPU advertises bfloat16 arithmetic (AMX or AVX-512 BF16), which oneDNN uses."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = file.read()
    except OSError:  # not Linux: no way to tell, so no bfloat16 by default
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(mixed_precision):
    """The Keras dtype policy name for a `--mixed-precision` choice.

    `auto`, measured with benchmarks/throughput.py (DistilBERT shape, length 384, batch 8, 2 CPU
    cores with AMX, sequences/s in float32 -> mixed_bfloat16): TensorFlow 2.25 -> 4.0 and torch
    2.59 -> 6.23, through oneDNN's bfloat16 kernels, so both train in mixed_bfloat16 on a CPU that
    has bfloat16 instructions (float32 elsewhere: without them bfloat16 is emulated and slower);
    JAX 1.60 -> 1.61, so JAX stays in float32. On a GPU, mixed_float16 with loss scaling, as the
    keras.io example (not measured here: no GPU was lent).
    """
    policy = PRECISIONS.get(mixed_precision, mixed_precision)
    if policy == "mixed_float16" and keras.backend.backend() == "jax" and not has_accelerator():
        raise ValueError(
            "float16 mixed precision does not run on JAX on the CPU (XLA has no float16 matrix "
            "product with float32 accumulation there); use --mixed-precision bfloat16 or off, "
            "or a GPU."
        )
    if policy in PRECISIONS.values():
        return policy
    if mixed_precision != "auto":
        raise ValueError(
            f"mixed_precision must be one of off, float16, bfloat16, auto; got {mixed_precision!r}"
        )
    if has_accelerator():
        return "mixed_float16"
    if keras.backend.backend() in ("tensorflow", "torch") and cpu_has_bfloat16():
        return "mixed_bfloat16"
    return "float32"


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
        raise ValueError(f"No {role} examples in {source!r} (split {split!r}).")
    return examples


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and progress every `every` steps and at each epoch end.

    It also keeps the history: the logs of every epoch, and of every `log_every`-th step.

    Files are written to a temporary name and moved into place, so a crash at any moment leaves the
    previous checkpoint whole.
    """

    def __init__(self, directory, every, state, log_every=10):
        super().__init__()
        self.directory = directory
        self.every = int(every) if every else 0
        self.log_every = max(1, int(log_every))
        self.state = state  # epoch, step_in_epoch, global_step, history, steps; the caller's.

    def on_epoch_begin(self, epoch, logs=None):
        if self.state["epoch"] != epoch:
            self.state.update(epoch=epoch, step_in_epoch=0)

    def on_train_batch_end(self, batch, logs=None):
        # Counted here rather than read from the optimizer: on JAX, touching `self.model` syncs the
        # whole training state back to the variables, which is only worth it when saving.
        self.state["step_in_epoch"] += 1
        self.state["global_step"] += 1
        if self.state["global_step"] % self.log_every == 0:
            # Keras' batch logs are running means over the epoch so far.
            self.state["steps"].append(
                {key: float(value) for key, value in (logs or {}).items()}
                | {"step": self.state["global_step"], "epoch": self.state["epoch"] + 1}
            )
        if self.every and self.state["global_step"] % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.state["history"].append(
            {key: float(value) for key, value in (logs or {}).items()} | {"epoch": epoch + 1}
        )
        self.state.update(epoch=epoch + 1, step_in_epoch=0)
        self.save()

    def save(self):
        os.makedirs(self.directory, exist_ok=True)
        weights = os.path.join(self.directory, "state.weights.h5")
        temporary = os.path.join(self.directory, "state.partial.weights.h5")
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, weights)
        write_json_atomically(os.path.join(self.directory, "state.json"), self.state)


def write_json_atomically(path, content):
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(
        "w", dir=directory, suffix=".partial", delete=False, encoding="utf-8"
    ) as file:
        json.dump(content, file, indent=2, default=_json_default)
        temporary = file.name
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def estimated_cpu_hours(backbone, windows, epochs, mean_tokens):
    """A rough CPU training time: about 6 FLOPs per weight per token at ~100 GFLOP/s here."""
    embedding = getattr(backbone, "token_embedding", None)
    weights = backbone.count_params() - (embedding.count_params() if embedding else 0)
    return 6 * weights * mean_tokens * windows * epochs / 100e9 / 3600


def fine_tune(settings, verbose=1, callbacks=()):
    """Train and evaluate as `settings` say; return the metrics dict that `metrics.json` holds.

    Args:
        settings: a `TrainSettings`.
        verbose: 1 for Keras progress bars and a summary, 0 for silence.
        callbacks: more Keras callbacks for `fit` (TensorBoard, early stopping, ...).

    Example:
    >>> metrics = fine_tune(TrainSettings(max_train_examples=64, epochs=1))  # doctest: +SKIP
    >>> metrics["eval"]["f1"]  # doctest: +SKIP
    """
    previous_policy = keras.mixed_precision.dtype_policy()
    try:
        return _fine_tune(settings, verbose, callbacks)
    finally:
        # The run's precision is a global Keras setting; leave it as the caller had it.
        keras.mixed_precision.set_dtype_policy(previous_policy)


def _fine_tune(settings, verbose, callbacks):
    started = time.perf_counter()
    settings = dataclasses.replace(settings)
    output_dir = settings.output_dir
    checkpoint_dir = os.path.join(output_dir, CHECKPOINT_DIR)
    state_path = os.path.join(checkpoint_dir, "state.json")
    resume_state = None
    if settings.resume:
        if not os.path.isfile(state_path):
            raise FileNotFoundError(
                f"--resume: no checkpoint in {checkpoint_dir} (looked for {state_path})."
            )
        with open(state_path, encoding="utf-8") as file:
            resume_state = json.load(file)
        saved = resume_state["settings"]
        differing = {
            key: (saved.get(key), value)
            for key, value in dataclasses.asdict(settings).items()
            if key not in ("resume", "output_dir") and saved.get(key) != value
        }
        if differing:
            raise ValueError(
                f"--resume: these settings differ from the checkpoint's in {checkpoint_dir}: "
                + ", ".join(f"{k} (checkpoint {a!r}, now {b!r})" for k, (a, b) in differing.items())
            )
    elif os.path.isfile(state_path):
        raise FileExistsError(
            f"{output_dir} holds an unfinished run's checkpoint; pass --resume to continue it, or "
            "choose another --output-dir."
        )
    os.makedirs(output_dir, exist_ok=True)

    keras.utils.set_random_seed(settings.seed)
    policy = resolve_precision(settings.mixed_precision)
    keras.mixed_precision.set_dtype_policy(policy)

    # Examples and features.
    train_examples = load_split(
        settings.train_data, settings.train_split, "train", settings.max_train_examples
    )
    eval_examples = None
    if settings.eval_data:
        eval_examples = load_split(
            settings.eval_data, settings.eval_split, "eval", settings.max_eval_examples
        )
    tokenizer = load_tokenizer(settings.model)
    train_features = prepare_train_features(
        train_examples, tokenizer, settings.max_length, settings.doc_stride
    )

    # Model.
    overrides = {} if settings.dropout is None else {"dropout": settings.dropout}
    backbone = backbones_module.load_backbone(settings.model, **overrides)
    model = QuestionAnsweringModel(backbone)

    def training_batches(epoch=0, skip=0):
        return BucketedBatches(
            train_features,
            settings.batch_size,
            settings.bucket_width,
            shuffle=True,
            seed=settings.seed,
            targets=True,
            input_names=model.input_names,
            epoch=epoch,
            skip=skip,
        )

    batches = training_batches()
    batches_per_epoch = len(batches)
    total_steps = batches_per_epoch * settings.epochs
    model.compile(
        optimizer=make_optimizer(
            settings.learning_rate, total_steps, settings.warmup, settings.weight_decay
        )
    )
    windows = len(train_features["example_index"])
    mean_tokens = float(train_features["padding_mask"].sum(axis=1).mean())
    if not has_accelerator() and windows * settings.epochs > 50_000:
        hours = estimated_cpu_hours(backbone, windows, settings.epochs, mean_tokens)
        warnings.warn(
            f"Training on the CPU only: {windows:,} windows x {settings.epochs} epoch(s) with a "
            f"{backbone.count_params() / 1e6:.0f}M-parameter model will take roughly {hours:.0f} "
            "hours here. A GPU, the MiniLM backbone or --max-train-examples make it shorter.",
            stacklevel=2,
        )

    state = {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "history": [],
        "steps": [],
        "settings": dataclasses.asdict(settings),
    }
    if resume_state is not None:
        model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(checkpoint_dir, "state.weights.h5"))
        state.update(
            epoch=resume_state["epoch"],
            step_in_epoch=resume_state["step_in_epoch"],
            global_step=resume_state["global_step"],
            history=resume_state["history"],
            steps=resume_state["steps"],
        )
    checkpoint = TrainingCheckpoint(
        checkpoint_dir, settings.checkpoint_every, state, log_every=max(1, total_steps // 100)
    )
    callbacks = [*callbacks, checkpoint]
    eval_features = None
    if eval_examples is not None and settings.eval_every_epoch:
        eval_features = prepare_eval_features(
            eval_examples, tokenizer, settings.max_length, settings.doc_stride
        )
        # Before the checkpoint, so that the epoch's scores are in the history it saves.
        callbacks.insert(0, EpochEvaluation(eval_examples, eval_features, settings))

    def fit_until(dataset, epochs):
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

    train_started = time.perf_counter()
    trained_windows = 0
    fetch_seconds = 0.0
    if state["epoch"] < settings.epochs and state["step_in_epoch"]:
        # Finish the interrupted epoch with the batches it had not reached, in the same order.
        remainder = training_batches(state["epoch"], state["step_in_epoch"])
        trained_windows += len(remainder.window_order)
        fit_until(remainder, state["epoch"] + 1)
        fetch_seconds += remainder.fetch_seconds
    if state["epoch"] < settings.epochs:
        batches.start_at(state["epoch"])
        trained_windows += windows * (settings.epochs - state["epoch"])
        fit_until(batches, settings.epochs)
    train_seconds = time.perf_counter() - train_started
    fetch_seconds += batches.fetch_seconds

    save_trained_model(model, tokenizer, settings, output_dir)

    metrics = {
        "backend": keras.backend.backend(),
        "dtype_policy": policy,
        "train_examples": len(train_examples),
        "train_windows": windows,
        "train_seconds": train_seconds,
        "train_windows_per_second": trained_windows / train_seconds if train_seconds else None,
        # Features are computed once and kept in memory for every epoch; this is the share of the
        # training time spent cutting batches out of them (the model waits for it on JAX and torch;
        # TensorFlow prefetches it beside the step).
        "data_wait_share": fetch_seconds / train_seconds if train_seconds else None,
        "history": state["history"],
        "step_history": state["steps"],
    }
    if eval_examples is not None:
        eval_started = time.perf_counter()
        if eval_features is None:
            eval_features = prepare_eval_features(
                eval_examples, tokenizer, settings.max_length, settings.doc_stride
            )
        predictions, scores = evaluate_answers(
            model, eval_examples, eval_features, settings, verbose
        )
        eval_seconds = time.perf_counter() - eval_started
        metrics["eval"] = scores | {
            "examples": len(eval_examples),
            "windows": len(eval_features["example_index"]),
            "seconds": eval_seconds,
            "windows_per_second": len(eval_features["example_index"]) / eval_seconds,
        }
        write_json_atomically(os.path.join(output_dir, "predictions.json"), predictions)
    metrics["wall_seconds"] = time.perf_counter() - started
    metrics["settings"] = dataclasses.asdict(settings)
    metrics["versions"] = _versions()
    write_json_atomically(os.path.join(output_dir, "metrics.json"), metrics)
    _plot_history(state["steps"], os.path.join(output_dir, "training_curves.png"))
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    if verbose:
        _print_summary(metrics, output_dir)
    return metrics


def evaluate_answers(model, examples, features, settings, verbose=0):
    """Predict, decode and score: `(predictions, scores)` with the official SQuAD metrics."""
    start_logits, end_logits = predict_logits(
        model, features, settings.eval_batch_size, settings.bucket_width, verbose=verbose
    )
    version = 2 if any(not e["answers"]["text"] for e in examples) else 1
    predictions = decode_answers(
        examples,
        features,
        start_logits,
        end_logits,
        n_best=settings.n_best,
        max_answer_length=settings.max_answer_length,
        # Data with unanswerable questions is scored as SQuAD v2.0, with the null score.
        null_threshold=0.0 if version == 2 else None,
    )
    scores = squad_score(predictions, examples, version=version)
    return predictions, scores | {"squad_version": version}


class EpochEvaluation(keras.callbacks.Callback):
    """Scores the eval data at the end of every epoch and adds EM / F1 to the epoch's logs."""

    def __init__(self, examples, features, settings):
        super().__init__()
        self.examples, self.features, self.settings = examples, features, settings

    def on_epoch_end(self, epoch, logs=None):
        _, scores = evaluate_answers(self.model, self.examples, self.features, self.settings)
        if logs is not None:
            logs["eval_f1"] = scores["f1"]
            logs["eval_exact"] = scores.get("exact_match", scores.get("exact"))
        print(f"\nepoch {epoch + 1}: eval F1 {scores['f1']:.2f}", flush=True)


def save_trained_model(model, tokenizer, settings, output_dir):
    """Write `model.keras`, `tokenizer/` and `keras_qa.json`, each moved into place whole."""
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".saving-") as staging:
        # An uncompiled copy: Keras 3 saves a compiled model's optimizer state too, which would
        # triple the file for no use at inference.
        inference_model = QuestionAnsweringModel.from_config(model.get_config())
        inference_model.set_weights(model.get_weights())
        inference_model.save(os.path.join(staging, MODEL_FILE))
        tokenizer.save(os.path.join(staging, TOKENIZER_DIR))
        inference = {
            "max_length": settings.max_length,
            "doc_stride": settings.doc_stride,
            "n_best": settings.n_best,
            "max_answer_length": settings.max_answer_length,
            "base_model": settings.model,
            "keras_qa_version": keras_qa.__version__,
        }
        with open(os.path.join(staging, backbones_module.TRAINED_MODEL_MARKER), "w") as file:
            json.dump(inference, file, indent=2)
        final_tokenizer = os.path.join(output_dir, TOKENIZER_DIR)
        if os.path.isdir(final_tokenizer):
            shutil.rmtree(final_tokenizer)
        os.replace(os.path.join(staging, TOKENIZER_DIR), final_tokenizer)
        os.replace(os.path.join(staging, MODEL_FILE), os.path.join(output_dir, MODEL_FILE))
        # The marker last: a folder counts as a trained model only once everything is in place.
        os.replace(
            os.path.join(staging, backbones_module.TRAINED_MODEL_MARKER),
            os.path.join(output_dir, backbones_module.TRAINED_MODEL_MARKER),
        )


def load_trained_model(directory):
    """Load what `fine_tune` saved: `(model, tokenizer, inference settings)`, with no network.

    Example:
    >>> model, tokenizer, config = load_trained_model("runs/quickstart")  # doctest: +SKIP
    """
    marker = os.path.join(directory, backbones_module.TRAINED_MODEL_MARKER)
    if not os.path.isfile(marker):
        raise FileNotFoundError(
            f"{directory}: not a trained keras-qa model (no {backbones_module.TRAINED_MODEL_MARKER}); "
            "train one with `python -m keras_qa.train --output-dir DIR`."
        )
    with open(marker, encoding="utf-8") as file:
        config = json.load(file)
    model = keras.saving.load_model(os.path.join(directory, MODEL_FILE), compile=False)
    tokenizer = QATokenizer.load(os.path.join(directory, TOKENIZER_DIR))
    return model, tokenizer, config


def _versions():
    import keras_hub

    versions = {
        "keras_qa": keras_qa.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    backend = keras.backend.backend()
    module = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}.get(backend)
    if module:
        versions[module] = __import__(module).__version__
    return versions


def _plot_history(steps, path):
    """Loss and accuracies against the training step (running means within each epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    x = [entry["step"] for entry in steps]
    for axis, keys in (
        (loss_axis, ("loss", "start_logits_loss", "end_logits_loss")),
        (accuracy_axis, ("exact_span_accuracy", "start_logits_accuracy", "end_logits_accuracy")),
    ):
        for key in keys:
            if steps and key in steps[0]:
                axis.plot(x, [entry[key] for entry in steps], label=key)
        if axis.lines:
            axis.legend()
    epoch_starts = [b["step"] for a, b in zip(steps, steps[1:]) if b["epoch"] != a["epoch"]]
    for axis in (loss_axis, accuracy_axis):
        for step in epoch_starts:
            axis.axvline(step, color="grey", linewidth=0.8, linestyle=":")
    loss_axis.set(title="training loss (running mean in each epoch)", xlabel="step")
    accuracy_axis.set(title="training accuracy (running mean in each epoch)", xlabel="step")
    figure.tight_layout()
    temporary = path + ".partial.png"
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def _print_summary(metrics, output_dir):
    lines = [
        f"backend {metrics['backend']}, {metrics['dtype_policy']}: trained on "
        f"{metrics['train_windows']:,} windows in {metrics['train_seconds']:.0f} s "
        f"({metrics['train_windows_per_second']:.1f} windows/s; "
        f"{100 * metrics['data_wait_share']:.2f}% of it waiting for batches)"
    ]
    if "eval" in metrics:
        scores = metrics["eval"]
        if scores["squad_version"] == 1:
            lines.append(
                f"eval: EM {scores['exact_match']:.2f}  F1 {scores['f1']:.2f} on "
                f"{scores['examples']:,} questions ({scores['seconds']:.0f} s)"
            )
        else:
            lines.append(
                f"eval (SQuAD v2.0): exact {scores['exact']:.2f}  F1 {scores['f1']:.2f} on "
                f"{scores['examples']:,} questions"
            )
    lines.append(f"wall time {metrics['wall_seconds']:.0f} s; outputs in {output_dir}")
    print("\n".join(lines))
