"""Reading and writing the files keras-qa keeps: one JSON reader, and writes that never leave half a file.

Every module that reads a JSON file (datasets, checkpoints' configs, tokenizer settings, trained models,
training state) reads it here, so that a missing, unreadable or malformed file always fails the same way,
naming the file. Every file keras-qa writes for a person or a later run goes through a temporary name in
the same directory and is moved into place whole.
"""

import gzip
import json
import os
import tempfile

import numpy as np


def read_json(path, error=ValueError, missing_ok=False):
    """The content of a JSON file (`.gz` files are decompressed).

    Args:
        path: the file.
        error: the exception class raised for a file that exists but cannot be read as JSON; its
            message names the file.
        missing_ok: return None instead of raising `FileNotFoundError` when there is no such file.

    Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "settings.json")
    >>> write_json_atomically(path, {"max_length": 384})
    >>> read_json(path)
    {'max_length': 384}
    >>> read_json(path + ".missing", missing_ok=True) is None
    True
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        if missing_ok:
            return None
        raise FileNotFoundError(f"{path}: no such file")
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as problem:
        raise error(f"{path}: not valid JSON ({problem})") from problem
    except (OSError, EOFError, UnicodeDecodeError) as problem:
        raise error(f"{path}: cannot be read ({problem})") from problem


def read_json_object(path, missing_ok=True):
    """A JSON object from `path`: `{}` where there is no such file or the file holds no object."""
    content = read_json(path, missing_ok=missing_ok)
    return content if isinstance(content, dict) else {}


def write_json_atomically(path, content):
    """Write `content` as JSON to `path`, moved into place only once it is complete.

    NumPy scalars are written as the Python numbers they hold.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", dir=directory, suffix=".partial", delete=False, encoding="utf-8"
        ) as file:
            temporary = file.name
            json.dump(content, file, indent=2, default=_json_default)
    except BaseException:
        if temporary is not None:  # the previous file stays, with nothing half-written beside it
            os.remove(temporary)
        raise
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
