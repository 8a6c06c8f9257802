"""EM / F1 of a keras-qa model and of its Hugging Face export run by transformers on PyTorch.

    python benchmarks/huggingface_export.py --model runs/quickstart [--split eval]
        [--output huggingface_export.json]

The model is exported with `python -m keras_qa.export --format huggingface` (into a temporary folder),
loaded with transformers' `AutoModelForQuestionAnswering`, and both models score the same windows of a
bundled split (`prepare_eval_features`), decoded the same way (`decode_answers`): the difference is the
export's alone. Needs the `interop` extra (transformers, torch).
"""

import argparse
import json
import tempfile
import time

import numpy as np

import keras_qa.cli  # noqa: F401 - quiets TensorFlow's logs before Keras loads it


def transformers_logits(folder, features, batch_size):
    import torch
    import transformers

    model = transformers.AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    names = {"token_ids": "input_ids", "padding_mask": "attention_mask"}
    if model.config.model_type == "bert":
        names["segment_ids"] = "token_type_ids"
    starts, ends = [], []
    with torch.no_grad():
        for begin in range(0, len(features["token_ids"]), batch_size):
            rows = slice(begin, begin + batch_size)
            length = int(features["padding_mask"][rows].sum(axis=1).max())
            feed = {
                name: torch.tensor(features[key][rows, :length], dtype=torch.long)
                for key, name in names.items()
            }
            output = model(**feed)
            # Padding is never a span: give it keras-qa's padding logit.
            mask = features["padding_mask"][rows, :length] == 0
            starts.append(np.where(mask, -1e9, output.start_logits.numpy()))
            ends.append(np.where(mask, -1e9, output.end_logits.numpy()))
    width = features["token_ids"].shape[1]

    def full_width(batches):
        return np.concatenate(
            [np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1e9) for x in batches]
        )

    return full_width(starts), full_width(ends)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a directory written by keras_qa.train")
    parser.add_argument("--split", default="eval", help="a bundled split (default: eval)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per model call")
    parser.add_argument("--output", help="also write the scores here as JSON")
    args = parser.parse_args(argv)

    import keras_qa
    from keras_qa.export import export_model

    model, tokenizer, config = keras_qa.load_trained_model(args.model)
    examples = keras_qa.load_examples("bundled", split=args.split)
    features = keras_qa.prepare_eval_features(
        examples, tokenizer, config["max_length"], config["doc_stride"]
    )
    results = {"model": args.model, "split": args.split, "windows": len(features["token_ids"])}
    with tempfile.TemporaryDirectory() as scratch:
        folder, difference = export_model(args.model, f"{scratch}/hf", "huggingface")
        results["sample_logit_difference"] = difference
        runs = {
            "keras_qa": lambda: keras_qa.predict_logits(model, features, args.batch_size),
            "transformers": lambda: transformers_logits(folder, features, args.batch_size),
        }
        logits = {}
        for name, run in runs.items():
            began = time.perf_counter()
            logits[name] = run()
            answers = keras_qa.decode_answers(examples, features, *logits[name])
            scores = keras_qa.squad_score(answers, examples)
            results[name] = {
                "exact_match": scores["exact_match"],
                "f1": scores["f1"],
                "seconds": time.perf_counter() - began,
            }
            print(f"{name}: EM {scores['exact_match']:.2f}  F1 {scores['f1']:.2f}")
    real = features["padding_mask"] == 1
    results["max_logit_difference"] = float(
        max(np.abs(a[real] - b[real]).max() for a, b in zip(logits["keras_qa"], logits["transformers"]))
    )
    print(f"largest |logit difference| over all windows: {results['max_logit_difference']:.2e}")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return results


if __name__ == "__main__":
    main()
