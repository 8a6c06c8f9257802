"""Training and inference throughput of keras-qa beside Hugging Face's PyTorch reference, in one run.

    python benchmarks/throughput.py [--quick] [--backends jax,tensorflow,tensorflow-xla,torch]
        [--models distilbert,minilm] [--precisions float32,mixed_bfloat16,mixed_float16]
        [--output-dir DIR]

What is measured, for a DistilBERT-base shape and a MiniLM-L6 shape (random weights, nothing downloaded),
on real SQuAD windows of the bundled data (MiniLM's uncased vocabulary, 384 / 128 windows):
- `train_fixed`: keras-qa's training path (`QuestionAnsweringModel`, its default loss and metrics, AdamW,
  `fit` on `BucketedBatches`) with every batch padded to 384 tokens;
- `train_bucketed`: the same with the default length buckets (multiples of 32 tokens). Every bucket
  length of an epoch is compiled and timed, and the epoch's throughput is the number of windows over the
  sum of each batch's median step time at its length (so the figure is the whole epoch's, not a sample's);
- `inference`: `predict_logits` on windows of the bundled eval split, bucketed, batch 32.
Each keras-qa backend runs in its own process (Keras' backend is fixed per process): jax (XLA),
tensorflow (graph mode, Keras' default: no XLA) and torch (eager); tensorflow-xla (`jit_compile=True`)
on request (`--backends`: on these CPUs it trained about half as fast as graph mode). Each runs
in float32 and mixed_bfloat16 (mixed_float16 only on a GPU: these CPUs have no fast float16 path
and JAX refuses it there). Hugging Face's side is transformers' `DistilBertForQuestionAnswering` /
`BertForQuestionAnswering` built from a config, in two setups:
- run_qa.py's defaults: float32, AdamW, every window padded to 384, the configs' dropout; inference the
  same way under `torch.inference_mode`;
- the strongest a user of this CPU would run: `--group_by_length` (transformers'
  `LengthGroupedSampler`: random megabatches of 50 batches sorted by length, each batch padded to its
  longest window), with Trainer's `--bf16` (the forward pass under bfloat16 autocast) only where the
  CPU has bfloat16 instructions (AMX or AVX-512 BF16; elsewhere `--bf16` is several times slower than
  float32), at keras-qa's dropout; the epoch's throughput is projected like keras-qa's buckets, from
  step times at 8 (`--quick`: 4) quantiles of the batches' lengths; inference the same way (autocast
  where the CPU has bfloat16) over the windows sorted by length, each batch padded to its longest.
The table gives each keras-qa figure as a ratio to both: to run_qa.py's default, and to the faster of
the two for the same task (training or inference).

Throughput is the median of timed steps after a warm-up step; the first step of each shape (tracing and
compilation) is reported apart as `compile_s`. `tokens/s` counts real tokens (padding excluded), so that
padded and bucketed runs compare. `data` is the share of training time spent cutting batches out of
the cached features (`BucketedBatches.__getitem__`): on JAX and torch the model waits for it, on
TensorFlow it is prefetched beside the step, so there it bounds the wait from above.

Dropout: each side trains as its own recipe does by default. keras-qa's quickstart trains without
dropout (`--dropout 0`; its EM / F1 are measured with it, see docs/performance.md), the reference
with the 0.1 of the DistilBERT and MiniLM configurations, as run_qa.py does (`--reference-dropout
0.1`). Dropout is not free (Keras' attention falls back from the fused kernel when it is on):
`--dropout 0.1` measures keras-qa at the reference's dropout, and docs/performance.md gives both.

Throughput is per step; the minutes each recipe needs to reach a given F1 (keras-qa's quickstart
against run_qa.py's defaults in the strongest setup above) are `benchmarks/time_to_accuracy.py`'s.

Output: a Markdown table on stdout (ratios to the reference as columns), `throughput.json` and
`throughput.png` in `--output-dir` (benchmarks/results; for `--quick` a new temporary directory unless
given, never benchmarks/results). `--quick` (DistilBERT shape only, each backend in the precision
`--mixed-precision auto` picks, fewer steps, four bucket lengths interpolated) takes under 5 minutes on
2 CPU cores.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_qa.runtime.allocator import freed_memory_environment  # noqa: E402
from keras_qa.runtime.cpu import cpu_has_bfloat16  # noqa: E402

MODELS = {
    # distilbert-base-uncased's configuration.
    "distilbert": {
        "vocabulary_size": 30522,
        "num_layers": 6,
        "num_heads": 12,
        "hidden_dim": 768,
        "intermediate_dim": 3072,
    },
    # all-MiniLM-L6-v2's configuration (BERT).
    "minilm": {
        "vocabulary_size": 30522,
        "num_layers": 6,
        "num_heads": 12,
        "hidden_dim": 384,
        "intermediate_dim": 1536,
    },
}
BACKENDS = ("jax", "tensorflow", "tensorflow-xla", "torch")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SCENARIOS = ("train_fixed", "train_bucketed", "inference")
MAX_LENGTH, DOC_STRIDE = 384, 128
RESULT_PREFIX = "RESULT "
# The two Hugging Face setups: run_qa.py's defaults, and what a user of these CPUs would run.
RUN_QA_DEFAULT = "run_qa.py default: float32, padded to 384"
# The strongest setup depends on the CPU: --bf16 only where it has bfloat16 instructions (on an AVX2-only
# AMD EPYC, --bf16 trained at 0.34 windows/s, far below float32).
STRONG_PEER_BFLOAT16 = "Trainer --bf16 --group_by_length: bfloat16 autocast, dynamic padding"
STRONG_PEER_FLOAT32 = (
    "Trainer --group_by_length: float32, dynamic padding (no bfloat16 on this CPU)"
)
# The figures docs/performance.md quotes; only a full run writes there by default.
COMMITTED_RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


# ---------------------------------------------------------------------------------------------------
# Data shared by every worker: real SQuAD windows of the bundled data.


def load_features(eval_windows, seed=0):
    """All training windows of the bundled "train" split; a fixed random sample of "eval" windows."""
    import keras_qa

    tokenizer = keras_qa.load_tokenizer("minilm")
    train = keras_qa.prepare_train_features(
        keras_qa.load_examples("bundled", split="train"), tokenizer, MAX_LENGTH, DOC_STRIDE
    )
    evaluation = keras_qa.prepare_eval_features(
        keras_qa.load_examples("bundled", split="eval"), tokenizer, MAX_LENGTH, DOC_STRIDE
    )
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(evaluation["token_ids"]))[:eval_windows])
    evaluation = {name: array[keep] for name, array in evaluation.items()}
    return train, evaluation


def step_statistics(durations, warmup):
    """`(median step seconds, compile seconds)`: the first step minus a steady one is compilation."""
    timed = durations[warmup:] or durations[-1:]
    median = statistics.median(timed)
    return median, max(0.0, durations[0] - median)


def bucket_schedule(plan, batch_size, count, repeats):
    """Steps that time a bucket plan's lengths: at each length with a full batch (a bucket's
    leftovers move up, so all but the longest), or at `count` of them spread evenly (0: all), a
    warm-up step and `repeats` timed steps of the plan's own batches.

    Returns `(schedule of (rows, length), each step's length, the lengths timed)`.
    """
    lengths = sorted({length for rows, length in plan if len(rows) == batch_size})
    if count and len(lengths) > count:
        lengths = [lengths[int(round(p))] for p in np.linspace(0, len(lengths) - 1, count)]
    schedule, at_length = [], []
    for length in lengths:
        same = [rows for rows, at in plan if at == length and len(rows) == batch_size]
        for index in range(1 + repeats):
            schedule.append((same[index % len(same)], length))
            at_length.append(length)
    return schedule, at_length, lengths


def seconds_per_length(durations, at_length):
    """`({length: median step seconds after its first}, the first steps' extra seconds summed)`
    from the durations of a `bucket_schedule`."""
    seconds_at_length, compile_s = {}, 0.0
    for length in dict.fromkeys(at_length):
        median, first_extra = step_statistics(
            [d for d, at in zip(durations, at_length) if at == length], 1
        )
        seconds_at_length[length] = median
        compile_s += first_extra
    return seconds_at_length, compile_s


def epoch_projection(lengths_of_batches, seconds_at_length):
    """Seconds for a whole epoch from per-length step times (linear in between measured lengths)."""
    measured = sorted(seconds_at_length)
    times = np.interp(lengths_of_batches, measured, [seconds_at_length[m] for m in measured])
    return float(np.sum(times))


def step_timer(keras):
    """A Keras callback keeping the wall time of every training step in `durations`, waiting for
    the step's loss (JAX dispatches ahead)."""

    class StepTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.durations = []

        def on_train_batch_begin(self, batch, logs=None):
            self.began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(keras.ops.convert_to_numpy((logs or {})["loss"]))
            self.durations.append(time.perf_counter() - self.began)

    return StepTimer()


