import pytest

from keras_qa.saving import load_trained_model


def test_loading_something_that_is_not_a_trained_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a trained keras-qa model"):
        load_trained_model(str(tmp_path))
