"""Which Keras dtype policy a run trains and answers in, from a `--mixed-precision` / `--dtype` choice
and the hardware (the measurements behind `auto` are in docs/performance.md)."""

from keras_qa.errors import SettingsError
from keras_qa.runtime.backend import backend_name, has_accelerator
from keras_qa.runtime.cpu import cpu_has_bfloat16

PRECISIONS = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def resolve_precision(mixed_precision):
    """The Keras dtype policy name for a `--mixed-precision` choice.

    Args:
        mixed_precision: "off", "float16", "bfloat16", a Keras policy name, or "auto".

    `auto` follows measurements on each backend: mixed_float16 on a GPU (as the keras.io example);
    on a CPU with bfloat16 instructions mixed_bfloat16 (oneDNN runs it much faster than float32 for
    TensorFlow and torch; on JAX with `fast_bfloat16_products`); float32 on other CPUs, where
    bfloat16 is emulated.

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
    if cpu_has_bfloat16():
        return "mixed_bfloat16"
    return "float32"


def answering_dtype(dtype):
    """The dtype policy to answer questions in: "auto" is float32 on a CPU (as fast as bfloat16 for
    one question there, and an answer does not depend on the questions batched beside it) and the
    training precision (None) on an accelerator."""
    if dtype == "auto":
        return None if has_accelerator() else "float32"
    return dtype
