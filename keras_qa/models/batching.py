"""Batches of features padded to a few bucket lengths.

Most SQuAD windows are far shorter than `max_length`, so padding every batch to `max_length` wastes
most of the compute. Windows are grouped by length into buckets that
are multiples of `bucket_width` tokens; each batch is cut to its bucket's length. The model therefore sees
at most `max_length / bucket_width` sequence lengths, so JAX and XLA compile a bounded number of shapes.

For training, windows are shuffled within each bucket and batches are shuffled across buckets every
epoch, from a seed, so that an epoch's order can be replayed (for resuming mid-epoch); pass
`batches.epoch_callback()` to `fit`, with `shuffle=False`. Windows left over
in a bucket move up to the next, longer bucket, so only the last batch of an epoch can be short.
"""

import time

import keras
import numpy as np

from keras_qa.models.task import (
    MODEL_INPUTS,
    MODEL_OUTPUTS,
    PADDING_LOGIT,
    model_inputs,
    model_targets,
)
from keras_qa.runtime.distribution import batch_predictor, data_parallel_devices, process_share
from keras_qa.runtime.feeding import fit_input
from keras_qa.runtime.xla_cpu import fast_bfloat16_products

# Bucket lengths are multiples of this many tokens: few shapes to compile, little padding.
BUCKET_WIDTH = 32


