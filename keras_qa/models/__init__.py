"""Keras models: the span head and the question answering task, KerasHub encoders with the exact GELU,
and length-bucketed batches for `fit` and `predict`. Imports the base, `text` and `runtime` layers."""
