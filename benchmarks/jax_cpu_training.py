"""Where a JAX training step spends its time on a CPU, and what keras-qa changes about it.

Two parts (about 2 and 6 minutes on 2 cores; the machine is shared, so compare within one run):

- `products`: GFLOP/s of the matrix products of a MiniLM / DistilBERT training step, as XLA:CPU runs
  them in float32, in bfloat16 as a plain mixed_bfloat16 step asks (bfloat16 result; gradients
  reading transposed operands), and as `keras_qa.runtime.xla_cpu.fast_bfloat16_products` computes them
  (operands copied into row-major order, float32 result). It shows which products are slow.
- `steps`: one MiniLM training step (batch 16, lengths 192 and 384; the quickstart's model and
  optimizer) in a fresh process for each setting: float32 with glibc's default malloc, float32 with
  malloc keeping freed memory (`keras_qa.runtime.allocator`'s tunables, from the process's start, as the
  train command runs; the two bfloat16 settings too), mixed_bfloat16 plain, mixed_bfloat16 with the
  fast products. Seconds per step, the page faults and system time of a step, and the seconds the
  first step of each length took beyond a later one (its tracing and compilation; with
  `JAX_COMPILATION_CACHE_DIR` set, loading it from there when an earlier run wrote it), and how many
  cores each kind of thread kept busy during the timed steps.

    KERAS_BACKEND=jax python benchmarks/jax_cpu_training.py --output-dir benchmarks/results/jax_cpu

A third part, `compile` (about 3 minutes; run only when named), asks whether compiling ahead would
pay: with the fast products it compiles the training steps of `--lengths` past the first one after
another, then over two threads, then on a second thread while the main one trains at the first
length, and gives each way's seconds and the cores its threads kept busy:

    KERAS_BACKEND=jax python benchmarks/jax_cpu_training.py --part compile --lengths 192,64,128,256,320
"""

import argparse
import functools
import json
import math
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from throughput import RESULT_PREFIX, worker_results  # noqa: E402 (this script's folder is on the path)
from time_to_accuracy import cpu_model  # noqa: E402

from keras_qa.runtime.allocator import freed_memory_environment  # noqa: E402

STEP_SETTINGS = {
    "float32, glibc's malloc": {"policy": "float32", "keep_freed_memory": False, "fast": False},
    "float32, keep_freed_memory": {"policy": "float32", "keep_freed_memory": True, "fast": False},
    "mixed_bfloat16, plain": {"policy": "mixed_bfloat16", "keep_freed_memory": True, "fast": False},
    "mixed_bfloat16, fast products": {
        "policy": "mixed_bfloat16",
        "keep_freed_memory": True,
        "fast": True,
    },
}


def gflops(function, operands, flops, repeats=6):
    import jax

    function = jax.jit(function)
    jax.block_until_ready(function(*operands))
    started = time.perf_counter()
    for _ in range(repeats):
        jax.block_until_ready(function(*operands))
    return flops / ((time.perf_counter() - started) / repeats) / 1e9


def product_cases():
    """(name, einsum subscripts, operand shapes): the products of an encoder layer's training step."""
    tokens, hidden, inner = 16 * 384, 768, 3072
    heads = [(16, 12, 384, 32, "MiniLM"), (8, 12, 384, 64, "DistilBERT")]
    cases = [
        ("dense forward x @ w", "mk,kn->mn", [(tokens, hidden), (hidden, inner)]),
        ("dense weight gradient x.T @ g", "mk,mn->kn", [(tokens, hidden), (tokens, inner)]),
        ("dense input gradient g @ w.T", "mn,kn->mk", [(tokens, inner), (hidden, inner)]),
    ]
    for batch, count, length, size, model in heads:
        q = (batch, length, count, size)
        cases.append((f"attention scores, head size {size} ({model})", "btnh,bsnh->bnts", [q, q]))
        weights = (batch, count, length, length)
        cases.append(
            (f"attention output, head size {size} ({model})", "bnts,bsnh->btnh", [weights, q])
        )
    return cases


def einsum_flops(subscripts, shapes):
    sizes = {}
    for letters, shape in zip(subscripts.split("->")[0].split(","), shapes):
        sizes.update(zip(letters, shape))
    return 2 * math.prod(sizes.values())


