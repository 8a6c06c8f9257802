import keras
import numpy as np
import pytest

from keras_qa.runtime.xla_cpu import fast_bfloat16_products

ONE_DEVICE = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": 8}


needs_jax_products = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the fast products replace Keras' JAX functions"
)


@pytest.fixture
def cpu_with_bfloat16(monkeypatch):
    """The fast products switched on whatever this CPU is: their arithmetic is the same on every
    CPU (only their speed needs bfloat16 instructions), so their tests run on CPUs without them."""
    import keras_qa.runtime.xla_cpu

    monkeypatch.setattr(keras_qa.runtime.xla_cpu, "cpu_has_bfloat16", lambda: True)


@pytest.mark.parametrize("has_bfloat16", [True, False])
def test_fast_products_only_where_they_apply(has_bfloat16, monkeypatch):
    import keras_qa.runtime.xla_cpu

    monkeypatch.setattr(keras_qa.runtime.xla_cpu, "cpu_has_bfloat16", lambda: has_bfloat16)
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
def test_keras_is_restored_when_the_last_of_several_threads_leaves(cpu_with_bfloat16):
    import threading

    from keras.src.backend.jax import numpy as jax_numpy

    original = jax_numpy.matmul
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with fast_bfloat16_products("mixed_bfloat16", ONE_DEVICE):
            first_in.set()
            second_in.wait(10)
        first_out.set()

    def second():
        first_in.wait(10)
        with fast_bfloat16_products("mixed_bfloat16", ONE_DEVICE):
            with fast_bfloat16_products("mixed_bfloat16", ONE_DEVICE):  # nested
                second_in.set()
                first_out.wait(10)
                seen["after the first left"] = jax_numpy.matmul
            seen["after the nested one left"] = jax_numpy.matmul

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen["after the first left"] is not original
    assert seen["after the nested one left"] is seen["after the first left"]
    assert jax_numpy.matmul is original


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
    from keras_qa.checkpoints.loading import load_backbone
    from keras_qa.models.task import QuestionAnsweringModel, model_inputs, model_targets
    from tests.models.test_task import tiny_features

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
