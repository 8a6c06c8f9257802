"""keras-qa: extractive question answering in pure Keras 3, on JAX, TensorFlow and PyTorch.

The pipeline runs one way:

    load_examples -> prepare_*_features -> model -> start/end logits -> decode_answers -> squad_score
"""

from keras_qa.backbones import minilm_path, resolve_model_source
from keras_qa.data import DataFormatError, load_examples
from keras_qa.features import prepare_eval_features, prepare_train_features
from keras_qa.metrics import squad_score
from keras_qa.postprocess import decode_answers, decode_spans
from keras_qa.tokenizer import QATokenizer, load_tokenizer

__version__ = "0.1.0"

__all__ = [
    "DataFormatError",
    "QATokenizer",
    "decode_answers",
    "decode_spans",
    "load_examples",
    "load_tokenizer",
    "minilm_path",
    "prepare_eval_features",
    "prepare_train_features",
    "resolve_model_source",
    "squad_score",
]