def bucket_plan(lengths, batch_size, bucket_width=BUCKET_WIDTH, rng=None):
    """Group windows into batches of similar length.

    Args:
        lengths: `(windows,)` real lengths (tokens before padding).
        batch_size: windows per batch.
        bucket_width: bucket lengths are multiples of this.
        rng: a NumPy Generator to shuffle with, or None to keep the order (inference).

    Returns:
        A list of `(window indices, padded length)`, one per batch.

    Example:
    >>> bucket_plan(np.array([5, 40, 7, 33]), batch_size=2, bucket_width=32)
    [(array([0, 2]), 32), (array([1, 3]), 64)]
    """
    lengths = np.asarray(lengths)
    if batch_size < 1 or bucket_width < 1:
        raise ValueError("batch_size and bucket_width must be at least 1.")
    bucket = -(-lengths // bucket_width)  # ceil
    batches = []
    carried = np.empty(0, dtype=np.int64)
    for value in np.unique(bucket):
        members = np.flatnonzero(bucket == value)
        if rng is not None:
            members = rng.permutation(members)
        members = np.concatenate([carried, members])
        whole = len(members) // batch_size * batch_size
        for begin in range(0, whole, batch_size):
            batches.append((members[begin : begin + batch_size], int(value * bucket_width)))
        carried = members[whole:]
        last_value = value
    if len(carried):
        batches.append((carried, int(last_value * bucket_width)))
    if rng is not None:
        order = rng.permutation(len(batches))
        batches = [batches[i] for i in order]
    return batches


class BucketedBatches(keras.utils.PyDataset):
    """A Keras `PyDataset` of length-bucketed batches from a features dict.

    Args:
        features: the dict from `prepare_train_features` / `prepare_eval_features`.
        batch_size: windows per batch.
        bucket_width: bucket lengths are multiples of this (`None`: no bucketing, every batch padded
            to the features' full length).
        shuffle: reshuffle every epoch (training) or keep a fixed order (inference).
        seed: the shuffling seed; epoch `e` uses `seed + e`.
        targets: yield `(inputs, targets)` for `fit` / `evaluate` instead of inputs only.
        input_names: the model's input names.
        epoch: the epoch to start at (for resuming).
        skip: batches of the first epoch to leave out (for resuming mid-epoch).
        pad_to: pad each batch's rows up to a multiple of this (repeating its first row), so that
            every batch divides over the devices of a data-parallel run; with `targets`, batches then
            also carry sample weights, 0 for padding rows and `rows / real rows` for the others, so
            that the mean loss and the metrics are those of the real rows alone.
        share: `(index, count)`: yield only the `index`-th of `count` equal blocks of each (padded)
            batch's rows, a process's share of a global batch in a job of `count` processes; the
            plan (`batches`, `window_order`) stays the global one.

    Example:
    >>> from keras_qa import load_examples, load_trained_model, prepare_train_features
    >>> model, tokenizer, config = load_trained_model(model_dir)  # a folder keras_qa.train wrote
    >>> features = prepare_train_features(load_examples(tiny_data), tokenizer, 48, 16)
    >>> batches = BucketedBatches(features, batch_size=16, bucket_width=16, shuffle=True,
    ...     targets=True, input_names=model.input_names)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(batches.as_fit_input(), epochs=2, shuffle=False,
    ...     callbacks=[batches.epoch_callback()], verbose=0)
    >>> len(history.history["loss"])
    2
    """

    def __init__(
        self,
        features,
        batch_size,
        bucket_width=BUCKET_WIDTH,
        shuffle=False,
        seed=0,
        targets=False,
        input_names=MODEL_INPUTS,
        epoch=0,
        skip=0,
        pad_to=None,
        share=(0, 1),
    ):
        super().__init__()
        self.pad_to = pad_to
        self.share = tuple(share)
        self.features = features
        self.batch_size = int(batch_size)
        self.full_length = features["token_ids"].shape[1]
        self.bucket_width = bucket_width or self.full_length
        self.lengths = np.asarray(features["padding_mask"]).sum(axis=1)
        self.shuffle = shuffle
        self.seed = seed
        self.targets = targets
        self.input_names = tuple(input_names)
        self.epoch = epoch
        self.skip = int(skip)
        self.batches = self._plan()
        # Seconds spent assembling batches. With Keras' default single worker `fit` waits for each
        # `__getitem__` on JAX and torch; on TensorFlow `as_fit_input` prefetches them.
        self.fetch_seconds = 0.0

    def start_at(self, epoch, skip=0):
        """Position the batches at `epoch`, leaving out its first `skip` batches."""
        self.epoch, self.skip = int(epoch), int(skip)
        self.batches = self._plan()

    def _plan(self):
        rng = np.random.default_rng(self.seed + self.epoch) if self.shuffle else None
        batches = bucket_plan(self.lengths, self.batch_size, self.bucket_width, rng)
        batches = [(rows, min(length, self.full_length)) for rows, length in batches]
        return batches[self.skip :]

    @property
    def window_order(self):
        """The window indices in the order the batches yield them."""
        if not self.batches:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([rows for rows, _ in self.batches])

    @property
    def padded_tokens(self):
        """Tokens, padding included, that one pass over the batches feeds the model."""
        return int(sum(len(rows) * length for rows, length in self.batches))

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        began = time.perf_counter()
        rows, length = self.batches[index]
        real = len(rows)
        if self.pad_to:
            padded = -(-real // self.pad_to) * self.pad_to
            rows = np.concatenate([rows, np.repeat(rows[:1], padded - real)])
        inputs = {
            name: array[rows, :length]
            for name, array in model_inputs(self.features, self.input_names).items()
        }
        if self.targets:
            targets = model_targets(
                {name: self.features[name][rows] for name in ("start_positions", "end_positions")}
            )
            inputs = (inputs, targets)
            if self.pad_to:
                # Keras averages a loss over all rows of a batch: real rows weigh rows / real.
                weights = np.zeros(len(rows), np.float32)
                weights[:real] = len(rows) / real
                inputs = (*inputs, weights)
        if self.share != (0, 1):
            inputs = _block(inputs, *self.share)
        self.fetch_seconds += time.perf_counter() - began
        return inputs

    def as_fit_input(self):
        """What to give `fit`: these batches, or on TensorFlow a `tf.data.Dataset` over them whose
        length axis is open (see `keras_qa.runtime.fit_input`)."""
        input_names = [name for name in self.input_names if name in self.features]
        target_names = MODEL_OUTPUTS if self.targets else ()
        weighted = bool(self.targets and self.pad_to)
        return fit_input(self, input_names, target_names, weighted)

    def epoch_callback(self):
        """A Keras callback that points these batches at each epoch as `fit` begins it.

        Keras calls a `PyDataset`'s `on_epoch_end` at other times too (once before training starts),
        so the epoch is taken from the trainer's own `on_epoch_begin` instead.
        """
        return _EpochOrder(self)


class _EpochOrder(keras.callbacks.Callback):
    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self.first_epoch, self.first_skip = batches.epoch, batches.skip

    def on_epoch_begin(self, epoch, logs=None):
        skip = self.first_skip if epoch == self.first_epoch else 0
        if (epoch, skip) != (self.batches.epoch, self.batches.skip):
            self.batches.start_at(epoch, skip)


def _block(batch, index, count):
    """The `index`-th of `count` equal blocks of rows of every array in a (nested) batch."""
    if isinstance(batch, dict):
        return {name: _block(value, index, count) for name, value in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_block(value, index, count) for value in batch)
    size = len(batch) // count
    return batch[index * size : (index + 1) * size]


def predict_logits(model, features, batch_size=64, bucket_width=BUCKET_WIDTH, verbose=0):
    """Start and end logits for every window, in the features' order, padded to the features' length.

    Args:
        model: a `QuestionAnsweringModel` (or any model with the same inputs and outputs).
        features: the dict from `prepare_eval_features`.
        batch_size: windows per batch.
        bucket_width: see `BucketedBatches`.
        verbose: Keras progress bar (0 silent, 1 bar).

    Returns:
        `(start_logits, end_logits)`, float32 arrays `(windows, max_length)`; padding positions get
        a very low logit.
    """
    devices = data_parallel_devices()
    batches = BucketedBatches(
        features,
        batch_size,
        bucket_width,
        input_names=model.input_names,
        pad_to=devices if devices > 1 else None,
        share=process_share() if devices > 1 else (0, 1),
    )
    predict = batch_predictor(model)
    windows, full_length = features["token_ids"].shape
    start_logits = np.full((windows, full_length), PADDING_LOGIT, dtype=np.float32)
    end_logits = np.full((windows, full_length), PADDING_LOGIT, dtype=np.float32)
    if windows == 0:
        return start_logits, end_logits
    progress = keras.utils.Progbar(len(batches)) if verbose else None
    # An encoder in mixed_bfloat16 compiles its products on XLA:CPU's fast path (JAX, one device).
    encoder = getattr(model, "backbone", model)
    policy = getattr(getattr(encoder, "dtype_policy", None), "name", None)
    plan = {"kind": "none" if devices == 1 else "data"}
    with fast_bfloat16_products(policy, plan):
        for index in range(len(batches)):
            rows, length = batches.batches[index]
            outputs = predict(batches[index])
            real = len(rows)  # rows added to divide over the devices are dropped
            start_logits[rows, :length] = np.asarray(outputs["start_logits"], np.float32)[:real]
            end_logits[rows, :length] = np.asarray(outputs["end_logits"], np.float32)[:real]
            if progress is not None:
                progress.update(index + 1)
    return start_logits, end_logits
