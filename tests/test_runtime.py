import json
import os

import keras
import numpy as np
import pytest

from keras_qa.errors import SettingsError
from keras_qa.runtime import (
    COMPILATION_CACHE_BYTES,
    answering_dtype,
    cpu_has_bfloat16,
    fast_bfloat16_products,
    has_accelerator,
    plan_distribution,
    resolve_precision,
    use_compilation_cache,
    versions,
)


def test_precision_choices():
    assert resolve_precision("off") == "float32"
    if keras.backend.backend() != "jax":  # JAX on the CPU refuses float16 (tests/test_model.py)
        assert resolve_precision("float16") == "mixed_float16"
    assert resolve_precision("bfloat16") == "mixed_bfloat16"
    expected = "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    assert resolve_precision("auto") == expected  # these tests run on CPUs
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_precision("int8")


def test_answering_precision_is_float32_on_a_cpu_unless_asked():
    assert not has_accelerator()  # these tests run on CPUs
    assert answering_dtype("auto") == "float32"
    assert answering_dtype("mixed_bfloat16") == "mixed_bfloat16"
    assert answering_dtype(None) is None


def test_versions_name_the_backend_in_use():
    found = versions()
    assert found["keras"] == keras.__version__
    backend = keras.backend.backend()
    assert found[backend] == __import__(backend).__version__