def measure_products():
    import jax.numpy as jnp
    import keras
    import numpy as np

    from keras_qa.runtime.xla_cpu import fast_bfloat16_products

    rows = []
    plan = {"kind": "none"}
    for name, subscripts, shapes in product_cases():
        flops = einsum_flops(subscripts, shapes)
        rng = np.random.default_rng(0)
        arrays = [rng.standard_normal(shape).astype("float32") for shape in shapes]
        bfloat16 = [jnp.asarray(array, jnp.bfloat16) for array in arrays]
        row = {"product": name, "gflop": flops / 1e9}
        plain = functools.partial(jnp.einsum, subscripts)
        row["float32"] = gflops(plain, arrays, flops)
        row["bfloat16_plain"] = gflops(plain, bfloat16, flops)
        with fast_bfloat16_products("mixed_bfloat16", plan) as fast:
            assert fast, "the fast products need JAX on a CPU with bfloat16 instructions"
            row["bfloat16_fast"] = gflops(
                functools.partial(keras.ops.einsum, subscripts), bfloat16, flops
            )
        rows.append(row)
        print(RESULT_PREFIX + json.dumps(row), flush=True)
    return rows


def hlo_instructions(dump_dir):
    """Every instruction of the optimised training-step module: name -> (opcode, line), and each
    computation's body, from XLA's text dump."""
    import glob
    import re

    # The newest train step XLA wrote is the one just compiled, for the length being profiled.
    path = sorted(glob.glob(os.path.join(dump_dir, "*train_step*cpu_after_optimizations.txt")))[-1]
    with open(path, encoding="utf-8") as file:
        text = file.read()
    bodies = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^(?:ENTRY )?%?([\w.\-]+) [^\n]*\{\n(.*?)^\}", text, re.M | re.S)
    }
    instructions = {}
    for body in bodies.values():
        for line in body.splitlines():
            match = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(", line)
            if match:
                instructions[match.group(1)] = (match.group(2), line)
    return instructions, bodies


def operation_kind(name, instructions, bodies):
    """What a profiled XLA operation computes, in the categories of docs/performance.md's profile."""
    import re

    opcode, line = instructions[name]
    body = line
    if opcode == "fusion":
        called = re.search(r"calls=%?([\w.\-]+)", line)
        body = bodies.get(called.group(1), "") if called else ""
    if re.search(r" dot\(", body):
        batched = re.search(r"lhs_batch_dims=\{\d", body)
        return "attention products (batched)" if batched else "dense products"
    if re.search(r" reduce(-window)?\(", body):
        return "reductions (bias and layer-norm gradients, softmax sums)"
    if re.search(r" (transpose|copy)\(", body) and not re.search(
        r" (exponential|tanh|erf)\(", body
    ):
        return "copies and transposes"
    return "other element-wise (GELU, softmax, layer norm, optimizer)"


def profile_step(model, inputs, targets, dump_dir):
    """Milliseconds per step of each kind of XLA operation, summed over XLA's threads (the sum
    exceeds the step's wall time where operations run side by side), and the slowest ones."""
    import collections
    import glob
    import gzip
    import tempfile

    import jax

    trace_dir = tempfile.mkdtemp(prefix="jax-trace-")
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
        for _ in range(2):
            model.train_on_batch(inputs, targets)
    trace_path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(trace_path) as file:
        events = json.load(file)
    events = events["traceEvents"] if isinstance(events, dict) else events
    instructions, bodies = hlo_instructions(dump_dir)
    kinds, operations = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("ph") == "X" and event["name"] in instructions:
            milliseconds = event["dur"] / 1000 / 2
            kinds[operation_kind(event["name"], instructions, bodies)] += milliseconds
            operations[event["name"]] += milliseconds
    slowest = [
        {"operation": name, "ms": ms, "hlo": instructions[name][1].strip()[:160]}
        for name, ms in operations.most_common(8)
    ]
    return {"ms_by_kind": dict(kinds.most_common()), "slowest": slowest}


def quickstart_model():
    """The quickstart's MiniLM question-answering model and optimizer, without dropout."""
    from keras_qa.checkpoints.loading import load_backbone
    from keras_qa.models.task import QuestionAnsweringModel
    from keras_qa.training.optimization import make_optimizer

    model = QuestionAnsweringModel(load_backbone("minilm", dropout=0.0))
    model.compile(optimizer=make_optimizer(2e-4, 1000, 0.1, 0.01))
    return model


def run_worker(options, environment, name):
    """The result rows of this script's `--worker` run with `options` in a fresh process."""
    found = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(options)],
        capture_output=True,
        text=True,
        env=environment,
    )
    rows = worker_results(found.stdout)
    if found.returncode or not rows:
        raise RuntimeError(f"{name}: the worker failed\n{found.stderr[-3000:]}")
    return rows


