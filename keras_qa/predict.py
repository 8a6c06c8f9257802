"""Answer questions from the command line with a model that `keras_qa.train` saved.

    python -m keras_qa.predict --model runs/quickstart --question "Who won?" --context "..."
    python -m keras_qa.predict --model runs/quickstart --question "Who won?" --context-file article.txt
    python -m keras_qa.predict --model runs/quickstart --squad-file dev-v1.1.json --output predictions.json
    python -m keras_qa.predict --model runs/quickstart --squad-file bundled --split eval-long
    python -m keras_qa.predict --model runs/quickstart --question "Who won?" --documents a.txt b.txt

One question prints its answer as JSON (`{"answer", "score", "start", "end"}`, a list with --top-k > 1).
One question over --documents prints the best answers of all of them, ranked together
(`QuestionAnswerer.read`), each with its `document` index and `file`.
A SQuAD file (any format `load_examples` reads) is decoded as training's evaluation decodes it: it writes
`{id: answer}` to --output, run_qa.py's `nbest_predictions.json` (and for SQuAD v2.0 data
`null_odds.json`) beside it, and, when the file has answers, prints the official EM and F1, the
scores' expected calibration error (10 bins, score against exact match) and the score threshold that
keeps 90% of the answers right.
"""

import argparse
import json
import math
import os

from keras_qa import cli
from keras_qa.errors import SettingsError
from keras_qa.files import ensure_writable_directory, write_json_atomically


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m keras_qa.predict", description=__doc__.split("\n\n")[0]
    )
    cli.add_model_arguments(parser)
    cli.add_debug_argument(parser)
    parser.add_argument("--question", help="the question to answer")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--context", help="the text to find the answer in")
    source.add_argument("--context-file", help="a UTF-8 text file to find the answer in")
    source.add_argument(
        "--documents",
        nargs="+",
        metavar="FILE",
        help="UTF-8 text files to find the answer in, ranked together (a retrieval reader)",
    )
    source.add_argument(
        "--squad-file",
        help="answer every question of a SQuAD file (any source load_examples reads, 'bundled' too)",
    )
    parser.add_argument(
        "--split",
        help="with --squad-file bundled or a Hugging Face dataset: the split (eval, eval-long, ...)",
    )
    parser.add_argument(
        "--output",
        default="predictions.json",
        help="with --squad-file: where {id: answer} goes; its folder is created if missing",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="answers per question (default 1; 5 with --documents)",
    )
    parser.add_argument("--max-answer-length", type=int, default=30, help="in tokens")
    _add_squad_file_arguments(parser)
    parser.add_argument("--doc-stride", type=int, default=None, help="default: the model's")
    parser.add_argument(
        "--handle-impossible-answer",
        action="store_true",
        help='let "no answer" compete (SQuAD v2.0 files); it is returned as ""',
    )
    return parser


