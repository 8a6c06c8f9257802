import json
import platform
import resource

import pytest

from keras_qa.runtime.allocator import FREED_MEMORY_TUNABLES, applies, freed_memory_environment
from tests.conftest import run_python

needs_glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="malloc's settings are glibc's",
)

# The page faults of filling a freed-and-allocated-again 64 MiB buffer (above glibc's largest mmap
# threshold, so by default each allocation is a fresh mapping the kernel has to fault in and zero).
REFILL_FAULTS = """
import ctypes, json, resource
from keras_qa.runtime.allocator import keep_freed_memory
applied = {apply} and keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
def faults_of_a_big_buffer():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = libc.malloc(64 << 20)
    ctypes.memset(buffer, 1, 64 << 20)
    libc.free(buffer)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_big_buffer()
print(json.dumps([applied, faults_of_a_big_buffer()]))
"""


@needs_glibc
def test_jax_training_keeps_freed_memory_for_its_next_step():
    pages = (64 << 20) // resource.getpagesize()
    applied, faults = json.loads(run_python(REFILL_FAULTS.format(apply=True)).stdout)
    assert applied and faults < pages // 20  # the second buffer reuses the first one's pages
    applied, faults = json.loads(run_python(REFILL_FAULTS.format(apply=False)).stdout)
    assert not applied and faults > pages // 2  # glibc's default: mapped and faulted in again
    # TensorFlow and torch keep their own pools: nothing is changed there.
    found = run_python(REFILL_FAULTS.format(apply=True), backend="tensorflow")
    assert json.loads(found.stdout)[0] is False, found.stderr
    opted_out = run_python(
        REFILL_FAULTS.format(apply=True), env={"KERAS_QA_KEEP_FREED_MEMORY": "0"}
    )
    assert json.loads(opted_out.stdout)[0] is False, opted_out.stderr


# A thread that allocates before the setting (as numpy's and Keras' threads do when imported) takes
# an arena of its own, which later threads are handed; there a 128 MiB block is mapped afresh each
# time. The faults of each new thread's second 128 MiB buffer, with and without the restart.
THREAD_REFILL_FAULTS = """
import ctypes, json, os, resource, threading
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
def in_a_thread(function):
    results = []
    thread = threading.Thread(target=lambda: results.append(function()))
    thread.start()
    thread.join()
    return results[0]
def refill_faults():
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        buffer = libc.malloc(128 << 20)
        ctypes.memset(buffer, 1, 128 << 20)
        libc.free(buffer)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
in_a_thread(lambda: libc.free(libc.malloc(1000)))
print("started", os.getpid(), flush=True)
from keras_qa.runtime.allocator import keep_freed_memory, restart_keeping_freed_memory
if {restart}:
    restart_keeping_freed_memory()
keep_freed_memory()
faults = [in_a_thread(refill_faults) for _ in range(3)]
print(json.dumps({{"tunables": os.environ.get("GLIBC_TUNABLES"), "faults": faults}}))
"""


@needs_glibc
def test_a_command_restarts_itself_once_and_then_every_thread_keeps_freed_memory():
    pages = (128 << 20) // resource.getpagesize()
    found = run_python(THREAD_REFILL_FAULTS.format(restart=True), env={"GLIBC_TUNABLES": ""})
    *started, result = found.stdout.splitlines()
    # The same process (execve keeps the id) ran the script twice: before and after the restart.
    assert len(started) == 2 and started[0] == started[1], found.stdout + found.stderr
    result = json.loads(result)
    assert result["tunables"].endswith(FREED_MEMORY_TUNABLES)
    assert max(result["faults"]) < pages // 20, result
    # Without the restart, the setting made after that first thread does not reach the others.
    found = run_python(THREAD_REFILL_FAULTS.format(restart=False))
    *started, result = found.stdout.splitlines()
    assert len(started) == 1 and max(json.loads(result)["faults"]) > pages // 2, found.stdout


@needs_glibc
def test_the_setting_follows_the_backend_keras_will_use(tmp_path):
    assert applies({"KERAS_BACKEND": "jax"})
    assert not applies({"KERAS_BACKEND": "torch"})
    assert not applies({"KERAS_BACKEND": "jax", "KERAS_QA_KEEP_FREED_MEMORY": "0"})
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert applies({"KERAS_HOME": str(tmp_path)})
    (tmp_path / "keras.json").write_text("{damaged")
    assert not applies({"KERAS_HOME": str(tmp_path)})  # Keras' default then: TensorFlow
    given = freed_memory_environment({"KERAS_BACKEND": "jax", "GLIBC_TUNABLES": "glibc.a=1"})
    assert (
        given["GLIBC_TUNABLES"] == "glibc.a=1:" + FREED_MEMORY_TUNABLES
    )  # ours come last, and win
    assert "GLIBC_TUNABLES" not in freed_memory_environment({"KERAS_BACKEND": "tensorflow"})
