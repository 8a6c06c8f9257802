import json
import os

import keras
import pytest

from keras_qa.runtime.compilation_cache import COMPILATION_CACHE_BYTES, use_compilation_cache

needs_jax = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="only JAX compiles programs that can be kept"
)


# A fresh process that keeps its compiled programs in a folder, computes with one function and says
# how many programs it found there and how many it did not.
COMPILE_WITH_A_CACHE = """
import collections, json, sys
import jax
from keras_qa.runtime.compilation_cache import use_compilation_cache
events = collections.Counter()
jax.monitoring.register_event_listener(lambda event, **_: events.update([event.split("/")[-1]]))
folder = use_compilation_cache(sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
value = jax.jit(lambda x: (x * 3.0).sum())(jax.numpy.ones(7))
found = {"hits": events["cache_hits"], "misses": events["cache_misses"]}
print(json.dumps({"folder": folder, "value": float(value), **found}))
"""


@needs_jax
def test_a_later_process_loads_the_programs_an_earlier_one_compiled(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "cache"
    runs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", COMPILE_WITH_A_CACHE, str(folder)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert runs[0]["hits"] == 0 and runs[0]["misses"] >= 1
    assert runs[1]["hits"] == runs[0]["misses"] and runs[1]["misses"] == 0
    assert runs[0]["value"] == runs[1]["value"] == 21.0
    assert runs[0]["folder"] == str(folder)
    assert any(name.endswith("-cache") for name in os.listdir(folder))
    assert folder.stat().st_mode & 0o777 == 0o700  # JAX runs what it finds there


@needs_jax
def test_jax_own_cache_setting_wins_and_none_keeps_no_cache(tmp_path, jax_cache_settings):
    import jax

    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "jax's"))
    assert use_compilation_cache(str(tmp_path / "ours")) == str(tmp_path / "jax's")
    assert not (tmp_path / "ours").exists()
    jax.config.update("jax_compilation_cache_dir", None)
    assert use_compilation_cache(None) is None
    assert use_compilation_cache(str(tmp_path / "ours")) == str(tmp_path / "ours")
    assert jax.config.jax_compilation_cache_max_size == COMPILATION_CACHE_BYTES


def test_other_backends_keep_no_programs(tmp_path):
    if keras.backend.backend() == "jax":
        pytest.skip("JAX keeps them (the tests above)")
    assert use_compilation_cache(str(tmp_path / "cache")) is None
    assert not (tmp_path / "cache").exists()