def _add_squad_file_arguments(parser):
    """The flags that only --squad-file reads: the n-best size, the no-answer threshold and
    --overwrite."""
    parser.add_argument(
        "--n-best-size",
        type=int,
        default=20,
        help="with --squad-file: start and end candidates per window, and the answers per question "
        "in nbest_predictions.json (written beside --output)",
    )
    parser.add_argument(
        "--null-score-diff-threshold",
        type=float,
        default=None,
        help='with --squad-file of SQuAD v2.0 data or --handle-impossible-answer: answer "" when the '
        "null score beats the best span's by more than this (default: the model's own, saved by "
        "training on SQuAD v2.0 data, else 0); null_odds.json is written beside --output",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --squad-file: replace --output and the files beside it if they exist (without "
        "it they are refused before any work)",
    )


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    has_context = any(
        value is not None for value in (args.context, args.context_file, args.documents)
    )
    if args.squad_file is None and (args.question is None or not has_context):
        parser.error(
            "give --question with --context, --context-file or --documents, or --squad-file"
        )
    if args.squad_file is not None and args.question is not None:
        parser.error("--question goes with --context or --context-file, not --squad-file")
    if args.documents is not None:
        with cli.user_errors(parser.prog, args.debug):
            return _read_documents(args, parser)
    options = {
        "top_k": args.top_k or 1,
        "max_answer_length": args.max_answer_length,
        "doc_stride": args.doc_stride,
        "handle_impossible_answer": args.handle_impossible_answer,
    }
    with cli.user_errors(parser.prog, args.debug):
        if args.squad_file is None:
            return _answer_one(args, options, parser)
        return _predict_file(args)


def _read_text(option, path):
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except UnicodeDecodeError as error:
        raise SettingsError(f"{option} {path}: not UTF-8 text ({error})") from error
    except OSError as error:
        raise SettingsError(f"{option} {path}: {error.strerror}") from error


def _read_documents(args, parser):
    documents = [_read_text("--documents", path) for path in args.documents]
    answerer = cli.load_answerer(args)
    try:
        answers = answerer.read(
            args.question,
            documents,
            top_k=args.top_k or 5,
            max_answer_length=args.max_answer_length,
            doc_stride=args.doc_stride,
        )
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    answers = [answer | {"file": args.documents[answer["document"]]} for answer in answers]
    print(json.dumps(answers, ensure_ascii=False, indent=2))
    return answers


def _answer_one(args, options, parser):
    context = args.context
    if args.context_file is not None:
        context = _read_text("--context-file", args.context_file)
    answerer = cli.load_answerer(args)
    try:
        result = answerer(args.question, context, **options)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return result


def check_output_path(path, overwrite=False, beside=()):
    """Make sure `path` can be written before any work: its folder is created, a folder is refused,
    and so is an existing file it or the files `beside` it would replace, unless `overwrite`."""
    if os.path.isdir(path):
        raise SettingsError(f"--output {path} is a directory; name the file to write")
    folder = os.path.dirname(os.path.abspath(path))
    existing = [
        file
        for file in (path, *(os.path.join(folder, name) for name in beside))
        if os.path.exists(file)
    ]
    if existing and not overwrite:
        raise FileExistsError(
            f"--output {path}: {existing[0]} exists; choose another --output, or pass --overwrite "
            "to replace it"
        )
    try:
        ensure_writable_directory(folder)
    except OSError as error:
        message = f"--output {path}: cannot write in {folder} ({error.strerror})"
        raise SettingsError(message) from error


def _predict_file(args):
    # Imported here, so that --help and argument errors do not wait for Keras.
    from keras_qa.data.examples import load_examples
    from keras_qa.evaluation.calibrating import answers_calibration, calibration_line
    from keras_qa.evaluation.scoring import DETAIL_FILES, answer_examples, write_details
    from keras_qa.evaluation.squad_metrics import exact_match, squad_score, squad_version

    check_output_path(args.output, args.overwrite, beside=DETAIL_FILES)
    # load_examples refuses empty questions and contexts, naming them.
    examples = load_examples(args.squad_file, split=args.split)
    answerer = cli.load_answerer(args)
    labelled = any(example["answers"]["text"] for example in examples)
    version = squad_version(examples) if labelled else 1
    predictions, details = answer_examples(
        answerer,
        examples,
        args.n_best_size,
        args.max_answer_length,
        args.doc_stride,
        abstain=version == 2 or args.handle_impossible_answer,
        null_threshold=args.null_score_diff_threshold,
    )
    write_json_atomically(args.output, predictions)
    write_details(os.path.dirname(os.path.abspath(args.output)), details)
    print(f"wrote {len(predictions):,} answers to {args.output}, nbest_predictions.json beside it")
    if not labelled:
        return None
    odds = details["null_odds"] if version == 2 else None
    # The predictions as they are (no threshold on top), and the official sweep's best one.
    scores = squad_score(
        predictions, examples, version, no_answer_probabilities=odds, no_answer_threshold=math.inf
    )
    name = "2.0" if version == 2 else "1.1"
    print(f"SQuAD v{name}: EM {exact_match(scores):.2f}  F1 {scores['f1']:.2f}")
    if version == 2:
        print(
            f"HasAns F1 {scores.get('HasAns_f1', 0.0):.2f}  NoAns F1 "
            f"{scores.get('NoAns_f1', 0.0):.2f}; best F1 {scores['best_f1']:.2f} at "
            f"--null-score-diff-threshold {scores['best_f1_thresh']:.3f}"
        )
    calibration = answers_calibration(
        examples, predictions, details["log_odds"], answerer.calibration
    )
    if calibration["answers"]:
        print(calibration_line(calibration))
    return scores | {"calibration": calibration}


if __name__ == "__main__":
    main()
