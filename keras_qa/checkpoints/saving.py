"""The trained-model format, in one place: what `python -m keras_qa.train` writes and everything reads.

A trained model is a directory holding

- `model.keras`: the `QuestionAnsweringModel`, uncompiled (`keras.saving.load_model` reads it);
- `tokenizer/`: its `QATokenizer` (`QATokenizer.save`);
- `keras_qa.json`: what answering needs besides the weights (`max_length`, `doc_stride`, `n_best`,
  `max_answer_length`; the score `calibration` when one was fitted), the base model and the
  keras-qa version.

`keras_qa.json` is written last, so a folder is a trained model only once everything else is in place.
Saving and loading import Keras when called, so that reading `keras_qa.json` needs none.
"""

import os
import shutil
import tempfile

from keras_qa.checkpoints.sources import (
    CONFIG_FILE,
    MODEL_FILE,
    TOKENIZER_DIR,
    is_trained_model,
    tokenizer_directory,
)
from keras_qa.checkpoints.weight_shapes import check_finite_weights, check_keras_sizes
from keras_qa.errors import ModelFileError, is_finite_number
from keras_qa.files import read_json, write_json_atomically
from keras_qa.text.calibration import Calibration
from keras_qa.text.features import largest_doc_stride
from keras_qa.text.tokenizer import QATokenizer
from keras_qa.version import __version__

# The integers answering reads from keras_qa.json, with the values they may take. No encoder keras-qa
# loads has more than 8,192 positions; the model's own count is checked when it is loaded.
CONFIG_RANGES = {
    "max_length": (16, 8192),
    "doc_stride": (0, 8192),
    "n_best": (1, 1000),
    "max_answer_length": (1, 8192),
}


def read_config(directory):
    """A trained model's `keras_qa.json`, checked: the right types, in range.

    Raises:
        FileNotFoundError: `directory` holds no trained model (the message says how to make one).
        ModelFileError: the file is not valid JSON, or a value is missing, of the wrong type or out
            of range; the message names the file and the value.
    """
    if not is_trained_model(directory):
        raise FileNotFoundError(
            f"{directory}: not a trained keras-qa model (no {CONFIG_FILE}); "
            "train one with `python -m keras_qa.train --output-dir DIR`."
        )
    path = os.path.join(directory, CONFIG_FILE)
    config = read_json(path, ModelFileError)
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: must be a JSON object, found {type(config).__name__}")
    for key, (low, high) in CONFIG_RANGES.items():
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModelFileError(
                f"{path}: {key!r} must be an integer from {low} to {high:,}, found {value!r}"
            )
    if config["doc_stride"] > largest_doc_stride(config["max_length"]):
        raise ModelFileError(
            f"{path}: 'doc_stride' ({config['doc_stride']}) leaves no room in 'max_length' "
            f"({config['max_length']})"
        )
    threshold = config.get("null_score_diff_threshold", 0.0)
    if not is_finite_number(threshold):
        raise ModelFileError(
            f"{path}: 'null_score_diff_threshold' must be a finite number, found {threshold!r}"
        )
    if "calibration" in config:
        try:
            Calibration.from_config(config["calibration"])
        except ValueError as error:
            raise ModelFileError(f"{path}: 'calibration' is not valid: {error}") from None
    return config


def calibration_of(config):
    """The `Calibration` saved in a (checked) `keras_qa.json` dict, or None."""
    saved = config.get("calibration")
    return None if saved is None else Calibration.from_config(saved)


def save_trained_model(model, tokenizer, directory, **config):
    """Write `model.keras`, `tokenizer/` and `keras_qa.json` into `directory`, each moved in whole.

    Args:
        model: a `QuestionAnsweringModel`; an uncompiled copy is saved (a compiled model's file would
            carry the optimizer state, which answering does not use).
        tokenizer: its `QATokenizer`.
        directory: the output directory (it must exist).
        **config: the settings answering needs (`max_length`, `doc_stride`, ...), saved in
            `keras_qa.json` with the keras-qa version.
    """
    from keras_qa.models.task import copy_model

    with tempfile.TemporaryDirectory(dir=directory, prefix=".saving-") as staging:
        copy_model(model).save(os.path.join(staging, MODEL_FILE))
        tokenizer.save(os.path.join(staging, TOKENIZER_DIR))
        final_tokenizer = tokenizer_directory(directory)
        if os.path.isdir(final_tokenizer):
            shutil.rmtree(final_tokenizer)
        os.replace(os.path.join(staging, TOKENIZER_DIR), final_tokenizer)
        os.replace(os.path.join(staging, MODEL_FILE), os.path.join(directory, MODEL_FILE))
    write_json_atomically(
        os.path.join(directory, CONFIG_FILE), config | {"keras_qa_version": __version__}
    )


def update_config(directory, **values):
    """Add or replace values in a trained model's `keras_qa.json` (written atomically).

    Example: the SQuAD v2.0 no-answer threshold that evaluation found, `update_config(directory,
    null_score_diff_threshold=-1.5)`.
    """
    config = read_config(directory)
    write_json_atomically(os.path.join(directory, CONFIG_FILE), {**config, **values})


def load_trained_model(directory):
    """Load what `save_trained_model` wrote: `(model, tokenizer, config)`, with no network.

    Args:
        directory: a directory written by `python -m keras_qa.train` (or `save_trained_model`).

    Returns:
        The uncompiled `QuestionAnsweringModel`, its `QATokenizer` and the `keras_qa.json` dict.

    Example:
    >>> model, tokenizer, config = load_trained_model(model_dir)  # a folder keras_qa.train wrote
    >>> model.input_names, config["max_length"]
    (('token_ids', 'segment_ids', 'padding_mask'), 48)
    """
    from keras_qa.models import task  # noqa: F401 - registers the classes to load

    config = read_config(directory)
    model = _load_model(os.path.join(directory, MODEL_FILE))
    positions = getattr(model.backbone, "max_sequence_length", None)
    if positions is not None and config["max_length"] > positions:
        raise ModelFileError(
            f"{os.path.join(directory, CONFIG_FILE)}: 'max_length' {config['max_length']} is more "
            f"than the model's {positions} positions"
        )
    check_finite_weights(model, os.path.join(directory, MODEL_FILE))
    tokenizer = QATokenizer.load(tokenizer_directory(directory))
    return model, tokenizer, config


def _load_model(path):
    """`keras.saving.load_model`, with errors that name the file and say what is wrong."""
    import keras

    if not os.path.isfile(path):
        raise ModelFileError(f"{path}: missing; the trained model is incomplete")
    check_keras_sizes(path)  # before Keras builds what the config says
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise ModelFileError(
            f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: {error})"
        ) from error


def copy_answering_files(directory, destination):
    """Copy a trained model's tokenizer and `keras_qa.json` into `destination` (beside an export)."""
    shutil.copytree(tokenizer_directory(directory), tokenizer_directory(destination))
    shutil.copy(os.path.join(directory, CONFIG_FILE), destination)
