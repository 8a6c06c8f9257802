import json
import os

import keras
import keras_hub
import numpy as np
import pytest
from safetensors.numpy import load_file

import keras_qa
from keras_qa.checkpoints.loading import load_backbone


def test_a_keras_hub_preset_folder_loads_with_its_saved_weights(tiny_preset):
    keras.utils.set_random_seed(1)
    first = load_backbone(tiny_preset)
    keras.utils.set_random_seed(2)
    second = load_backbone(tiny_preset)
    assert isinstance(first, keras_hub.models.BertBackbone)
    assert (first.num_layers, first.hidden_dim, first.dropout) == (2, 32, 0.0)
    # The weights are the preset's, not a fresh random initialisation.
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_overrides_replace_config_values(tiny_preset):
    backbone = load_backbone(tiny_preset, dropout=0.25)
    assert backbone.dropout == 0.25 and backbone.get_config()["dropout"] == 0.25
    assert backbone.num_layers == 2  # the rest of the config is the preset's


def test_a_trained_keras_qa_model_is_not_a_backbone(tiny_trained_model):
    with pytest.raises(ValueError, match="load_trained_model") as error:
        load_backbone(tiny_trained_model)
    assert tiny_trained_model in str(error.value)


def test_a_hugging_face_folder_without_safetensors_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(FileNotFoundError, match="model.safetensors") as error:
        load_backbone(str(tmp_path))
    assert str(tmp_path / "model.safetensors") in str(error.value)


def test_minilm_is_a_six_layer_bert_of_width_384():
    backbone = load_backbone("minilm", dropout=0.0)
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    assert (backbone.num_layers, backbone.hidden_dim) == (6, 384)
    assert backbone.dropout == 0.0
    # The weights are the checkpoint's, converted, not a random initialisation.
    checkpoint = load_file(os.path.join(keras_qa.minilm_path(), "model.safetensors"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(backbone.token_embedding.embeddings),
        checkpoint["embeddings.word_embeddings.weight"],
    )
