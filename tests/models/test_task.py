import keras
import numpy as np
import pytest

import keras_qa
from keras_qa.checkpoints.loading import load_backbone
from keras_qa.models.task import QuestionAnsweringModel, SpanHead, model_inputs, model_targets
from keras_qa.runtime.backend import has_accelerator
from keras_qa.runtime.precision import resolve_precision
from tests.conftest import tiny_squad_examples


@pytest.fixture
def tiny_model(tiny_preset):
    keras.utils.set_random_seed(0)
    model = QuestionAnsweringModel(load_backbone(tiny_preset))
    return model


def tiny_features(tiny_preset, count=32, seed=0):
    tokenizer = keras_qa.load_tokenizer(tiny_preset)
    examples = tiny_squad_examples(count, seed)
    return examples, keras_qa.prepare_eval_features(examples, tokenizer, 48, 16)


def test_padding_positions_get_a_very_low_logit(tiny_model, tiny_preset):
    _, features = tiny_features(tiny_preset, 4)
    outputs = tiny_model.predict(model_inputs(features), verbose=0)
    pad = features["padding_mask"] == 0
    assert pad.any()
    for name in ("start_logits", "end_logits"):
        assert outputs[name].dtype == np.float32
        assert (outputs[name][pad] <= -1e8).all() and (outputs[name][~pad] > -1e3).all()


def test_loss_equals_a_hand_computed_cross_entropy(tiny_model, tiny_preset):
    _, features = tiny_features(tiny_preset, 8)
    tiny_model.compile(optimizer="sgd")
    x, y = model_inputs(features), model_targets(features)
    logs = tiny_model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    outputs = tiny_model.predict(x, verbose=0)

    def cross_entropy(logits, labels):
        logits = logits.astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_probabilities[np.arange(len(labels)), labels].mean()

    start = cross_entropy(outputs["start_logits"], features["start_positions"])
    end = cross_entropy(outputs["end_logits"], features["end_positions"])
    assert logs["start_logits_loss"] == pytest.approx(start, rel=1e-4)
    assert logs["end_logits_loss"] == pytest.approx(end, rel=1e-4)
    assert logs["loss"] == pytest.approx((start + end) / 2, rel=1e-4)
    predicted = np.stack([outputs["start_logits"].argmax(1), outputs["end_logits"].argmax(1)], 1)
    labels = np.stack([features["start_positions"], features["end_positions"]], 1)
    assert logs["exact_span_accuracy"] == pytest.approx((predicted == labels).all(1).mean())
    assert logs["start_logits_accuracy"] == pytest.approx((predicted[:, 0] == labels[:, 0]).mean())


def test_a_tiny_model_overfits_32_examples(tiny_model, tiny_preset):
    examples, features = tiny_features(tiny_preset, 32)
    tiny_model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x, y = model_inputs(features), model_targets(features)
    tiny_model.fit(x, y, batch_size=8, epochs=60, verbose=0)
    logs = tiny_model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["exact_span_accuracy"] > 0.9
    outputs = tiny_model.predict(x, verbose=0)
    answers = keras_qa.decode_answers(
        examples, features, outputs["start_logits"], outputs["end_logits"]
    )
    assert keras_qa.squad_score(answers, examples)["exact_match"] > 90


def test_save_and_load_give_identical_logits(tiny_model, tiny_preset, tmp_path):
    _, features = tiny_features(tiny_preset, 4)
    path = str(tmp_path / "model.keras")
    tiny_model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, QuestionAnsweringModel)
    assert restored.get_config()["backbone"]["class_name"] == "BertBackbone"
    before = tiny_model.predict(model_inputs(features), verbose=0)
    after = restored.predict(model_inputs(features), verbose=0)
    for name in ("start_logits", "end_logits"):
        np.testing.assert_array_equal(before[name], after[name])


def test_span_head_round_trips_its_config():
    head = SpanHead(kernel_initializer="zeros", name="head")
    clone = SpanHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    start, end = clone(np.ones((2, 3, 4), "float32"), np.array([[1, 1, 0], [1, 0, 0]]))
    assert start.shape == (2, 3) and float(keras.ops.max(end)) == 0.0


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_steps_keep_the_head_in_float32_and_losses_finite(tiny_preset, policy):
    if policy == "mixed_float16" and keras.backend.backend() == "jax" and not has_accelerator():
        # XLA on the CPU has no float16 matmul with float32 accumulation: training refuses it.
        with pytest.raises(ValueError, match="float16 mixed precision does not run on JAX"):
            resolve_precision("float16")
        return
    _, features = tiny_features(tiny_preset, 16)
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = QuestionAnsweringModel(load_backbone(tiny_preset))
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(
            model_inputs(features), model_targets(features), batch_size=8, epochs=3, verbose=0
        )
        outputs = model.predict(model_inputs(features), verbose=0)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.backbone.compute_dtype == policy.removeprefix("mixed_")
    assert outputs["start_logits"].dtype == np.float32
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
