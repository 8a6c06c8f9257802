"""benchmarks/jax_cpu_training.py: how it counts the cores each kind of thread keeps busy."""

import importlib.util
import os
import sys
import threading
import time

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks")


def load_script():
    sys.path.insert(0, BENCHMARKS)  # the script imports its neighbours
    try:
        spec = importlib.util.spec_from_file_location(
            "benchmark_jax_cpu_training", os.path.join(BENCHMARKS, "jax_cpu_training.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(BENCHMARKS)
    return module


def test_cores_are_cpu_seconds_per_wall_second_summed_by_thread_name():
    script = load_script()
    main = os.getpid()
    before = {main: ("python", 10.0), 2: ("tf_XLAEigen", 5.0), 3: ("tf_XLAEigen", 6.0)}
    # Thread 3 ended; thread 4 began after the first reading.
    after = {main: ("python", 10.5), 2: ("tf_XLAEigen", 8.0), 4: ("tf_XLAEigen", 1.0)}
    cores = script.cores_by_thread(before, after, seconds=2.0)
    assert cores["main thread (Python)"] == pytest.approx(0.25)
    assert cores["tf_XLAEigen"] == pytest.approx(2.0)
    assert cores["all"] == pytest.approx(2.25)
    assert list(cores)[1] == "tf_XLAEigen"  # busiest first


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux's /proc")
def test_a_busy_threads_cpu_time_is_read_from_proc():
    script = load_script()
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(range(1000))

    before = script.thread_cpu_seconds()
    assert before[os.getpid()][1] > 0  # this thread, which has been importing and testing
    busy = threading.Thread(target=spin)
    busy.start()
    try:
        # The kernel counts CPU time in ticks: spin until the new thread has some.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)
            spun = script.thread_cpu_seconds().get(busy.native_id, ("", 0.0))[1]
            if spun > 0:
                break
    finally:
        stop.set()
        busy.join()
    assert spun > 0
