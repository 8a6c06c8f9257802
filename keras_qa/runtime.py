"""Everything that knows the Keras backend or the hardware, in one place.

The rest of keras-qa is written against `keras.ops` and NumPy; what differs between JAX, TensorFlow and
PyTorch, or between a CPU and a GPU, is decided here: whether an accelerator is present, which dtype
policy `--mixed-precision auto` means, how JAX runs on a CPU (its bfloat16 products on XLA:CPU's fast
path, malloc keeping freed memory, compiled programs kept between runs), how training is spread
over devices and processes (`--distribute`), how `fit` is fed on each backend, the library versions
a run records, and a rough CPU time estimate. The measurements behind the precision choices are in
the README's Performance section.
"""

import contextlib
import functools
import os
import platform
import warnings

import keras
import numpy as np

from keras_qa.allocator import keep_freed_memory  # noqa: F401 (re-exported)
from keras_qa.errors import SettingsError

PRECISIONS = {"off": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# `--distribute`: data parallel over several devices when there are ("auto"), never, or always.
DISTRIBUTE_CHOICES = ("auto", "none", "data")
# What `keras.distribution.initialize` reads to join a job of several JAX processes.
JOB_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
BACKEND_MODULES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
# The compilation cache's bound: a MiniLM training step is about 0.4 MB, so a gigabyte holds thousands.
COMPILATION_CACHE_BYTES = 2**30


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


def plan_distribution(distribute, batch_size):
    """What `--distribute` means on this backend and machine, checked before anything is loaded.

    On JAX, a process started with the `KERAS_DISTRIBUTION_*` variables (`JOB_VARIABLES`) first joins
    its job (`keras.distribution.initialize`), so that the devices counted are every process's.

    Args:
        distribute: "auto" (data parallel over all accelerators when there are two or more, and
            over the job's devices in a job of several processes), "none", or "data" (data
            parallel over every device, virtual CPU devices included).
        batch_size: the global batch, which must divide by the device count.

    Returns:
        `{"kind": "none" or "data", "processes", "devices", "per_device_batch"}`.

    Raises:
        SettingsError: a batch that does not divide, a backend without data parallelism, several
            TensorFlow processes, or job variables with `--distribute none`.
    """
    single = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": int(batch_size)}
    if distribute not in DISTRIBUTE_CHOICES:
        raise SettingsError(f"--distribute must be one of {', '.join(DISTRIBUTE_CHOICES)}")
    job = _job_variables()
    if distribute == "none":
        if job:
            raise SettingsError(
                f"{', '.join(job)} ask for a job of several processes, but --distribute none "
                "trains in this process alone: unset them, or use --distribute data"
            )
        return single
    devices, processes, accelerators = _devices_to_distribute_over(distribute, job)
    if distribute == "auto" and processes == 1 and (len(devices) < 2 or not accelerators):
        return single
    count = len(devices)
    if batch_size % count:
        lower = max(count, batch_size // count * count)
        raise SettingsError(
            f"--batch-size {batch_size} does not divide over {count} devices (it is the global "
            f"batch): use {lower} or {lower + count}"
        )
    if count == 1:
        warnings.warn("--distribute data with one device: training on it alone", stacklevel=2)
        return single
    return {
        "kind": "data",
        "processes": processes,
        "devices": count,
        "per_device_batch": batch_size // count,
    }


def _job_variables():
    """The variables set that ask for a job of several processes (Keras' and TensorFlow's)."""
    return [name for name in (*JOB_VARIABLES, "TF_CONFIG") if os.environ.get(name)]


def _devices_to_distribute_over(distribute, job):
    """`(devices, processes, whether the devices are accelerators)` for data parallelism here."""
    backend = backend_name()
    if backend == "jax":
        import jax

        if job and not jax.distributed.is_initialized():
            _join_jax_job(job)
        devices = jax.devices()
        return devices, jax.process_count(), devices[0].platform != "cpu"
    if backend == "tensorflow" and job:
        raise SettingsError(
            f"{', '.join(job)}: training over several TensorFlow processes or hosts is not "
            "supported: Keras 3.15's fit fails under MultiWorkerMirroredStrategy before its "
            "first step (it reduces the first batch to build the model, a ValueError; "
            "keras-team/keras#20329, #20585): use KERAS_BACKEND=jax, whose jobs keras-qa joins "
            "from the KERAS_DISTRIBUTION_* variables"
        )
    if backend == "tensorflow":
        devices = _tensorflow_devices()
        return devices, 1, devices[0].device_type == "GPU"
    if distribute == "data":
        raise SettingsError(
            f"--distribute data is not available on the {backend} backend (Keras 3.15 has no data "
            "parallelism there): use KERAS_BACKEND=jax or tensorflow"
        )
    if backend == "torch" and has_accelerator():
        import torch

        if torch.cuda.device_count() > 1:
            warnings.warn(
                f"{torch.cuda.device_count()} GPUs are visible but Keras 3.15 has no data "
                "parallelism on torch: training on the first one (KERAS_BACKEND=jax or tensorflow "
                "train on all of them)",
                stacklevel=3,
            )
    return [None], 1, False


def _join_jax_job(job):
    """Join the job the `KERAS_DISTRIBUTION_*` variables describe (before any JAX computation:
    the other processes' devices then join this one's)."""
    try:
        keras.distribution.initialize()
    except (ValueError, RuntimeError) as error:
        raise SettingsError(
            f"joining the JAX job of {', '.join(job)} failed ({error}): every process needs "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES (host:port of process 0, the coordinator), "
            "KERAS_DISTRIBUTION_NUM_PROCESSES and its own KERAS_DISTRIBUTION_PROCESS_ID (on a "
            "TPU VM slice JAX finds the address and the id itself)"
        ) from error


def _tensorflow_devices():
    """TensorFlow's logical GPUs, or its logical CPUs where there is no GPU."""
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")


@contextlib.contextmanager
def distribution_scope(plan):
    """Within it, Keras builds, compiles and trains models as `plan` says: the variables created
    there are laid out over the devices (JAX `keras.distribution.DataParallel`, TensorFlow
    `tf.distribute.MirroredStrategy`); outside, nothing changes."""
    if plan["kind"] == "none":
        yield
    elif backend_name() == "jax":
        # Each process yields its own rows of every batch (`process_share`): Keras must not
        # split them again.
        distribution = keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(), auto_shard_dataset=False
        )
        with distribution.scope():
            yield
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy([device.name for device in _tensorflow_devices()])
        with strategy.scope():
            yield


@contextlib.contextmanager
def without_distribution():
    """Within it, the variables Keras creates stay on this process's devices.

    Keras' saving creates throwaway variables; under a JAX distribution each would be laid out over
    every process's devices and wait for the job's other processes, which do not save.
    """
    distribution = keras.distribution.distribution() if backend_name() == "jax" else None
    if distribution is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


def data_parallel_devices():
    """The devices a batch is split over now, in all processes (1 without data parallelism)."""
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    if backend_name() != "jax" or keras.distribution.distribution() is None:
        return 1
    return int(np.prod(keras.distribution.distribution().device_mesh.shape))


def process_share():
    """`(index, count)`: this process's place among the job's processes; it feeds the `index`-th
    of `count` equal blocks of rows of every global batch (`(0, 1)` outside a job)."""
    if backend_name() == "jax":
        import jax

        if jax.distributed.is_initialized():
            return jax.process_index(), jax.process_count()
    return 0, 1


def writes_files():
    """Whether this process writes the run's files: the first process of a job, or the only one."""
    return process_share()[0] == 0


def batch_predictor(model):
    """A function from a batch (this process's share of its rows) to the model's outputs for all
    its rows, as NumPy arrays.

    Under data parallelism each backend needs its own path: on JAX the process's rows are made one
    global array and the outputs are gathered from every process; on TensorFlow the batch goes
    through `predict`, which splits it over the replicas (`predict_on_batch` would give each
    replica the whole batch and return every copy).
    """
    if data_parallel_devices() == 1:
        return model.predict_on_batch
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return lambda inputs: model.predict(tf.data.Dataset.from_tensors(inputs), verbose=0)
    return _jax_global_predictor(model)


def _jax_global_predictor(model):
    import jax
    from jax.experimental import multihost_utils

    distribution = keras.distribution.distribution()
    # One compiled function per model and batch shape, kept with the model.
    step = getattr(model, "_keras_qa_global_predict", None)
    if step is None:
        step = jax.jit(
            lambda trainable, other, inputs: model.stateless_call(
                trainable, other, inputs, training=False
            )[0]
        )
        model._keras_qa_global_predict = step

    def predict(inputs):
        layout = distribution.get_data_layout(next(iter(inputs.values())).shape).backend_layout
        inputs = {
            name: jax.make_array_from_process_local_data(layout, value)
            for name, value in inputs.items()
        }
        trainable = [variable.value for variable in model.trainable_variables]
        other = [variable.value for variable in model.non_trainable_variables]
        outputs = step(trainable, other, inputs)
        return {
            name: np.asarray(multihost_utils.process_allgather(value, tiled=True))
            for name, value in outputs.items()
        }

    return predict


@contextlib.contextmanager
def fast_bfloat16_products(policy, plan):
    """Within it, Keras on JAX computes bfloat16 matrix products on XLA:CPU's fast path.

    XLA:CPU multiplies bfloat16 matrices several times faster when both operands are in plain
    row-major order and the result is float32; a mixed_bfloat16 `Dense` asks for a bfloat16
    result, and autodiff's gradient products read transposed operands, so a JAX training step
    never takes that path (`benchmarks/jax_cpu_training.py --part products` shows it). Here Keras'
    JAX `matmul`, two-operand `einsum` and `dot_product_attention` compute bfloat16 products, and
    their gradients, as products of operands copied into that order, accumulated in float32 and
    rounded to bfloat16 as before: the same arithmetic as a plain mixed_bfloat16 step, up to the order of the
    sums. Keras' JAX `add` of two bfloat16 operands of different shapes (a layer's bias) sums the
    broadcast operand's gradient in float32 and rounds it to bfloat16: autodiff sums it in bfloat16,
    which XLA:CPU turns into a slow reduce-window. Functions traced inside keep the fast products;
    outside, Keras is unchanged.

    Args:
        policy: the run's Keras dtype policy name; only "mixed_bfloat16" changes anything.
        plan: the `plan_distribution` result; only one device on one process is changed (the
            copies would move data between devices).

    Yields:
        Whether the fast products are on: JAX on a CPU with bfloat16 instructions, one device.

    Example:
    >>> with fast_bfloat16_products("float32", {"kind": "none"}) as fast:
    ...     fast
    False
    """
    if not _fast_products_apply(policy, plan):
        yield False
        return
    try:  # Keras' JAX backend modules are not public API: a Keras that moves them trains plainly.
        from keras.src.backend.jax import nn as jax_nn
        from keras.src.backend.jax import numpy as jax_numpy

        # In the order of `_fast_products`' arguments and results.
        replaced = [
            (jax_numpy, "matmul"),
            (jax_numpy, "einsum"),
            (jax_nn, "dot_product_attention"),
            (jax_numpy, "add"),
        ]
        originals = [getattr(module, name) for module, name in replaced]
    except (ImportError, AttributeError) as error:
        warnings.warn(f"bfloat16 products on XLA's plain path: {error}", stacklevel=3)
        yield False
        return
    for (module, name), function in zip(replaced, _fast_products(*originals)):
        setattr(module, name, function)
    try:
        yield True
    finally:
        for (module, name), function in zip(replaced, originals):
            setattr(module, name, function)


def _fast_products_apply(policy, plan):
    return (
        policy == "mixed_bfloat16"
        and backend_name() == "jax"
        and plan["kind"] == "none"
        and not has_accelerator()
        and cpu_has_bfloat16()
    )


def _fast_products(matmul, einsum, dot_product_attention, add):
    """Keras' JAX `matmul`, `einsum` and `dot_product_attention`, with bfloat16 operands routed
    through `_row_major_dot_general`, and `add`, whose gradient for a broadcast bfloat16 operand
    (a layer's bias) is summed in float32; any other call goes to the original."""
    import jax
    import jax.numpy as jnp

    bfloat16, float32 = jnp.bfloat16, jnp.float32

    def both_bfloat16(*operands):
        return all(operand.dtype == bfloat16 for operand in operands)

    def fast_matmul(x1, x2):
        # A layer passes its kernel as a Keras variable: its value is the autocast bfloat16 one.
        x1, x2 = keras.ops.convert_to_tensor(x1), keras.ops.convert_to_tensor(x2)
        if not (both_bfloat16(x1, x2) and x2.ndim == 2 and x1.ndim >= 1):
            return matmul(x1, x2)
        return _row_major_dot_general(x1, x2, (((x1.ndim - 1,), (0,)), ((), ()))).astype(bfloat16)

    def row_major_einsum(subscripts, *operands):
        return jnp.einsum(
            subscripts,
            *operands,
            preferred_element_type=float32,
            _dot_general=_row_major_dot_general,
        )

    def fast_einsum(subscripts, *operands, **kwargs):
        operands = [keras.ops.convert_to_tensor(operand) for operand in operands]
        if len(operands) != 2 or kwargs or not both_bfloat16(*operands):
            return einsum(subscripts, *operands, **kwargs)
        return row_major_einsum(subscripts, *operands).astype(bfloat16)

    def fast_attention(query, key, value, bias=None, mask=None, scale=None, is_causal=False, **rest):
        query, key, value = (keras.ops.convert_to_tensor(x) for x in (query, key, value))
        plain = bias is not None or is_causal or any(option is not None for option in rest.values())
        if plain or not both_bfloat16(query, key, value):
            return dot_product_attention(query, key, value, bias, mask, scale, is_causal, **rest)
        # What jax.nn.dot_product_attention computes: float32 scores and softmax, bfloat16 weights.
        logits = row_major_einsum("BTNH,BSNH->BNTS", query, key)
        logits = logits * (query.shape[-1] ** -0.5 if scale is None else scale)
        if mask is not None:
            logits = jnp.where(mask, logits, -0.7 * float(jnp.finfo(float32).max))
        weights = jax.nn.softmax(logits, axis=-1).astype(bfloat16)
        return row_major_einsum("BNTS,BSNH->BTNH", weights, value).astype(bfloat16)

    def fast_add(x1, x2):
        x1, x2 = keras.ops.convert_to_tensor(x1), keras.ops.convert_to_tensor(x2)
        if x1.shape == x2.shape or not both_bfloat16(x1, x2):
            return add(x1, x2)
        return _broadcast_add(x1.shape, x2.shape)(x1, x2)

    return fast_matmul, fast_einsum, fast_attention, fast_add


@functools.cache
def _broadcast_add(left_shape, right_shape):
    """`left + right` for bfloat16 operands of these shapes; the gradient of an operand that was
    broadcast is summed in float32 and rounded to bfloat16. Autodiff would sum it in bfloat16,
    which XLA:CPU rewrites into a reduce-window many times slower than a float32 sum."""
    import jax
    import jax.numpy as jnp

    shape = jnp.broadcast_shapes(left_shape, right_shape)

    def summed_to(gradient, operand_shape):
        leading = len(shape) - len(operand_shape)
        axes = tuple(range(leading)) + tuple(
            leading + axis
            for axis, size in enumerate(operand_shape)
            if size == 1 and shape[leading + axis] != 1
        )
        if not axes:
            return gradient
        summed = jnp.sum(gradient.astype(jnp.float32), axis=axes)
        return summed.reshape(operand_shape).astype(gradient.dtype)

    @jax.custom_vjp
    def broadcast_add(left, right):
        return jnp.add(left, right)

    def forward(left, right):
        return jnp.add(left, right), None

    def backward(_, gradient):
        return summed_to(gradient, left_shape), summed_to(gradient, right_shape)

    broadcast_add.defvjp(forward, backward)
    return broadcast_add


def _row_major_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """`lax.dot_general` as a (batched) product of row-major matrices (batch, M, K) x (batch, K, N)
    with a float32 result: each operand is first copied into that order."""
    import math

    (lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch) = (
        tuple(map(list, pair)) for pair in dimension_numbers
    )
    lhs_free = [d for d in range(lhs.ndim) if d not in lhs_contracting + lhs_batch]
    rhs_free = [d for d in range(rhs.ndim) if d not in rhs_contracting + rhs_batch]
    batch_shape = [lhs.shape[d] for d in lhs_batch]
    lhs_free_shape = [lhs.shape[d] for d in lhs_free]
    rhs_free_shape = [rhs.shape[d] for d in rhs_free]
    batch = [math.prod(batch_shape)] if lhs_batch else []
    rows, columns = math.prod(lhs_free_shape), math.prod(rhs_free_shape)
    inner = math.prod(lhs.shape[d] for d in lhs_contracting)
    left = _in_order(lhs, lhs_batch + lhs_free + lhs_contracting).reshape(batch + [rows, inner])
    right = _in_order(rhs, rhs_batch + rhs_contracting + rhs_free).reshape(batch + [inner, columns])
    product = _row_major_product()(left, right)
    product = product.reshape(batch_shape + lhs_free_shape + rhs_free_shape)
    return product.astype(preferred_element_type or lhs.dtype)


def _in_order(array, axes):
    """`array` with its axes in this order, really moved in memory: XLA would otherwise fold the
    transpose into the product, which then reads a transposed operand again."""
    import jax.numpy as jnp
    from jax import lax

    if list(axes) == list(range(array.ndim)):
        return array
    moved = jnp.transpose(array, axes)
    return lax.optimization_barrier(moved.reshape(-1)).reshape(moved.shape)


@functools.cache
def _row_major_product():
    """(batch?, M, K) x (batch?, K, N) -> float32, its gradients also row-major products."""
    import jax

    @jax.custom_vjp
    def product(left, right):
        return _float32_matmul(left, right)

    def forward(left, right):
        return _float32_matmul(left, right), (left, right)

    def backward(saved, gradient):
        left, right = saved
        gradient = gradient.astype(left.dtype)
        left_gradient = _float32_matmul(gradient, _swap_last_axes(right))
        right_gradient = _float32_matmul(_swap_last_axes(left), gradient)
        return left_gradient.astype(left.dtype), right_gradient.astype(right.dtype)

    product.defvjp(forward, backward)
    return product


def _float32_matmul(left, right):
    import jax.numpy as jnp

    return jnp.matmul(left, right, preferred_element_type=jnp.float32)


def _swap_last_axes(array):
    return _in_order(array, list(range(array.ndim - 2)) + [array.ndim - 1, array.ndim - 2])


def use_compilation_cache(directory):
    """On JAX, keep every compiled XLA program of over a second in `directory` and load it from
    there in later processes, so that a run whose model and batch lengths were compiled before
    (each training length's step, each prediction length's) starts without compiling them again.

    JAX's own setting wins: where `JAX_COMPILATION_CACHE_DIR` (or `jax_compilation_cache_dir`) is
    set, that cache is used as it is. The folder is created readable by its owner only, since
    JAX runs the programs it finds there. JAX drops the least recently used programs past
    `COMPILATION_CACHE_BYTES`. Other backends compile nothing that could be kept, and are left alone.

    Args:
        directory: the folder, or None for no cache.

    Returns:
        The folder in use, or None.

    Example:
    >>> use_compilation_cache(None) is None
    True
    """
    if backend_name() != "jax":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    if directory is None:
        return None
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if jax.config.jax_compilation_cache_max_size == -1:  # JAX's default: no bound
        jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_BYTES)
    jax.config.update("jax_compilation_cache_dir", directory)
    # JAX reads the setting when it first compiles; a process that compiled before reads it again.
    compilation_cache.reset_cache()
    return directory


def fit_input(batches, input_names, target_names=(), weighted=False):
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
        weighted: batches also carry float32 sample weights `(batch,)`.
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
        if weighted:
            signature = (*signature, tf.TensorSpec((None,), tf.float32))
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
