"""Reading and writing the files keras-qa keeps: one JSON reader, and writes that never leave half a file.

Every module that reads a JSON file (datasets, checkpoints' configs, tokenizer settings, trained models,
training state) reads it here, so that a missing, unreadable or malformed file always fails the same way,
naming the file. Every file keras-qa writes for a person or a later run goes through a temporary name in
the same directory and is moved into place whole.
"""

import gzip
import json
import os
import sys
import tempfile
import zlib

import numpy as np


def read_json(path, error=ValueError, missing_ok=False, parse_int=None):
    """The content of a JSON file (`.gz` files are decompressed).

    Whatever is wrong with a file that exists (damaged or cut-short compression, bytes that are not
    UTF-8, malformed JSON, nesting too deep or numbers too long for Python to read) is raised as
    `error`, naming the file, so that no caller sees a raw `zlib.error` or `RecursionError`.

    Args:
        path: the file.
        error: the exception class raised for a file that exists but cannot be read as JSON; its
            message names the file.
        missing_ok: return None instead of raising `FileNotFoundError` when there is no such file.
        parse_int: called with the digits of each JSON integer, as `json.load` does (default `int`).

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
    text = _read_text(path, error)
    try:
        return json.loads(text, parse_int=parse_int)
    except json.JSONDecodeError as problem:
        raise error(f"{path}: not valid JSON ({problem})") from problem
    except RecursionError as problem:
        raise error(
            f"{path}: cannot be read: its JSON is nested too deeply (over "
            f"{sys.getrecursionlimit()} levels of lists or objects)"
        ) from problem
    except ValueError as problem:  # a number over Python's int-string conversion limit
        raise error(f"{path}: cannot be read as JSON ({problem})") from problem


def _read_text(path, error):
    """The whole file as UTF-8 text (decompressed where it ends in `.gz`), or `error` naming it."""
    compressed = path.lower().endswith(".gz")
    try:
        with (gzip.open if compressed else open)(path, "rb") as file:
            raw = file.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as problem:
        raise error(
            f"{path}: cannot be read as gzip: the file is damaged, cut short or not compressed "
            f"({problem})"
        ) from problem
    except OSError as problem:
        raise error(f"{path}: cannot be read ({problem})") from problem
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as problem:
        line = raw.count(b"\n", 0, problem.start) + 1
        column = problem.start - raw.rfind(b"\n", 0, problem.start)
        raise error(
            f"{path}: cannot be read: not UTF-8 text (byte 0x{raw[problem.start]:02X} at line "
            f"{line}, byte {column} of the line{' of the decompressed data' if compressed else ''})"
        ) from problem


def read_json_object(path, missing_ok=True):
    """A JSON object from `path`: `{}` where there is no such file or the file holds no object."""
    content = read_json(path, missing_ok=missing_ok)
    return content if isinstance(content, dict) else {}


def ensure_writable_directory(path):
    """Create the directory `path` (and its parents) and prove a file can be written in it.

    Raises:
        OSError: the directory cannot be made, or is not writable.
    """
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass


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
