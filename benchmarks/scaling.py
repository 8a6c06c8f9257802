"""Cost as the data grows: featurisation, training and decoding at 1x, 4x, 16x and 40x the bundled data.

    KERAS_BACKEND=jax python benchmarks/scaling.py [--scales 1,4,16,40] [--output-dir DIR]

The data is the bundled "train" split (8,582 questions over 38 articles), its articles repeated with new
question ids and titles: 40x is 343,280 questions, about four times SQuAD v1.1's train set. Each scale runs
in a fresh process (so that its peak memory is its own), with the quickstart's tokenizer and settings
(all-MiniLM-L6-v2, 384 / 128 windows, batch 16, length buckets of 32 tokens, the precision
`--mixed-precision auto` picks, with JAX's fast bfloat16 products and allocator setting where they apply):
- `featurise`: `prepare_train_features` over every question: seconds and the process's peak RSS;
- `train`: the training job as `keras_qa.train` holds it: every window's features in memory, the model
  compiled, `fit` on the scale's own shuffled, length-bucketed epoch plan. Step times are measured at
  `--bucket-lengths` lengths of that plan (the 4 quantiles, 1 warm-up and 2 timed steps each), and
  the epoch's time is projected from them over every batch of the plan, as `benchmarks/throughput.py`
  does; the peak RSS is the whole job's (features, model, optimizer, compiled steps);
- `decode`: `prepare_eval_features` and `decode_answers` over every question with random logits of
  the right shape (the decoder's cost does not depend on what the logits say): seconds and peak RSS.

Output: a Markdown table on stdout, `scaling.json` and `scaling.png` in `--output-dir` (default: a new
temporary directory; `benchmarks/results/scaling` holds docs/performance.md's figures).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from throughput import (  # this script's folder is on the path
    RESULT_PREFIX,
    bucket_schedule,
    epoch_projection,
    seconds_per_length,
    step_timer,
    worker_results,
)

from keras_qa.runtime.allocator import freed_memory_environment

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MAX_LENGTH, DOC_STRIDE, BATCH_SIZE, BUCKET_WIDTH = 384, 128, 16, 32
MEMORY_LABELS = {
    "featurise": "training process, features made",
    "train": "training job (features, model, steps)",
    "decode": "decode process (eval features, logits)",
}


def scaled_examples(scale):
    """The bundled train split with its articles repeated `scale` times, each copy with new ids and
    a new title (so that nothing is shared between copies but the text)."""
    import keras_qa

    examples = keras_qa.load_examples("bundled", split="train")
    scaled = list(examples)
    for copy in range(1, scale):
        scaled += [
            example | {"id": f"{example['id']}-{copy}", "title": f"{example['title']} ({copy})"}
            for example in examples
        ]
    return scaled


def timed_features(scale, prepare):
    """`(examples, features, seconds)`: the scaled examples made into windows by `prepare` with the
    quickstart's tokenizer and window settings."""
    import keras_qa

    examples = scaled_examples(scale)
    tokenizer = keras_qa.load_tokenizer("minilm")
    began = time.perf_counter()
    features = prepare(examples, tokenizer, MAX_LENGTH, DOC_STRIDE)
    return examples, features, time.perf_counter() - began


def peak_rss_gib():
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def report(**result):
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def featurise_and_train(scale, bucket_lengths):
    import keras

    import keras_qa
    from keras_qa.runtime.precision import resolve_precision
    from keras_qa.runtime.xla_cpu import fast_bfloat16_products

    examples, features, seconds = timed_features(scale, keras_qa.prepare_train_features)
    windows = len(features["example_index"])
    feature_bytes = sum(array.nbytes for array in features.values())
    report(stage="featurise", scale=scale, questions=len(examples), windows=windows,
           seconds=seconds, peak_rss_gib=peak_rss_gib(), feature_gib=feature_bytes / 2**30)

    keras.utils.set_random_seed(0)
    policy = resolve_precision("auto")  # the quickstart's precision, as keras_qa.train picks it
    keras.mixed_precision.set_dtype_policy(policy)
    with fast_bfloat16_products(policy, {"kind": "none"}):
        epoch_seconds, seconds_at_length, plan = _projected_epoch(features, bucket_lengths)
    report(stage="train", scale=scale, questions=len(examples), windows=windows, batches=len(plan),
           precision=policy, epoch_seconds=epoch_seconds, windows_per_second=windows / epoch_seconds,
           seconds_at_length={str(k): v for k, v in seconds_at_length.items()},
           peak_rss_gib=peak_rss_gib())


