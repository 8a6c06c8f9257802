"""One SQuAD-train-sized epoch of the keras.io recipe's shape on a GPU: sequences/s, epoch time, MFU.

    KERAS_BACKEND=jax python benchmarks/gpu_epoch.py --output gpu-jax.json [--steps 300]
        [--dropout 0.1,0] [--peak-tflops 989] [--dtype mixed_float16] [--tiny]

What runs: keras-qa's training path as the keras.io example "Question answering with Hugging Face
Transformers" shapes it: a DistilBERT-base-cased-shaped `keras_hub.models.DistilBertBackbone` (vocabulary
28,996, 6 layers, 12 heads, hidden 768, intermediate 3,072, 512 positions; random weights, nothing
downloaded) in `keras_qa.models.task.QuestionAnsweringModel` (its default loss and metrics), Adam 5e-5 without
warm-up or weight decay (`make_optimizer(5e-5, total_steps, warmup=0.0, weight_decay=0.0)`), under the
`mixed_float16` dtype policy (Keras adds loss scaling), batch 32, every window padded to 384 tokens (as
the example pads them), fed to `model.fit` by `keras_qa.models.batching.BucketedBatches(bucket_width=None)` as
`keras_qa.training.run` feeds it (`as_fit_input()`, `epoch_callback()`, `shuffle=False`). Dropout is the
backbone's default 0.1, as in the example; `--dropout 0.1,0` measures 0 as well (Keras' attention can
then use its fused kernel), as time allows: a further rate is skipped (and listed under "skipped") when the
first one's build, compile and training time would take the run past `--budget-s` (210 s).

The data: 88,641 synthetic windows (SQuAD v1.1's train windows at 384 / 128 with DistilBERT's cased
vocabulary): random token ids, real lengths drawn around 184 tokens (the mean of the bundled SQuAD
windows), padding after them, random start <= end inside them. Random data trains as fast as real data
at a fixed shape; only `real_tokens_per_s` depends on the lengths.

Timing: `fit` over 1 batch (tracing, compilation and the first step: `compile_s`), `fit` over
`--warmup-steps` batches, then one `fit` over `--steps` batches, timed from its call until a weight
read back to the host (`keras.ops.convert_to_numpy`) has waited for the last step. `seq_per_s` is
`steps x batch / seconds`; `epoch_s` is 88,641 / `seq_per_s` (one SQuAD v1.1 epoch, the Python loop of
Keras and the batch assembly included, evaluation not).

FLOPs (the usual estimate, padding counted since it is computed):
    training  = 6 x N x tokens + 12 x L x d x S^2 x sequences
    inference = 2 x N x tokens +  4 x L x d x S^2 x sequences
where N is the model's parameters less the token and position embeddings (the span head included:
about 42.5M here), L the layers (6), d the hidden size (768), S the padded length (384) and
tokens = sequences x S. The attention term is QK^T and AV: S^2 x d multiply-adds (2 x S^2 x d FLOPs)
each per layer, so 4 x L x d x S^2 forward, three times that for the forward and backward passes.
`mfu` is achieved TFLOP/s over the GPU's dense fp16 tensor peak: from the device name (H100 SXM
and H200 989, H100 NVL 835, H100 PCIe 756, A100 312, L4 121, ...) or `--peak-tflops`.

Inference (`--inference-windows`, 0 to skip): `keras_qa.models.batching.predict_logits` at batch 32, padded to
384, on the first windows of the same set, after one warm-up call that compiles.

Results go to `--output` as JSON (rewritten after each measurement, so a run stopped by a timeout keeps
what it measured) and one summary line per measurement on stdout. `--tiny` (2 layers, hidden 64, 64
tokens, a few steps, float32) checks the script on a CPU in seconds.
"""

import argparse
import json
import os
import platform
import sys
import time

SQUAD_V11_TRAIN_WINDOWS = 88_641  # SQuAD v1.1 train at 384 / 128, DistilBERT cased tokenizer
MEAN_REAL_LENGTH = 184  # mean real tokens of the bundled SQuAD windows at 384 / 128

SHAPES = {
    # distilbert-base-cased (keras_hub preset distil_bert_base_en), as the keras.io example.
    "distilbert": {
        "vocabulary_size": 28996,
        "num_layers": 6,
        "num_heads": 12,
        "hidden_dim": 768,
        "intermediate_dim": 3072,
        "max_sequence_length": 512,
    },
    "tiny": {
        "vocabulary_size": 1000,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 64,
        "intermediate_dim": 128,
        "max_sequence_length": 128,
    },
}

