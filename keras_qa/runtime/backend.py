"""Which Keras backend runs, whether it sees an accelerator, and the library versions a run records."""

import platform

import keras
import numpy as np

from keras_qa.version import __version__

BACKEND_MODULES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}


def backend_name():
    """The Keras backend in use: "jax", "tensorflow" or "torch"."""
    return keras.backend.backend()


def has_accelerator():
    """Whether the current Keras backend sees a GPU or TPU."""
    backend = backend_name()
    # Each framework has its own device query; there is no backend-agnostic one in Keras.
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def versions():
    """The versions of keras-qa, Keras, KerasHub, Python, NumPy and the backend in use."""
    import keras_hub

    found = {
        "keras_qa": __version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    module = BACKEND_MODULES.get(backend_name())
    if module:
        found[module] = __import__(module).__version__
    return found
