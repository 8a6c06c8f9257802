"""Answering engines raced over the same SQuAD windows: windows/s, EM / F1, and single-call latency.

    python benchmarks/answering.py --model runs/quickstart [--windows N] [--engines a,b,...]
        [--calls 200] [--pipeline-python .nox/pipeline_parity/bin/python] [--hf-folder DIR]
        [--output-dir benchmarks/results/answering]

The windows are those of the bundled SQuAD eval split (`prepare_eval_features` at the model's
`max_length` / `doc_stride`; `--windows N`: the first N). Every engine runs in a process of its own
(Keras' backend is fixed per process, and triton, which torch may bring, crashes beside TensorFlow):
one untimed pass over the windows (tracing, compilation, warm-up: `first_pass_s`), then a timed one
(windows/s). Its logits are decoded and scored here, all engines alike (`decode_answers`,
`squad_score`); with `--windows`, only the questions whose windows are all in are scored.

Engines (`--engines`, default all):
- peers, on the model's Hugging Face export (`python -m keras_qa.export --format huggingface`, made
  once; `--hf-folder` reuses one), the windows sorted by length in batches of 32, each padded to its
  longest window:
  `transformers-float32` (AutoModelForQuestionAnswering under `torch.inference_mode`),
  `transformers-int8` (the same after `torch.ao.quantization.quantize_dynamic` of its Linear layers),
  `onnxruntime-float32` (`torch.onnx.export`, TorchScript exporter, opset 17, open batch and length),
  `onnxruntime-int8` (that file after `onnxruntime.quantization.quantize_dynamic`, QInt8 weights);
- keras-qa: `keras-qa-<backend>-float32` for jax, tensorflow and torch, `keras-qa-<backend>-bfloat16`
  (mixed_bfloat16) where this CPU has bfloat16 instructions, and `keras-qa-int8` (JAX,
  `QuestionAnswerer.from_pretrained(..., quantize="int8")`); `QuestionAnswerer.from_pretrained` at
  batch 32, logits from `predict_logits` (keras-qa's length buckets).

Single call: one question over one paragraph (the eval split's first), `--calls` calls after 5
warm-up calls, p50 / p95 / mean: `keras_qa.hf_pipeline.pipeline` in each keras-qa float32 engine's
process (and int8's), and transformers 4.57.1's own `pipeline("question-answering")` on the Hugging
Face export, run by `--pipeline-python` (an environment with transformers 4 and torch, as
`nox -s pipeline_parity` makes; without it that row is left out). Each keras-qa answer is compared
with transformers'.

Output: Markdown tables on stdout; `answering.json` (CPU model and flags, library versions, the
command, every engine's figures or its error) and `answering.png` in `--output-dir`. An engine that
fails is reported with the last line of its error and the run goes on.
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PEER_ENGINES = (
    "transformers-float32",
    "transformers-int8",
    "onnxruntime-float32",
    "onnxruntime-int8",
)
KERAS_BACKENDS = ("jax", "tensorflow", "torch")
KERAS_INT8_ENGINE = "keras-qa-int8"
BATCH_SIZE = 32
WARMUP_CALLS = 5
# keras-qa's logit for padding (keras_qa.models.task.PADDING_LOGIT), given to the peers' padding too.
PADDING_LOGIT = -1e9
# keras-qa's window arrays and the Hugging Face names the peers take them under.
PEER_INPUT_NAMES = {
    "token_ids": "input_ids",
    "padding_mask": "attention_mask",
    "segment_ids": "token_type_ids",
}
DEFAULT_OUTPUT_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "answering"
)
LIBRARIES = ("keras", "keras-hub", "jax", "tensorflow", "torch", "transformers", "onnxruntime")
CPU_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512_vnni", "avx_vnni")


class Unavailable(Exception):
    """An engine this installation or CPU does not offer (reported, not a failure)."""


# ---------------------------------------------------------------------------------------------------
# Engine names.


def keras_engine(backend, precision):
    return f"keras-qa-{backend}-{precision}"


def all_engines(with_bfloat16):
    """Every engine, peers first; the bfloat16 ones only `with_bfloat16`."""
    engines = list(PEER_ENGINES)
    engines += [keras_engine(backend, "float32") for backend in KERAS_BACKENDS]
    if with_bfloat16:
        engines += [keras_engine(backend, "bfloat16") for backend in KERAS_BACKENDS]
    return engines + [KERAS_INT8_ENGINE]


def is_peer(engine):
    return engine in PEER_ENGINES


def engine_backend(engine):
    """The Keras backend of a keras-qa engine (int8 runs on JAX); "torch" for the peers."""
    if is_peer(engine):
        return "torch"
    return "jax" if engine == KERAS_INT8_ENGINE else engine.split("-")[2]


def engine_precision(engine):
    return engine.rsplit("-", 1)[1]


# ---------------------------------------------------------------------------------------------------
# Child processes: one engine over the windows, or transformers' pipeline for single calls.


def load_windows(path):
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


def timed_passes(run_pass):
    """An untimed pass, then a timed one: `(its logits, first pass seconds, timed seconds)`."""
    began = time.perf_counter()
    run_pass()
    first_pass_s = time.perf_counter() - began
    began = time.perf_counter()
    logits = run_pass()
    return logits, first_pass_s, time.perf_counter() - began


def peer_batches(windows):
    """The windows sorted by length, `BATCH_SIZE` a batch: `[(rows, longest length)]`."""
    lengths = windows["padding_mask"].sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    batches = []
    for begin in range(0, len(order), BATCH_SIZE):
        rows = order[begin : begin + BATCH_SIZE]
        batches.append((rows, int(lengths[rows].max())))
    return batches


def peer_pass(windows, run_batch, input_names):
    """Logits of every window from `run_batch` (a feed of int64 arrays -> start, end logits),
    padded to the windows' full length with the padding logit."""
    count, width = windows["token_ids"].shape
    start_logits = np.full((count, width), PADDING_LOGIT, np.float32)
    end_logits = np.full((count, width), PADDING_LOGIT, np.float32)
    for rows, length in peer_batches(windows):
        feed = {
            PEER_INPUT_NAMES[key]: windows[key][rows, :length].astype(np.int64)
            for key in PEER_INPUT_NAMES
            if PEER_INPUT_NAMES[key] in input_names
        }
        starts, ends = run_batch(feed)
        padding = windows["padding_mask"][rows, :length] == 0
        start_logits[rows, :length] = np.where(padding, PADDING_LOGIT, starts)
        end_logits[rows, :length] = np.where(padding, PADDING_LOGIT, ends)
    return start_logits, end_logits


