"""JAX's bfloat16 matrix products on XLA:CPU's fast path, for mixed_bfloat16 training and answering
on a CPU."""

import contextlib
import functools
import threading
import warnings

import keras

from keras_qa.runtime.backend import backend_name, has_accelerator
from keras_qa.runtime.cpu import cpu_has_bfloat16


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
    outside, Keras is unchanged. Threads may be within it together, and it may be nested: Keras'
    functions are put back when the last one leaves.

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
    try:
        _hold_fast_products()
    except (ImportError, AttributeError) as error:
        warnings.warn(f"bfloat16 products on XLA's plain path: {error}", stacklevel=3)
        yield False
        return
    try:
        yield True
    finally:
        _release_fast_products()


# Keras' JAX functions are replaced while any thread is within `fast_bfloat16_products` (a server
# answers on several), and put back when the last one leaves.
_holding = threading.Lock()
_holds = 0  # of any thread, nested or not
_originals = []  # (module, name, Keras' function) for each function replaced


def _hold_fast_products():
    global _holds
    with _holding:
        if not _holds:
            # Keras' JAX backend modules are not public API: a Keras that moves them runs plainly.
            from keras.src.backend.jax import nn as jax_nn
            from keras.src.backend.jax import numpy as jax_numpy

            # In the order of `_fast_products`' arguments and results.
            replaced = [
                (jax_numpy, "matmul"),
                (jax_numpy, "einsum"),
                (jax_nn, "dot_product_attention"),
                (jax_numpy, "add"),
            ]
            originals = [(module, name, getattr(module, name)) for module, name in replaced]
            fast = _fast_products(*(function for _, _, function in originals))
            for (module, name), function in zip(replaced, fast):
                setattr(module, name, function)
            _originals[:] = originals
        _holds += 1


def _release_fast_products():
    global _holds
    with _holding:
        _holds -= 1
        if not _holds:
            for module, name, function in _originals:
                setattr(module, name, function)
            _originals.clear()


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

    def fast_attention(
        query, key, value, bias=None, mask=None, scale=None, is_causal=False, **rest
    ):
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


def _row_major_dot_general(
    lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None
):
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
