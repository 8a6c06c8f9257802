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


def fit_input(batches, input_names, target_names=()):
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
