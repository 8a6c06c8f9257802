"""How batches of varying length reach `fit` on each backend."""

from keras_qa.runtime.backend import backend_name


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
