"""The errors keras-qa raises for problems a user can fix: bad settings, files or checkpoints.

Each message names what is wrong and where (the setting, the file, the record), in one line, so that a
command line can print it without a traceback. `keras_qa.DataFormatError` (malformed examples) is the
data loaders' member of the family.
"""


class KerasQAError(Exception):
    """A problem with the user's input that keras-qa can explain in one line."""


class SettingsError(KerasQAError, ValueError):
    """Training or answering settings that cannot work (checked before any work starts)."""


class ModelFileError(KerasQAError, ValueError):
    """A model's files (a checkpoint to fine-tune, or a trained model) are missing, corrupt,
    inconsistent or of a kind keras-qa does not read; the message names the file or the source."""


class CheckpointError(KerasQAError, ValueError):
    """A training checkpoint that cannot be resumed from; the message names the file."""
