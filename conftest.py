"""Fixtures for the tests and for the docstring examples (`pytest --doctest-modules keras_qa`).

Docstring examples that need a model get these names: `model_dir` (a folder `fine_tune` wrote: the
tiny BERT trained on synthetic "where did ..." questions), `tiny_preset` (that BERT's KerasHub preset
folder, untrained), `tiny_data` (a JSONL file of such questions) and `scratch_dir` (an empty folder).
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The command lines run in tests compile afresh, as before the cache: the tests that are about the
# cache give it folders of their own.
os.environ.setdefault("KERAS_QA_COMPILATION_CACHE", "none")

import pytest  # noqa: E402

import keras_qa  # noqa: E402
from tests.conftest import TINY_WORDS, tiny_settings, tiny_squad_examples  # noqa: E402


@pytest.fixture(scope="session")
def minilm_tokenizer():
    return keras_qa.load_tokenizer("minilm")


@pytest.fixture(scope="session")
def bundled_examples():
    return keras_qa.load_examples("bundled")


@pytest.fixture(scope="session")
def dev_sample(minilm_tokenizer, bundled_examples):
    examples = bundled_examples[::25]
    features = keras_qa.prepare_eval_features(examples, minilm_tokenizer, 128, 48)
    return examples, features


def save_tiny_preset(folder, architecture, max_sequence_length):
    """A tiny random KerasHub backbone and its WordPiece tokenizer (the tiny words) as a preset."""
    import keras
    import keras_hub

    # Unseeded, the weights would depend on which tests ran before (Keras' global seed generator), and
    # so would what the tiny model learns.
    keras.utils.set_random_seed(0)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS
    backbone_class = getattr(keras_hub.models, f"{architecture}Backbone")
    tokenizer_class = getattr(keras_hub.models, f"{architecture}Tokenizer")
    backbone = backbone_class(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=max_sequence_length,
        dropout=0.0,
    )
    backbone.save_to_preset(folder)
    tokenizer_class(vocabulary=vocabulary, lowercase=True).save_to_preset(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A tiny random BERT saved as a KerasHub preset folder (backbone and tokenizer)."""
    return save_tiny_preset(str(tmp_path_factory.mktemp("tiny_preset")), "Bert", 128)


@pytest.fixture(scope="session")
def tiny_distilbert_preset(tmp_path_factory):
    """A tiny random DistilBERT (the keras.io recipe's architecture) as a KerasHub preset folder, with
    the 512 positions that the recipe's 384-token windows need."""
    folder = str(tmp_path_factory.mktemp("tiny_distilbert_preset"))
    return save_tiny_preset(folder, "DistilBert", 512)


@pytest.fixture(scope="session")
def tiny_data_file(tmp_path_factory):
    """A JSONL file of 48 synthetic questions for the tiny model."""
    path = tmp_path_factory.mktemp("tiny_data") / "questions.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in tiny_squad_examples(48, 0)))
    return str(path)


@pytest.fixture(scope="session")
def tiny_trained_model(tiny_preset, tiny_data_file, tmp_path_factory):
    """A directory written by `fine_tune`: the tiny BERT trained on synthetic "where did ..." data."""
    from keras_qa.training.run import fine_tune

    folder = tmp_path_factory.mktemp("trained")
    data_paths = {"train": tiny_data_file, "eval": None}
    settings = tiny_settings(
        tiny_preset, data_paths, folder / "model", epochs=3, checkpoint_every=0
    )
    fine_tune(settings, verbose=0)
    return str(folder / "model")


@pytest.fixture(scope="session", autouse=True)
def _int8_cache(tmp_path_factory):
    """Models converted for `quantize="int8"` go to a folder of the test session, not ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_QA_CACHE", str(tmp_path_factory.mktemp("keras-qa-cache")))
        yield


@pytest.fixture(scope="session")
def tiny_int8_model_file(tiny_trained_model):
    """The tiny trained model converted to an int8 ONNX file (`keras_qa.checkpoints.quantizing`)."""
    from keras_qa import load_trained_model
    from keras_qa.checkpoints.quantizing import int8_onnx_model

    model, tokenizer, _ = load_trained_model(tiny_trained_model)
    return int8_onnx_model(model, tokenizer)


@pytest.fixture
def jax_cache_settings():
    """Put JAX's compilation-cache settings back after a test."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    names = ("jax_compilation_cache_dir", "jax_compilation_cache_max_size")
    saved = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


@pytest.fixture(autouse=True)
def _doctest_names(request):
    """The names docstring examples use (see the module docstring); nothing for other tests."""
    from _pytest.doctest import DoctestItem

    if not isinstance(request.node, DoctestItem):
        return
    namespace = request.getfixturevalue("doctest_namespace")
    namespace["tiny_preset"] = request.getfixturevalue("tiny_preset")
    namespace["tiny_data"] = request.getfixturevalue("tiny_data_file")
    namespace["model_dir"] = request.getfixturevalue("tiny_trained_model")
    namespace["scratch_dir"] = str(request.getfixturevalue("tmp_path"))
    if "onnx_runtime" in request.node.name:
        namespace["int8_model_file"] = request.getfixturevalue("tiny_int8_model_file")
