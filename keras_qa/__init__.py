"""keras-qa: extractive question answering in pure Keras 3, on JAX, TensorFlow and PyTorch.

The pipeline runs one way:

    load_examples -> prepare_*_features -> model -> start/end logits -> decode_answers -> squad_score

The data, feature, decoding and metric functions are NumPy only; the model and training names import
Keras (and, through KerasHub, TensorFlow) the first time they are used.
"""

import importlib
import importlib.abc
import sys

from keras_qa.data import DataFormatError, load_examples
from keras_qa.features import prepare_eval_features, prepare_train_features
from keras_qa.metrics import squad_score
from keras_qa.postprocess import decode_answers, decode_spans
from keras_qa.sources import minilm_path, resolve_model_source
from keras_qa.tokenizer import QATokenizer, load_tokenizer

__version__ = "0.1.0"

# Names whose modules import Keras, loaded on first use.
_LAZY = {
    "load_backbone": "keras_qa.backbones",
    "QuestionAnsweringModel": "keras_qa.model",
    "SpanHead": "keras_qa.model",
    "ExactSpanAccuracy": "keras_qa.model",
    "BucketedBatches": "keras_qa.batching",
    "predict_logits": "keras_qa.batching",
    "TrainSettings": "keras_qa.training",
    "fine_tune": "keras_qa.training",
    "load_trained_model": "keras_qa.saving",
    "QuestionAnswerer": "keras_qa.pipeline",
    "QuestionAnsweringPipeline": "keras_qa.hf_pipeline",
}


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Registers keras-qa's Keras classes as soon as Keras is imported.

    `keras.saving.load_model` finds custom classes only once their module has run, and importing
    keras-qa must stay free of Keras (the NumPy stages do not need it): so `keras_qa.model` is
    imported right after Keras itself, whenever that happens.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                importlib.import_module("keras_qa.model")

            spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    importlib.import_module("keras_qa.model")
else:
    sys.meta_path.insert(0, _RegisterWithKeras())


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_qa' has no attribute {name!r}")


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
    *_LAZY,
]
