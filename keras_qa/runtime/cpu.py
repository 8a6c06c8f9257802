"""What this CPU is, read from `/proc/cpuinfo` without importing Keras (benchmarks use it too)."""

import functools
import hashlib
import platform


def _cpuinfo_lines():
    """The lines of /proc/cpuinfo, or None where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            return file.read().splitlines()
    except OSError:
        return None


@functools.cache  # answering asks on every call; a process's CPU does not change
def _cpu_flags():
    """The words of /proc/cpuinfo's flags lines (empty where there is none: not Linux)."""
    lines = _cpuinfo_lines() or []
    return frozenset(flag for line in lines if line.startswith("flags") for flag in line.split())


def cpu_has_bfloat16():
    """Whether this CPU advertises bfloat16 arithmetic (AMX or AVX-512 BF16), which oneDNN uses."""
    return bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})


def cpu_has_int8_dot_products():
    """Whether this CPU multiplies int8 by int8 into int32 in one instruction (VNNI or AMX).

    Without it, x86 int8 kernels use an instruction whose 16-bit sums of two products can saturate,
    which ONNX Runtime avoids by quantizing weights to 7 bits.
    """
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_fingerprint():
    """A short digest of this CPU's model and instruction sets (what a compiled program depends on)."""
    lines = _cpuinfo_lines()
    if lines is None:  # not Linux: the machine's architecture and processor name instead
        lines = [platform.machine(), platform.processor()]
    described = sorted({line for line in lines if line.startswith(("model name", "flags"))})
    return hashlib.sha256("\n".join(described).encode()).hexdigest()[:12]
