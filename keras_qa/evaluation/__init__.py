"""Scoring: the official SQuAD v1.1 / v2.0 EM and F1, and a model's predictions decoded, scored and
written as run_qa.py writes them. Imports `models`, `text` and the base; beside `answering`, not above
it."""