# ---------------------------------------------------------------------------------------------------
# keras-qa worker (one process per backend).


def keras_worker(options):
    import keras
    import keras_hub

    from keras_qa.models.batching import BucketedBatches, bucket_plan, predict_logits
    from keras_qa.models.task import QuestionAnsweringModel
    from keras_qa.runtime.backend import has_accelerator
    from keras_qa.runtime.precision import resolve_precision
    from keras_qa.runtime.xla_cpu import fast_bfloat16_products
    from keras_qa.training.optimization import make_optimizer

    backend = options["backend"]
    jit_compile = {"tensorflow": False, "tensorflow-xla": True}.get(backend, "auto")
    train, evaluation = load_features(options["eval_windows"])
    batch_size, warmup, steps = options["batch_size"], options["warmup"], options["steps"]
    precisions = options["precisions"] or [resolve_precision("auto")]

    def build(model_name, policy):
        keras.mixed_precision.set_dtype_policy(policy)
        keras.utils.set_random_seed(0)
        backbone_class = (
            keras_hub.models.DistilBertBackbone
            if model_name == "distilbert"
            else keras_hub.models.BertBackbone
        )
        backbone = backbone_class(
            **MODELS[model_name], dropout=options["dropout"], max_sequence_length=512
        )
        model = QuestionAnsweringModel(backbone)
        model.compile(optimizer=make_optimizer(5e-5, 10_000, 0.1, 0.01), jit_compile=jit_compile)
        return model

    def fit_schedule(model, schedule):
        """`fit` over `(rows, length)` batches in the given order; the step durations."""
        batches = BucketedBatches(train, batch_size, targets=True, input_names=model.input_names)
        batches.batches = list(schedule)
        timer = step_timer(keras)
        model.fit(batches.as_fit_input(), epochs=1, shuffle=False, verbose=0, callbacks=[timer])
        return timer.durations, batches.fetch_seconds

    def report(**result):
        result.setdefault("batch_size", batch_size)
        result.update(implementation="keras-qa", backend=backend, keras=keras.__version__)
        print(RESULT_PREFIX + json.dumps(result), flush=True)

    rng = np.random.default_rng(0)
    train_lengths = train["padding_mask"].sum(axis=1)

    def measure(model_name, policy, common):
        if "train_fixed" in options["scenarios"]:
            model = build(model_name, policy)
            count = warmup + steps
            rows = rng.permutation(len(train_lengths))[: count * batch_size]
            schedule = [
                (rows[i * batch_size : (i + 1) * batch_size], MAX_LENGTH) for i in range(count)
            ]
            durations, fetch = fit_schedule(model, schedule)
            median, compile_s = step_statistics(durations, warmup)
            real_tokens = float(np.mean(train_lengths[rows]))
            report(
                **common,
                scenario="train_fixed",
                seq_per_s=batch_size / median,
                tokens_per_s=batch_size * real_tokens / median,
                step_ms=1000 * median,
                compile_s=compile_s,
                data_wait=fetch / sum(durations),
                steps=len(durations),
            )
            del model
        if "train_bucketed" in options["scenarios"]:
            model = build(model_name, policy)
            plan = bucket_plan(train_lengths, batch_size, 32, np.random.default_rng(0))
            plan = [(r, min(length, MAX_LENGTH)) for r, length in plan]
            schedule, at_length, plan_lengths = bucket_schedule(
                plan, batch_size, options["bucket_lengths"], max(1, options["bucket_steps"])
            )
            durations, fetch = fit_schedule(model, schedule)
            seconds_at_length, compile_s = seconds_per_length(durations, at_length)
            epoch_seconds = epoch_projection([length for _, length in plan], seconds_at_length)
            windows = sum(len(r) for r, _ in plan)
            report(
                **common,
                scenario="train_bucketed",
                seq_per_s=windows / epoch_seconds,
                tokens_per_s=float(train_lengths.sum()) / epoch_seconds,
                step_ms=1000 * epoch_seconds / len(plan),
                compile_s=compile_s,
                data_wait=fetch / sum(durations),
                shapes=len(plan_lengths),
                steps=len(durations),
                epoch_windows=windows,
                epoch_seconds=epoch_seconds,
            )
        else:
            model = build(model_name, policy)
        if "inference" in options["scenarios"]:
            batch = options["eval_batch_size"]
            began = time.perf_counter()
            predict_logits(model, evaluation, batch, 32)  # traces / compiles every shape
            first = time.perf_counter() - began
            seconds = []
            for _ in range(options["inference_repeats"]):
                began = time.perf_counter()
                predict_logits(model, evaluation, batch, 32)
                seconds.append(time.perf_counter() - began)
            median = statistics.median(seconds)
            windows = len(evaluation["token_ids"])
            report(
                **common,
                scenario="inference",
                seq_per_s=windows / median,
                tokens_per_s=float(evaluation["padding_mask"].sum()) / median,
                compile_s=max(0.0, first - median),
                steps=options["inference_repeats"],
                windows=windows,
                batch_size=batch,
            )
        del model

    for model_name in options["models"]:
        for policy in precisions:
            try:
                resolve_precision(policy)
                if policy == "mixed_float16" and not has_accelerator():
                    raise ValueError("float16 is measured on a GPU only (no fast float16 on CPU)")
            except ValueError as error:
                report(model=model_name, precision=policy, skipped=str(error))
                continue
            common = {"model": model_name, "precision": policy}
            # As keras_qa.train runs it: JAX's bfloat16 products on XLA:CPU's fast path.
            with fast_bfloat16_products(policy, {"kind": "none"}):
                measure(model_name, policy, common)
            keras.backend.clear_session()