def _projected_epoch(features, bucket_lengths):
    """The quickstart model's epoch over `features`, projected from timed steps at a few lengths."""
    import keras

    import keras_qa
    from keras_qa.models.batching import BucketedBatches
    from keras_qa.models.task import QuestionAnsweringModel
    from keras_qa.training.optimization import make_optimizer

    model = QuestionAnsweringModel(keras_qa.load_backbone("minilm", dropout=0.0))
    batches = BucketedBatches(features, BATCH_SIZE, BUCKET_WIDTH, shuffle=True, targets=True,
                              input_names=model.input_names, pad_to=BATCH_SIZE)
    model.compile(optimizer=make_optimizer(2e-4, len(batches), 0.1, 0.01))
    plan = batches.batches
    # At each length timed, a warm-up step (compiling the length) and two timed steps.
    schedule, at_length, _ = bucket_schedule(plan, BATCH_SIZE, bucket_lengths, repeats=2)
    timer = step_timer(keras)
    batches.batches = schedule
    model.fit(batches.as_fit_input(), epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    seconds_at_length, _ = seconds_per_length(timer.durations, at_length)
    epoch_seconds = epoch_projection([length for _, length in plan], seconds_at_length)
    return epoch_seconds, seconds_at_length, plan


def decode(scale):
    import keras_qa
    from keras_qa.text.decoding import decode_answers

    examples, features, featurise_seconds = timed_features(scale, keras_qa.prepare_eval_features)
    windows = len(features["example_index"])
    rng = np.random.default_rng(0)
    start_logits = rng.standard_normal((windows, MAX_LENGTH), dtype=np.float32)
    end_logits = rng.standard_normal((windows, MAX_LENGTH), dtype=np.float32)
    began = time.perf_counter()
    answers = decode_answers(examples, features, start_logits, end_logits)
    seconds = time.perf_counter() - began
    assert len(answers) == len(examples)
    report(stage="decode", scale=scale, questions=len(examples), windows=windows,
           featurise_seconds=featurise_seconds, seconds=seconds, peak_rss_gib=peak_rss_gib())


def run_stage(stage, scale, bucket_lengths):
    """One stage at one scale in a fresh process: its result records."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", stage, str(scale),
               "--bucket-lengths", str(bucket_lengths)]
    began = time.perf_counter()
    # malloc set as the JAX train command sets it (keras_qa.runtime.allocator).
    process = subprocess.run(command, env=freed_memory_environment(), capture_output=True, text=True)
    if process.returncode != 0:
        raise SystemExit(f"{stage} at {scale}x failed:\n{process.stderr[-3000:]}")
    results = worker_results(process.stdout)
    print(f"[{stage} {scale}x] {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return results


def markdown_table(results):
    by_scale = {}
    for result in results:
        by_scale.setdefault(result["scale"], {})[result["stage"]] = result
    lines = [
        "| data | questions | train windows | featurise s | featurise peak GiB | training epoch s "
        "(projected) | windows/s | training job peak GiB | decode s | decode peak GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scale in sorted(by_scale):
        featurise = by_scale[scale].get("featurise", {})
        train = by_scale[scale].get("train", {})
        decoding = by_scale[scale].get("decode", {})
        lines.append(
            f"| {scale}x | {featurise.get('questions', decoding.get('questions', 0)):,} | "
            f"{featurise.get('windows', 0):,} | {featurise.get('seconds', float('nan')):.1f} | "
            f"{featurise.get('peak_rss_gib', float('nan')):.2f} | "
            f"{train.get('epoch_seconds', float('nan')):,.0f} | "
            f"{train.get('windows_per_second', float('nan')):.2f} | "
            f"{train.get('peak_rss_gib', float('nan')):.2f} | "
            f"{decoding.get('seconds', float('nan')):.1f} | "
            f"{decoding.get('peak_rss_gib', float('nan')):.2f} |"
        )
    return "\n".join(lines)


def chart(results, path):
    """Seconds per 1,000 questions (flat: linear growth) and peak RSS, against the data's size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cost_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    questions = {r["scale"]: r["questions"] for r in results if "questions" in r}
    series = (
        ("featurise", "seconds", "featurise (train windows)"),
        ("train", "epoch_seconds", "training epoch (projected)"),
        ("decode", "seconds", "decode (random logits)"),
    )
    for stage, key, label in series:
        points = sorted((r["scale"], r[key], r["peak_rss_gib"]) for r in results if r["stage"] == stage)
        if not points:
            continue
        scales = [scale for scale, _, _ in points]
        cost_axis.plot(
            scales, [1000 * value / questions[scale] for scale, value, _ in points], marker="o",
            label=label,
        )
        memory_axis.plot(scales, [peak for _, _, peak in points], marker="o", label=MEMORY_LABELS[stage])
    cost_axis.set_yscale("log")
    cost_axis.set_title("seconds per 1,000 questions (flat = linear growth)")
    memory_axis.set_title("peak RSS of the process (GiB)")
    for axis in (cost_axis, memory_axis):
        axis.set_xlabel("x the bundled train split (8,582 questions)")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle("keras-qa: cost as the data grows (JAX, MiniLM quickstart settings, 2 CPU cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,4,16,40", help="comma-separated multiples of the data")
    parser.add_argument("--stages", default="train,decode", help="train (featurise first), decode")
    parser.add_argument("--bucket-lengths", type=int, default=4,
                        help="bucket lengths timed per scale for the training projection")
    parser.add_argument("--output-dir", help="where scaling.json and .png go (default: a temporary "
                        "directory)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        stage, scale = args.worker[0], int(args.worker[1])
        if stage == "train":
            featurise_and_train(scale, args.bucket_lengths)
        else:
            decode(scale)
        return
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="keras-qa-scaling-")
    os.makedirs(output_dir, exist_ok=True)
    began, results = time.perf_counter(), []
    for scale in (int(s) for s in args.scales.split(",")):
        for stage in args.stages.split(","):
            results += run_stage(stage, scale, args.bucket_lengths)
    table = markdown_table(results)
    print(table)
    with open(os.path.join(output_dir, "scaling.json"), "w", encoding="utf-8") as file:
        json.dump({"command": " ".join(["python", *sys.argv]), "backend": os.environ.get(
            "KERAS_BACKEND", "jax"), "cpus": os.cpu_count(),
            "seconds": time.perf_counter() - began, "results": results}, file, indent=2)
    chart(results, os.path.join(output_dir, "scaling.png"))
    print(f"wrote {output_dir}/scaling.json and scaling.png", file=sys.stderr)


if __name__ == "__main__":
    main()