# Dense (no sparsity) fp16 / bf16 tensor-core peaks in TFLOP/s, from the vendor's data sheets; the
# first name found in the device name wins, so the more specific names come first.
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989.0),  # and GH200
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("V100", 125.0),
    ("T4", 65.0),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backend",
        default=os.environ.get("KERAS_BACKEND", "jax"),
        choices=("jax", "torch", "tensorflow"),
        help="Keras backend (default: $KERAS_BACKEND, else jax)",
    )
    parser.add_argument("--output", help="JSON file to write the results to")
    parser.add_argument("--steps", type=int, help="timed training steps (default 300; tiny 4)")
    parser.add_argument(
        "--warmup-steps", type=int, help="untimed steps after the first (default 20; tiny 2)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, help="padded window length (default 384; tiny 64)")
    parser.add_argument(
        "--windows",
        type=int,
        default=SQUAD_V11_TRAIN_WINDOWS,
        help="synthetic windows in the training set (default SQuAD v1.1's 88,641)",
    )
    parser.add_argument("--dtype", help="Keras dtype policy (default mixed_float16; tiny float32)")
    parser.add_argument(
        "--dropout",
        default="0.1",
        help="comma-separated dropout rates to measure, in order (default 0.1)",
    )
    parser.add_argument(
        "--inference-windows",
        type=int,
        help="windows for the predict_logits measurement, 0 to skip (default 3200; tiny 64)",
    )
    parser.add_argument(
        "--peak-tflops",
        type=float,
        help="the GPU's dense fp16 peak (default: from the device name)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=210.0,
        help="skip a further dropout rate if its training would end past this many "
        "seconds from the start (estimated from the first rate's)",
    )
    parser.add_argument("--tiny", action="store_true", help="a tiny shape for a CPU check")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tiny = args.tiny
    defaults = {
        "steps": 4 if tiny else 300,
        "warmup_steps": 2 if tiny else 20,
        "seq_len": 64 if tiny else 384,
        "dtype": "float32" if tiny else "mixed_float16",
        "inference_windows": 64 if tiny else 3200,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.dropouts = [float(rate) for rate in args.dropout.split(",") if rate.strip()]
    if args.steps < 1 or args.warmup_steps < 0 or not args.dropouts:
        parser.error("--steps must be at least 1, --warmup-steps at least 0, --dropout not empty")
    return args


def synthetic_features(windows, seq_len, vocabulary_size, seed):
    """A keras-qa training features dict of random windows (padding id 0, real lengths ~184)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    low = min(seq_len, 16)
    mean = min(MEAN_REAL_LENGTH, seq_len * MEAN_REAL_LENGTH / 384)
    lengths = np.clip(np.rint(rng.normal(mean, mean / 3, windows)), low, seq_len).astype(np.int32)
    positions = np.arange(seq_len, dtype=np.int32)
    padding_mask = (positions[None, :] < lengths[:, None]).astype(np.int32)
    token_ids = rng.integers(1, vocabulary_size, (windows, seq_len), dtype=np.int32) * padding_mask
    # Answers inside the window: start <= end < length (positions 0 .. length - 1).
    start = (rng.random(windows) * lengths).astype(np.int32)
    end = np.minimum(start + rng.integers(0, 8, windows, dtype=np.int32), lengths - 1)
    return {
        "token_ids": token_ids,
        "padding_mask": padding_mask,
        "start_positions": start,
        "end_positions": end.astype(np.int32),
    }


def device_info(backend):
    """(device name, whether it is an accelerator, peak memory function)."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]

        def peak_memory():
            stats = device.memory_stats() or {}
            return stats.get("peak_bytes_in_use")

        return device.device_kind, device.platform != "cpu", peak_memory
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0), True, torch.cuda.max_memory_allocated
        return platform.processor() or "cpu", False, lambda: None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return name, True, lambda: tf.config.experimental.get_memory_info("GPU:0")["peak"]
    return platform.processor() or "cpu", False, lambda: None


def peak_for(device_name, accelerator, override):
    if override:
        return override, "--peak-tflops"
    if not accelerator:
        return None, None
    for key, tflops in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return tflops, f"device name contains {key!r}"
    return None, None


def flops_per_sequence(non_embedding_params, layers, hidden, seq_len, training):
    """See the module docstring."""
    if training:
        return 6 * non_embedding_params * seq_len + 12 * layers * hidden * seq_len**2
    return 2 * non_embedding_params * seq_len + 4 * layers * hidden * seq_len**2


def timed_fit(model, batches, plan):
    """`fit` over the `(rows, length)` batches of `plan`: (seconds until its last step is done,
    the history). A weight read back to the host waits for the last step (JAX and torch on a GPU
    return before the device is done)."""
    import keras

    batches.batches = list(plan)
    batches.fetch_seconds = 0.0
    start = time.perf_counter()
    history = model.fit(
        batches.as_fit_input(),
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[batches.epoch_callback()],
    )
    keras.ops.convert_to_numpy(model.trainable_weights[0].value)
    return time.perf_counter() - start, history.history


def main(argv=None):
    args = parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.backend
    began = time.perf_counter()

    import keras
    import keras_hub
    import numpy as np

    from keras_qa.models.batching import BucketedBatches, predict_logits
    from keras_qa.models.task import QuestionAnsweringModel
    from keras_qa.runtime.precision import resolve_precision
    from keras_qa.training.optimization import make_optimizer

    assert keras.backend.backend() == args.backend, keras.backend.backend()
    policy = resolve_precision(args.dtype)  # refuses mixed_float16 on JAX without a GPU
    shape = dict(SHAPES["tiny" if args.tiny else "distilbert"])
    if args.seq_len > shape["max_sequence_length"]:
        raise SystemExit(
            f"--seq-len {args.seq_len} exceeds the {shape['max_sequence_length']} positions"
        )
    device_name, accelerator, peak_memory = device_info(args.backend)
    peak_tflops, peak_source = peak_for(device_name, accelerator, args.peak_tflops)
    backend_module = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}[args.backend]

    features = synthetic_features(args.windows, args.seq_len, shape["vocabulary_size"], args.seed)
    data_s = time.perf_counter() - began
    batch = args.batch_size
    report = {
        "benchmark": "gpu_epoch",
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
        if argv is None
        else argv,
        "backend": args.backend,
        "device": device_name,
        "accelerator": accelerator,
        "peak_tflops": peak_tflops,
        "peak_source": peak_source,
        "dtype_policy": policy,
        "shape": shape,
        "batch_size": batch,
        "seq_len": args.seq_len,
        "windows": args.windows,
        "epoch_windows": SQUAD_V11_TRAIN_WINDOWS,
        "mean_real_length": float(features["padding_mask"].sum(axis=1).mean()),
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "keras_hub": keras_hub.__version__,
            "numpy": np.__version__,
            backend_module: __import__(backend_module).__version__,
        },
        "flops_formula": "train: 6*N*tokens + 12*L*d*S^2*sequences; "
        "inference: 2*N*tokens + 4*L*d*S^2*sequences; N = parameters less token/position embeddings",
        "results": [],
        "skipped": [],
    }

    def write():
        report["seconds"] = time.perf_counter() - began
        if args.output:
            folder = os.path.dirname(os.path.abspath(args.output))
            os.makedirs(folder, exist_ok=True)
            with open(args.output, "w", encoding="utf-8") as file:
                json.dump(report, file, indent=2)

    def tflops_and_mfu(flops, seconds):
        tflops = flops / seconds / 1e12
        return tflops, (tflops / peak_tflops if peak_tflops else None)

    print(
        f"gpu_epoch: backend={args.backend} device={device_name!r} peak={peak_tflops} TFLOP/s "
        f"policy={policy} data {data_s:.1f}s",
        flush=True,
    )
    write()

    full_batches = None
    first_config_s = None
    for index, dropout in enumerate(args.dropouts):
        elapsed = time.perf_counter() - began
        if index and first_config_s and elapsed + first_config_s > args.budget_s:
            reason = f"dropout {dropout}: {elapsed:.0f}s + ~{first_config_s:.0f}s > --budget-s"
            report["skipped"].append(reason)
            print(f"gpu_epoch: skipped {reason}", flush=True)
            write()
            continue
        config_began = time.perf_counter()
        keras.backend.clear_session()
        keras.utils.set_random_seed(args.seed)
        keras.mixed_precision.set_dtype_policy(policy)
        backbone = keras_hub.models.DistilBertBackbone(**shape, dropout=dropout)
        model = QuestionAnsweringModel(backbone)
        total_steps = 1 + args.warmup_steps + args.steps
        model.compile(optimizer=make_optimizer(5e-5, total_steps, warmup=0.0, weight_decay=0.0))
        params = model.count_params()
        non_embedding = params - backbone.embeddings.count_params()
        layers, hidden = shape["num_layers"], shape["hidden_dim"]

        batches = BucketedBatches(
            features,
            batch,
            bucket_width=None,
            shuffle=True,
            seed=args.seed,
            targets=True,
            input_names=model.input_names,
        )
        if full_batches is None:
            # Whole batches only: the epoch's one short batch would be another shape to compile.
            full_batches = [b for b in batches.batches if len(b[0]) == batch]
        if len(full_batches) < total_steps:
            raise SystemExit(
                f"{len(full_batches)} batches of {batch}; {total_steps} needed (--windows)"
            )
        warmup_end = 1 + args.warmup_steps
        compile_s, _ = timed_fit(model, batches, full_batches[:1])
        if args.warmup_steps:
            warmup_s, _ = timed_fit(model, batches, full_batches[1:warmup_end])
        else:
            warmup_s = 0.0
        train_s, history = timed_fit(
            model, batches, full_batches[warmup_end : warmup_end + args.steps]
        )
        sequences = args.steps * batch
        seq_per_s = sequences / train_s
        train_flops = sequences * flops_per_sequence(
            non_embedding, layers, hidden, args.seq_len, True
        )
        tflops, mfu = tflops_and_mfu(train_flops, train_s)
        real_tokens = float(
            sum(features["padding_mask"][rows].sum() for rows, _ in batches.batches)
        )
        loss = float(history["loss"][-1]) if history.get("loss") else None
        result = {
            "scenario": "train",
            "dropout": dropout,
            "parameters": params,
            "non_embedding_parameters": non_embedding,
            "steps": args.steps,
            "warmup_steps": args.warmup_steps,
            "compile_s": compile_s,
            "warmup_s": warmup_s,
            "train_s": train_s,
            "step_ms": 1000 * train_s / args.steps,
            "seq_per_s": seq_per_s,
            "padded_tokens_per_s": sequences * args.seq_len / train_s,
            "real_tokens_per_s": real_tokens / train_s,
            "epoch_s": SQUAD_V11_TRAIN_WINDOWS / seq_per_s,
            "epoch_min": SQUAD_V11_TRAIN_WINDOWS / seq_per_s / 60,
            "tflop_per_step": train_flops / args.steps / 1e12,
            "tflops": tflops,
            "mfu": mfu,
            "data_wait": batches.fetch_seconds / train_s,
            "final_loss": loss,
            "peak_memory_bytes": peak_memory(),
        }
        report["results"].append(result)
        write()
        if first_config_s is None:  # build, compile and train: what a further rate will take
            first_config_s = time.perf_counter() - config_began
        print(
            f"gpu_epoch: {args.backend} train dropout={dropout} {policy}: {seq_per_s:.1f} seq/s, "
            f"{result['step_ms']:.1f} ms/step, epoch of {SQUAD_V11_TRAIN_WINDOWS:,} windows "
            f"{result['epoch_s']:.0f}s ({result['epoch_min']:.1f} min), {tflops:.1f} TFLOP/s"
            + (f" = {100 * mfu:.1f}% of {peak_tflops:g}" if mfu is not None else "")
            + f", compile+first step {compile_s:.1f}s, loss {loss}",
            flush=True,
        )

        if args.inference_windows and index == 0:
            count = min(args.inference_windows, args.windows)
            subset = {name: array[:count] for name, array in features.items()}
            warm = {name: array[: 2 * batch] for name, array in features.items()}
            start = time.perf_counter()
            predict_logits(model, warm, batch, None)  # compiles the predict step
            infer_compile_s = time.perf_counter() - start
            start = time.perf_counter()
            predict_logits(model, subset, batch, None)
            infer_s = time.perf_counter() - start
            infer_flops = count * flops_per_sequence(
                non_embedding, layers, hidden, args.seq_len, False
            )
            tflops, mfu = tflops_and_mfu(infer_flops, infer_s)
            result = {
                "scenario": "inference",
                "dropout": dropout,
                "windows": count,
                "batch_size": batch,
                "compile_s": infer_compile_s,
                "seconds": infer_s,
                "seq_per_s": count / infer_s,
                "epoch_s": SQUAD_V11_TRAIN_WINDOWS / (count / infer_s),
                "tflops": tflops,
                "mfu": mfu,
                "peak_memory_bytes": peak_memory(),
            }
            report["results"].append(result)
            write()
            print(
                f"gpu_epoch: {args.backend} inference (predict_logits, batch {batch}): "
                f"{result['seq_per_s']:.1f} seq/s, {tflops:.1f} TFLOP/s"
                + (f" = {100 * mfu:.1f}% of {peak_tflops:g}" if mfu is not None else ""),
                flush=True,
            )
        del model, backbone

    write()
    print(
        f"gpu_epoch: done in {time.perf_counter() - began:.0f}s"
        + (f", wrote {args.output}" if args.output else ""),
        flush=True,
    )
    return report


if __name__ == "__main__":
    main()
