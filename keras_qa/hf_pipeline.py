"""The drop-in for transformers' question-answering pipeline, at the import path its users write:

    from keras_qa.hf_pipeline import pipeline      # instead of: from transformers import pipeline

It is built in `keras_qa.answering.hf_pipeline`, which says how it matches transformers 4.57's.
"""

from keras_qa.answering.hf_pipeline import TASK, QuestionAnsweringPipeline, pipeline

__all__ = ["TASK", "QuestionAnsweringPipeline", "pipeline"]