def step_worker(setting, lengths, steps):
    """One training step of the quickstart's MiniLM model, timed in this (fresh) process."""
    import keras
    import numpy as np

    from keras_qa.runtime.xla_cpu import fast_bfloat16_products

    keras.mixed_precision.set_dtype_policy(setting["policy"])
    keras.utils.set_random_seed(0)
    policy = setting["policy"] if setting["fast"] else "float32"
    with fast_bfloat16_products(policy, {"kind": "none"}) as fast:
        assert fast == setting["fast"]
        model = quickstart_model()
        rng = np.random.default_rng(0)
        for length in lengths:
            inputs = {
                "token_ids": rng.integers(1000, 20000, (16, length)).astype("int32"),
                "segment_ids": np.zeros((16, length), "int32"),
                "padding_mask": np.ones((16, length), "int32"),
            }
            targets = tuple(rng.integers(0, length, 16).astype("int32") for _ in range(2))
            started = time.perf_counter()
            model.train_on_batch(inputs, targets)  # traces and compiles this length's step
            first_step_seconds = time.perf_counter() - started
            model.train_on_batch(inputs, targets)  # one step to settle the allocator
            before = resource.getrusage(resource.RUSAGE_SELF)
            threads_before = thread_cpu_seconds()
            started = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(inputs, targets)
            seconds = (time.perf_counter() - started) / steps
            cores = cores_by_thread(threads_before, thread_cpu_seconds(), seconds * steps)
            after = resource.getrusage(resource.RUSAGE_SELF)
            row = {
                "length": length,
                "first_step_seconds": first_step_seconds,
                "seconds_per_step": seconds,
                "sequences_per_second": 16 / seconds,
                "page_faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
                "system_seconds_per_step": (after.ru_stime - before.ru_stime) / steps,
                "cores": cores,
            }
            if setting.get("dump_dir"):
                row["profile"] = profile_step(model, inputs, targets, setting["dump_dir"])
            print(RESULT_PREFIX + json.dumps(row), flush=True)


