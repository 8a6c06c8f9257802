"""Minutes to a target F1 on the bundled eval split: keras-qa's default training command against
run_qa.py's defaults run with the strongest Hugging Face setup of this CPU.

    python benchmarks/time_to_accuracy.py [--target-f1 69] [--reference-epochs 3]
        [--evaluations-per-epoch 4] [--output-dir benchmarks/results/time_to_accuracy]

Both start from all-MiniLM-L6-v2 (`minilm`) and train on the bundled "train" split's windows
(384 / 128); both are scored on the bundled "eval" split with keras-qa's n-best decoding and the
official SQuAD v1.1 EM / F1.
- keras-qa: `python -m keras_qa.train --output-dir DIR`, the README's quickstart (JAX unless
  `KERAS_BACKEND` says otherwise), in a process of its own. Its time is the command's wall clock
  (`wall_seconds` of its metrics.json: loading, featurising, training, one evaluation).
- Hugging Face: transformers' `BertForQuestionAnswering.from_pretrained` on the same folder, trained
  with run_qa.py's defaults (Trainer's: AdamW at 5e-5 decaying linearly to 0 over 3 epochs, no
  warm-up, no weight decay, batch 8, gradients clipped at norm 1, the config's dropout 0.1, seed 42)
  in the strongest setup of this CPU (`--group_by_length`, and `--bf16` where the CPU has bfloat16
  instructions: `benchmarks/throughput.py` picks it the same way). It is evaluated
  `--evaluations-per-epoch` times an epoch and stops at the first evaluation at or above
  `--target-f1`. Its time to a point is what a run stopping there would take: setup (loading,
  featurising) + training so far + that one evaluation; the other evaluations are not counted.

Output: a Markdown table on stdout and `time_to_accuracy.json` (CPU, versions, the command, both
curves) in `--output-dir`. `--max-train-examples` / `--max-eval-examples` make a small run (for
tests; its figures mean nothing).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

# The Hugging Face side batches as throughput.py's strongest peer does.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import length_grouped_batches  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_OUTPUT_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "time_to_accuracy"
)
# run_qa.py's defaults (transformers' TrainingArguments).
RUN_QA_DEFAULTS = {
    "learning_rate": 5e-5,
    "epochs": 3,
    "batch_size": 8,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 42,
}
EVAL_BATCH_SIZE = 64
PADDING_LOGIT = -1e9


def linear_learning_rates(peak, total_steps):
    """Trainer's default schedule without warm-up: `peak` at step 0 decaying linearly to 0."""
    return peak * (1.0 - np.arange(total_steps) / total_steps)


def evaluation_steps(steps_per_epoch, epochs, per_epoch):
    """The optimizer steps after which the reference is evaluated: `per_epoch` evenly spaced per
    epoch, the last at each epoch's end."""
    marks = set()
    for epoch in range(epochs):
        for share in range(1, per_epoch + 1):
            marks.add(epoch * steps_per_epoch + round(share * steps_per_epoch / per_epoch))
    return sorted(marks)


def first_reaching(points, target_f1):
    """The first point of a curve with `f1 >= target_f1`, or None."""
    return next((point for point in points if point["f1"] >= target_f1), None)


# ---------------------------------------------------------------------------------------------------
# The Hugging Face side, in a process of its own (torch and transformers).


