"""Fine-tuning: the run's settings and recipes, its data, the run itself, the optimizer, resuming from a
checkpoint, and its reports. Imports every layer below it except `serving`; only `python -m
keras_qa.train` imports it."""
