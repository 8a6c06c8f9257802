import numpy as np
import pytest

from keras_qa.models.batching import BucketedBatches, bucket_plan, predict_logits


def fake_features(lengths, full_length=64):
    lengths = np.asarray(lengths)
    mask = (np.arange(full_length)[None, :] < lengths[:, None]).astype(np.int32)
    count = len(lengths)
    return {
        "token_ids": mask * 7,
        "segment_ids": np.zeros_like(mask),
        "padding_mask": mask,
        "start_positions": np.arange(count, dtype=np.int32) % 5,
        "end_positions": np.arange(count, dtype=np.int32) % 5 + 1,
        "example_index": np.arange(count, dtype=np.int32),
    }


@pytest.mark.parametrize("shuffle", [False, True])
def test_every_window_is_batched_once_in_a_bucket_that_holds_it(shuffle):
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 65, size=301)
    plan = bucket_plan(lengths, 8, 16, np.random.default_rng(1) if shuffle else None)
    rows = np.concatenate([r for r, _ in plan])
    assert sorted(rows.tolist()) == list(range(301))
    assert all(lengths[r].max() <= length and length % 16 == 0 for r, length in plan)
    assert {length for _, length in plan} <= {16, 32, 48, 64}
    assert sum(len(r) < 8 for r, _ in plan) <= 1


def test_shuffling_changes_each_epoch_and_replays_from_the_seed():
    features = fake_features(np.random.default_rng(0).integers(3, 65, size=200))
    first = BucketedBatches(features, 8, 16, shuffle=True, seed=3)
    epoch0 = first.window_order.copy()
    callback = first.epoch_callback()
    callback.on_epoch_begin(0)
    assert np.array_equal(first.window_order, epoch0)
    callback.on_epoch_begin(1)
    epoch1 = first.window_order.copy()
    assert not np.array_equal(epoch0, epoch1)
    replay = BucketedBatches(features, 8, 16, shuffle=True, seed=3, epoch=1, skip=5)
    assert np.array_equal(
        replay.window_order, epoch1[sum(len(first.batches[i][0]) for i in range(5)) :]
    )


def test_batches_are_cut_to_their_bucket_and_carry_targets():
    features = fake_features([5, 40, 7, 33, 60])
    batches = BucketedBatches(features, 2, 32, targets=True)
    inputs, targets = batches[0]
    assert inputs["token_ids"].shape == (2, 32)
    assert set(targets) == {"start_logits", "end_logits"}
    assert batches.padded_tokens == 2 * 32 + 2 * 64 + 64
    whole = BucketedBatches(features, 2, None)
    assert {whole[i]["token_ids"].shape[1] for i in range(len(whole))} == {64}


def test_padded_batches_are_full_and_weigh_only_their_real_rows():
    features = fake_features([5, 9, 12, 20, 30, 31])  # one 32-token bucket: batches of 4 and 2
    batches = BucketedBatches(features, 4, 32, targets=True, pad_to=4)
    shapes = {batches[i][0]["token_ids"].shape for i in range(len(batches))}
    assert shapes == {(4, 32)}  # the short batch compiles no other shape
    short = next(i for i, (rows, _) in enumerate(batches.batches) if len(rows) < 4)
    (inputs, _, weights), rows = batches[short], batches.batches[short][0]
    assert len(rows) == 2 and weights.tolist() == [2.0, 2.0, 0.0, 0.0]
    np.testing.assert_array_equal(inputs["token_ids"][:2], features["token_ids"][rows, :32])
    # Keras' weighted mean over the 4 rows is the plain mean over the 2 real ones.
    losses = np.array([1.0, 3.0, 100.0, 100.0])
    assert (weights * losses).sum() / len(losses) == losses[:2].mean()