# ---------------------------------------------------------------------------------------------------
# Hugging Face transformers' PyTorch reference.


def reference_worker(options):
    import torch
    import transformers

    train, evaluation = load_features(options["eval_windows"])
    batch_size, warmup, steps = options["batch_size"], options["warmup"], options["steps"]
    torch.manual_seed(0)

    def build(model_name, dropout):
        shape = MODELS[model_name]
        if model_name == "distilbert":
            config = transformers.DistilBertConfig(
                vocab_size=shape["vocabulary_size"],
                n_layers=shape["num_layers"],
                n_heads=shape["num_heads"],
                dim=shape["hidden_dim"],
                hidden_dim=shape["intermediate_dim"],
                dropout=dropout,
                attention_dropout=dropout,
            )
            return transformers.DistilBertForQuestionAnswering(config), False
        config = transformers.BertConfig(
            vocab_size=shape["vocabulary_size"],
            num_hidden_layers=shape["num_layers"],
            num_attention_heads=shape["num_heads"],
            hidden_size=shape["hidden_dim"],
            intermediate_size=shape["intermediate_dim"],
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        return transformers.BertForQuestionAnswering(config), True

    def inputs(features, rows, segments, length=None):
        """The rows as transformers' inputs, cut to `length` tokens (dynamic padding) if given."""
        names = {"input_ids": "token_ids", "attention_mask": "padding_mask"}
        if segments:
            names["token_type_ids"] = "segment_ids"
        return {
            name: torch.from_numpy(features[ours][rows, :length].astype(np.int64))
            for name, ours in names.items()
        }

    def train_step(model, optimizer, batch, rows, autocast):
        targets = {
            name: torch.from_numpy(train[name][rows].astype(np.int64))
            for name in ("start_positions", "end_positions")
        }
        began = time.perf_counter()
        # Trainer's --bf16 on a CPU: the forward pass under bfloat16 autocast, float32 weights.
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            output = model(**batch, **targets)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - began

    def report(**result):
        result.update(
            implementation="huggingface",
            backend="torch",
            transformers=transformers.__version__,
            torch=torch.__version__,
            threads=torch.get_num_threads(),
        )
        print(RESULT_PREFIX + json.dumps(result), flush=True)

    rng = np.random.default_rng(0)
    train_lengths = train["padding_mask"].sum(axis=1)
    for model_name in options["models"]:
        # run_qa.py's defaults: float32, every window padded to 384, the config's dropout.
        default = {"model": model_name, "precision": "float32", "setup": RUN_QA_DEFAULT}
        model, segments = build(model_name, options["reference_dropout"])
        if {"train_fixed", "train_bucketed"} & set(options["scenarios"]):
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
            rows = rng.permutation(len(train_lengths))[: (warmup + steps) * batch_size]
            durations = []
            for step in range(warmup + steps):
                chosen = rows[step * batch_size : (step + 1) * batch_size]
                batch = inputs(train, chosen, segments)
                durations.append(train_step(model, optimizer, batch, chosen, autocast=False))
            median, first_extra = step_statistics(durations, warmup)
            report(
                **default,
                scenario="train_fixed",
                seq_per_s=batch_size / median,
                tokens_per_s=batch_size * float(np.mean(train_lengths[rows])) / median,
                step_ms=1000 * median,
                compile_s=first_extra,
                steps=len(durations),
                batch_size=batch_size,
            )
        if "inference" in options["scenarios"]:
            report(**default, **reference_inference(model, inputs, segments, evaluation, options))
        del model
        # What a user of this CPU would run: --group_by_length with dynamic padding, at keras-qa's
        # dropout, and Trainer's --bf16 (autocast) where the CPU has bfloat16 instructions.
        autocast = options["peer_bfloat16"]
        strong = {
            "model": model_name,
            "precision": "bfloat16 autocast" if autocast else "float32",
            "setup": STRONG_PEER_BFLOAT16 if autocast else STRONG_PEER_FLOAT32,
        }
        model, segments = build(model_name, options["dropout"])
        if {"train_fixed", "train_bucketed"} & set(options["scenarios"]):
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
            plan = length_grouped_batches(train_lengths, batch_size, np.random.default_rng(0))
            plan = [rows for rows in plan if len(rows) == batch_size]
            padded = np.array([int(train_lengths[rows].max()) for rows in plan])
            count = options["bucket_lengths"] or 8
            picks = np.unique(np.quantile(padded, np.linspace(0, 1, count), method="nearest"))
            seconds_at_length = {}
            for length in picks:
                rows = plan[int(np.flatnonzero(padded == length)[0])]
                batch = inputs(train, rows, segments, int(length))
                durations = [
                    train_step(model, optimizer, batch, rows, autocast=autocast)
                    for _ in range(1 + max(1, options["bucket_steps"]))
                ]
                seconds_at_length[int(length)] = step_statistics(durations, 1)[0]
            epoch_seconds = epoch_projection(padded, seconds_at_length)
            windows = len(plan) * batch_size
            report(
                **strong,
                scenario="train_bucketed",
                seq_per_s=windows / epoch_seconds,
                tokens_per_s=float(sum(train_lengths[rows].sum() for rows in plan)) / epoch_seconds,
                step_ms=1000 * epoch_seconds / len(plan),
                compile_s=None,
                shapes=len(seconds_at_length),
                epoch_windows=windows,
                epoch_seconds=epoch_seconds,
                batch_size=batch_size,
            )
        if "inference" in options["scenarios"]:
            result = reference_inference(
                model, inputs, segments, evaluation, options, autocast=autocast, by_length=True
            )
            report(**strong, **result)
        del model


def length_grouped_batches(lengths, batch_size, rng):
    """transformers' `LengthGroupedSampler` (`--group_by_length`): random megabatches of 50 batches,
    each sorted longest first and cut into batches."""
    order = rng.permutation(len(lengths))
    size = 50 * batch_size
    batches = []
    for begin in range(0, len(order), size):
        megabatch = sorted(order[begin : begin + size], key=lambda row: -lengths[row])
        batches += [
            np.asarray(megabatch[i : i + batch_size]) for i in range(0, len(megabatch), batch_size)
        ]
    return batches


def reference_inference(
    model, inputs, segments, evaluation, options, autocast=False, by_length=False
):
    """transformers' model over the eval windows in batches, under bfloat16 autocast with
    `autocast`; with `by_length` over windows grouped by length, each batch padded to its longest
    (dynamic padding), else in their order padded to 384."""
    import torch

    model.eval()
    windows = len(evaluation["token_ids"])
    lengths = evaluation["padding_mask"].sum(axis=1)
    eval_batch = options["eval_batch_size"]
    seconds = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for _ in range(1 + options["inference_repeats"]):
            began = time.perf_counter()
            order = np.argsort(lengths, kind="stable") if by_length else np.arange(windows)
            for begin in range(0, windows, eval_batch):
                rows = order[begin : begin + eval_batch]
                length = int(lengths[rows].max()) if by_length else None
                model(**inputs(evaluation, rows, segments, length))
            seconds.append(time.perf_counter() - began)
    median = statistics.median(seconds[1:])
    return {
        "scenario": "inference",
        "seq_per_s": windows / median,
        "tokens_per_s": float(lengths.sum()) / median,
        "compile_s": None,
        "steps": options["inference_repeats"],
        "windows": windows,
        "batch_size": eval_batch,
    }


# ---------------------------------------------------------------------------------------------------
# Orchestration, table, chart.


def installed(module):
    return importlib.util.find_spec(module) is not None


def worker_results(stdout):
    """The result records a worker printed (one `RESULT_PREFIX` JSON line each)."""
    return [
        json.loads(line[len(RESULT_PREFIX) :])
        for line in stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def run_worker(kind, options, backend=None):
    """Run one worker in a fresh process; its results, or a skip record saying why it failed."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if backend:
        environment["KERAS_BACKEND"] = backend.split("-")[0]
    if kind == "keras":  # malloc set as the JAX train command sets it (keras_qa.runtime.allocator)
        environment = freed_memory_environment(environment)
    options = dict(options, backend=backend)
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(options)]
    began = time.perf_counter()
    process = subprocess.run(command, env=environment, capture_output=True, text=True)
    results = worker_results(process.stdout)
    if process.returncode != 0:
        tail = "\n".join(process.stderr.strip().splitlines()[-15:])
        print(
            f"[{kind} {backend or ''}] failed (exit {process.returncode}):\n{tail}", file=sys.stderr
        )
        results.append(
            {
                "implementation": "keras-qa" if kind == "keras" else "huggingface",
                "backend": backend or "torch",
                "skipped": f"worker exited with {process.returncode}: {tail.splitlines()[-1:]}",
            }
        )
    print(
        f"[{kind} {backend or ''}] {len(results)} results in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return results


def reference_for(results, model, scenario, strongest=False):
    """The Hugging Face figure a keras-qa result is compared with: run_qa.py's default (training padded
    to 384, float32), or with `strongest` the faster of the two setups for the same task (training
    or inference)."""
    training = scenario != "inference"
    candidates = [
        result
        for result in results
        if result.get("implementation") == "huggingface"
        and result.get("model") == model
        and "seq_per_s" in result
        and (result["scenario"] != "inference") == training
        and (strongest or is_run_qa_default(result))
    ]
    return max(candidates, key=lambda result: result["seq_per_s"], default=None)


def is_run_qa_default(result):
    """Whether a Hugging Face result is run_qa.py's default setup (results of older runs name none)."""
    return result.get("setup", RUN_QA_DEFAULT) == RUN_QA_DEFAULT


def implementation_name(result):
    if result["implementation"] != "huggingface":
        return f"keras-qa {result['backend']}"
    if is_run_qa_default(result):
        return "HF torch, run_qa.py default"
    return "HF torch, " + result["setup"].split(":")[0].replace("Trainer ", "")


def markdown_table(results):
    lines = [
        "| model | scenario | implementation | precision | seq/s | real tokens/s | compile s | "
        "data | x run_qa default | x strongest HF |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    measured = [r for r in results if "seq_per_s" in r]
    order = {name: index for index, name in enumerate(SCENARIOS)}
    measured.sort(
        key=lambda r: (
            r["model"],
            order[r["scenario"]],
            r["implementation"] != "huggingface",
            -r["seq_per_s"],
        )
    )
    for result in measured:
        ratios = []
        for strongest in (False, True):
            reference = reference_for(results, result["model"], result["scenario"], strongest)
            ratios.append(
                f"{result['seq_per_s'] / reference['seq_per_s']:.2f}" if reference else "n/a"
            )
        compile_s = result.get("compile_s")
        data_wait = result.get("data_wait")
        lines.append(
            f"| {result['model']} | {result['scenario']} | {implementation_name(result)} | "
            f"{result['precision']} | {result['seq_per_s']:.2f} | {result['tokens_per_s']:,.0f} | "
            f"{'' if compile_s is None else f'{compile_s:.1f}'} | "
            f"{'' if data_wait is None else f'{100 * data_wait:.2f}%'} | {' | '.join(ratios)} |"
        )
    skipped = [r for r in results if "skipped" in r]
    for result in skipped:
        lines.append(
            f"\nnot measured: {result.get('implementation')} {result.get('backend')} "
            f"{result.get('model', '')} {result.get('precision', '')}: {result['skipped']}"
        )
    return "\n".join(lines)


def bar_chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results if "seq_per_s" in r]
    models = sorted({r["model"] for r in measured})
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in measured)]
    figure, axes = plt.subplots(
        len(models),
        len(scenarios),
        figsize=(4.4 * len(scenarios), 3.9 * len(models)),
        squeeze=False,
    )
    for row, model in enumerate(models):
        for column, scenario in enumerate(scenarios):
            axis = axes[row][column]
            bars = [r for r in measured if r["model"] == model and r["scenario"] == scenario]
            for strongest in (False, True):  # both Hugging Face setups beside every scenario
                reference = reference_for(results, model, scenario, strongest)
                if reference is not None and reference not in bars:
                    bars.append(reference)
            bars.sort(key=lambda r: (r["implementation"] != "huggingface", -r["seq_per_s"]))
            labels = [
                (
                    "HF run_qa\nfloat32 384"
                    if is_run_qa_default(r)
                    else f"HF {r['precision'].split()[0]}\nby length"
                )
                if r["implementation"] == "huggingface"
                else f"{r['backend']}\n{r['precision'].replace('mixed_', '')}"
                for r in bars
            ]
            colours = [
                "#999999" if r["implementation"] == "huggingface" else "#d00000" for r in bars
            ]
            axis.bar(range(len(bars)), [r["seq_per_s"] for r in bars], color=colours)
            axis.set_xticks(range(len(bars)), labels, fontsize=7, rotation=30, ha="right")
            axis.set_title(f"{model}: {scenario}", fontsize=10)
            axis.set_ylabel("sequences / s")
    figure.suptitle(
        "keras-qa (red) vs Hugging Face PyTorch, run_qa.py default and --bf16 --group_by_length "
        "(grey), same machine, one run"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="under 5 minutes on 2 CPU cores")
    parser.add_argument(
        "--backends", default=None, help=f"comma-separated, of {','.join(BACKENDS)}"
    )
    parser.add_argument("--models", default=None, help="comma-separated: distilbert, minilm")
    parser.add_argument(
        "--precisions",
        default=None,
        help="comma-separated Keras policies; default float32 and mixed_bfloat16 on CPU "
        "(+ mixed_float16 on GPU); --quick: what --mixed-precision auto picks",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (16; quick 8)")
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="keras-qa's dropout (0: the quickstart recipe's, see TrainSettings)",
    )
    parser.add_argument(
        "--reference-dropout",
        type=float,
        default=0.1,
        help="the reference's dropout (0.1: the DistilBERT / MiniLM configs', as run_qa.py trains)",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip Hugging Face's model")
    parser.add_argument(
        "--output-dir",
        help="where throughput.json and .png go (default: benchmarks/results; with --quick a new "
        "temporary directory: a quick run never replaces the committed results)",
    )
    parser.add_argument(
        "--from-json", help="print the table and draw the chart of an earlier run's JSON file"
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.from_json:
        with open(args.from_json, encoding="utf-8") as file:
            results = json.load(file)["results"]
        print(markdown_table(results))
        bar_chart(results, os.path.splitext(args.from_json)[0] + ".png")
        return

    if args.worker:
        kind, options = args.worker
        (keras_worker if kind == "keras" else reference_worker)(json.loads(options))
        return

    quick = args.quick
    output_dir = _output_dir(parser, args.output_dir, quick)
    backends = (
        args.backends.split(",")
        if args.backends
        else [b for b in BACKENDS if installed(b.split("-")[0]) and b != "tensorflow-xla"]
    )
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(BACKENDS)}")
    models = args.models.split(",") if args.models else (["distilbert"] if quick else list(MODELS))
    if set(models) - set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    if args.precisions:
        precisions = args.precisions.split(",")
    elif quick:
        precisions = None  # each backend's `auto`
    else:
        precisions = ["float32", "mixed_bfloat16", "mixed_float16"]
    options = {
        "models": models,
        "precisions": precisions,
        "scenarios": args.scenarios.split(","),
        "batch_size": args.batch_size or (8 if quick else 16),
        "eval_batch_size": args.eval_batch_size,
        "warmup": 1,
        "steps": 3 if quick else 5,
        "bucket_lengths": 4 if quick else 0,  # 0: every bucket length of the epoch
        "bucket_steps": 1,
        "eval_windows": 64 if quick else 256,
        "inference_repeats": 1 if quick else 2,
        "dropout": args.dropout,
        "reference_dropout": args.reference_dropout,
        "peer_bfloat16": cpu_has_bfloat16(),
    }
    began = time.perf_counter()
    results = []
    if not args.no_reference:
        if installed("transformers") and installed("torch"):
            results += run_worker("reference", options)
        else:
            results.append(
                {
                    "implementation": "huggingface",
                    "backend": "torch",
                    "skipped": "transformers and torch are not installed: pip install -e '.[bench]'",
                }
            )
    for backend in backends:
        results += run_worker("keras", options, backend)
    print(markdown_table(results))

    os.makedirs(output_dir, exist_ok=True)
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    with open(os.path.join(output_dir, "throughput.json"), "w", encoding="utf-8") as file:
        json.dump(
            {
                "command": " ".join(["python", *sys.argv]),
                "options": options,
                "machine": machine,
                "seconds": time.perf_counter() - began,
                "results": results,
            },
            file,
            indent=2,
        )
    bar_chart(results, os.path.join(output_dir, "throughput.png"))
    print(
        f"\n{time.perf_counter() - began:.0f} s; wrote {output_dir}/throughput.json and "
        f"throughput.png",
        file=sys.stderr,
    )


def _output_dir(parser, output_dir, quick):
    """The run's output directory: a quick run's figures never replace the committed ones."""
    if not quick:
        return output_dir or COMMITTED_RESULTS
    if output_dir is None:
        return tempfile.mkdtemp(prefix="keras-qa-throughput-")
    if os.path.realpath(output_dir) == os.path.realpath(COMMITTED_RESULTS):
        parser.error(f"--quick does not write over the committed results in {COMMITTED_RESULTS}")
    return output_dir


if __name__ == "__main__":
    main()
