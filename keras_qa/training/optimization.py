"""The optimizer of the fine-tuning recipes: AdamW with linear warm-up and linear decay."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_qa")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    Hugging Face's `get_linear_schedule_with_warmup`, as run_qa.py uses it.

    Args:
        peak: the learning rate at the end of warm-up.
        total_steps: the step at which the rate reaches 0.
        warmup_steps: steps of warm-up.

    Example:
    >>> schedule = LinearWarmupDecay(1e-4, total_steps=100, warmup_steps=10)
    >>> round(float(schedule(5)), 8), round(float(schedule(55)), 8)
    (5e-05, 5e-05)
    """

    def __init__(self, peak, total_steps, warmup_steps=0):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = ops.maximum(float(self.warmup_steps), 1.0)
        rising = step / warmup
        falling = (self.total_steps - step) / ops.maximum(
            float(self.total_steps - self.warmup_steps), 1.0
        )
        factor = ops.where(step < self.warmup_steps, rising, falling)
        return self.peak * ops.clip(factor, 0.0, 1.0)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
        }


def make_optimizer(learning_rate, total_steps, warmup=0.1, weight_decay=0.01):
    """AdamW (Adam when `weight_decay` is 0) on a linear warm-up and decay schedule.

    Args:
        learning_rate: the peak learning rate.
        total_steps: optimizer steps in the whole run.
        warmup: the share of `total_steps` spent warming up (0 to 1).
        weight_decay: decoupled weight decay; biases and layer norms are not decayed.

    Returns:
        A Keras optimizer.
    """
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup is a share of the steps, from 0 to 1; got {warmup}")
    schedule = LinearWarmupDecay(learning_rate, total_steps, round(warmup * total_steps))
    if not weight_decay:
        return keras.optimizers.Adam(learning_rate=schedule, epsilon=1e-8)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-8
    )
    # As Hugging Face does: no decay on biases and layer-norm scales.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer
