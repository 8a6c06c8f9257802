"""Text in, NumPy out: the pair layout of a checkpoint, the offsets-capable tokenizer, windows and their
labels, and n-best decoding. Nothing here imports Keras; it imports only the base modules."""