def reference_worker(options):
    import torch
    import transformers

    import keras_qa
    from keras_qa.checkpoints.sources import minilm_path
    from keras_qa.runtime.cpu import cpu_has_bfloat16

    began = time.perf_counter()
    torch.manual_seed(RUN_QA_DEFAULTS["seed"])
    tokenizer = keras_qa.load_tokenizer("minilm")
    train_examples = keras_qa.load_examples("bundled", split="train")
    eval_examples = keras_qa.load_examples("bundled", split="eval")
    train_examples = train_examples[: options["max_train_examples"]]
    eval_examples = eval_examples[: options["max_eval_examples"]]
    train = keras_qa.prepare_train_features(train_examples, tokenizer)
    evaluation = keras_qa.prepare_eval_features(eval_examples, tokenizer)
    model = transformers.BertForQuestionAnswering.from_pretrained(minilm_path())
    autocast = cpu_has_bfloat16()
    setup_seconds = time.perf_counter() - began

    def inputs(features, rows):
        length = int(features["padding_mask"][rows].sum(axis=1).max())
        names = {
            "input_ids": "token_ids",
            "attention_mask": "padding_mask",
            "token_type_ids": "segment_ids",
        }
        return {
            name: torch.from_numpy(features[ours][rows, :length].astype(np.int64))
            for name, ours in names.items()
        }

    def evaluate():
        """EM / F1 on the eval split: the windows sorted by length, each batch padded to its
        longest, under the training's autocast."""
        model.eval()
        windows, width = evaluation["token_ids"].shape
        start = np.full((windows, width), PADDING_LOGIT, np.float32)
        end = np.full((windows, width), PADDING_LOGIT, np.float32)
        order = np.argsort(evaluation["padding_mask"].sum(axis=1), kind="stable")
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            for begin in range(0, windows, EVAL_BATCH_SIZE):
                rows = order[begin : begin + EVAL_BATCH_SIZE]
                output = model(**inputs(evaluation, rows))
                length = output.start_logits.shape[1]
                start[rows, :length] = output.start_logits.float().numpy()
                end[rows, :length] = output.end_logits.float().numpy()
        model.train()
        answers = keras_qa.decode_answers(eval_examples, evaluation, start, end)
        return keras_qa.squad_score(answers, eval_examples)

    lengths = train["padding_mask"].sum(axis=1)
    batch_size, epochs = RUN_QA_DEFAULTS["batch_size"], options["reference_epochs"]
    rng = np.random.default_rng(RUN_QA_DEFAULTS["seed"])
    plan = [length_grouped_batches(lengths, batch_size, rng) for _ in range(epochs)]
    steps_per_epoch = len(plan[0])
    rates = linear_learning_rates(RUN_QA_DEFAULTS["learning_rate"], steps_per_epoch * epochs)
    marks = set(evaluation_steps(steps_per_epoch, epochs, options["evaluations_per_epoch"]))
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=RUN_QA_DEFAULTS["learning_rate"],
        weight_decay=RUN_QA_DEFAULTS["weight_decay"],
    )
    model.train()
    train_seconds, points, step = 0.0, [], 0
    for epoch_batches in plan:
        for rows in epoch_batches:
            targets = {
                name: torch.from_numpy(train[name][rows].astype(np.int64))
                for name in ("start_positions", "end_positions")
            }
            step_began = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = float(rates[step])
            # Trainer's --bf16 on a CPU: the forward pass under bfloat16 autocast.
            with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
                loss = model(**inputs(train, rows), **targets).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), RUN_QA_DEFAULTS["max_grad_norm"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            train_seconds += time.perf_counter() - step_began
            step += 1
            if step not in marks:
                continue
            eval_began = time.perf_counter()
            scores = evaluate()
            eval_seconds = time.perf_counter() - eval_began
            points.append(
                {
                    "step": step,
                    "epoch": step / steps_per_epoch,
                    "train_seconds": train_seconds,
                    "eval_seconds": eval_seconds,
                    "seconds": setup_seconds + train_seconds + eval_seconds,
                    "exact_match": scores["exact_match"],
                    "f1": scores["f1"],
                }
            )
            print(f"[reference] {json.dumps(points[-1])}", file=sys.stderr, flush=True)
            if scores["f1"] >= options["target_f1"]:
                break
        else:
            continue
        break
    return {
        "name": "Hugging Face: run_qa.py defaults, "
        + ("--bf16 --group_by_length" if autocast else "--group_by_length (float32)"),
        "setup_seconds": setup_seconds,
        "bfloat16_autocast": autocast,
        "train_windows": len(lengths),
        "settings": dict(RUN_QA_DEFAULTS, epochs=epochs),
        "points": points,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }


# ---------------------------------------------------------------------------------------------------
# keras-qa's side: the training command itself.


def keras_qa_run(options, work_dir):
    output_dir = options["keras_qa_output_dir"] or os.path.join(work_dir, "keras-qa")
    command = [sys.executable, "-m", "keras_qa.train", "--output-dir", output_dir]
    for option in ("max_train_examples", "max_eval_examples"):
        if options[option] is not None:
            command += [f"--{option.replace('_', '-')}", str(options[option])]
    environment = dict(os.environ)
    environment.setdefault("KERAS_BACKEND", "jax")
    began = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"keras_qa.train failed:\n{done.stderr[-3000:]}")
    with open(os.path.join(output_dir, "metrics.json"), encoding="utf-8") as file:
        metrics = json.load(file)
    return {
        "name": f"keras-qa: python -m keras_qa.train ({environment['KERAS_BACKEND']}, defaults)",
        "command": " ".join(["python", *command[1:]]),
        "process_seconds": time.perf_counter() - began,
        # The largest child waited for so far: this command (it runs first).
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "dtype_policy": metrics["dtype_policy"],
        "train_windows": metrics["train_windows"],
        "settings": metrics["settings"],
        "points": [
            {
                "epoch": metrics["settings"]["epochs"],
                "train_seconds": metrics["train_seconds"],
                "eval_seconds": metrics["eval"]["seconds"],
                "seconds": metrics["wall_seconds"],
                "exact_match": metrics["eval"]["exact_match"],
                "f1": metrics["eval"]["f1"],
            }
        ],
        "versions": metrics["versions"],
    }


