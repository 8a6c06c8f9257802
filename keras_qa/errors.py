"""The errors keras-qa raises for problems a user can fix: bad settings, files or checkpoints.

Each message names what is wrong and where (the setting, the file, the record), in one line, so that a
command line can print it without a traceback.
"""

import math
import numbers
import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def caller_stacklevel():
    """The `stacklevel` for `warnings.warn` that points at the first caller outside keras-qa, so that a
    warning names the user's line whichever public function led to it (as pandas does)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def is_finite_number(value):
    """Whether `value` is a real number other than a bool, NaN or an infinity (what a threshold
    setting takes)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def first_line(error, limit=300):
    """The first line of an error's message, cut to `limit` characters (some messages print whole
    weight arrays), for a one-line message of our own that wraps it."""
    line = (str(error).strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


class KerasQAError(Exception):
    """A problem with the user's input that keras-qa can explain in one line."""


class SettingsError(KerasQAError, ValueError):
    """Training or answering settings that cannot work (checked before any work starts)."""


class ModelFileError(KerasQAError, ValueError):
    """A model's files (a checkpoint to fine-tune, or a trained model) are missing, corrupt,
    inconsistent or of a kind keras-qa does not read; the message names the file or the source."""


class CheckpointError(KerasQAError, ValueError):
    """A training checkpoint that cannot be resumed from; the message names the file."""


class DataFormatError(KerasQAError, ValueError):
    """A question answering record is malformed. The message names the file and the record."""
