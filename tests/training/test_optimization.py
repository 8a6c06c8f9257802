import keras
import pytest

from keras_qa.training.optimization import LinearWarmupDecay, make_optimizer


def test_schedule_rises_then_falls_linearly():
    schedule = LinearWarmupDecay(1e-3, total_steps=110, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 200)]
    assert values == pytest.approx([0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], abs=1e-9)
    clone = LinearWarmupDecay.from_config(schedule.get_config())
    assert float(clone(60)) == pytest.approx(5e-4)


def test_optimizer_choice_and_weight_decay_exclusions():
    assert isinstance(make_optimizer(1e-4, 100, 0.1, 0.0), keras.optimizers.Adam)
    optimizer = make_optimizer(1e-4, 100, 0.1, 0.01)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    assert not optimizer._use_weight_decay(dense.bias)
    assert optimizer._use_weight_decay(dense.kernel)
    with pytest.raises(ValueError, match="share of the steps"):
        make_optimizer(1e-4, 100, warmup=10)