def model_input_names(model):
    """The Hugging Face input names a transformers model's forward takes (DistilBERT: no segments)."""
    import inspect

    taken = inspect.signature(model.forward).parameters
    return [name for name in PEER_INPUT_NAMES.values() if name in taken]


def load_peer_model(hf_folder):
    """The export as transformers' PyTorch model, in float32, for inference."""
    import torch
    import transformers

    return transformers.AutoModelForQuestionAnswering.from_pretrained(
        hf_folder, dtype=torch.float32
    ).eval()


def transformers_runner(job, int8):
    """`(run_batch, input names)` of the export on transformers / PyTorch, int8 on request."""
    import torch

    model = load_peer_model(job["hf_folder"])
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

    def run_batch(feed):
        with torch.inference_mode():
            output = model(**{name: torch.from_numpy(value) for name, value in feed.items()})
        return output.start_logits.numpy(), output.end_logits.numpy()

    return run_batch, model_input_names(model)


def onnx_export(hf_folder, work_dir):
    """The export as ONNX (float32), written once into `work_dir` and reused."""
    path = os.path.join(work_dir, "peer-float32.onnx")
    if os.path.exists(path):
        return path
    import torch

    model = load_peer_model(hf_folder)
    names = model_input_names(model)
    sample = tuple(torch.ones((2, 16), dtype=torch.long) for _ in names)
    axes = {name: {0: "batch", 1: "length"} for name in [*names, "start_logits", "end_logits"]}
    torch.onnx.export(
        model,
        sample,
        path + ".partial",
        input_names=names,
        output_names=["start_logits", "end_logits"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    os.replace(path + ".partial", path)
    return path


def onnx_int8(source):
    """ONNX Runtime's dynamic int8 quantization of `source`, written once beside it."""
    path = source.replace("float32", "int8")
    if not os.path.exists(path):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(source, path + ".partial", weight_type=QuantType.QInt8)
        os.replace(path + ".partial", path)
    return path


def onnxruntime_runner(job, int8):
    """`(run_batch, input names)` of the export on ONNX Runtime, int8 on request."""
    import onnxruntime

    path = onnx_export(job["hf_folder"], job["work_dir"])
    if int8:
        path = onnx_int8(path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])

    def run_batch(feed):
        starts, ends = session.run(["start_logits", "end_logits"], feed)
        return starts, ends

    return run_batch, [value.name for value in session.get_inputs()]


def peer_worker(engine, job, windows):
    """Time a peer over the windows; `(logits, result)`."""
    began = time.perf_counter()
    make_runner = transformers_runner if engine.startswith("transformers") else onnxruntime_runner
    run_batch, input_names = make_runner(job, int8=engine.endswith("int8"))
    prepare_s = time.perf_counter() - began
    logits, first_pass_s, timed_s = timed_passes(lambda: peer_pass(windows, run_batch, input_names))
    return logits, {"prepare_s": prepare_s, "first_pass_s": first_pass_s, "timed_s": timed_s}


def keras_answerer(model_dir, precision):
    """keras-qa's `QuestionAnswerer` in `precision` ("float32", "bfloat16" or "int8")."""
    import keras_qa

    if precision != "int8":
        dtype = "mixed_bfloat16" if precision == "bfloat16" else "float32"
        return keras_qa.QuestionAnswerer.from_pretrained(
            model_dir, batch_size=BATCH_SIZE, dtype=dtype
        )
    try:
        return keras_qa.QuestionAnswerer.from_pretrained(
            model_dir, batch_size=BATCH_SIZE, quantize="int8"
        )
    except TypeError as error:  # a keras-qa without int8 answering yet
        raise Unavailable(f"this keras-qa has no int8 answering ({error})") from error


def keras_worker(engine, job, windows):
    """Time a keras-qa engine over the windows (and its single call); `(logits, result)`."""
    import keras_qa

    precision = engine_precision(engine)
    began = time.perf_counter()
    answerer = keras_answerer(job["model"], precision)
    prepare_s = time.perf_counter() - began
    logits, first_pass_s, timed_s = timed_passes(
        lambda: keras_qa.predict_logits(answerer.model, windows, BATCH_SIZE)
    )
    result = {"prepare_s": prepare_s, "first_pass_s": first_pass_s, "timed_s": timed_s}
    if job["single_call"]:
        result["single_call"] = keras_single_call(job["model"], precision, job["single_call"])
    return logits, result


def keras_single_call(model_dir, precision, single_call):
    """keras-qa's drop-in pipeline answering one question again and again, or why it could not."""
    from keras_qa.hf_pipeline import pipeline

    dtypes = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
    options = {"quantize": "int8"} if precision == "int8" else {"dtype": dtypes[precision]}
    try:
        qa = pipeline("question-answering", model=model_dir, **options)
    except TypeError as error:  # a keras-qa without int8 answering yet
        return {"status": "unavailable", "error": str(error)}
    return call_latency(
        lambda: qa(question=single_call["question"], context=single_call["context"]),
        single_call["calls"],
    )


def call_latency(call, calls):
    """p50 / p95 / mean milliseconds of `calls` calls after the warm-up ones, and the answer."""
    for _ in range(WARMUP_CALLS):
        answer = call()
    milliseconds = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        milliseconds.append(1000 * (time.perf_counter() - began))
    return {
        "status": "ok",
        "calls": calls,
        "p50_ms": statistics.median(milliseconds),
        "p95_ms": percentile(milliseconds, 0.95),
        "mean_ms": statistics.fmean(milliseconds),
        "answer": {key: answer[key] for key in ("answer", "start", "end", "score")},
    }


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def engine_child(engine, job_path):
    """The `--engine` mode: run one engine, write its logits (.npz) and its figures (JSON)."""
    with open(job_path, encoding="utf-8") as file:
        job = json.load(file)
    windows = load_windows(job["windows"])
    worker = peer_worker if is_peer(engine) else keras_worker
    try:
        logits, result = worker(engine, job, windows)
    except Unavailable as reason:
        result = {"status": "unavailable", "error": str(reason)}
    else:
        np.savez(job["logits"], start_logits=logits[0], end_logits=logits[1])
        count = len(windows["token_ids"])
        result.update(status="ok", windows=count, windows_per_s=count / result["timed_s"])
    with open(job["result"], "w", encoding="utf-8") as file:
        json.dump(result, file)


def pipeline_child(job_path):
    """The `--pipeline-call` mode (under `--pipeline-python`): transformers' own pipeline, one
    question again and again."""
    with open(job_path, encoding="utf-8") as file:
        job = json.load(file)
    import torch
    import transformers

    folder, single_call = job["hf_folder"], job["single_call"]
    qa = transformers.pipeline("question-answering", model=folder, tokenizer=folder, device=-1)
    result = call_latency(
        lambda: qa(question=single_call["question"], context=single_call["context"]),
        single_call["calls"],
    )
    result.update(transformers=transformers.__version__, torch=torch.__version__)
    with open(job["result"], "w", encoding="utf-8") as file:
        json.dump(result, file)


# ---------------------------------------------------------------------------------------------------
# The parent: windows, children, scores.


def eval_windows(model_dir):
    """`(examples, features)`: the eval split and all its windows at the model's settings."""
    import keras_qa

    with open(os.path.join(model_dir, "keras_qa.json"), encoding="utf-8") as file:
        config = json.load(file)
    examples = keras_qa.load_examples("bundled", split="eval")
    features = keras_qa.prepare_eval_features(
        examples, keras_qa.load_tokenizer(model_dir), config["max_length"], config["doc_stride"]
    )
    return examples, features


def complete_examples(examples, all_features, features):
    """`(examples, features, rows)` to score with: the examples all of whose windows (among
    `all_features`) are in `features`, those windows (`example_index` renumbered to the examples
    kept) and their rows in `features`."""
    total_windows = np.bincount(all_features["example_index"], minlength=len(examples))
    seen = np.bincount(features["example_index"], minlength=len(examples))
    kept = np.flatnonzero(seen == total_windows)
    rows = np.flatnonzero(np.isin(features["example_index"], kept))
    renumbered = np.searchsorted(kept, features["example_index"][rows])
    subset = {name: array[rows] for name, array in features.items()}
    subset["example_index"] = renumbered.astype(features["example_index"].dtype)
    return [examples[index] for index in kept], subset, rows


def score_logits(scoring, start_logits, end_logits):
    """EM / F1 of logits over the completely included examples."""
    from keras_qa.evaluation.squad_metrics import squad_score
    from keras_qa.text.decoding import decode_answers

    examples, features, rows = scoring
    answers = decode_answers(examples, features, start_logits[rows], end_logits[rows])
    scores = squad_score(answers, examples)
    return {"exact_match": scores["exact_match"], "f1": scores["f1"]}


def child_environment(engine):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TRANSFORMERS_VERBOSITY="error")
    if is_peer(engine):
        environment["USE_TF"] = "0"
    else:
        environment["KERAS_BACKEND"] = engine_backend(engine)
    return environment


def run_child(label, command, environment, result_path):
    """Run a child; its result JSON, or a failure record with its error's last line."""
    began = time.perf_counter()
    try:
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
    except OSError as error:  # e.g. a --pipeline-python that is not there
        return {"status": "failed", "error": f"{command[0]}: {error}"}
    print(
        f"[{label}] exit {done.returncode} in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    if done.returncode != 0 or not os.path.exists(result_path):
        tail = done.stderr.strip().splitlines()[-15:]
        print("\n".join(tail), file=sys.stderr)
        last = tail[-1] if tail else f"exit status {done.returncode}"
        return {"status": "failed", "error": last}
    with open(result_path, encoding="utf-8") as file:
        return json.load(file)


def times_single_calls(engine):
    """Whether an engine's process also times keras-qa's pipeline: every keras-qa engine."""
    return not is_peer(engine)


def run_engine(engine, shared, scoring):
    """One engine in its own process, scored here."""
    prefix = os.path.join(shared["work_dir"], engine)
    job = dict(shared, logits=prefix + "-logits.npz", result=prefix + "-result.json")
    if not times_single_calls(engine):
        job["single_call"] = None
    with open(prefix + "-job.json", "w", encoding="utf-8") as file:
        json.dump(job, file)
    command = [sys.executable, os.path.abspath(__file__), "--engine", engine, prefix + "-job.json"]
    result = {
        "engine": engine,
        **run_child(engine, command, child_environment(engine), job["result"]),
    }
    if result["status"] == "ok":
        with np.load(job["logits"]) as logits:
            result.update(score_logits(scoring, logits["start_logits"], logits["end_logits"]))
    return result


def run_pipeline_reference(pipeline_python, shared):
    """transformers' own pipeline's single call, under `pipeline_python`."""
    job_path = os.path.join(shared["work_dir"], "pipeline-job.json")
    job = dict(shared, result=os.path.join(shared["work_dir"], "pipeline-result.json"))
    with open(job_path, "w", encoding="utf-8") as file:
        json.dump(job, file)
    command = [pipeline_python, os.path.abspath(__file__), "--pipeline-call", job_path]
    environment = dict(os.environ, USE_TF="0", TRANSFORMERS_VERBOSITY="error")
    return run_child("transformers pipeline", command, environment, job["result"])


def export_huggingface(model_dir, work_dir):
    """The model's Hugging Face export (`python -m keras_qa.export`), on JAX, into `work_dir`."""
    output = os.path.join(work_dir, "hf")
    command = [
        sys.executable,
        "-m",
        "keras_qa.export",
        "--model",
        model_dir,
        "--format",
        "huggingface",
        "--output",
        output,
    ]
    environment = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(command, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
    return output


def save_windows(features, path):
    names = ("token_ids", "segment_ids", "padding_mask")
    np.savez(path, **{name: features[name] for name in names if name in features})


def single_call_input(examples, calls):
    return {"question": examples[0]["question"], "context": examples[0]["context"], "calls": calls}


def same_answer(found, reference):
    if not found or not reference:
        return None
    return all(found[key] == reference[key] for key in ("answer", "start", "end"))


def single_call_rows(results, reference):
    """The single-call rows: transformers' pipeline first, then each keras-qa one with whether its
    answer is transformers'."""
    rows = []
    if reference is not None:
        rows.append({"engine": "transformers pipeline (4.x)", **reference})
    expected = reference.get("answer") if reference else None
    for result in results:
        single = result.pop("single_call", None)
        if single is None:
            continue
        row = {"engine": f"pipeline {result['engine']}", **single}
        row["same_as_transformers"] = same_answer(single.get("answer"), expected)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------
# Report: tables, chart, machine.


def figure_or_blank(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def reference_figures(results):
    """`(fastest peer's windows/s, transformers-float32's, {backend: keras-qa float32 F1})`."""
    measured = [r for r in results if r["status"] == "ok"]
    peers = [r["windows_per_s"] for r in measured if is_peer(r["engine"])]
    transformers = [r["windows_per_s"] for r in measured if r["engine"] == "transformers-float32"]
    float32_f1 = {
        engine_backend(r["engine"]): r["f1"]
        for r in measured
        if not is_peer(r["engine"]) and r["engine"].endswith("-float32")
    }
    peer_f1 = [r["f1"] for r in measured if r["engine"] == "transformers-float32"]
    if peer_f1:
        float32_f1["peers"] = peer_f1[0]
    return max(peers, default=None), (transformers or [None])[0], float32_f1


def engines_table(results):
    fastest_peer, transformers, float32_f1 = reference_figures(results)
    lines = [
        "| engine | windows/s | x fastest peer | x transformers float32 | EM | F1 | ΔF1 vs float32 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for result in results:
        if result["status"] != "ok":
            notes.append(f"- {result['engine']}: {result['status']}: {result['error']}")
            continue
        speed = result["windows_per_s"]
        base_f1 = float32_f1.get(
            "peers" if is_peer(result["engine"]) else engine_backend(result["engine"])
        )
        cells = [
            result["engine"],
            f"{speed:.1f}",
            figure_or_blank(speed / fastest_peer if fastest_peer else None),
            figure_or_blank(speed / transformers if transformers else None),
            f"{result['exact_match']:.2f}",
            f"{result['f1']:.2f}",
            figure_or_blank(None if base_f1 is None else result["f1"] - base_f1, 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "\nΔF1: keras-qa engines against keras-qa float32 on the same backend (int8: JAX); "
        "peers against transformers-float32."
    )
    return "\n".join(lines + notes)


def single_call_table(rows, note):
    lines = [
        "| single call | p50 ms | p95 ms | mean ms | answer | same as transformers |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        if row.get("status") != "ok":
            lines.append(f"| {row['engine']} | {row.get('status')}: {row.get('error')} | | | | |")
            continue
        same = row.get("same_as_transformers")
        lines.append(
            f"| {row['engine']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
            f"{row['mean_ms']:.1f} | {row['answer']['answer']!r} | "
            f"{'' if same is None else ('yes' if same else 'no')} |"
        )
    return "\n".join(lines + ([f"\n{note}"] if note else []))


def bar_chart(results, path):
    """Windows/s per engine as horizontal bars (peers grey, keras-qa red), F1 beside each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results if r["status"] == "ok"]
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(measured) + 1.4))
    positions = range(len(measured))
    speeds = [r["windows_per_s"] for r in measured]
    colours = ["#999999" if is_peer(r["engine"]) else "#d00000" for r in measured]
    axis.barh(positions, speeds, color=colours)
    axis.set_yticks(positions, [r["engine"] for r in measured], fontsize=8)
    axis.invert_yaxis()
    for position, speed, result in zip(positions, speeds, measured):
        axis.text(speed, position, f"  F1 {result['f1']:.1f}", va="center", fontsize=8)
    axis.set_xlim(0, 1.25 * max(speeds, default=1))
    axis.set_xlabel("windows / s")
    axis.set_title("Answering SQuAD eval windows: peers (grey) and keras-qa (red)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def machine_description():
    """The CPU model, its bfloat16 / AMX / VNNI flags, and the versions of the libraries."""
    from keras_qa.runtime.cpu import cpu_has_bfloat16

    model_name, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model_name is None:
                    model_name = value.strip()
                elif key.strip() == "flags":
                    flags.update(value.split())
    except OSError:  # not Linux
        model_name = platform.processor() or platform.machine()
    versions = {"python": platform.python_version()}
    for library in LIBRARIES:
        try:
            versions[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = None
    return {
        "cpu_model": model_name,
        "cpus": os.cpu_count(),
        "cpu_has_bfloat16": cpu_has_bfloat16(),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
        "versions": versions,
    }


# ---------------------------------------------------------------------------------------------------
# Command line.


def parse_arguments(argv):
    known = all_engines(with_bfloat16=True)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"engines: {', '.join(known)} (the bfloat16 ones only on a CPU with bfloat16 "
        "instructions)",
    )
    parser.add_argument("--model", help="a directory written by `python -m keras_qa.train`")
    parser.add_argument(
        "--windows", type=int, help="only the first N windows of the eval split (default: all)"
    )
    parser.add_argument("--engines", help="comma-separated engines (default: all; listed below)")
    parser.add_argument(
        "--calls", type=int, default=200, help="single calls timed, after 5 warm-up calls (200)"
    )
    parser.add_argument(
        "--pipeline-python",
        help="a Python with transformers 4.57.1 and torch for transformers' own pipeline (here: "
        ".nox/pipeline_parity/bin/python); without it, that single-call row is left out",
    )
    parser.add_argument(
        "--hf-folder",
        help="a Hugging Face export of --model to reuse (default: one is exported into a "
        "temporary folder when a peer or --pipeline-python needs it)",
    )
    parser.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        help="where answering.json and answering.png go (default: benchmarks/results/answering)",
    )
    parser.add_argument("--engine", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--pipeline-call", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.engine or args.pipeline_call:
        return args
    if not args.model:
        parser.error("--model is required")
    if (args.windows is not None and args.windows < 1) or args.calls < 1:
        parser.error("--windows and --calls must be at least 1")
    if args.engines:
        args.engines = args.engines.split(",")
        unknown = sorted(set(args.engines) - set(known))
        if unknown:
            parser.error(f"unknown engines {unknown}; choose from {', '.join(known)}")
    return args


def huggingface_folder(args, engines, work_dir):
    """`(folder or None, why there is none)`: the export the peers and transformers' pipeline use."""
    if args.hf_folder:
        return os.path.abspath(args.hf_folder), None
    if not (any(map(is_peer, engines)) or args.pipeline_python):
        return None, None
    try:
        return export_huggingface(os.path.abspath(args.model), work_dir), None
    except RuntimeError as error:
        return None, f"the Hugging Face export failed: {error}"


def race(args, engines, work_dir, with_bfloat16):
    """The run's figures: every engine's result, the single-call rows and a note on what they
    leave out, and how many windows and questions."""
    examples, all_features = eval_windows(args.model)
    features = {name: array[: args.windows] for name, array in all_features.items()}
    scoring = complete_examples(examples, all_features, features)
    if not scoring[0]:
        first = int(np.sum(all_features["example_index"] == 0))
        raise SystemExit(
            f"--windows {args.windows} holds no whole question (the first has {first})"
        )
    windows_path = os.path.join(work_dir, "windows.npz")
    save_windows(features, windows_path)
    hf_folder, export_error = huggingface_folder(args, engines, work_dir)
    shared = {
        "model": os.path.abspath(args.model),
        "windows": windows_path,
        "work_dir": work_dir,
        "hf_folder": hf_folder,
        "single_call": single_call_input(examples, args.calls),
    }
    results = []
    for engine in engines:
        if engine.endswith("-bfloat16") and not with_bfloat16:
            error = "this CPU has no bfloat16 instructions"
            results.append({"engine": engine, "status": "unavailable", "error": error})
        elif is_peer(engine) and hf_folder is None:
            results.append({"engine": engine, "status": "failed", "error": export_error})
        else:
            results.append(run_engine(engine, shared, scoring))
    reference, note = None, "transformers' pipeline: not run (no --pipeline-python)"
    if args.pipeline_python and hf_folder:
        reference, note = run_pipeline_reference(args.pipeline_python, shared), None
    elif args.pipeline_python:
        note = f"transformers' pipeline: not run ({export_error})"
    return {
        "windows": len(features["token_ids"]),
        "questions_scored": len(scoring[0]),
        "engines": results,
        "single_call": single_call_rows(results, reference),
        "single_call_note": note,
    }


def write_report(args, machine, run, seconds):
    """`answering.json` and `answering.png` in the output folder."""
    os.makedirs(args.output_dir, exist_ok=True)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "model": os.path.abspath(args.model),
        "batch_size": BATCH_SIZE,
        "machine": machine,
        "seconds": seconds,
        **run,
    }
    with open(os.path.join(args.output_dir, "answering.json"), "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2)
    bar_chart(run["engines"], os.path.join(args.output_dir, "answering.png"))


def main(argv=None):
    args = parse_arguments(argv)
    if args.engine:
        return engine_child(*args.engine)
    if args.pipeline_call:
        return pipeline_child(args.pipeline_call)
    from keras_qa.runtime.cpu import cpu_has_bfloat16

    began = time.perf_counter()
    with_bfloat16 = cpu_has_bfloat16()
    work_dir = tempfile.mkdtemp(prefix="keras-qa-answering-")
    try:
        run = race(args, args.engines or all_engines(with_bfloat16), work_dir, with_bfloat16)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    machine = machine_description()
    print(
        f"\n{run['windows']} windows of the bundled eval split ({run['questions_scored']} questions "
        f"scored), batch {BATCH_SIZE}; {machine['cpu_model']}, {machine['cpus']} CPUs\n",
        flush=True,
    )
    print(engines_table(run["engines"]) + "\n")
    print(single_call_table(run["single_call"], run["single_call_note"]), flush=True)
    write_report(args, machine, run, time.perf_counter() - began)
    print(
        f"\n{time.perf_counter() - began:.0f} s; wrote {args.output_dir}/answering.json and "
        "answering.png",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
