"""A checkpoint's sizes checked against its weights before anything is built, and its weights checked
for NaN and infinities once they are loaded.

A `config.json` from anywhere may claim a billion positions or a hundred thousand layers; Keras would
try to allocate what it says (and abort the process, or run for hours) before any weight is read. The
shapes in the safetensors headers are what the checkpoint really holds, and reading them loads no
tensor: every size of the config must agree with them, else a `ModelFileError` names the file, the
field and what the weights say.
"""

import os
import re

from keras_qa.errors import ModelFileError

# Each family's config names for its sizes (DistilBERT has names of its own).
SIZE_NAMES = {
    "distilbert": {
        "vocabulary": "vocab_size",
        "positions": "max_position_embeddings",
        "hidden": "dim",
        "layers": "n_layers",
        "heads": "n_heads",
        "intermediate": "hidden_dim",
    },
}
BERT_SIZE_NAMES = {
    "vocabulary": "vocab_size",
    "positions": "max_position_embeddings",
    "hidden": "hidden_size",
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "intermediate": "intermediate_size",
}
# ALBERT shares its layers' weights, so their count is not in the weights: it is bounded instead.
MAX_SHARED_LAYERS = 256
_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")
_ALBERT_GROUP = re.compile(r"albert_layer_groups\.(\d+)\.")
_ALBERT_INNER = re.compile(r"albert_layers\.(\d+)\.")


def header_shapes(folder, weight_files):
    """`{tensor name: shape}` read from the safetensors headers of `weight_files` (tensor -> file)."""
    from safetensors import safe_open

    shapes = {}
    for file in sorted(set(weight_files.values())):
        path = os.path.join(folder, file)
        try:
            with safe_open(path, framework="np") as weights:
                shapes.update(
                    {name: weights.get_slice(name).get_shape() for name in weights.keys()}
                )
        except Exception as error:  # safetensors raises its own error type for a damaged file
            raise ModelFileError(f"{path}: not a safetensors file ({error})") from error
    return shapes


def check_sizes(folder, config, shapes):
    """Raise a `ModelFileError` for any size of `config` that its weights' `shapes` contradict.

    Args:
        folder: the checkpoint's folder (named in the message).
        config: its `config.json` as a dict.
        shapes: `header_shapes` of its weights.
    """
    model_type = config.get("model_type")
    names = SIZE_NAMES.get(model_type, BERT_SIZE_NAMES)
    found = _sizes_in_weights(shapes, model_type)
    for size, (expected, evidence) in found.items():
        _check(folder, config, names.get(size, size), expected, evidence)
    hidden, heads = config.get(names["hidden"]), config.get(names["heads"])
    if not _is_int(heads) or heads < 1 or (_is_int(hidden) and hidden % heads):
        raise ModelFileError(
            f"{folder}/config.json: {names['heads']} is {heads!r}; it must be a positive integer "
            f"that divides {names['hidden']} ({hidden!r})"
        )
    if model_type == "albert":
        layers = config.get(names["layers"])
        if not _is_int(layers) or not 1 <= layers <= MAX_SHARED_LAYERS:
            raise ModelFileError(
                f"{folder}/config.json: {names['layers']} is {layers!r}; an ALBERT checkpoint "
                f"shares its layers, and keras-qa builds from 1 to {MAX_SHARED_LAYERS} of them"
            )


def _sizes_in_weights(shapes, model_type):
    """`{size: (value, evidence)}` of the sizes the weights show, each with the tensor it is read
    from."""
    found = {}

    def first(suffix):
        return next((name for name in sorted(shapes) if name.endswith(suffix)), None)

    word = first("word_embeddings.weight")
    if word is not None:
        found["vocabulary"] = (shapes[word][0], f"{word} has shape {shapes[word]}")
        embedded = "embedding_size" if model_type == "albert" else "hidden"
        found[embedded] = (shapes[word][-1], f"{word} has shape {shapes[word]}")
    positions = first("position_embeddings.weight")
    if positions is not None:
        found["positions"] = (shapes[positions][0], f"{positions} has shape {shapes[positions]}")
    for suffix in ("intermediate.dense.weight", "ffn.lin1.weight", "ffn.weight"):
        if (intermediate := first(suffix)) is not None:
            found["intermediate"] = (
                shapes[intermediate][0],
                f"{intermediate}: {shapes[intermediate]}",
            )
            break
    if model_type == "albert":
        mapping = first("embedding_hidden_mapping_in.weight")
        if mapping is not None:
            found["hidden"] = (shapes[mapping][0], f"{mapping} has shape {shapes[mapping]}")
        for size, pattern in (
            ("num_hidden_groups", _ALBERT_GROUP),
            ("inner_group_num", _ALBERT_INNER),
        ):
            if (count := _count(shapes, pattern)) is not None:
                found[size] = (count, f"the weights hold {count}")
    elif (count := _count(shapes, _LAYER)) is not None:
        found["layers"] = (count, f"the weights hold layers 0 to {count - 1}")
    return found


