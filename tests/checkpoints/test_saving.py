import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest

import keras_qa
from keras_qa.checkpoints.loading import load_backbone
from keras_qa.checkpoints.saving import (
    CONFIG_FILE,
    MODEL_FILE,
    TOKENIZER_DIR,
    calibration_of,
    copy_answering_files,
    is_trained_model,
    load_trained_model,
    read_config,
    save_trained_model,
    update_config,
)
from keras_qa.errors import ModelFileError
from keras_qa.models.task import QuestionAnsweringModel, model_inputs, model_targets
from keras_qa.text.calibration import Calibration
from keras_qa.text.tokenizer import QATokenizer
from tests.conftest import tiny_squad_examples

CONFIG = {"max_length": 48, "doc_stride": 16, "n_best": 5, "max_answer_length": 12}


def test_loading_something_that_is_not_a_trained_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a trained keras-qa model"):
        load_trained_model(str(tmp_path))


def tiny_model(tiny_preset, seed=0):
    keras.utils.set_random_seed(seed)
    return QuestionAnsweringModel(load_backbone(tiny_preset))


def tiny_features(tokenizer, count=4):
    return keras_qa.prepare_eval_features(tiny_squad_examples(count, 3), tokenizer, 48, 16)


@pytest.fixture(scope="module")
def saved(tiny_preset, tmp_path_factory):
    """An untrained tiny model saved with `save_trained_model` (tests must not change it)."""
    model = tiny_model(tiny_preset)
    tokenizer = keras_qa.load_tokenizer(tiny_preset)
    directory = str(tmp_path_factory.mktemp("saved"))
    save_trained_model(model, tokenizer, directory, **CONFIG)
    return SimpleNamespace(model=model, tokenizer=tokenizer, directory=directory)


