"""Evaluation of a trained model on the bundled eval split, data parallel over the visible devices.

    KERAS_BACKEND=jax python benchmarks/distributed_evaluation.py --model runs/quickstart
    XLA_FLAGS=--xla_force_host_platform_device_count=4 KERAS_BACKEND=jax \\
        python benchmarks/distributed_evaluation.py --model runs/quickstart --distribute data

Loads the model under the distribution that `--distribute` plans (as `keras_qa.train` does), predicts
and decodes every eval window, and prints the EM, F1 and seconds as one JSON line; with `--output`
it also writes them there. The model's `keras_qa.json` gives the window length and stride.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a folder that keras_qa.train wrote")
    parser.add_argument("--distribute", default="none", choices=("auto", "none", "data"))
    parser.add_argument("--batch-size", type=int, default=64, help="windows per prediction batch")
    parser.add_argument("--output", help="a JSON file to write the figures to")
    args = parser.parse_args()

    import keras_qa
    from keras_qa.evaluation.scoring import evaluate_answers
    from keras_qa.runtime.distribution import distribution_scope, plan_distribution

    plan = plan_distribution(args.distribute, args.batch_size)
    with distribution_scope(plan):
        model, tokenizer, config = keras_qa.load_trained_model(args.model)
        examples = keras_qa.load_examples("bundled", split="eval")
        features = keras_qa.prepare_eval_features(
            examples, tokenizer, config["max_length"], config["doc_stride"]
        )
        started = time.perf_counter()
        _, scores = evaluate_answers(model, examples, features, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
    figures = {
        "model": args.model,
        "distribution": plan,
        "exact_match": round(scores["exact_match"], 2),
        "f1": round(scores["f1"], 2),
        "windows": len(features["example_index"]),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(figures))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            json.dump(figures, file, indent=2)


if __name__ == "__main__":
    main()