def _count(shapes, pattern):
    """How many numbered blocks `pattern` finds in the tensor names (one more than the highest)."""
    numbers = [int(match.group(1)) for name in shapes if (match := pattern.search(name))]
    return max(numbers) + 1 if numbers else None


def _check(folder, config, name, expected, evidence):
    _refuse_unless_equal(
        config.get(name),
        expected,
        f"{folder}/config.json: {name}",
        f"the weights say {expected}",
        evidence,
    )


def _refuse_unless_equal(value, expected, what, weights_say, evidence):
    """A `ModelFileError` "`what` is `value`, but `weights_say` (`evidence`)" unless `value` is the
    integer `expected`."""
    if value != expected or not _is_int(value):
        raise ModelFileError(f"{what} is {value!r}, but {weights_say} ({evidence})")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# A saved `.keras` backbone's sizes and the variables of `model.weights.h5` that hold them: `(size,
# variable path suffix, axis)`.
KERAS_SIZES = (
    ("max_sequence_length", "position_embedding/vars/0", 0),
    ("vocabulary_size", "reversible_embedding/vars/0", 0),
    ("intermediate_dim", "_feedforward_intermediate_dense/vars/0", -1),
)
_KERAS_LAYER = re.compile(r"/layers/(transformer_encoder(?:_\d+)?|transformer_layer_\d+)/")


def check_finite_weights(model, source):
    """Refuse a model any of whose weights is NaN or infinite (it would answer NaN scores)."""
    import numpy as np

    for variable in model.weights:
        if not np.isfinite(np.asarray(variable)).all():
            raise ModelFileError(
                f"{source}: the weight {variable.path} holds NaN or infinite values; the "
                "checkpoint is damaged"
            )
    return model


def check_keras_sizes(path):
    """Raise a `ModelFileError` when the backbone config inside a `.keras` file names sizes its
    `model.weights.h5` does not hold (read from the archive's headers; no weight is loaded)."""
    import json
    import zipfile

    import h5py

    shapes = {}

    def note_shape(name, item):  # visititems stops at the first call that returns a value
        if isinstance(item, h5py.Dataset):
            shapes[name] = item.shape

    try:
        # Keras stores the weights file uncompressed: h5py reads its headers in place.
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as file:
            config = json.loads(archive.read("config.json"))
            with h5py.File(file, "r") as weights:
                weights.visititems(note_shape)
    except Exception:  # a damaged archive: Keras' own loading says what is wrong with it
        return
    backbone = ((config.get("config") or {}).get("backbone") or {}).get("config") or {}
    for size, suffix, axis in KERAS_SIZES:
        name = next((name for name in sorted(shapes) if name.endswith(suffix)), None)
        if name is not None and size in backbone:
            _check_keras(
                path, backbone, size, shapes[name][axis], f"{name} has shape {shapes[name]}"
            )
    layers = {match.group(1) for name in shapes if (match := _KERAS_LAYER.search(name))}
    if layers and "num_layers" in backbone and "num_groups" not in backbone:  # ALBERT shares layers
        _check_keras(path, backbone, "num_layers", len(layers), f"the weights hold {len(layers)}")


def _check_keras(path, backbone, size, expected, evidence):
    what = f"{path}: the backbone's {size}"
    _refuse_unless_equal(backbone[size], expected, what, f"its weights say {expected}", evidence)