def thread_cpu_seconds():
    """{thread id: (name, CPU seconds, user and system)} for this process's threads, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    threads = {}
    for thread in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{thread}/stat") as file:
                stat = file.read()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # from the third field, the state
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        threads[int(thread)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return threads


def cores_by_thread(before, after, seconds):
    """Cores each kind of thread kept busy between two `thread_cpu_seconds` readings `seconds`
    apart: their sum (`all`), then per thread name (Python's main thread apart), busiest first."""
    used = {}
    for thread, (name, cpu) in after.items():
        name = "main thread (Python)" if thread == os.getpid() else name
        used[name] = used.get(name, 0.0) + cpu - before.get(thread, (name, 0.0))[1]
    used = {name: cpu / seconds for name, cpu in sorted(used.items(), key=lambda item: -item[1])}
    return {
        "all": sum(used.values()),
        **{name: cores for name, cores in used.items() if cores > 0.005},
    }


def compile_worker(setting, lengths, steps):
    """How compiling the training steps of `lengths[1:]` shares 2 cores: one length after another,
    split over two threads, and on a second thread while the main one trains at `lengths[0]`."""
    import threading

    import jax
    import keras
    import numpy as np

    from keras_qa.runtime.xla_cpu import fast_bfloat16_products

    jax.config.update("jax_enable_compilation_cache", False)  # every measurement compiles
    keras.mixed_precision.set_dtype_policy(setting["policy"])
    keras.utils.set_random_seed(0)

    def batch(length):
        inputs = {name: np.ones((16, length), "int32") for name in ("token_ids", "segment_ids")}
        inputs["padding_mask"] = np.ones((16, length), "int32")
        return inputs, (np.zeros(16, "int32"), np.zeros(16, "int32"))

    policy = setting["policy"] if setting["fast"] else "float32"
    with fast_bfloat16_products(policy, {"kind": "none"}):
        model = quickstart_model()
        trained = batch(lengths[0])
        for _ in range(2):  # compiles, then settles the allocator
            model.train_on_batch(*trained)
        started = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(*trained)
        step_seconds = (time.perf_counter() - started) / steps
        state = model._get_jax_state(
            trainable_variables=True,
            non_trainable_variables=True,
            optimizer_variables=True,
            metrics_variables=True,
        )
        state = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), state
        )
        # The step jitted as Keras jits it, but apart from Keras' jit, so its programs compile afresh.
        step = jax.jit(model.train_step, donate_argnums=0)

        def compile_lengths(chosen):
            keras.mixed_precision.set_dtype_policy(setting["policy"])  # Keras' is per thread
            for length in chosen:
                data = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), batch(length))
                step.lower(state, (*data, None)).compile()

        def timed(name, threads, train=False):
            jax.clear_caches()
            before, started, trained_steps = thread_cpu_seconds(), time.perf_counter(), 0
            for thread in threads:
                thread.start()
            while train and any(thread.is_alive() for thread in threads):
                model.train_on_batch(*trained)
                trained_steps += 1
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
            row = {"way": name, "lengths": lengths[1:], "seconds": seconds}
            if train:
                row.update(
                    steps=trained_steps,
                    step_seconds=step_seconds,
                    # What the same steps and compilation take one after the other, less this.
                    saved_seconds=trained_steps * step_seconds + rows[0]["seconds"] - seconds,
                )
            row["cores"] = cores_by_thread(before, thread_cpu_seconds(), seconds)
            print(RESULT_PREFIX + json.dumps(row), flush=True)
            rows.append(row)

        others = lengths[1:]
        rows = []
        timed(
            "one length after another", [threading.Thread(target=compile_lengths, args=(others,))]
        )
        halves = [others[0::2], others[1::2]]
        timed(
            "two threads",
            [threading.Thread(target=compile_lengths, args=(half,)) for half in halves],
        )
        timed(
            f"one thread, while the main one trains at {lengths[0]}",
            [threading.Thread(target=compile_lengths, args=(others,))],
            train=True,
        )


def measure_compilation(lengths, steps):
    """`compile_worker` for the fast-products setting (this CPU's quickstart) in a fresh process."""
    setting = STEP_SETTINGS["mixed_bfloat16, fast products"]
    options = {"setting": setting, "lengths": lengths, "steps": steps, "part": "compile"}
    return run_worker(options, freed_memory_environment(dict(os.environ)), "compilation")