def run_python(code, backend="jax", devices=None, env=None):
    """Run `code` in a fresh interpreter (a backend and a device count are fixed at start)."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "KERAS_BACKEND": backend, **(env or {})}
    if devices:
        environment["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300
    )


PLAN = "from keras_qa.runtime import plan_distribution; print(plan_distribution({!r}, {}))"


def test_a_distribution_plan_on_this_machine():
    single = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": 8}
    assert plan_distribution("none", 8) == single
    assert plan_distribution("auto", 8) == single  # a CPU: its devices are not accelerators
    with pytest.raises(SettingsError, match="--distribute must be one of auto, none, data"):
        plan_distribution("model", 8)


def test_data_parallelism_over_four_virtual_devices_and_its_errors():
    found = run_python(PLAN.format("data", 16), devices=4)
    assert "'kind': 'data'" in found.stdout and "'per_device_batch': 4" in found.stdout, (
        found.stderr
    )
    uneven = run_python(PLAN.format("data", 6), devices=4)
    assert "--batch-size 6 does not divide over 4 devices" in uneven.stderr
    assert "use 4 or 8" in uneven.stderr
    hosts = run_python(PLAN.format("data", 8), env={"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"})
    assert "joining the JAX job of KERAS_DISTRIBUTION_NUM_PROCESSES failed" in hosts.stderr
    assert "KERAS_DISTRIBUTION_JOB_ADDRESSES (host:port of process 0" in hosts.stderr
    alone = run_python(PLAN.format("none", 8), env={"KERAS_DISTRIBUTION_PROCESS_ID": "1"})
    assert "--distribute none trains in this process alone" in alone.stderr


def test_torch_has_no_data_parallelism_and_says_so():
    found = run_python(PLAN.format("data", 8), backend="torch")
    assert "--distribute data is not available on the torch backend" in found.stderr
    # auto falls back to one device there.
    assert "'kind': 'none'" in run_python(PLAN.format("auto", 8), backend="torch").stdout


# TensorFlow sees one CPU device unless told, before it starts, to split it into logical ones.
TWO_TENSORFLOW_CPUS = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def test_tensorflow_mirrors_over_its_devices_and_refuses_several_processes():
    two = run_python(TWO_TENSORFLOW_CPUS + PLAN.format("data", 8), backend="tensorflow")
    assert "'kind': 'data', 'processes': 1, 'devices': 2, 'per_device_batch': 4" in two.stdout, (
        two.stderr[-2000:]
    )
    assert "'kind': 'none'" in run_python(PLAN.format("auto", 8), backend="tensorflow").stdout
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker"}}
    several = run_python(
        PLAN.format("data", 8), backend="tensorflow", env={"TF_CONFIG": json.dumps(cluster)}
    )
    assert "several TensorFlow processes or hosts is not supported" in several.stderr
    assert "use KERAS_BACKEND=jax" in several.stderr


ONE_DEVICE = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": 8}
needs_jax_products = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the fast products replace Keras' JAX functions"
)


@pytest.fixture
def cpu_with_bfloat16(monkeypatch):
    """The fast products switched on whatever this CPU is: their arithmetic is the same on every
    CPU (only their speed needs bfloat16 instructions), so their tests run on CPUs without them."""
    import keras_qa.runtime

    monkeypatch.setattr(keras_qa.runtime, "cpu_has_bfloat16", lambda: True)


@pytest.mark.parametrize("has_bfloat16", [True, False])
def test_fast_products_only_where_they_apply(has_bfloat16, monkeypatch):
    import keras_qa.runtime

    monkeypatch.setattr(keras_qa.runtime, "cpu_has_bfloat16", lambda: has_bfloat16)
    expected = keras.backend.backend() == "jax" and has_bfloat16
    with fast_bfloat16_products("mixed_bfloat16", ONE_DEVICE) as fast:
        assert fast == expected
    with fast_bfloat16_products("float32", ONE_DEVICE) as fast:
        assert not fast
    with fast_bfloat16_products("mixed_bfloat16", {**ONE_DEVICE, "kind": "data"}) as fast:
        assert not fast


def bfloat16_operands(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [keras.ops.cast(rng.standard_normal(shape), "bfloat16") for shape in shapes]


def value_and_gradients(function, operands):
    """`function(*operands)` in float32 and the gradients of a fixed random weighting of it."""
    import jax

    weights = np.random.default_rng(1).standard_normal(function(*operands).shape)

    def weighted(*operands):
        return (keras.ops.cast(function(*operands), "float32") * weights).sum()

    gradients = jax.jit(jax.grad(weighted, argnums=tuple(range(len(operands)))))(*operands)
    return np.asarray(function(*operands), "float32"), [np.asarray(g, "float32") for g in gradients]


PRODUCTS = {
    "Dense": (lambda x, w: keras.ops.matmul(x, w), [(2, 5, 8), (8, 6)]),
    "EinsumDense query": (
        lambda x, w: keras.ops.einsum("abc,cde->abde", x, w),
        [(2, 5, 8), (8, 3, 4)],
    ),
    "EinsumDense output": (
        lambda x, w: keras.ops.einsum("abcd,cde->abe", x, w),
        [(2, 5, 3, 4), (3, 4, 8)],
    ),
    "attention": (
        lambda q, k, v: keras.ops.dot_product_attention(
            q, k, v, mask=np.arange(7)[None, None, None, :] < 5
        ),
        [(2, 5, 3, 4), (2, 7, 3, 4), (2, 7, 3, 4)],
    ),
    # A layer's bias, and a broadcast over size-1 axes on the left operand.
    "bias add": (lambda x, b: keras.ops.add(x, b), [(2, 5, 8), (8,)]),
    "broadcast add": (lambda a, x: keras.ops.add(a, x), [(1, 5, 1, 4), (2, 5, 3, 4)]),
}


@needs_jax_products
@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_fast_products_compute_what_keras_computes_and_their_gradients(name, cpu_with_bfloat16):
    import jax

    function, shapes = PRODUCTS[name]
    operands = bfloat16_operands(*shapes)
    plain_value, plain_gradients = value_and_gradients(function, operands)

    def traced():  # a new function each time: JAX reuses the trace of one it has seen
        return str(jax.make_jaxpr(lambda *operands: function(*operands))(*operands))

    assert "custom_vjp" not in traced()
    with fast_bfloat16_products("mixed_bfloat16", ONE_DEVICE):
        assert "custom_vjp" in traced()  # it is routed
        value, gradients = value_and_gradients(function, operands)
    assert value.dtype == plain_value.dtype
    # The same float32 sums rounded to bfloat16 (8 bits of mantissa): they differ by a rounding.
    scale = np.abs(plain_value).max()
    np.testing.assert_allclose(value, plain_value, atol=2**-7 * scale)
    for gradient, plain in zip(gradients, plain_gradients):
        np.testing.assert_allclose(gradient, plain, atol=2**-6 * np.abs(plain).max())
    assert "custom_vjp" not in traced()  # restored on leaving


@needs_jax_products
def test_the_layers_of_a_mixed_bfloat16_encoder_take_the_fast_products(cpu_with_bfloat16):
    import jax

    inputs = np.random.default_rng(0).standard_normal((2, 5, 12)).astype("float32")
    attention = keras.layers.MultiHeadAttention(num_heads=3, key_dim=4, dtype="mixed_bfloat16")
    layers = {
        # (layer, how many products and bias additions its call computes)
        "Dense": (keras.layers.Dense(6, dtype="mixed_bfloat16"), lambda x: (x,), 2),
        "EinsumDense": (
            keras.layers.EinsumDense("abc,cde->abde", (5, 3, 4), dtype="mixed_bfloat16"),
            lambda x: (x,),
            1,
        ),
        # query, key, value and output projections and their biases, scores, weighted values
        "MultiHeadAttention": (attention, lambda x: (x, x), 10),
    }
    for name, (layer, arguments, products) in layers.items():
        call = lambda x, layer=layer, arguments=arguments: layer(*arguments(x))  # noqa: E731
        call(inputs)  # builds the layer outside: its variables are created once
        with fast_bfloat16_products("mixed_bfloat16", ONE_DEVICE):
            routed = str(jax.make_jaxpr(call)(inputs)).count("custom_vjp_call")
        assert routed == products, name


@needs_jax_products
def test_a_mixed_bfloat16_model_trains_the_same_with_the_fast_products(
    tiny_preset, cpu_with_bfloat16
):
    from keras_qa.backbones import load_backbone
    from keras_qa.model import QuestionAnsweringModel, model_inputs, model_targets
    from tests.test_model import tiny_features

    _, features = tiny_features(tiny_preset, 16)
    losses = {}
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        for fast in (False, True):
            keras.utils.set_random_seed(0)
            with fast_bfloat16_products("mixed_bfloat16" if fast else "float32", ONE_DEVICE):
                model = QuestionAnsweringModel(load_backbone(tiny_preset))
                model.compile(optimizer=keras.optimizers.Adam(1e-3))
                history = model.fit(
                    model_inputs(features),
                    model_targets(features),
                    batch_size=8,
                    epochs=4,
                    shuffle=False,
                    verbose=0,
                )
            losses[fast] = np.array(history.history["loss"])
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert losses[True][-1] < losses[True][0]
    np.testing.assert_allclose(losses[True], losses[False], rtol=0.02)


needs_jax = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="only JAX compiles programs that can be kept"
)
# A fresh process that keeps its compiled programs in a folder, computes with one function and says
# how many programs it found there and how many it did not.
COMPILE_WITH_A_CACHE = """
import collections, json, sys
import jax
from keras_qa.runtime import use_compilation_cache
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
