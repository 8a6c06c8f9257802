"""glibc's malloc for JAX training on a CPU: keep the memory XLA frees, for its next step to reuse.

XLA:CPU allocates each training step's buffers afresh (gigabytes at length 384). glibc serves blocks
that large with a new `mmap` and returns them with `munmap` when freed, so every step faults every page
of them in again and the kernel zeroes them (measured in docs/performance.md). One arena
that never uses `mmap` and is never trimmed hands the same memory back; the process's resident memory
then stays at its peak. TensorFlow and torch keep their own pools and are left alone.

The setting only holds if it is made before any other thread allocates: a thread that already has an
arena of its own keeps it, later threads are handed that arena in turn, and in an arena other than the
main one glibc maps every block over 64 MiB afresh again. numpy and Keras start threads when they are
imported, so a command line restarts itself with the setting as glibc tunables, read when a process
starts (`restart_keeping_freed_memory`); the library calls `keep_freed_memory`, which sets the same
values for whatever is allocated afterwards. This module imports neither Keras nor numpy, so that the
restart comes before them; it is part of `keras_qa.runtime`, what knows the backend and the hardware.
Set `KERAS_QA_KEEP_FREED_MEMORY=0` to leave malloc as it is.
"""

import ctypes
import json
import os
import platform
import sys

# glibc's mallopt parameters (malloc.h): the arena count, the number of mmap'ed blocks, the trim threshold.
M_ARENA_MAX, M_MMAP_MAX, M_TRIM_THRESHOLD = -8, -4, -1
# The same three settings as glibc tunables; 2**62 bytes as the trim threshold is "never".
FREED_MEMORY_TUNABLES = (
    "glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:"
    "glibc.malloc.trim_threshold=4611686018427387904"
)
# Set in the restarted process, so that it never restarts again.
RESTARTED_VARIABLE = "KERAS_QA_RESTARTED_FOR_MALLOC"
OPT_OUT_VARIABLE = "KERAS_QA_KEEP_FREED_MEMORY"


def configured_backend(environment=None):
    """The Keras backend a process started with `environment` will use, without importing Keras:
    `KERAS_BACKEND`, else the `backend` of `$KERAS_HOME/keras.json` (`~/.keras`), else TensorFlow,
    as Keras decides.

    Example:
    >>> configured_backend({"KERAS_BACKEND": "jax"})
    'jax'
    """
    environment = os.environ if environment is None else environment
    if environment.get("KERAS_BACKEND"):
        return environment["KERAS_BACKEND"]
    home = environment.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as file:
            return json.load(file).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def applies(environment=None):
    """Whether a process with `environment` should keep freed memory: JAX, Linux, glibc, not opted out.

    Example:
    >>> applies({"KERAS_BACKEND": "tensorflow"})
    False
    """
    environment = os.environ if environment is None else environment
    return (
        configured_backend(environment) == "jax"
        and environment.get(OPT_OUT_VARIABLE) != "0"
        and platform.system() == "Linux"
        and platform.libc_ver()[0] == "glibc"
    )


def keep_freed_memory():
    """Set glibc's malloc to one arena, no `mmap`, no trimming, for what is allocated from now on.

    Call it early, before JAX starts its threads; `restart_keeping_freed_memory` is the complete
    remedy for a command line.

    Returns:
        Whether the setting was applied (False on other backends, without glibc, or opted out).

    Example:
    >>> keep_freed_memory() == applies()
    True
    """
    if not applies():
        return False
    libc = ctypes.CDLL(None)
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # -1 as the trim threshold is (size_t)-1 in glibc: never give the heap's top back.
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)


def freed_memory_environment(environment=None):
    """A copy of `environment` (default: this process's) in which a new process keeps freed memory
    from its start, if `applies` to it: `GLIBC_TUNABLES` gains `FREED_MEMORY_TUNABLES` (after any
    given, so they win).

    Args:
        environment: the new process's environment variables.

    Example:
    >>> "GLIBC_TUNABLES" in freed_memory_environment({"KERAS_BACKEND": "torch"})
    False
    """
    environment = dict(os.environ if environment is None else environment)
    if applies(environment):
        given = environment.get("GLIBC_TUNABLES")
        tunables = f"{given}:{FREED_MEMORY_TUNABLES}" if given else FREED_MEMORY_TUNABLES
        environment["GLIBC_TUNABLES"] = tunables
    return environment


def restart_keeping_freed_memory():
    """Start this command again in this process (`os.execve`: the same process id, arguments and
    streams) with `freed_memory_environment`, once; a no-op where it does not apply. A command line
    calls it first, before Keras is imported: everything done before is done again.

    Returns:
        False where it does not restart (it does not return where it does).

    Example, the first statements of a command's module (`keras_qa.train` does this):

        if __name__ == "__main__":
            restart_keeping_freed_memory()
    """
    if not applies() or os.environ.get(RESTARTED_VARIABLE) or not sys.executable:
        return False
    environment = freed_memory_environment()
    environment[RESTARTED_VARIABLE] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, environment)
