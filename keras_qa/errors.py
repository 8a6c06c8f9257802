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
    """A trained model's files are missing, corrupt or inconsistent; the message names the file."""


class CheckpointError(KerasQAError, ValueError):
    """A training checkpoint that cannot be resumed from; the message names the file."""
