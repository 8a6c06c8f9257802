"""The span head and the question answering task model.

    token_ids, segment_ids, padding_mask
        -> KerasHub backbone (BERT, DistilBERT, ...) -> sequence output (batch, length, hidden)
        -> SpanHead: Dense(2) in float32 -> start_logits, end_logits (batch, length), padding masked

The model is compiled by default with an explicit sparse categorical cross-entropy on the start and on the
end positions (averaged, as Hugging Face does) and with Keras metrics that work in `fit` and `evaluate`:
start accuracy, end accuracy and exact-span accuracy (start and end both right).
"""

import keras
from keras import ops

# Logit given to padding positions: far below any real logit, still finite in float32.
PADDING_LOGIT = -1e9
MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")
MODEL_OUTPUTS = ("start_logits", "end_logits")


@keras.saving.register_keras_serializable(package="keras_qa")
class SpanHead(keras.layers.Layer):
    """Start and end logits from a sequence of hidden states.

    A `Dense(2)` projection computed in float32 whatever the model's precision, so that the logits and
    the loss keep their range under mixed precision; padding positions get a very low logit.

    Args:
        kernel_initializer: the projection's initializer (truncated normal, stddev 0.02, as BERT).

    Call arguments:
        sequence_output: `(batch, length, hidden)` hidden states.
        padding_mask: `(batch, length)`, 1 for real tokens, 0 for padding.

    Returns:
        `(start_logits, end_logits)`, each float32 `(batch, length)`.

    Example:
    >>> head = SpanHead()
    >>> start, end = head(keras.ops.ones((2, 5, 8)), keras.ops.ones((2, 5), "int32"))
    >>> tuple(start.shape)
    (2, 5)
    """

    def __init__(self, kernel_initializer=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )
        self.dense = keras.layers.Dense(
            2, kernel_initializer=self.kernel_initializer, dtype="float32", name="span_logits"
        )

    def build(self, sequence_output_shape, padding_mask_shape=None):
        self.dense.build(sequence_output_shape)

    def call(self, sequence_output, padding_mask):
        logits = self.dense(ops.cast(sequence_output, "float32"))
        keep = ops.expand_dims(ops.cast(padding_mask, "bool"), -1)
        logits = ops.where(keep, logits, PADDING_LOGIT)
        return logits[..., 0], logits[..., 1]

    def compute_output_shape(self, sequence_output_shape, padding_mask_shape=None):
        return sequence_output_shape[:-1], sequence_output_shape[:-1]

    def get_config(self):
        config = super().get_config()
        config["kernel_initializer"] = keras.initializers.serialize(self.kernel_initializer)
        return config


@keras.saving.register_keras_serializable(package="keras_qa")
class ExactSpanAccuracy(keras.metrics.Metric):
    """Share of windows whose predicted start and end (argmax of each) are both right.

    `update_state(y_true, y_pred)` takes `y_true` of shape `(batch, 2)` (start, end) and `y_pred` of
    shape `(batch, 2, length)` (start and end logits).
    """

    def __init__(self, name="exact_span_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = ops.argmax(y_pred, axis=-1)
        right = ops.all(ops.equal(predicted, ops.cast(y_true, predicted.dtype)), axis=-1)
        right = ops.cast(right, "float32")
        if sample_weight is None:
            sample_weight = ops.ones_like(right)
        sample_weight = ops.cast(ops.reshape(sample_weight, ops.shape(right)), "float32")
        self.correct.assign_add(ops.sum(right * sample_weight))
        self.count.assign_add(ops.sum(sample_weight))

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)


@keras.saving.register_keras_serializable(package="keras_qa")
class QuestionAnsweringModel(keras.Model):
    """A KerasHub backbone with a span head: extractive question answering.

    Args:
        backbone: a KerasHub encoder backbone (`BertBackbone`, `DistilBertBackbone`, ...) taking
            `token_ids`, `padding_mask` and optionally `segment_ids`.
        head_initializer: the span head's kernel initializer.

    Call arguments:
        inputs: a dict with `token_ids`, `padding_mask` and, for backbones that use them,
            `segment_ids` (extra keys are ignored).

    Returns:
        `{"start_logits": (batch, length), "end_logits": (batch, length)}` in float32.

    Example:
    >>> import keras_hub
    >>> backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=1, num_heads=2,
    ...     hidden_dim=16, intermediate_dim=32, max_sequence_length=64)
    >>> model = QuestionAnsweringModel(backbone)
    >>> model.compile()  # cross-entropy on start and end, span metrics
    """

    def __init__(self, backbone, head_initializer=None, **kwargs):
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in MODEL_INPUTS
            if name in backbone.input
        }
        outputs = backbone(inputs)
        sequence_output = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        head = SpanHead(kernel_initializer=head_initializer, name="span_head")
        start_logits, end_logits = head(sequence_output, inputs["padding_mask"])
        # Identity layers give the outputs stable names for losses, metrics and saving.
        start_logits = keras.layers.Identity(name="start_logits", dtype="float32")(start_logits)
        end_logits = keras.layers.Identity(name="end_logits", dtype="float32")(end_logits)
        super().__init__(
            inputs=inputs,
            outputs={"start_logits": start_logits, "end_logits": end_logits},
            **kwargs,
        )
        self.backbone = backbone
        self.head = head
        self.head_initializer = head.kernel_initializer
        self.exact_span_accuracy = ExactSpanAccuracy()

    @property
    def input_names(self):
        """The feature names the model reads."""
        return tuple(name for name in MODEL_INPUTS if name in self.backbone.input)

    def compile(self, optimizer="adam", loss="auto", metrics="auto", **kwargs):
        """Compile with the question answering defaults.

        `loss="auto"` is `SparseCategoricalCrossentropy(from_logits=True)` on the start and on the end
        logits, weighted 1/2 each; `metrics="auto"` adds start and end accuracy; exact-span accuracy
        is always reported. Any Keras loss, metric and optimizer may be passed instead.
        """
        if loss == "auto":
            loss = {
                "start_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "end_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            }
            kwargs.setdefault("loss_weights", {"start_logits": 0.5, "end_logits": 0.5})
        if metrics == "auto":
            metrics = {
                "start_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                "end_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            }
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y, dict) and "start_logits" in y and "end_logits" in y:
            self.exact_span_accuracy.update_state(
                ops.stack([y["start_logits"], y["end_logits"]], axis=-1),
                ops.stack([y_pred["start_logits"], y_pred["end_logits"]], axis=1),
                sample_weight,
            )
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "head_initializer": keras.initializers.serialize(self.head_initializer),
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        # Registers the exact-GELU backbones before a saved model's backbone is read.
        from keras_qa.models import exact_gelu  # noqa: F401

        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def model_inputs(features, names=MODEL_INPUTS):
    """The model's input dict from a features dict (extra keys dropped)."""
    return {name: features[name] for name in names if name in features}


def model_targets(features):
    """The training targets from a features dict, keyed like the model's outputs."""
    return {"start_logits": features["start_positions"], "end_logits": features["end_positions"]}


def copy_model(model, dtype=None):
    """An uncompiled copy of a `QuestionAnsweringModel` with the same weights.

    Args:
        model: a `QuestionAnsweringModel`.
        dtype: a Keras dtype policy name for the copy's backbone ("float32", "mixed_bfloat16", ...);
            None keeps the model's. The weights are float32 under every policy Keras has, so they
            carry over as they are.
    """
    config = model.get_config()
    if dtype is not None:
        config["backbone"]["config"]["dtype"] = dtype
    copy = QuestionAnsweringModel.from_config(config)
    copy.set_weights(model.get_weights())
    return copy