def measure_steps(lengths, steps, profile=False, settings=None):
    import tempfile

    rows = []
    for name, setting in STEP_SETTINGS.items():
        if settings and name not in settings:
            continue
        environment = dict(os.environ)
        if setting["keep_freed_memory"]:  # from the process's start, as the train command does
            environment = freed_memory_environment(environment)
        if profile:  # XLA writes the optimised programs, to name what the profile times
            setting = {**setting, "dump_dir": tempfile.mkdtemp(prefix="xla-dump-")}
            flags = f"--xla_dump_to={setting['dump_dir']} --xla_dump_hlo_as_text"
            environment["XLA_FLAGS"] = (environment.get("XLA_FLAGS", "") + " " + flags).strip()
        options = {"setting": setting, "lengths": lengths, "steps": steps}
        for result in run_worker(options, environment, name):
            rows.append({"setting": name, **result})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown_table(header, rows):
    """A Markdown table: the first column left-aligned, the figures right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def profile_table(rows):
    kinds = sorted({kind for row in rows for kind in row["profile"]["ms_by_kind"]})
    cells = [
        [row["setting"], str(row["length"])]
        + [f"{row['profile']['ms_by_kind'].get(kind, 0):,.0f}" for kind in kinds]
        for row in rows
    ]
    return markdown_table(["setting", "length", *kinds], cells)


def product_table(rows):
    header = ["product", "float32", "bfloat16, plain", "bfloat16, fast products"]
    cells = [
        [row["product"]]
        + [f"{row[key]:.0f}" for key in ("float32", "bfloat16_plain", "bfloat16_fast")]
        for row in rows
    ]
    return markdown_table(header, cells)


def step_table(rows):
    header = [
        "setting",
        "length",
        "s / step",
        "sequences / s",
        "page faults / step",
        "system s / step",
        "compile s",
        "cores busy",
    ]
    cells = [
        [
            row["setting"],
            str(row["length"]),
            f"{row['seconds_per_step']:.2f}",
            f"{row['sequences_per_second']:.1f}",
            f"{row['page_faults_per_step']:,.0f}",
            f"{row['system_seconds_per_step']:.2f}",
            f"{row['first_step_seconds'] - row['seconds_per_step']:.2f}",
            f"{row['cores']['all']:.2f}",
        ]
        for row in rows
    ]
    return markdown_table(header, cells)


def compile_table(rows):
    header = ["how", "seconds", "cores busy", "main thread", "training steps", "saved s"]
    cells = [
        [
            row["way"],
            f"{row['seconds']:.1f}",
            f"{row['cores']['all']:.2f}",
            f"{row['cores'].get('main thread (Python)', 0):.2f}",
            str(row.get("steps", "")),
            f"{row['saved_seconds']:.1f}" if "saved_seconds" in row else "",
        ]
        for row in rows
    ]
    return markdown_table(header, cells)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part",
        choices=("products", "steps", "both", "compile"),
        default="both",
        help="both: products and steps; compile is run only when named",
    )
    parser.add_argument(
        "--lengths",
        default="192,384",
        help="window lengths of the timed steps (192: the quickstart's mean bucket)",
    )
    parser.add_argument("--steps", type=int, default=4, help="timed steps per length")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile each setting's step (jax.profiler and XLA's dump): milliseconds per "
        "kind of operation",
    )
    parser.add_argument(
        "--settings",
        help="only these step settings, separated by ';' (default: all): "
        + "; ".join(STEP_SETTINGS),
    )
    parser.add_argument("--output-dir", help="where products.json / steps.json go (optional)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        options = json.loads(args.worker)
        worker = compile_worker if options.get("part") == "compile" else step_worker
        worker(options["setting"], options["lengths"], options["steps"])
        return
    import jax

    if jax.default_backend() != "cpu":
        parser.error("this benchmark is about XLA:CPU; run it on a machine without an accelerator")
    tables = {}
    if args.part in ("products", "both"):
        tables["products"] = measure_products()
        print("\nGFLOP/s\n" + product_table(tables["products"]))
    if args.part in ("steps", "both"):
        lengths = [int(length) for length in args.lengths.split(",")]
        settings = args.settings.split(";") if args.settings else None
        unknown = set(settings or ()) - set(STEP_SETTINGS)
        if unknown:
            parser.error(f"unknown settings: {sorted(unknown)}")
        tables["steps"] = measure_steps(lengths, args.steps, args.profile, settings)
        print("\n" + step_table(tables["steps"]))
        if args.profile:
            print("\nms per step by kind of operation\n" + profile_table(tables["steps"]))
    if args.part == "compile":
        lengths = [int(length) for length in args.lengths.split(",")]
        if len(lengths) < 3:
            parser.error(
                "--part compile trains at the first length and compiles the others: give 3 or more"
            )
        tables["compile"] = measure_compilation(lengths, args.steps)
        print("\n" + compile_table(tables["compile"]))
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        for name, rows in tables.items():
            with open(os.path.join(args.output_dir, f"{name}.json"), "w") as file:
                described = {
                    "date": time.strftime("%Y-%m-%d"),
                    "cpu": cpu_model(),
                    "cpus": os.cpu_count(),
                }
                json.dump({**described, "jax": jax.__version__, "rows": rows}, file, indent=1)


if __name__ == "__main__":
    main()