def test_each_process_gets_its_block_of_every_global_batch():
    features = fake_features(np.random.default_rng(2).integers(3, 65, size=37))
    whole = BucketedBatches(features, 8, 16, shuffle=True, targets=True, pad_to=8)
    shares = [
        BucketedBatches(features, 8, 16, shuffle=True, targets=True, pad_to=8, share=(index, 2))
        for index in range(2)
    ]
    for share in shares:  # the same global plan in every process
        np.testing.assert_array_equal(share.window_order, whole.window_order)
    for index in range(len(whole)):
        inputs, targets, weights = whole[index]
        blocks = [share[index] for share in shares]
        assert all(len(block[2]) == 4 for block in blocks)
        np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks]), weights)
        for name in inputs:
            joined = np.concatenate([b[0][name] for b in blocks])
            np.testing.assert_array_equal(joined, inputs[name])
        for name in targets:
            joined = np.concatenate([b[1][name] for b in blocks])
            np.testing.assert_array_equal(joined, targets[name])


class EchoModel:
    """Returns each window's token count as its logits, to check the order predict_logits keeps."""

    input_names = ("token_ids", "padding_mask")

    def predict_on_batch(self, inputs):
        lengths = inputs["padding_mask"].sum(axis=1, keepdims=True).astype(np.float32)
        logits = np.broadcast_to(lengths, inputs["padding_mask"].shape).copy()
        return {"start_logits": logits, "end_logits": -logits}


def tiny_question_answering_model(dtype="float32"):
    """A one-layer BERT with the start / end head, for feature vocabularies under 10."""
    import keras_hub

    from keras_qa.models.task import QuestionAnsweringModel

    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        dtype=dtype,
    )
    return QuestionAnsweringModel(backbone)


def test_predict_logits_returns_windows_in_feature_order():
    lengths = np.random.default_rng(2).integers(3, 65, size=50)
    start, end = predict_logits(EchoModel(), fake_features(lengths), batch_size=4, bucket_width=16)
    assert start.shape == (50, 64)
    np.testing.assert_array_equal(start[:, 0], lengths)
    np.testing.assert_array_equal(end[:, 0], -lengths)


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "float32"])
def test_a_mixed_bfloat16_encoder_answers_on_the_fast_products(dtype, monkeypatch):
    import keras

    import keras_qa.runtime.xla_cpu

    if keras.backend.backend() != "jax":
        pytest.skip("the fast products replace Keras' JAX functions")
    from keras.src.backend.jax import numpy as jax_numpy

    # Their arithmetic is the same on every CPU; only their speed needs bfloat16 instructions.
    monkeypatch.setattr(keras_qa.runtime.xla_cpu, "cpu_has_bfloat16", lambda: True)
    routed = []
    row_major = keras_qa.runtime.xla_cpu._row_major_dot_general
    monkeypatch.setattr(
        keras_qa.runtime.xla_cpu,
        "_row_major_dot_general",
        lambda *args, **kwargs: routed.append(args[0].shape) or row_major(*args, **kwargs),
    )
    keras.utils.set_random_seed(0)
    model = tiny_question_answering_model(dtype)
    features = fake_features([5, 9, 30, 12])
    matmul = jax_numpy.matmul
    start, end = predict_logits(model, features, batch_size=2, bucket_width=16)
    assert bool(routed) == (dtype == "mixed_bfloat16")
    assert jax_numpy.matmul is matmul  # Keras is itself again afterwards
    # Keras' own computation (outside predict_logits, at another length): the same logits, up to
    # the rounding of bfloat16 sums.
    plain = model.predict_on_batch({name: features[name] for name in model.input_names})
    real = features["padding_mask"] == 1
    for fast, keras_logits in [(start, plain["start_logits"]), (end, plain["end_logits"])]:
        keras_logits = np.asarray(keras_logits, np.float32)
        scale = np.abs(keras_logits[real]).max()
        np.testing.assert_allclose(fast[real], keras_logits[real], atol=2**-5 * scale)


def test_fit_takes_buckets_in_any_order_and_counts_the_time_spent_on_batches():
    import keras

    model = tiny_question_answering_model()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    features = fake_features([5] * 4 + [60] * 2)
    batches = BucketedBatches(features, 2, 16, targets=True, input_names=model.input_names)
    # The first two batches share a length and a later one differs: Keras' TensorFlow adapter
    # would fix the shape from the first two.
    assert [length for _, length in batches.batches] == [16, 16, 64]
    history = model.fit(batches.as_fit_input(), epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()
    assert batches.fetch_seconds > 0
