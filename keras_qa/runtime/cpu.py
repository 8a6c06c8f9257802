"""What this CPU is, read from `/proc/cpuinfo` without importing Keras (benchmarks use it too)."""

import hashlib
import platform


def cpu_has_bfloat16():
    """Whether this CPU advertises bfloat16 arithmetic (AMX or AVX-512 BF16), which oneDNN uses."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            flags = file.read()
    except OSError:  # not Linux: no way to tell, so no bfloat16 by default
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def cpu_fingerprint():
    """A short digest of this CPU's model and instruction sets (what a compiled program depends on)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError:  # not Linux: the machine's architecture and processor name instead
        lines = [platform.machine(), platform.processor()]
    described = sorted({line for line in lines if line.startswith(("model name", "flags"))})
    return hashlib.sha256("\n".join(described).encode()).hexdigest()[:12]
