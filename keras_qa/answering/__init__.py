"""Answering questions: `QuestionAnswerer` (keras-qa's ranking across windows and documents) and the
drop-in for transformers' question-answering pipeline. Imports `checkpoints` and the layers below."""
