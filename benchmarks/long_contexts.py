"""EM / F1 of a trained model over short and long contexts, for each way windows compete.

    python benchmarks/long_contexts.py --model runs/quickstart [--splits eval,eval-long]
        [--output long_contexts.json] [--logits DIR]

For each bundled split, the model's logits are computed once (`predict_logits`) and decoded with each
of `keras_qa.text.decoding.WINDOW_SCORES`; the official SQuAD v1.1 EM and F1 of each are printed as a
Markdown table and written to `--output`, with the default decoding's calibration figures: the
expected calibration error (10 bins) and the score that keeps 90% of answers right, scored with the
model's saved calibration (uncalibrated without one; the uncalibrated error is given beside).
`eval-long` puts each question's paragraph inside up to four neighbouring paragraphs of its article,
so that most contexts span several windows. With `--logits`,
each split's logits are saved as `DIR/<split>.npz` and read back from there on a later run, so that
decoders can be compared without the model's minutes.
"""

import argparse
import json
import os
import time

import keras_qa.cli  # noqa: F401 - quiets TensorFlow's logs before Keras loads it


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument(
        "--splits", default="eval,eval-long", help="bundled splits, comma-separated"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="windows per model call")
    parser.add_argument("--output", help="also write the scores here as JSON")
    parser.add_argument("--logits", help="save each split's logits in this folder, or reuse them")
    args = parser.parse_args(argv)

    import keras_qa
    from keras_qa.checkpoints.saving import calibration_of
    from keras_qa.evaluation.calibrating import answers_calibration, calibration_line
    from keras_qa.evaluation.scoring import log_odds_of
    from keras_qa.text.decoding import WINDOW_SCORES

    model, tokenizer, config = keras_qa.load_trained_model(args.model)
    calibration = calibration_of(config)
    results = {}
    for split in args.splits.split(","):
        examples = keras_qa.load_examples("bundled", split=split)
        features = keras_qa.prepare_eval_features(
            examples, tokenizer, config["max_length"], config["doc_stride"]
        )
        start, end, seconds = split_logits(model, features, split, args)
        for method in WINDOW_SCORES:
            answers, decoded = keras_qa.decode_answers(
                examples, features, start, end, window_score=method, return_scores=True
            )
            scores = keras_qa.squad_score(answers, examples)
            results[f"{split}/{method}"] = {
                "exact_match": scores["exact_match"],
                "f1": scores["f1"],
                "windows": len(features["example_index"]),
                "predict_seconds": seconds,
            }
            print(f"{split} {method}: EM {scores['exact_match']:.2f}  F1 {scores['f1']:.2f}")
            if method == "null_relative":  # the default decoding, whose scores answering gives
                report = answers_calibration(examples, answers, log_odds_of(decoded), calibration)
                results[f"{split}/calibration"] = report
                print(f"{split}: {calibration_line(report)}")
    print("\n| decoding | " + " | ".join(args.splits.split(",")) + " |")
    print("| --- |" + " --- |" * len(args.splits.split(",")))
    for method in WINDOW_SCORES:
        cells = [results[f"{split}/{method}"] for split in args.splits.split(",")]
        row = " | ".join(f"{cell['exact_match']:.2f} / {cell['f1']:.2f}" for cell in cells)
        print(f"| {method} | {row} |")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump({"model": args.model, "results": results}, file, indent=2)
    return results


def split_logits(model, features, split, args):
    """`(start, end, seconds)`: the model's logits over a split's windows, or the saved ones."""
    import numpy as np

    import keras_qa

    saved = os.path.join(args.logits, f"{split}.npz") if args.logits else None
    if saved and os.path.exists(saved):
        arrays = np.load(saved)
        if arrays["start"].shape[0] != len(features["example_index"]):
            raise SystemExit(f"{saved} holds logits of other windows than {split}'s; delete it")
        return arrays["start"], arrays["end"], float(arrays["seconds"])
    began = time.perf_counter()
    start, end = keras_qa.predict_logits(model, features, args.batch_size)
    seconds = time.perf_counter() - began
    if saved:
        os.makedirs(args.logits, exist_ok=True)
        np.savez_compressed(saved, start=start, end=end, seconds=seconds)
    return start, end, seconds


if __name__ == "__main__":
    main()
