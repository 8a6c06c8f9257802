"""What the command lines share: quiet TensorFlow logs, the model flags, the compilation cache,
loading the answerer, and user errors told in one line.

Importing this module first keeps TensorFlow's C++ start-up logs off the terminal (they are set before
Keras or TensorFlow load, and only where the user has not chosen a level).
"""

import contextlib
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_qa.errors import KerasQAError, SettingsError  # noqa: E402
from keras_qa.runtime.compilation_cache import (  # noqa: E402
    COMPILATION_CACHE_VARIABLE,
    NO_CACHE_WORDS,
    default_compilation_cache,
)

# Errors that come from the user's settings, files or data: told in one line, with no traceback.
# (keras_qa.DataFormatError is a KerasQAError.)
USER_ERRORS = (
    KerasQAError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    NotADirectoryError,
    IsADirectoryError,
)
DEBUG_VARIABLE = "KERAS_QA_DEBUG"


def add_debug_argument(parser):
    """--debug: show the traceback of a user error (also `KERAS_QA_DEBUG=1`)."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"),
        help=f"show the full traceback of an error (also {DEBUG_VARIABLE}=1)",
    )


@contextlib.contextmanager
def user_errors(prog, debug=False):
    """Turn a user error into `prog: error: message` on standard error and exit status 2.

    Args:
        prog: the command line's name, as argparse prints it.
        debug: let the error through with its traceback instead.
    """
    try:
        yield
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        print(f"(run with --debug or {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr)
        raise SystemExit(2) from None


def add_compilation_cache_argument(parser):
    """--compilation-cache: where JAX keeps compiled programs between runs
    (`keras_qa.runtime.compilation_cache`)."""
    parser.add_argument(
        "--compilation-cache",
        metavar="DIR|none",
        default=None,
        help="JAX: keep compiled XLA programs in DIR, so that a later run with the same model and "
        "window lengths loads them instead of compiling (default: "
        f"${COMPILATION_CACHE_VARIABLE}, else a folder of ~/.cache/keras_qa for this CPU; none: "
        "off; JAX_COMPILATION_CACHE_DIR, where set, wins)",
    )


def use_compilation_cache(args):
    """Apply `--compilation-cache` (`add_compilation_cache_argument`); return the folder in use."""
    from keras_qa.runtime.compilation_cache import use_compilation_cache

    chosen = args.compilation_cache
    if chosen is not None:
        directory = None if chosen.strip().lower() in NO_CACHE_WORDS else chosen
        try:
            return use_compilation_cache(directory)
        except OSError as error:
            raise SettingsError(f"--compilation-cache {chosen}: {error}") from error
    try:
        return use_compilation_cache(default_compilation_cache())
    except OSError as error:  # the default folder only saves time: run without it
        warnings.warn(f"compiled programs are not kept between runs: {error}", stacklevel=2)
        return None


def add_model_arguments(parser):
    """--model, --batch-size, --dtype, --quantize and --compilation-cache: what every command line over
    `QuestionAnswerer` takes."""
    parser.add_argument(
        "--model",
        required=True,
        help="a directory written by keras_qa.train, or a Hugging Face BERT, DistilBERT, RoBERTa, "
        "XLM-RoBERTa or ALBERT question-answering checkpoint (a local folder, or hf://org/name "
        "online)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="windows per model call")
    parser.add_argument(
        "--dtype",
        default="auto",
        help="compute in this Keras dtype policy (float32, mixed_bfloat16, ...); auto: float32 "
        "on a CPU, the training precision on a GPU",
    )
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        help="int8: answer with an int8 copy of the model on ONNX Runtime (converted once and "
        "cached in $KERAS_QA_CACHE or ~/.cache/keras-qa; needs the int8 extra); the fastest "
        "path on CPUs without bfloat16",
    )
    add_compilation_cache_argument(parser)


def load_answerer(args):
    """The `QuestionAnswerer` that `add_model_arguments`' flags describe."""
    from keras_qa.answering.answerer import QuestionAnswerer

    use_compilation_cache(args)
    return QuestionAnswerer.from_pretrained(
        args.model, batch_size=args.batch_size, dtype=args.dtype, quantize=args.quantize
    )
