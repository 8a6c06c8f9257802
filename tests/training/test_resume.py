import hashlib
import json
import os
import re

import keras
import numpy as np
import pytest

import keras_qa
import keras_qa.training.resume
from keras_qa.checkpoints.loading import load_backbone
from keras_qa.errors import CheckpointError
from keras_qa.files import write_json_atomically
from keras_qa.models.task import QuestionAnsweringModel, model_inputs, model_targets
from keras_qa.training.resume import (
    STATE_FILE,
    TrainingCheckpoint,
    checkpoint_directory,
    new_state,
    restore,
    state_to_resume,
)
from tests.conftest import Crash, CrashAt, tiny_squad_examples

SETTINGS = {
    "model": "tiny",
    "learning_rate": 3e-3,
    "epochs": 2,
    "batch_size": 8,
    "output_dir": "/runs/first",
    "resume": False,
}


def write_checkpoint_state(output_dir, settings, weights=b"weights", **progress):
    """A state.json and the weights file it names (any bytes: only its digest is checked)."""
    directory = checkpoint_directory(output_dir)
    os.makedirs(directory, exist_ok=True)
    name = f"weights-{progress.get('global_step', 0)}.weights.h5"
    with open(os.path.join(directory, name), "wb") as file:
        file.write(weights)
    digest = hashlib.sha256(weights).hexdigest()
    state = new_state(settings) | {"weights_file": name, "weights_sha256": digest} | progress
    write_json_atomically(os.path.join(directory, STATE_FILE), state)
    return state


def test_the_checkpoint_lies_in_the_output_directory(tmp_path):
    assert checkpoint_directory(str(tmp_path)) == os.path.join(str(tmp_path), "checkpoint")


def test_a_new_state_starts_at_zero_with_its_own_lists():
    first, second = new_state(dict(SETTINGS)), new_state({})
    assert (first["epoch"], first["step_in_epoch"], first["global_step"]) == (0, 0, 0)
    assert first["history"] == [] and first["steps"] == []
    assert first["settings"] == SETTINGS
    first["history"].append({"loss": 1.0})
    first["steps"].append({"loss": 1.0})
    assert second["history"] == [] and second["steps"] == []


def test_a_fresh_run_in_an_empty_directory_starts_from_nothing(tmp_path):
    assert state_to_resume(str(tmp_path), SETTINGS, resume=False) is None
    os.makedirs(checkpoint_directory(str(tmp_path)))  # a checkpoint folder without a state
    assert state_to_resume(str(tmp_path), SETTINGS, resume=False) is None


def test_resuming_without_a_checkpoint_is_refused_naming_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="--resume: no checkpoint") as raised:
        state_to_resume(str(tmp_path), SETTINGS | {"resume": True}, resume=True)
    assert os.path.join(checkpoint_directory(str(tmp_path)), STATE_FILE) in str(raised.value)


def test_a_fresh_run_over_an_unfinished_checkpoint_is_refused(tmp_path):
    write_checkpoint_state(str(tmp_path), SETTINGS, epoch=1, global_step=6)
    with pytest.raises(FileExistsError, match="pass --resume") as raised:
        state_to_resume(str(tmp_path), SETTINGS, resume=False)
    assert str(tmp_path) in str(raised.value)


def test_resuming_returns_the_saved_state_whatever_the_output_dir_and_resume_flag(tmp_path):
    saved = write_checkpoint_state(
        str(tmp_path), SETTINGS, epoch=1, step_in_epoch=2, global_step=8, history=[{"loss": 2.0}]
    )
    now = SETTINGS | {"output_dir": str(tmp_path), "resume": True}
    assert state_to_resume(str(tmp_path), now, resume=True) == saved


