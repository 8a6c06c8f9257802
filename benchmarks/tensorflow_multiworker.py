"""Why keras-qa refuses several TensorFlow processes: Keras' `fit` under `MultiWorkerMirroredStrategy`.

    python benchmarks/tensorflow_multiworker.py [--inputs dict|single]

Starts two TensorFlow worker processes on loopback (`TF_CONFIG` with two free ports), each building
under the strategy a small Keras model, with a dict of two named inputs and two named outputs as
keras-qa's model has (`--inputs dict`) or with one input and one output (`--inputs single`), and fitting
2 steps of batch 8. Prints each worker's outcome: `FIT OK` with its losses, or `FIT FAILED` with the
exception (Keras 3.15.1 / TensorFlow 2.21: a `ValueError` from `_maybe_symbolic_build`, in both cases).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import traceback

LENGTH, VOCABULARY, ROWS = 10, 50, 32


def worker(index, ports, inputs):
    os.environ["TF_CONFIG"] = json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )
    import keras
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(0)
    token_ids = rng.integers(0, VOCABULARY, (ROWS, LENGTH)).astype("int32")
    starts, ends = (rng.integers(0, LENGTH, ROWS).astype("int32") for _ in range(2))
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with strategy.scope():
        tokens = keras.Input((None,), dtype="int32", name="token_ids")
        pooled = keras.ops.mean(keras.layers.Embedding(VOCABULARY, 16)(tokens), axis=1)
        if inputs == "dict":
            mask = keras.Input((None,), dtype="int32", name="padding_mask")
            outputs = {
                name: keras.layers.Dense(LENGTH, name=name)(pooled)
                for name in ("start_logits", "end_logits")
            }
            model = keras.Model({"token_ids": tokens, "padding_mask": mask}, outputs)
            model.compile(optimizer="adam", loss={name: cross_entropy for name in outputs})
            data = (
                {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)},
                {"start_logits": starts, "end_logits": ends},
            )
        else:
            model = keras.Model(tokens, keras.layers.Dense(LENGTH)(pooled))
            model.compile(optimizer="adam", loss=cross_entropy)
            data = (token_ids, starts)
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(8).repeat()
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, {inputs} inputs", flush=True)
    try:
        history = model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    except Exception as error:  # the outcome being measured
        traceback.print_exc()
        message = " ".join(str(error).split())[:300]
        print(f"FIT FAILED: {type(error).__name__}: {message}", flush=True)
        sys.exit(1)
    print(f"FIT OK: losses {history.history['loss']}", flush=True)


def free_ports(count):
    probes = [socket.socket() for _ in range(count)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in probes]
    for probe in probes:
        probe.close()
    return ports


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", choices=("dict", "single"), default="dict")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.ports.split(","), args.inputs)
        return
    ports = ",".join(str(port) for port in free_ports(2))
    environment = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    workers = [
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", str(index), "--ports", ports,
             "--inputs", args.inputs],
            env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        for index in range(2)
    ]
    for index, process in enumerate(workers):
        try:
            stdout, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout = "no outcome in 300 s (killed)"
        outcome = [line for line in stdout.splitlines() if line.startswith(("keras ", "FIT"))]
        print(f"worker {index} (exit {process.returncode}): " + " | ".join(outcome or [stdout]))


if __name__ == "__main__":
    main()
