import pytest

from keras_qa.errors import SettingsError
from keras_qa.training.settings import TrainSettings, check_settings, recipe_settings


def test_recipes():
    assert recipe_settings() == TrainSettings()
    keras_io = recipe_settings("keras-io")
    assert (
        keras_io.model,
        keras_io.train_data,
        keras_io.learning_rate,
        keras_io.batch_size,
        keras_io.epochs,
        keras_io.max_length,
        keras_io.doc_stride,
        keras_io.weight_decay,
    ) == ("distil_bert_base_en", "squad", 5e-5, 32, 1, 384, 128, 0.0)
    assert keras_io.answering_doc_stride == 128  # as the keras.io example evaluates
    with pytest.raises(ValueError, match="Unknown recipe"):
        recipe_settings("fast")


def test_every_problem_is_named_at_once():
    with pytest.raises(SettingsError) as raised:
        check_settings(TrainSettings(epochs=0, batch_size=-2, n_best=0))
    assert str(raised.value).count(" must be ") == 3


def test_answering_windows_share_half_as_much_again_as_training_windows_unless_set():
    assert TrainSettings(doc_stride=100).answering_doc_stride == 150
    assert TrainSettings(doc_stride=100, answer_doc_stride=32).answering_doc_stride == 32
    # Within what 64-token windows allow: 64 less 3 special tokens, a question token and one more.
    assert TrainSettings(max_length=64, doc_stride=50).answering_doc_stride == 59
    check_settings(TrainSettings(max_length=64, doc_stride=50))


def test_both_strides_too_long_for_the_windows_are_named_at_once():
    with pytest.raises(SettingsError) as raised:
        check_settings(TrainSettings(max_length=64, doc_stride=60, answer_doc_stride=61))
    assert "--doc-stride (60)" in str(raised.value)
    assert "--answer-doc-stride (61)" in str(raised.value)