def test_resuming_with_other_settings_is_refused_naming_each(tmp_path):
    write_checkpoint_state(str(tmp_path), SETTINGS)
    now = SETTINGS | {
        "learning_rate": 1e-3,
        "epochs": 3,
        "output_dir": str(tmp_path),
        "resume": True,
        "dropout": 0.1,
    }
    with pytest.raises(ValueError, match="differ from the checkpoint's") as raised:
        state_to_resume(str(tmp_path), now, resume=True)
    message = str(raised.value)
    assert "learning_rate (checkpoint 0.003, now 0.001)" in message
    assert "epochs (checkpoint 2, now 3)" in message
    assert "dropout (checkpoint None, now 0.1)" in message
    for unchanged in ("batch_size", "model", "output_dir", "resume"):
        assert unchanged not in message.split(": ", 1)[1]


def tiny_batches(tiny_preset, windows=8):
    """Inputs and targets of `windows` tiny training windows."""
    tokenizer = keras_qa.load_tokenizer(tiny_preset)
    features = keras_qa.prepare_eval_features(tiny_squad_examples(windows, 0), tokenizer, 48, 16)
    x = {name: value[:windows] for name, value in model_inputs(features).items()}
    y = {name: value[:windows] for name, value in model_targets(features).items()}
    assert len(x["token_ids"]) == windows
    return x, y


def compiled_model(tiny_preset, seed):
    keras.utils.set_random_seed(seed)
    model = QuestionAnsweringModel(load_backbone(tiny_preset))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


