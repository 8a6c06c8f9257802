"""keras-qa: extractive question answering in pure Keras 3, on JAX, TensorFlow and PyTorch.

The pipeline runs one way:

    load_examples -> prepare_*_features -> model -> start/end logits -> decode_answers -> squad_score

The data, feature, decoding and metric functions are NumPy only; the model and training names import
Keras (and, through KerasHub, TensorFlow) the first time they are used. The sub-packages are layers,
each importing only those below it (docs/architecture.md): data, text and runtime; models; checkpoints;
answering and evaluation; training; serving; then the command lines.
"""

import functools
import importlib
import importlib.abc
import sys

from keras_qa.checkpoints.loading import load_backbone, load_tokenizer
from keras_qa.checkpoints.saving import load_trained_model
from keras_qa.checkpoints.sources import minilm_path, resolve_model_source
from keras_qa.data.examples import load_examples
from keras_qa.errors import DataFormatError
from keras_qa.evaluation.squad_metrics import squad_score
from keras_qa.text import features
from keras_qa.text.decoding import decode_answers, decode_spans
from keras_qa.text.tokenizer import QATokenizer
from keras_qa.version import __version__  # noqa: F401 (the package's version)

# Names whose modules import Keras, loaded on first use.
_LAZY = {
    "QuestionAnsweringModel": "keras_qa.models.task",
    "SpanHead": "keras_qa.models.task",
    "ExactSpanAccuracy": "keras_qa.models.task",
    "BucketedBatches": "keras_qa.models.batching",
    "predict_logits": "keras_qa.models.batching",
    "TrainSettings": "keras_qa.training.settings",
    "fine_tune": "keras_qa.training.run",
    "QuestionAnswerer": "keras_qa.answering.answerer",
    "QuestionAnsweringPipeline": "keras_qa.answering.hf_pipeline",
}


def _taking_any_tokenizer(prepare):
    """`prepare` (a `prepare_*_features`) that also takes a model source for its tokenizer."""

    @functools.wraps(prepare)
    def prepare_with(examples, tokenizer, *args, **kwargs):
        return prepare(examples, load_tokenizer(tokenizer), *args, **kwargs)

    return prepare_with


prepare_train_features = _taking_any_tokenizer(features.prepare_train_features)
prepare_eval_features = _taking_any_tokenizer(features.prepare_eval_features)


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Registers keras-qa's Keras classes as soon as Keras is imported.

    `keras.saving.load_model` finds custom classes only once their module has run, and importing
    keras-qa must stay free of Keras (the NumPy stages do not need it): so `keras_qa.models.task` is
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
                importlib.import_module("keras_qa.models.task")

            spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    importlib.import_module("keras_qa.models.task")
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
    "load_backbone",
    "load_examples",
    "load_tokenizer",
    "load_trained_model",
    "minilm_path",
    "prepare_eval_features",
    "prepare_train_features",
    "resolve_model_source",
    "squad_score",
    *_LAZY,
]