def archive_contents(path):
    """A `.keras` file's config and the top-level groups of its weights file."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(weights), "r") as file:
        groups = set(file.keys())
    return config, groups


def test_a_saved_model_loads_back_with_identical_logits(saved):
    model, tokenizer, config = load_trained_model(saved.directory)
    assert isinstance(model, QuestionAnsweringModel)
    assert isinstance(tokenizer, QATokenizer)
    assert model.input_names == saved.model.input_names
    assert tokenizer.vocabulary == saved.tokenizer.vocabulary
    assert tokenizer.get_config() == saved.tokenizer.get_config()
    question = "where did the cat run ?"
    assert tokenizer.tokenize(question) == saved.tokenizer.tokenize(question)
    features = tiny_features(saved.tokenizer)
    np.testing.assert_array_equal(tiny_features(tokenizer)["token_ids"], features["token_ids"])
    before = saved.model.predict(model_inputs(features), verbose=0)
    after = model.predict(model_inputs(features), verbose=0)
    for name in ("start_logits", "end_logits"):
        np.testing.assert_array_equal(after[name], before[name])
    assert config == CONFIG | {"keras_qa_version": keras_qa.__version__}


def test_the_config_file_holds_the_given_config_and_the_version(saved):
    with open(os.path.join(saved.directory, CONFIG_FILE), encoding="utf-8") as file:
        written = json.load(file)
    assert written == CONFIG | {"keras_qa_version": keras_qa.__version__}
    # Nothing else is left in the folder: no staging directory, no partial file.
    assert sorted(os.listdir(saved.directory)) == [CONFIG_FILE, MODEL_FILE, TOKENIZER_DIR]


def test_saving_again_replaces_the_previous_model_whole(saved, tmp_path):
    directory = str(tmp_path)
    save_trained_model(saved.model, saved.tokenizer, directory, **CONFIG)
    stray = tmp_path / TOKENIZER_DIR / "stray.txt"
    stray.write_text("from an older save")
    save_trained_model(saved.model, saved.tokenizer, directory, **CONFIG | {"max_length": 32})
    assert not stray.exists()
    assert sorted(os.listdir(directory)) == [CONFIG_FILE, MODEL_FILE, TOKENIZER_DIR]
    expected = CONFIG | {"max_length": 32, "keras_qa_version": keras_qa.__version__}
    assert read_config(directory) == expected


def test_is_trained_model_needs_the_config_file(saved, tmp_path):
    assert is_trained_model(saved.directory)
    assert not is_trained_model(str(tmp_path))
    assert not is_trained_model(str(tmp_path / "absent"))
    # The model and the tokenizer without `keras_qa.json`: a save that did not finish.
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(os.path.join(saved.directory, MODEL_FILE), unfinished)
    shutil.copytree(os.path.join(saved.directory, TOKENIZER_DIR), unfinished / TOKENIZER_DIR)
    assert not is_trained_model(str(unfinished))
    with pytest.raises(FileNotFoundError, match="not a trained keras-qa model"):
        load_trained_model(str(unfinished))


def test_read_config_reads_the_config_or_says_how_to_make_one(saved, tmp_path):
    assert read_config(saved.directory) == CONFIG | {"keras_qa_version": keras_qa.__version__}
    with pytest.raises(FileNotFoundError, match="keras_qa.train") as raised:
        read_config(str(tmp_path))
    assert str(tmp_path) in str(raised.value) and CONFIG_FILE in str(raised.value)


def test_read_config_names_a_broken_config_file(tmp_path):
    (tmp_path / CONFIG_FILE).write_text('{"max_length": ')
    with pytest.raises(ValueError, match="not valid JSON") as raised:
        read_config(str(tmp_path))
    assert str(tmp_path / CONFIG_FILE) in str(raised.value)


def test_copy_answering_files_copies_the_tokenizer_and_the_config(saved, tmp_path):
    destination = tmp_path / "export"
    destination.mkdir()
    copy_answering_files(saved.directory, str(destination))
    assert sorted(os.listdir(destination)) == [CONFIG_FILE, TOKENIZER_DIR]
    source_tokenizer = os.path.join(saved.directory, TOKENIZER_DIR)
    assert sorted(os.listdir(destination / TOKENIZER_DIR)) == sorted(os.listdir(source_tokenizer))
    for name in os.listdir(source_tokenizer):
        with open(os.path.join(source_tokenizer, name), "rb") as file:
            assert (destination / TOKENIZER_DIR / name).read_bytes() == file.read()
    assert read_config(str(destination)) == read_config(saved.directory)
    copied = QATokenizer.load(str(destination / TOKENIZER_DIR))
    assert copied.vocabulary == saved.tokenizer.vocabulary


def test_a_compiled_model_is_saved_uncompiled_with_its_trained_weights(tiny_preset, tmp_path):
    tokenizer = keras_qa.load_tokenizer(tiny_preset)
    features = tiny_features(tokenizer)
    model = tiny_model(tiny_preset, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(model_inputs(features), model_targets(features), batch_size=4, epochs=1, verbose=0)
    # As a control, the model saved as it is carries its compile config and optimizer state.
    model.save(str(tmp_path / "compiled.keras"))
    config, groups = archive_contents(tmp_path / "compiled.keras")
    assert config.get("compile_config") is not None and "optimizer" in groups

    directory = tmp_path / "model"
    directory.mkdir()
    save_trained_model(model, tokenizer, str(directory), **CONFIG)
    config, groups = archive_contents(directory / MODEL_FILE)
    assert not config.get("compile_config") and "optimizer" not in groups
    assert model.compiled and model.optimizer is not None  # the model itself is left as it was
    loaded = keras.saving.load_model(str(directory / MODEL_FILE))  # compile=True by default
    assert not loaded.compiled
    for restored, trained in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(restored, trained)


def copy_of(saved, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(saved.directory, folder)
    return folder


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            {"max_length": 10**9},
            "'max_length' must be an integer from 16 to 8,192, found 1000000000",
        ),
        ({"max_length": "48"}, "'max_length' must be an integer from 16 to 8,192, found '48'"),
        ({"doc_stride": 47.9}, "'doc_stride' must be an integer from 0 to 8,192, found 47.9"),
        ({"n_best": -1}, "'n_best' must be an integer from 1 to 1,000, found -1"),
        ({"max_answer_length": True}, "'max_answer_length' must be an integer"),
        ({"doc_stride": 46}, "'doc_stride' (46) leaves no room in 'max_length' (48)"),
        ({"null_score_diff_threshold": "abc"}, "'null_score_diff_threshold' must be a finite"),
        ({"null_score_diff_threshold": [1]}, "'null_score_diff_threshold' must be a finite"),
        ({"null_score_diff_threshold": float("nan")}, "'null_score_diff_threshold' must be"),
        ({"null_score_diff_threshold": float("-inf")}, "'null_score_diff_threshold' must be"),
        (
            {"calibration": {"weight": -0.5, "bias": 0.1}},
            "'calibration' is not valid: calibration: weight must be a finite number >= 0",
        ),
        (
            {"calibration": {"weight": 0.5, "bias": "x"}},
            "'calibration' is not valid: calibration: bias must",
        ),
        (
            {"calibration": {"weight": 0.5}},
            "'calibration' is not valid: calibration: unknown keys [], missing keys ['bias']",
        ),
        ({"calibration": 0.5}, "'calibration' is not valid: calibration must be an object"),
    ],
)
def test_a_config_with_values_of_the_wrong_type_or_range_is_refused(
    saved, tmp_path, change, problem
):
    folder = copy_of(saved, tmp_path)
    path = folder / CONFIG_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(ModelFileError, match=re.escape(problem)) as raised:
        load_trained_model(str(folder))
    assert str(path) in str(raised.value)


def test_a_saved_calibration_round_trips_through_the_config(saved, tmp_path):
    calibration = Calibration(weight=0.31, bias=-1.25, questions=600)
    directory = str(tmp_path)
    save_trained_model(
        saved.model, saved.tokenizer, directory, **CONFIG, calibration=calibration.get_config()
    )
    config = load_trained_model(directory)[2]
    assert calibration_of(config) == calibration
    update_config(directory, calibration=Calibration(0.5, 0.0, 10).get_config())
    assert calibration_of(read_config(directory)) == Calibration(0.5, 0.0, 10)
    # A model saved without one has none.
    assert calibration_of(read_config(saved.directory)) is None


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{}", "'max_length' must be"),
        ("[48]", "must be a JSON object"),
        ('{"max_length": ', "not valid JSON"),
    ],
)
def test_an_empty_list_or_broken_config_names_the_file(saved, tmp_path, content, problem):
    folder = copy_of(saved, tmp_path)
    (folder / CONFIG_FILE).write_text(content)
    with pytest.raises(ModelFileError, match=re.escape(problem)) as raised:
        load_trained_model(str(folder))
    assert str(folder / CONFIG_FILE) in str(raised.value)


def test_a_max_length_beyond_the_models_positions_is_refused(saved, tmp_path):
    folder = copy_of(saved, tmp_path)
    path = folder / CONFIG_FILE
    path.write_text(json.dumps(json.loads(path.read_text()) | {"max_length": 129}))
    with pytest.raises(ModelFileError, match="'max_length' 129 is more than the model's 128"):
        load_trained_model(str(folder))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"\x00" * 100])
def test_an_empty_or_corrupt_model_file_is_named(saved, tmp_path, content):
    folder = copy_of(saved, tmp_path)
    (folder / MODEL_FILE).write_bytes(content)
    with pytest.raises(ModelFileError, match="cannot be loaded as a Keras model") as raised:
        load_trained_model(str(folder))
    assert str(folder / MODEL_FILE) in str(raised.value)
    (folder / MODEL_FILE).unlink()
    with pytest.raises(ModelFileError, match="model.keras: missing"):
        load_trained_model(str(folder))


def test_keras_load_model_works_after_importing_keras_qa_alone(saved):
    """As the README says: `import keras_qa`, then Keras loads the model (in a fresh process)."""
    script = (
        "import sys, keras_qa\n"
        "assert 'keras' not in sys.modules\n"
        "import keras\n"
        f"model = keras.saving.load_model({os.path.join(saved.directory, MODEL_FILE)!r})\n"
        "print(type(model).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "QuestionAnsweringModel"


def test_a_model_saved_by_keras_qa_0_1_0_loads_and_answers_as_it_did():
    """A model written before the package moved into sub-packages (its `.keras` file names the old
    module paths) loads, gives the logits it gave then, and answers the same."""
    fixtures = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
    expected = json.loads((fixtures / "saved-0.1.0-expected.json").read_text())
    model, tokenizer, config = load_trained_model(str(fixtures / "saved-0.1.0"))
    assert (config["keras_qa_version"], config["max_length"]) == ("0.1.0", 48)
    examples = expected["examples"]
    features = keras_qa.prepare_eval_features(
        examples, tokenizer, config["max_length"], config["doc_stride"]
    )
    start_logits, end_logits = keras_qa.predict_logits(model, features)
    real = features["padding_mask"] == 1
    np.testing.assert_allclose(
        start_logits[real], np.array(expected["start_logits"])[real], atol=1e-4
    )
    np.testing.assert_allclose(end_logits[real], np.array(expected["end_logits"])[real], atol=1e-4)
    answerer = keras_qa.QuestionAnswerer.from_pretrained(str(fixtures / "saved-0.1.0"))
    for example, answer in zip(examples, expected["answers"]):
        found = answerer(example["question"], example["context"])
        assert (found["answer"], found["start"], found["end"]) == (
            answer["answer"],
            answer["start"],
            answer["end"],
        )
        assert found["score"] == pytest.approx(answer["score"], rel=1e-3)


@pytest.mark.parametrize(
    "size, value", [("max_sequence_length", 10**9), ("num_layers", 100_000), ("vocabulary_size", 7)]
)
def test_a_keras_file_whose_backbone_sizes_its_weights_do_not_hold_is_refused(
    tmp_path, size, value
):
    fixtures = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
    folder = tmp_path / "model"
    shutil.copytree(fixtures / "saved-0.1.0", folder)
    path = folder / "model.keras"
    with zipfile.ZipFile(fixtures / "saved-0.1.0" / "model.keras") as original:
        files = {name: original.read(name) for name in original.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["backbone"]["config"][size] = value
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    with pytest.raises(ModelFileError, match=f"the backbone's {size} is {value}, but its weights"):
        load_trained_model(str(folder))


def test_a_trained_model_with_non_finite_weights_is_refused(tmp_path):
    fixtures = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
    folder = tmp_path / "model"
    shutil.copytree(fixtures / "saved-0.1.0", folder)
    model = keras.saving.load_model(str(folder / "model.keras"), compile=False)
    bias = model.head.dense.bias
    bias.assign(np.array([np.inf, 0.0], "float32"))
    model.save(str(folder / "model.keras"))
    with pytest.raises(ModelFileError, match="span_logits/bias holds NaN or infinite values"):
        load_trained_model(str(folder))
    with pytest.raises(ModelFileError, match="holds NaN or infinite values"):
        keras_qa.QuestionAnswerer.from_pretrained(str(folder))
