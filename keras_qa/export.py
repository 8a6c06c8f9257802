"""Export a trained model: a TensorFlow SavedModel, ONNX, or a Hugging Face transformers checkpoint.

    python -m keras_qa.export --model runs/quickstart --format tf_saved_model [--output DIR]
    python -m keras_qa.export --model runs/quickstart --format onnx [--output model.onnx]
    python -m keras_qa.export --model runs/quickstart --format huggingface [--output DIR]

`keras_qa.checkpoints.exporting` says what each format holds and how the export is checked.
"""

import argparse

from keras_qa import cli  # first: it quiets TensorFlow's logs before Keras loads it
from keras_qa.checkpoints.exporting import FORMATS, export_model  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.export", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument(
        "--format", choices=FORMATS, default="tf_saved_model", help="(default: tf_saved_model)"
    )
    parser.add_argument(
        "--output", help="default: <model>/export/saved_model, model.onnx or huggingface"
    )
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    with cli.user_errors(parser.prog, args.debug):
        output, difference = export_model(args.model, args.output, args.format)
    print(
        f"exported {args.format} to {output}; on a sample batch its logits differ from the Keras "
        f"model's by at most {difference:.2e}"
    )
    return output, difference


if __name__ == "__main__":
    main()
