import gzip
import json
import os
import stat
import zlib

import numpy as np
import pytest

from keras_qa.files import read_json, read_json_object, write_json_atomically


class BrokenFile(Exception):
    pass


def test_a_written_file_reads_back(tmp_path):
    path = tmp_path / "settings.json"
    content = {"max_length": 384, "name": "café", "layers": [1, 2.5, None, True]}
    write_json_atomically(path, content)
    assert read_json(path) == content
    assert json.loads(path.read_text(encoding="utf-8")) == content


def test_a_missing_file_raises_naming_it_or_returns_none_when_allowed(tmp_path):
    path = tmp_path / "absent.json"
    with pytest.raises(FileNotFoundError, match="absent.json"):
        read_json(path)
    assert read_json(path, missing_ok=True) is None
    # A directory is not a JSON file either.
    with pytest.raises(FileNotFoundError, match=str(tmp_path.name)):
        read_json(tmp_path)


@pytest.mark.parametrize("error", [ValueError, BrokenFile])
def test_malformed_json_raises_the_given_error_naming_the_file(tmp_path, error):
    path = tmp_path / "broken.json"
    path.write_text('{"max_length": 384,', encoding="utf-8")
    with pytest.raises(error, match="not valid JSON") as raised:
        read_json(path, error=error)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value.__cause__, json.JSONDecodeError)


def test_a_file_that_is_not_utf8_raises_the_given_error_naming_the_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"name": "café"}'.encode("latin-1"))
    with pytest.raises(BrokenFile, match="cannot be read") as raised:
        read_json(path, error=BrokenFile)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("name", ["data.json.gz", "DATA.JSON.GZ"])
def test_gzip_files_are_decompressed(tmp_path, name):
    path = tmp_path / name
    content = {"data": [{"title": "été", "paragraphs": []}], "version": "v2.0"}
    with gzip.open(path, "wt", encoding="utf-8") as file:
        json.dump(content, file)
    assert read_json(path) == content


def test_a_gz_file_that_is_not_gzip_raises_the_given_error_naming_the_file(tmp_path):
    path = tmp_path / "plain.json.gz"
    path.write_text('{"not": "compressed"}', encoding="utf-8")
    with pytest.raises(BrokenFile, match="cannot be read") as raised:
        read_json(path, error=BrokenFile)
    assert str(path) in str(raised.value)


def test_gzip_data_damaged_midway_raises_the_given_error_naming_the_file(tmp_path):
    # A valid gzip header and a first stretch of data, then bytes that are no deflate block at all:
    # zlib.error "invalid block type", which is neither an OSError nor an EOFError.
    compressor = zlib.compressobj(wbits=31)
    content = compressor.compress(b'{"settings": [' + b"1, " * 50_000)
    content += compressor.flush(zlib.Z_FULL_FLUSH) + b"\xfe" * 64
    path = tmp_path / "model.json.gz"
    path.write_bytes(content)
    with pytest.raises(BrokenFile, match="damaged, cut short") as raised:
        read_json(path, error=BrokenFile)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value.__cause__, zlib.error)


def test_json_nested_too_deeply_raises_the_given_error_naming_the_file(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"layers": [' * 60_000 + "]}" * 60_000, encoding="utf-8")
    with pytest.raises(BrokenFile, match="nested too deeply") as raised:
        read_json(path, error=BrokenFile)
    assert str(path) in str(raised.value)


def test_a_number_too_long_for_python_raises_the_given_error_naming_the_file(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text('{"seed": ' + "9" * 7_000 + "}", encoding="utf-8")
    with pytest.raises(BrokenFile, match="cannot be read as JSON.*digits") as raised:
        read_json(path, error=BrokenFile)
    assert str(path) in str(raised.value)


def test_parse_int_lets_a_caller_keep_numbers_python_cannot_convert(tmp_path):
    path = tmp_path / "huge.json"
    path.write_text('{"a": 12, "b": ' + "9" * 7_000 + "}", encoding="utf-8")
    content = read_json(path, parse_int=lambda digits: int(digits) if len(digits) < 10 else "long")
    assert content == {"a": 12, "b": "long"}


def test_bytes_that_are_not_utf8_are_named_by_line_in_the_error(tmp_path):
    path = tmp_path / "vocab.json.gz"
    with gzip.open(path, "wb") as file:
        file.write('{\n  "first": "fine",\n  "second": "na\u00efve"\n}'.encode("cp1252"))
    with pytest.raises(BrokenFile, match="not UTF-8 text \\(byte 0xEF at line 3") as raised:
        read_json(path, error=BrokenFile)
    assert str(path) in str(raised.value)


def test_read_json_object_gives_an_empty_dict_for_missing_files_and_non_objects(tmp_path):
    assert read_json_object(tmp_path / "absent.json") == {}
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2, 3]", encoding="utf-8")
    assert read_json_object(listed) == {}
    scalar = tmp_path / "scalar.json"
    scalar.write_text("42", encoding="utf-8")
    assert read_json_object(scalar) == {}
    config = tmp_path / "config.json"
    config.write_text('{"model_type": "bert"}', encoding="utf-8")
    assert read_json_object(config) == {"model_type": "bert"}


def test_read_json_object_can_insist_on_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.json"):
        read_json_object(tmp_path / "absent.json", missing_ok=False)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json"):
        read_json_object(broken)


def test_writing_leaves_no_partial_file_and_a_readable_mode(tmp_path):
    path = tmp_path / "state.json"
    write_json_atomically(path, {"step": 1})
    write_json_atomically(path, {"step": 2})
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
    assert read_json(path) == {"step": 2}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_a_relative_path_is_written_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_json_atomically("relative.json", {"ok": True})
    assert sorted(os.listdir(tmp_path)) == ["relative.json"]
    assert read_json(tmp_path / "relative.json") == {"ok": True}


def test_numpy_scalars_are_written_as_numbers(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomically(
        path,
        {
            "loss": np.float32(0.5),
            "exact": np.float64(81.25),
            "step": np.int64(3),
            "best": np.bool_(True),
        },
    )
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written == {"loss": 0.5, "exact": 81.25, "step": 3, "best": True}
    assert type(written["step"]) is int and type(written["loss"]) is float
    assert written["best"] is True


def test_a_crash_while_writing_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "state.json"
    write_json_atomically(path, {"global_step": 8})
    before = path.read_bytes()
    with pytest.raises(TypeError, match="set is not JSON serialisable"):
        write_json_atomically(path, {"global_step": 9, "history": {1, 2}})
    assert path.read_bytes() == before
    assert read_json(path) == {"global_step": 8}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
