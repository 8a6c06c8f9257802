"""Every setting of a fine-tuning run (`TrainSettings`), the named recipes, and the checks that refuse
settings that cannot work before any work starts."""

import dataclasses
import math

from keras_qa.errors import SettingsError
from keras_qa.models.batching import BUCKET_WIDTH
from keras_qa.runtime.distribution import DISTRIBUTE_CHOICES
from keras_qa.runtime.precision import PRECISIONS
from keras_qa.text.features import largest_doc_stride


def setting(default, help, **flag):
    """A `TrainSettings` field: its default, the help of its command-line flag, and flag options
    (`choices`; `none`: the words that mean None on the command line)."""
    return dataclasses.field(default=default, metadata={"help": help, **flag})


@dataclasses.dataclass
class TrainSettings:
    """Every setting of a fine-tuning run. The defaults are the offline quickstart recipe.

    The quickstart fine-tunes all-MiniLM-L6-v2 on the bundled "train" split and scores the bundled
    "eval" split: 384 / 128 training windows (answering windows share 192 tokens), batch 16 bucketed
    by length, one epoch, AdamW at 2e-4 peak with weight decay 0.01 on run_qa.py's schedule (10%
    linear warm-up, then linear decay), dropout 0.
    docs/training.md explains each value. Each field's help is the help of its `python -m
    keras_qa.train` flag.

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
    doc_stride: int = setting(128, "context tokens shared by consecutive training windows")
    answer_doc_stride: int | None = setting(
        None,
        "context tokens shared by consecutive windows when the trained model answers (saved in "
        "keras_qa.json as its answering default; evaluation and the score calibration use it too): "
        "the more they share, the further from a window's edge each answer of a long context is "
        "read, for more windows; none: half as much again as --doc-stride, within what "
        "--max-length leaves",
    )
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
    overwrite: bool = setting(
        False,
        "replace the trained model already in --output-dir (without it, a folder that holds one "
        "is refused)",
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
        'SQuAD v2.0 eval data: answer "" when the null score beats the best span\'s by more than '
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
    distractor_share: float = setting(
        0.25,
        "join this share of the training paragraphs with the paragraph of their article that shares "
        "most of the question's words and does not hold its answer (before or after it at random): "
        "they teach the model to find the right paragraph in a long document (0: paragraphs only, "
        "the recipe before distractors)",
    )
    calibration_share: float = setting(
        0.03,
        "hold out whole articles holding this share of the training questions (at least one "
        "article, about 1,000 questions at most) and fit the answers' score calibration on them "
        "after training, saved in keras_qa.json (0: none; the scores stay uncalibrated)",
    )

    @property
    def answering_doc_stride(self):
        """`answer_doc_stride`, or where it is None half as much again as `doc_stride`, within
        what `max_length` leaves. Over long contexts a model trained on paragraphs reads an answer
        better away from its window's edges (docs/training.md, "Window overlap").

        Example:
        >>> TrainSettings().answering_doc_stride, TrainSettings(answer_doc_stride=64).answering_doc_stride
        (192, 64)
        """
        if self.answer_doc_stride is not None:
            return self.answer_doc_stride
        return min(self.doc_stride * 3 // 2, largest_doc_stride(self.max_length))


RECIPES = {
    "quickstart": {},
    # The keras.io example: DistilBERT cased, SQuAD v1.1, Adam 5e-5, batch 32, 1 epoch, 384 / 128,
    # mixed_float16 on a GPU.
    "keras-io": {
        "model": "distil_bert_base_en",
        "train_data": "squad",
        "eval_data": "squad",
        "answer_doc_stride": 128,
        "epochs": 1,
        "batch_size": 32,
        "learning_rate": 5e-5,
        "warmup": 0.0,
        "weight_decay": 0.0,
        "dropout": None,
        "mixed_precision": "auto",
        "distractor_share": 0.0,
        "calibration_share": 0.0,
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
    # Strides are compared with --max-length only once every setting is a valid number.
    largest = None if problems else largest_doc_stride(settings.max_length)
    for flag, stride in (
        ("--doc-stride", settings.doc_stride),
        ("--answer-doc-stride", settings.answer_doc_stride),
    ):
        if largest is not None and stride is not None and stride > largest:
            problems.append(
                f"{flag} ({stride}) must leave room in --max-length ({settings.max_length}) for "
                f"the question and 3 special tokens: at most {largest}"
            )
    if problems:
        raise SettingsError("; ".join(problems))


# The smallest value of each numeric setting (None where None is also allowed).
_MINIMUM = {
    "max_length": 16,
    "doc_stride": 0,
    "answer_doc_stride": 0,
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
    "calibration_share": (0.0, 0.5),
    "distractor_share": (0.0, 1.0),
}
# Those of them whose highest value is allowed too: [lowest, highest].
_HIGHEST_ALLOWED = {"distractor_share"}


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
        closed = field.name in _HIGHEST_ALLOWED
        if (
            not _is_number(value)
            or not low <= value
            or not (value <= high if closed else value < high)
        ):
            bracket = "]" if closed else ")"
            return f"{flag} must be a number in [{low:g}, {high:g}{bracket}, not {value!r}"
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
