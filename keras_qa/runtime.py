"""Everything that knows the Keras backend or the hardware, in one place.

The rest of keras-qa is written against `keras.ops` and NumPy; what differs between JAX, TensorFlow and
PyTorch, or between a CPU and a GPU, is decided here: whether an accelerator is present, which dtype
policy `--mixed-precision auto` means, how `fit` is fed on each backend, the library versions a run
records, and a rough CPU time estimate. The measurements behind the precision choices are in the
README's Performance section.
"""

import platform

import keras
import numpy as np

from keras_qa.errors import SettingsError

PRECISIONS = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# `--distribute`: data parallel over several devices when there are ("auto"), never, or always.
DISTRIBUTE_CHOICES = ("auto", "none", "data")
# What Keras reads to join a several-process JAX job (not supported by keras-qa yet).
JOB_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
BACKEND_MODULES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def backend_name():
    """The Keras backend in use: "jax", "tensorflow" or "torch"."""
    return keras.backend.backend()


def has_accelerator():
    """Whether the current Keras backend sees a GPU or TPU."""
    backend = backend_name()
    # Each framework has its own device query; there is no backend-agnostic one in Keras.
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def cpu_has_bfloat16():
    """Whether this CPU advertises bfloat16 arithmetic (AMX or AVX-512 BF16), which oneDNN uses."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = file.read()
    except OSError:  # not Linux: no way to tell, so no bfloat16 by default
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(mixed_precision):
    """The Keras dtype policy name for a `--mixed-precision` choice.

    Args:
        mixed_precision: "off", "float16", "bfloat16", a Keras policy name, or "auto".

    `auto` follows measurements on each backend: mixed_float16 on a GPU (as the keras.io example);
    on a CPU with bfloat16 instructions mixed_bfloat16 for TensorFlow and torch (oneDNN runs it much
    faster than float32) and float32 for JAX (XLA:CPU gains nothing from it); float32 on other CPUs,
    where bfloat16 is emulated.

    Example:
    >>> resolve_precision("bfloat16")
    'mixed_bfloat16'
    """
    policy = PRECISIONS.get(mixed_precision, mixed_precision)
    if policy == "mixed_float16" and backend_name() == "jax" and not has_accelerator():
        raise SettingsError(
            "float16 mixed precision does not run on JAX on the CPU (XLA has no float16 matrix "
            "product with float32 accumulation there); use --mixed-precision bfloat16 or off, "
            "or a GPU."
        )
    if policy in PRECISIONS.values():
        return policy
    if mixed_precision != "auto":
        raise SettingsError(
            f"mixed_precision must be one of off, float16, bfloat16, auto; got {mixed_precision!r}"
        )
    if has_accelerator():
        return "mixed_float16"
    if backend_name() in ("tensorflow", "torch") and cpu_has_bfloat16():
        return "mixed_bfloat16"
    return "float32"


def answering_dtype(dtype):
    """The dtype policy to answer questions in: "auto" is float32 on a CPU (as fast as bfloat16 for
    one question there, and an answer does not depend on the questions batched beside it) and the
    training precision (None) on an accelerator."""
    if dtype == "auto":
        return None if has_accelerator() else "float32"
    return dtype


def plan_distribution(distribute, batch_size):
    """What `--distribute` means on this backend and machine, checked before anything is loaded.

    Args:
        distribute: "auto" (data parallel over all local accelerators when there are two or more),
            "none", or "data" (data parallel over every device, virtual CPU devices included).
        batch_size: the global batch, which must divide by the device count.

    Returns:
        `{"kind": "none" or "data", "processes", "devices", "per_device_batch"}`.

    Raises:
        SettingsError: a batch that does not divide, or a backend without data parallelism here.
    """
    import os
    import warnings

    single = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": int(batch_size)}
    if distribute not in DISTRIBUTE_CHOICES:
        raise SettingsError(f"--distribute must be one of {', '.join(DISTRIBUTE_CHOICES)}")
    backend = backend_name()
    if distribute == "none":
        return single
    if backend != "jax":
        if distribute == "data":
            raise SettingsError(
                f"--distribute data is not available on the {backend} backend in keras-qa "
                "(Keras 3.15 has no data parallelism on torch; the TensorFlow path is not built "
                "yet): use KERAS_BACKEND=jax"
            )
        return single
    import jax

    if any(os.environ.get(name) for name in JOB_VARIABLES):
        # Each process would have to feed its own rows of every global batch; not built yet.
        raise SettingsError(
            f"{', '.join(JOB_VARIABLES)}: training over several processes or hosts is not built "
            "yet in keras-qa; train on the devices of one host (--distribute data)"
        )
    devices = jax.devices()
    if distribute == "auto" and (len(devices) < 2 or devices[0].platform == "cpu"):
        return single
    count = len(devices)
    if batch_size % count:
        lower = max(count, batch_size // count * count)
        raise SettingsError(
            f"--batch-size {batch_size} does not divide over {count} devices (it is the global "
            f"batch): use {lower} or {lower + count}"
        )
    if count == 1:
        warnings.warn("--distribute data with one device: training on it alone", stacklevel=2)
    return {
        "kind": "data",
        "processes": jax.process_count(),
        "devices": count,
        "per_device_batch": batch_size // count,
    }


def use_distribution(plan):
    """Make Keras lay out the variables built from now on as `plan` says (JAX data parallelism:
    `keras.distribution.DataParallel` over every device); None undoes it."""
    if plan is None or plan["kind"] == "none":
        if backend_name() == "jax":
            keras.distribution.set_distribution(None)
        return
    distribution = keras.distribution.DataParallel(
        devices=keras.distribution.list_devices(), auto_shard_dataset=False
    )
    keras.distribution.set_distribution(distribution)


def data_parallel_devices():
    """The devices a batch is split over now (1 without data parallelism)."""
    if backend_name() != "jax":
        return 1
    distribution = keras.distribution.distribution()
    if distribution is None:
        return 1
    return int(np.prod(distribution.device_mesh.shape))


def fit_input(batches, input_names, target_names=(), weighted=False):
    """What `fit` should be given for batches of int32 `(batch, length)` inputs of varying length.

    Keras' TensorFlow adapter fixes a `PyDataset`'s batch shapes from its first two batches, so a
    batch of another length later in the epoch would fail; on TensorFlow the batches therefore go
    through a `tf.data.Dataset` whose length axis is declared open, read lazily (each epoch's order is
    the one the batches hold when the epoch begins) and prefetched one ahead. Other backends take the
    batches as they are.

    Args:
        batches: a sequence of batches (`len` and indexing): an input dict, or `(inputs, targets)`.
        input_names: the keys of the input dict.
        target_names: the keys of the targets dict (int32 vectors), or none for inputs alone.
        weighted: batches also carry float32 sample weights `(batch,)`.
    """
    if backend_name() != "tensorflow":
        return batches
    import tensorflow as tf

    def generate():
        for index in range(len(batches)):
            yield batches[index]

    signature = {name: tf.TensorSpec((None, None), tf.int32) for name in input_names}
    if target_names:
        signature = signature, {name: tf.TensorSpec((None,), tf.int32) for name in target_names}
        if weighted:
            signature = (*signature, tf.TensorSpec((None,), tf.float32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))).prefetch(1)


def versions():
    """The versions of keras-qa, Keras, KerasHub, Python, NumPy and the backend in use."""
    import keras_hub

    import keras_qa

    found = {
        "keras_qa": keras_qa.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    module = BACKEND_MODULES.get(backend_name())
    if module:
        found[module] = __import__(module).__version__
    return found


def estimated_cpu_hours(backbone, windows, epochs, mean_tokens):
    """A rough CPU training time: about 6 FLOPs per weight per token at ~100 GFLOP/s."""
    embedding = getattr(backbone, "token_embedding", None)
    weights = backbone.count_params() - (embedding.count_params() if embedding else 0)
    return 6 * weights * mean_tokens * windows * epochs / 100e9 / 3600
