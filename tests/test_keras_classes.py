"""Every Keras class keras-qa registers passes the harness (`tests/keras_class_harness.py`): config
round trip, `.keras` save and load, and a mixed precision call, on the backend the suite runs on."""

import importlib
import pkgutil

import keras
import keras_hub
import numpy as np
import pytest

import keras_qa
from keras_qa.models.exact_gelu import ExactGeluAlbertBackbone, ExactGeluBertBackbone
from keras_qa.models.task import ExactSpanAccuracy, QuestionAnsweringModel, SpanHead
from keras_qa.training.optimization import LinearWarmupDecay
from tests.keras_class_harness import (
    KerasClassCase,
    check_config_round_trip,
    check_mixed_precision,
    check_saving_round_trip,
)

TOKENS = np.array([[2, 7, 8, 3, 9, 10, 3, 0], [2, 11, 3, 12, 13, 14, 15, 3]], "int32")
INPUTS = {
    "token_ids": TOKENS,
    "segment_ids": np.array([[0, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1, 1, 1]], "int32"),
    "padding_mask": (TOKENS > 0).astype("int32"),
}
ENCODER = dict(
    vocabulary_size=20,
    num_layers=1,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    max_sequence_length=16,
)


def span_head_model(head):
    hidden = keras.Input((None, 8))
    mask = keras.Input((None,), dtype="int32")
    return keras.Model([hidden, mask], head(hidden, mask))


def seeded(build):
    """`build` with Keras' seed fixed, so that two builds have the same initial weights."""

    def built(*args, **kwargs):
        keras.utils.set_random_seed(0)
        return build(*args, **kwargs)

    return built


def span_accuracy(metric):
    metric.reset_state()
    logits = np.random.default_rng(0).normal(size=(4, 2, 8)).astype("float32")
    labels = np.array([[1, 2], [3, 3], [0, 0], [5, 6]], "int32")
    labels[0] = logits[0].argmax(-1)  # one window right, so the result is not 0
    metric.update_state(labels, keras.ops.convert_to_tensor(logits, keras.config.floatx()))
    return metric.result()


def question_answering_model(dtype=None):
    backbone = keras_hub.models.BertBackbone(**ENCODER, dtype=dtype)
    return QuestionAnsweringModel(backbone)


CASES = {
    "SpanHead": KerasClassCase(
        SpanHead,
        {},
        lambda head: head(
            np.linspace(-1, 1, 2 * 8 * 8, dtype="float32").reshape(2, 8, 8), INPUTS["padding_mask"]
        ),
        wrap=span_head_model,
    ),
    "ExactSpanAccuracy": KerasClassCase(ExactSpanAccuracy, {}, span_accuracy),
    "ExactGeluBertBackbone": KerasClassCase(
        ExactGeluBertBackbone, ENCODER, lambda backbone: backbone(INPUTS)["sequence_output"]
    ),
    "ExactGeluAlbertBackbone": KerasClassCase(
        ExactGeluAlbertBackbone,
        {**ENCODER, "embedding_dim": 4},
        lambda backbone: backbone(INPUTS)["sequence_output"],
    ),
    "LinearWarmupDecay": KerasClassCase(
        LinearWarmupDecay,
        {"peak": 1e-3, "total_steps": 10, "warmup_steps": 2},
        lambda schedule: [schedule(step) for step in range(11)],
        tolerance=0.0,
    ),
}


class QuestionAnsweringModelCase(KerasClassCase):
    """The task model is built around a backbone: the config holds the backbone's."""

    def build(self, dtype=None):
        return question_answering_model(dtype)


CASES["QuestionAnsweringModel"] = QuestionAnsweringModelCase(
    QuestionAnsweringModel, {}, lambda model: model.predict_on_batch(INPUTS)
)
for case in CASES.values():
    case.build = seeded(case.build)


def registered_classes():
    """The names of every class keras-qa registers with Keras, its modules all imported."""
    for module in pkgutil.walk_packages(keras_qa.__path__, "keras_qa."):
        if not module.name.startswith("keras_qa.serving") and module.name != "keras_qa.serve":
            importlib.import_module(module.name)
    return sorted(
        name.split(">", 1)[1]
        for name in keras.saving.get_custom_objects()
        if name.startswith("keras_qa>")
    )


def test_every_registered_class_has_a_case():
    assert registered_classes() == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_round_trip(name):
    check_config_round_trip(CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_saving_round_trip(name, tmp_path):
    check_saving_round_trip(CASES[name], str(tmp_path))


@pytest.mark.parametrize("name", sorted(CASES))
def test_mixed_precision_call(name):
    check_mixed_precision(CASES[name])
