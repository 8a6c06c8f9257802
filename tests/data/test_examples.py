import warnings

import pytest

import keras_qa
from keras_qa.errors import DataFormatError
from tests.data.squad_files import GOOD, squad_document, write_json


def test_clean_files_load_without_warnings(tmp_path):
    path = write_json(tmp_path / "ok.json", squad_document([GOOD]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_qa.load_examples(path)


def test_unreadable_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json: no such file"):
        keras_qa.load_examples(str(tmp_path / "missing.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{oops")
    with pytest.raises(DataFormatError, match="broken.json: not valid JSON"):
        keras_qa.load_examples(str(broken))
    not_squad = write_json(tmp_path / "list.json", [1, 2])
    with pytest.raises(DataFormatError, match="not a SQuAD-format file"):
        keras_qa.load_examples(not_squad)
    other = tmp_path / "data.csv"
    other.write_text("a,b\n")
    with pytest.raises(ValueError, match="unsupported file type"):
        keras_qa.load_examples(str(other))


# Files damaged or cut short, and records no JSON reader can take: each is a DataFormatError that
# names the file and, where there is one, the record.


# Values no later stage can use: caught at load time, naming the file and the record.
