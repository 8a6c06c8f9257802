import keras

from keras_qa.runtime.backend import versions


def test_versions_name_the_backend_in_use():
    found = versions()
    assert found["keras"] == keras.__version__
    backend = keras.backend.backend()
    assert found[backend] == __import__(backend).__version__
