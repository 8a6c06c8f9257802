"""Fit a model's score calibration on your own SQuAD-format questions, so that its scores mean the
probability that an answer is right.

    python -m keras_qa.calibrate --model runs/mine --squad-file my-dev.json
    python -m keras_qa.calibrate --model path/to/hf-checkpoint --squad-file my-dev.json --output-dir runs/hf

Training fits a calibration itself (on held-out training articles); this command fits one for any
model that answers: a model `keras_qa.train` saved (its `keras_qa.json` gets the new calibration,
unless --output-dir says where to save a calibrated copy), or a Hugging Face question-answering
checkpoint (saved with its calibration as a keras-qa model in --output-dir, which
`QuestionAnswerer.from_pretrained`, `predict` and `serve` load). Each question is answered over its
own context and, unless --no-long-contexts, over its context set among its article's neighbours, and
`sigmoid(weight * log-odds + bias)` is fitted to whether each answer is an exact match. Use questions
the model was not trained on. It prints the expected calibration error (10 bins) before and after, and
the score threshold that keeps 90% of the answers right, on the answers it was fitted on.
"""

import argparse

from keras_qa import cli  # first: it quiets TensorFlow's logs before Keras loads it
from keras_qa.errors import SettingsError  # noqa: E402

# What answering needs in keras_qa.json besides the windows, for a checkpoint that has none.
ANSWERING_DEFAULTS = {"n_best": 20, "max_answer_length": 30}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.calibrate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a directory written by keras_qa.train, or a Hugging Face question-answering "
        "checkpoint (a local folder, or hf://org/name online)",
    )
    parser.add_argument(
        "--squad-file",
        required=True,
        help="questions with their answers: any source load_examples reads ('bundled' too)",
    )
    parser.add_argument("--split", help="with --squad-file bundled or a Hugging Face dataset")
    parser.add_argument(
        "--output-dir",
        help="save the calibrated model here as a keras-qa model (required for a Hugging Face "
        "checkpoint; default for a keras-qa model: its own keras_qa.json is updated)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a trained model in --output-dir"
    )
    parser.add_argument(
        "--no-long-contexts",
        action="store_true",
        help="fit on the questions' own contexts only (default: also over each context among its "
        "article's neighbouring contexts, as answers over documents are scored)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="windows per model call")
    cli.add_debug_argument(parser)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    with cli.user_errors(parser.prog, args.debug):
        return calibrate(args)


def calibrate(args):
    # Imported here, so that --help and argument errors do not wait for Keras.
    from keras_qa.checkpoints.loading import load_answering_model
    from keras_qa.checkpoints.saving import save_trained_model, update_config
    from keras_qa.checkpoints.sources import is_trained_model
    from keras_qa.data.examples import load_examples
    from keras_qa.evaluation.calibrating import calibration_line, fit_model_calibration
    from keras_qa.files import ensure_writable_directory

    own_model = is_trained_model(args.model)
    if args.output_dir is None and not own_model:
        raise SettingsError(
            f"--model {args.model} is not a keras-qa model: give --output-dir, where the "
            "calibrated model is saved"
        )
    if args.output_dir is not None and is_trained_model(args.output_dir) and not args.overwrite:
        raise FileExistsError(
            f"--output-dir {args.output_dir} holds a trained model; choose another, or pass "
            "--overwrite to replace it"
        )
    examples = load_examples(args.squad_file, split=args.split)
    answered = [example for example in examples if example["answers"]["text"]]
    if not answered:
        raise SettingsError(
            f"--squad-file {args.squad_file}: no question has an answer; calibration needs "
            "questions with their answers"
        )
    model, tokenizer, config = load_answering_model(args.model)
    try:
        calibration, report = fit_model_calibration(
            model,
            tokenizer,
            answered,
            config["max_length"],
            config["doc_stride"],
            batch_size=args.batch_size,
            long_contexts=not args.no_long_contexts,
        )
    except ValueError as error:  # e.g. every answer right: nothing tells scores apart
        raise SettingsError(f"--squad-file {args.squad_file}: {error}") from error
    if args.output_dir is None:
        update_config(args.model, calibration=calibration.get_config())
        where = f"{args.model}/keras_qa.json"
    else:
        ensure_writable_directory(args.output_dir)
        saved = {**ANSWERING_DEFAULTS, "base_model": args.model, **config}
        saved["calibration"] = calibration.get_config()  # the new one, over any it had
        save_trained_model(model, tokenizer, args.output_dir, **saved)
        where = args.output_dir
    kinds = report["answers"]
    print(
        f"fitted on {kinds['paragraph']:,} answers over their own contexts and "
        f"{kinds['long_context']:,} over long contexts: weight {calibration.weight:.4f}, bias "
        f"{calibration.bias:.4f}; saved in {where}"
    )
    print(calibration_line(report))
    return calibration, report


if __name__ == "__main__":
    main()
