"""The operation that holds JAX training back on these CPUs, shown in a minute: XLA:CPU against oneDNN.

Each matrix product of a training step, at the operand shapes of the MiniLM quickstart (batch 16 at
192 tokens, its mean bucket length) and of DistilBERT (batch 16 at 384), is timed in JAX as
keras-qa's fast bfloat16 products feed it to XLA:CPU (bfloat16 operands in row-major order, float32
result: XLA's fastest formulation here) and, if torch is installed, in PyTorch, whose bfloat16
products run on oneDNN (with AMX where the CPU has it). Both use every core. The dense products run
at about the same speed in both; the attention's batched products (one small product per window and
head) run several times slower in XLA:CPU. No Keras, no keras-qa: a script to hand to XLA's authors.

    python benchmarks/jax_cpu_slow_ops.py --output benchmarks/results/jax_cpu/slow_ops.json
"""

import argparse
import json
import os
import time

import numpy as np

# (model, product, batch of matrices, M, K, N): (batch, M, K) x (batch, K, N).
MINILM = {"tokens": 16 * 192, "hidden": 384, "inner": 1536, "windows": 16, "length": 192}
DISTILBERT = {"tokens": 16 * 384, "hidden": 768, "inner": 3072, "windows": 16, "length": 384}


def product_cases():
    """The products of one encoder layer's training step, forward and backward, for both models."""
    cases = []
    for model, shape, head_size in (("MiniLM", MINILM, 32), ("DistilBERT", DISTILBERT, 64)):
        tokens, hidden, inner = shape["tokens"], shape["hidden"], shape["inner"]
        heads, length = hidden // head_size, shape["length"]
        attention_batch = shape["windows"] * heads
        cases += [
            (model, "dense: query / key / value / output", 1, tokens, hidden, hidden),
            (model, "dense: feed-forward in", 1, tokens, hidden, inner),
            (model, "dense: feed-forward out", 1, tokens, inner, hidden),
            (model, "dense: a weight gradient", 1, hidden, tokens, inner),
            (model, f"attention scores (head size {head_size})", attention_batch, length,
             head_size, length),
            (model, f"attention output (head size {head_size})", attention_batch, length, length,
             head_size),
        ]
    return cases


def seconds_per_call(function, repeats, rounds=3):
    """The fastest of `rounds` averages over `repeats` calls: the machine is shared, and the
    fastest round is the one least disturbed."""
    function()  # compile, warm the caches
    function()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            function()
        timings.append((time.perf_counter() - started) / repeats)
    return min(timings)


def operand_shapes(batch, rows, inner, columns):
    """A dense product's operands are plain matrices (as in the step), attention's are batched."""
    leading = (batch,) if batch > 1 else ()
    return leading + (rows, inner), leading + (inner, columns)


def jax_gflops(batch, rows, inner, columns, repeats):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    left_shape, right_shape = operand_shapes(batch, rows, inner, columns)
    left = jnp.asarray(rng.standard_normal(left_shape), jnp.bfloat16)
    right = jnp.asarray(rng.standard_normal(right_shape), jnp.bfloat16)
    product = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
    seconds = seconds_per_call(lambda: product(left, right).block_until_ready(), repeats)
    return 2 * batch * rows * inner * columns / seconds / 1e9


def torch_gflops(batch, rows, inner, columns, repeats):
    import torch

    generator = torch.Generator().manual_seed(0)
    left_shape, right_shape = operand_shapes(batch, rows, inner, columns)
    left = torch.randn(left_shape, generator=generator).to(torch.bfloat16)
    right = torch.randn(right_shape, generator=generator).to(torch.bfloat16)
    with torch.inference_mode():
        seconds = seconds_per_call(lambda: torch.matmul(left, right), repeats)
    return 2 * batch * rows * inner * columns / seconds / 1e9


def measure(repeats):
    try:
        import torch

        torch.set_num_threads(os.cpu_count())
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    rows = []
    for model, name, batch, m, k, n in product_cases():
        row = {"model": model, "product": name, "shape": [batch, m, k, n]}
        row["xla_gflops"] = jax_gflops(batch, m, k, n, repeats)
        if torch_version:
            row["onednn_gflops"] = torch_gflops(batch, m, k, n, repeats)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows, torch_version


def table(rows):
    lines = [
        "| model | product | (batch) M x K x N | XLA:CPU GFLOP/s | oneDNN (torch) GFLOP/s | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        batch, m, k, n = row["shape"]
        shape = (f"({batch}) " if batch > 1 else "") + f"{m} x {k} x {n}"
        onednn = row.get("onednn_gflops")
        ratio = f"{row['xla_gflops'] / onednn:.2f}" if onednn else ""
        onednn = f"{onednn:.0f}" if onednn else "(no torch)"
        lines.append(
            f"| {row['model']} | {row['product']} | {shape} | {row['xla_gflops']:.0f} | "
            f"{onednn} | {ratio} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per product")
    parser.add_argument("--output", help="a JSON file for the figures (optional)")
    args = parser.parse_args()
    import jax

    if jax.default_backend() != "cpu":
        parser.error("this benchmark is about XLA:CPU; run it on a machine without an accelerator")
    rows, torch_version = measure(args.repeats)
    print("\nbfloat16 operands, float32 result\n" + table(rows))
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as file:
            versions = {"jax": jax.__version__, "torch": torch_version, "cores": os.cpu_count()}
            json.dump({**versions, "rows": rows}, file, indent=1)


if __name__ == "__main__":
    main()