def run_reference(options, work_dir):
    job = os.path.join(work_dir, "reference.json")
    environment = dict(os.environ, KERAS_BACKEND="torch", USE_TF="0")
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(options), job]
    done = subprocess.run(command, env=environment, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the Hugging Face reference failed (exit {done.returncode})")
    with open(job, encoding="utf-8") as file:
        return json.load(file)


def table(runs, target_f1):
    lines = [
        f"| run | minutes to F1 {target_f1:g} | at epoch | EM | F1 | best F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        reached = first_reaching(run["points"], target_f1)
        best = max(run["points"], key=lambda point: point["f1"], default=None)
        shown = reached or best or {}
        minutes = f"{reached['seconds'] / 60:.1f}" if reached else "not reached"
        lines.append(
            f"| {run['name']} | {minutes} | {shown.get('epoch', 0):.2f} | "
            f"{shown.get('exact_match', 0):.2f} | {shown.get('f1', 0):.2f} | "
            f"{best['f1'] if best else 0:.2f} |"
        )
    return "\n".join(lines)


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-f1", type=float, default=69.0, help="the F1 to reach (69)")
    parser.add_argument(
        "--reference-epochs",
        type=int,
        default=RUN_QA_DEFAULTS["epochs"],
        help="the reference's epochs, which its learning rate decays over (run_qa.py's 3)",
    )
    parser.add_argument(
        "--evaluations-per-epoch",
        type=int,
        default=4,
        help="how often the reference is scored on the eval split (4 an epoch)",
    )
    parser.add_argument("--max-train-examples", type=int, help="a small run: train questions")
    parser.add_argument("--max-eval-examples", type=int, help="a small run: eval questions")
    parser.add_argument(
        "--skip",
        choices=("keras-qa", "reference"),
        help="leave one side out (its figures are then missing from the table)",
    )
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR)
    parser.add_argument(
        "--keras-qa-output-dir",
        help="keep keras-qa's trained model there (default: a temporary folder, removed)",
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reference_epochs < 1 or args.evaluations_per_epoch < 1:
        parser.error("--reference-epochs and --evaluations-per-epoch must be at least 1")
    return args


def main(argv=None):
    args = parse_arguments(argv)
    if args.worker:
        options, path = args.worker
        result = reference_worker(json.loads(options))
        with open(path, "w", encoding="utf-8") as file:
            json.dump(result, file)
        return
    options = {
        "target_f1": args.target_f1,
        "reference_epochs": args.reference_epochs,
        "evaluations_per_epoch": args.evaluations_per_epoch,
        "max_train_examples": args.max_train_examples,
        "max_eval_examples": args.max_eval_examples,
        "keras_qa_output_dir": args.keras_qa_output_dir,
    }
    began = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="keras-qa-time-to-accuracy-") as work_dir:
        if args.skip != "keras-qa":
            runs.append(keras_qa_run(options, work_dir))
        if args.skip != "reference":
            runs.append(run_reference(options, work_dir))
    print(table(runs, args.target_f1))
    os.makedirs(args.output_dir, exist_ok=True)
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "command": " ".join(["python", *sys.argv]),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "options": options,
        "seconds": time.perf_counter() - began,
        "runs": runs,
    }
    path = os.path.join(args.output_dir, "time_to_accuracy.json")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
