"""What the command lines share: quiet TensorFlow logs, the model flags and loading the answerer.

Importing this module first keeps TensorFlow's C++ start-up logs off the terminal (they are set before
Keras or TensorFlow load, and only where the user has not chosen a level).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def add_model_arguments(parser):
    """--model, --batch-size and --dtype: what every command line over `QuestionAnswerer` takes."""
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per model call")
    parser.add_argument(
        "--dtype",
        default="auto",
        help="compute in this Keras dtype policy (float32, mixed_bfloat16, ...); auto: float32 "
        "on a CPU, the training precision on a GPU",
    )


def load_answerer(args):
    """The `QuestionAnswerer` that `add_model_arguments`' flags describe."""
    from keras_qa.pipeline import QuestionAnswerer

    return QuestionAnswerer.from_pretrained(
        args.model, batch_size=args.batch_size, dtype=args.dtype
    )