class RecordingCheckpoint(TrainingCheckpoint):
    """Notes the progress, the weights and the optimizer variables at each save."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved_at, self.weights, self.optimizer_variables = [], None, None

    def save(self):
        self.saved_at.append(
            (self.state["global_step"], self.state["epoch"], self.state["step_in_epoch"])
        )
        self.weights = [np.array(w) for w in self.model.get_weights()]
        self.optimizer_variables = [np.array(v) for v in self.model.optimizer.variables]
        super().save()


@pytest.mark.parametrize("every, saves", [(3, [(2, 1, 0), (3, 1, 1)]), (0, [(2, 1, 0)])])
def test_the_checkpoint_saves_every_n_steps_and_at_epoch_ends_and_restores(
    tiny_preset, tmp_path, every, saves
):
    x, y = tiny_batches(tiny_preset)
    model = compiled_model(tiny_preset, seed=1)
    directory = checkpoint_directory(str(tmp_path))
    checkpoint = RecordingCheckpoint(directory, every, new_state(dict(SETTINGS)), log_every=2)
    # 2 steps an epoch: steps 1-2 are epoch 1, step 3 is the first of epoch 2, then a crash.
    with pytest.raises(Crash):
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[checkpoint, CrashAt(3)],
        )
    assert checkpoint.saved_at == saves
    # Only the last save's weights are kept, named by their global step.
    assert sorted(os.listdir(directory)) == [STATE_FILE, f"weights-{saves[-1][0]}.weights.h5"]
    saved = json.loads((tmp_path / "checkpoint" / STATE_FILE).read_text())
    assert (saved["global_step"], saved["epoch"], saved["step_in_epoch"]) == saves[-1]
    assert [entry["epoch"] for entry in saved["history"]] == [1]
    assert {"loss", "exact_span_accuracy"} <= set(saved["history"][0])
    # log_every=2: the logs of step 2 only (step 3 is not a multiple of 2).
    assert [(entry["step"], entry["epoch"]) for entry in saved["steps"]] == [(2, 1)]
    assert "loss" in saved["steps"][0]
    assert saved["settings"] == SETTINGS

    fresh = compiled_model(tiny_preset, seed=2)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), checkpoint.weights))
    resumed = state_to_resume(str(tmp_path), SETTINGS, resume=True)
    progress = new_state(dict(SETTINGS))
    restore(fresh, str(tmp_path), progress, resumed, batches_per_epoch=2)
    assert (progress["global_step"], progress["epoch"], progress["step_in_epoch"]) == saves[-1]
    assert progress["history"] == saved["history"] and progress["steps"] == saved["steps"]
    assert progress["settings"] == SETTINGS
    assert int(np.array(fresh.optimizer.iterations)) == saves[-1][0]
    for restored, expected in zip(fresh.get_weights(), checkpoint.weights, strict=True):
        np.testing.assert_array_equal(restored, expected)
    restored_optimizer = [np.array(v) for v in fresh.optimizer.variables]
    for restored, expected in zip(restored_optimizer, checkpoint.optimizer_variables, strict=True):
        np.testing.assert_array_equal(restored, expected)


@pytest.mark.parametrize(
    "progress, problem",
    [
        ({"epoch": 5, "global_step": 10}, "is not a point of a run of 2 epoch"),
        ({"step_in_epoch": -1}, "is not a point of a run"),
        ({"step_in_epoch": 1.5}, "'step_in_epoch' must be int, found 1.5"),
        ({"history": {}}, "'history' must be list"),
        ({"weights_sha256": "0" * 64}, "does not match the digest"),
        ({"weights_file": "../elsewhere.weights.h5"}, "is missing"),
    ],
)
def test_a_state_that_does_not_add_up_is_refused_naming_the_file(tmp_path, progress, problem):
    write_checkpoint_state(str(tmp_path), SETTINGS, **progress)
    with pytest.raises(CheckpointError, match=re.escape(problem)) as raised:
        state_to_resume(str(tmp_path), SETTINGS, resume=True)
    assert str(tmp_path / "checkpoint") in str(raised.value)


@pytest.mark.parametrize("content", ["", '{"epoch": 1', "[1, 2]", '{"epoch": 1}'])
def test_a_truncated_empty_or_wrong_shaped_state_is_refused_naming_the_file(tmp_path, content):
    directory = tmp_path / "checkpoint"
    directory.mkdir()
    (directory / STATE_FILE).write_text(content)
    with pytest.raises(CheckpointError) as raised:
        state_to_resume(str(tmp_path), SETTINGS, resume=True)
    assert str(directory / STATE_FILE) in str(raised.value)


def test_tampered_weights_are_refused(tmp_path):
    write_checkpoint_state(str(tmp_path), SETTINGS, weights=b"the weights")
    (tmp_path / "checkpoint" / "weights-0.weights.h5").write_bytes(b"other weights")
    with pytest.raises(CheckpointError, match="does not match the digest"):
        state_to_resume(str(tmp_path), SETTINGS, resume=True)


def test_counts_that_disagree_with_the_batches_are_refused(tiny_preset, tmp_path):
    saved = write_checkpoint_state(str(tmp_path), SETTINGS, epoch=1, step_in_epoch=1, global_step=9)
    model = compiled_model(tiny_preset, seed=1)
    with pytest.raises(CheckpointError, match="do not agree with 4 batches per epoch"):
        restore(model, str(tmp_path), new_state(dict(SETTINGS)), saved, batches_per_epoch=4)
    with pytest.raises(CheckpointError, match="do not agree with 1 batches per epoch"):
        restore(model, str(tmp_path), new_state(dict(SETTINGS)), saved, batches_per_epoch=1)


def test_a_crash_between_the_weights_and_the_state_leaves_the_previous_checkpoint(
    tiny_preset, tmp_path, monkeypatch
):
    x, y = tiny_batches(tiny_preset)
    model = compiled_model(tiny_preset, seed=1)
    directory = checkpoint_directory(str(tmp_path))
    checkpoint = RecordingCheckpoint(directory, 1, new_state(dict(SETTINGS)))
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[checkpoint])
    kept = checkpoint.weights

    def killed(path, content):
        raise Crash  # the process dies after writing the new weights, before the new state

    monkeypatch.setattr(keras_qa.training.resume, "write_json_atomically", killed)
    with pytest.raises(Crash):
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[checkpoint])
    monkeypatch.undo()
    saved = state_to_resume(str(tmp_path), SETTINGS, resume=True)
    assert saved["global_step"] == 2 and os.path.isfile(
        os.path.join(directory, "weights-3.weights.h5")
    )
    fresh = compiled_model(tiny_preset, seed=2)
    restore(fresh, str(tmp_path), new_state(dict(SETTINGS)), saved, batches_per_epoch=2)
    for restored, expected in zip(fresh.get_weights(), kept, strict=True):
        np.testing.assert_array_equal(restored, expected)
