"""The training state a run saves as it goes, and how a killed run resumes from it.

A checkpoint is `OUTPUT_DIR/checkpoint/`: `weights-<step>.weights.h5` (the model's and the optimizer's
variables at that global step) and `state.json` (epoch, step in the epoch, global step, the loss
history, the run's settings, and the name and SHA-256 digest of the weights file it belongs to).

The weights are written first under a new name, then `state.json` is moved into place, then older
weights are deleted: a crash at any moment leaves a `state.json` whose weights file exists and matches
its digest. Resuming checks all of it and refuses, naming the file, a state that does not add up.
"""

import hashlib
import os

import keras

from keras_qa.errors import CheckpointError
from keras_qa.files import read_json, write_json_atomically
from keras_qa.runtime.distribution import without_distribution

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
WEIGHTS_PATTERN = "weights-{step}.weights.h5"
# Settings that say how this run starts, not what it trains: a resumed run may change them.
RUN_ONLY_SETTINGS = ("resume", "output_dir", "overwrite")
# What a state must hold, and the type of each.
STATE_FIELDS = {
    "epoch": int,
    "step_in_epoch": int,
    "global_step": int,
    "history": list,
    "steps": list,
    "settings": dict,
    "weights_file": str,
    "weights_sha256": str,
}


def checkpoint_directory(output_dir):
    """Where a run in `output_dir` keeps its checkpoint."""
    return os.path.join(output_dir, CHECKPOINT_DIR)


def new_state(settings):
    """The state of a run that has not trained yet; `settings` is the run's settings as a dict."""
    return {
        "epoch": 0,
        "step_in_epoch": 0,
        "global_step": 0,
        "history": [],
        "steps": [],
        "settings": settings,
        # Windows trained so far in the current epoch, and the running means of the metrics at the
        # checkpoint a resumed epoch started from: together they give whole-epoch metrics.
        "epoch_windows": 0,
        "resumed_epoch": None,
    }


def state_to_resume(output_dir, settings, resume):
    """The saved state to continue from, or None for a fresh run; refuses what cannot be right.

    Args:
        output_dir: the run's output directory.
        settings: the run's settings as a dict; with `resume`, they must equal the checkpoint's
            (except `resume` and `output_dir`).
        resume: whether the run asks to continue a checkpoint.

    Raises:
        FileNotFoundError: `resume` with no checkpoint.
        ValueError: `resume` with settings that differ from the checkpoint's (each one named).
        FileExistsError: a fresh run in a directory that holds an unfinished run's checkpoint.
    """
    directory = checkpoint_directory(output_dir)
    state_path = os.path.join(directory, STATE_FILE)
    if not resume:
        if os.path.isfile(state_path):
            raise FileExistsError(
                f"{output_dir} holds an unfinished run's checkpoint; pass --resume to continue "
                "it, or choose another --output-dir."
            )
        return None
    if not os.path.isfile(state_path):
        raise FileNotFoundError(
            f"--resume: no checkpoint in {directory} (looked for {state_path})."
        )
    state = read_json(state_path, CheckpointError)
    _check_state(state, state_path, settings)
    return state


def _check_state(state, path, settings):
    """Refuse a state that is malformed, belongs to other settings or to other weights."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: a checkpoint state must be a JSON object")
    for key, kind in STATE_FIELDS.items():
        value = state.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CheckpointError(
                f"{path}: {key!r} must be {kind.__name__}, found {value!r}; the checkpoint is "
                "damaged: start afresh in another --output-dir"
            )
    saved = state["settings"]
    differing = {
        key: (saved.get(key), value)
        for key, value in settings.items()
        if key not in RUN_ONLY_SETTINGS and saved.get(key) != value
    }
    if differing:
        raise CheckpointError(
            f"--resume: these settings differ from the checkpoint's in {path}: "
            + ", ".join(f"{k} (checkpoint {a!r}, now {b!r})" for k, (a, b) in differing.items())
        )
    if not 0 <= state["epoch"] <= settings["epochs"] or state["step_in_epoch"] < 0:
        raise CheckpointError(
            f"{path}: epoch {state['epoch']}, step {state['step_in_epoch']} is not a point of a "
            f"run of {settings['epochs']} epoch(s)"
        )
    weights = os.path.join(os.path.dirname(path), state["weights_file"])
    if os.path.basename(weights) != state["weights_file"] or not os.path.isfile(weights):
        raise CheckpointError(f"{path}: its weights file {weights} is missing")
    if _sha256(weights) != state["weights_sha256"]:
        raise CheckpointError(
            f"{weights}: its content does not match the digest in {path}; the checkpoint is "
            "damaged or was changed"
        )


def restore(model, output_dir, state, saved_state, batches_per_epoch):
    """Load a checkpoint's weights and optimizer state into `model` and its progress into `state`.

    Args:
        model: the compiled model, as built for the run.
        output_dir: the run's output directory.
        state: the run's new state (`new_state`), updated in place.
        saved_state: what `state_to_resume` returned.
        batches_per_epoch: the run's batches per epoch, which the saved counts must agree with.
    """
    path = os.path.join(checkpoint_directory(output_dir), STATE_FILE)
    epoch, step, global_step = (saved_state[k] for k in ("epoch", "step_in_epoch", "global_step"))
    if step >= batches_per_epoch or global_step != epoch * batches_per_epoch + step:
        raise CheckpointError(
            f"{path}: epoch {epoch}, step {step} and global step {global_step} do not agree with "
            f"{batches_per_epoch} batches per epoch"
        )
    model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(checkpoint_directory(output_dir), saved_state["weights_file"]))
    for key in ("epoch", "step_in_epoch", "global_step", "history", "steps"):
        state[key] = saved_state[key]
    state["epoch_windows"] = saved_state.get("epoch_windows", 0)
    if step:
        state["resumed_epoch"] = {
            "windows": state["epoch_windows"],
            "logs": saved_state.get("epoch_logs") or {},
        }


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and progress every `every` steps and at each epoch end.

    It also keeps the history: the logs of every epoch, and of every `log_every`-th step. An epoch
    resumed mid-way reports metrics over the whole epoch: the running means saved at the checkpoint
    and those of the resumed steps, weighted by their windows.

    Args:
        directory: the checkpoint directory.
        every: save every this many steps (0 or None: at epoch ends only).
        state: the run's state dict (`new_state`), updated in place.
        log_every: keep the logs of every this many steps.
        writes: write the checkpoint files (only one process of a job does; the others keep the
            same state in memory).

    Attributes:
        batches: the `BucketedBatches` being fitted (set before each `fit`), to count windows.
    """

    def __init__(self, directory, every, state, log_every=10, writes=True):
        super().__init__()
        self.writes = writes
        self.directory = directory
        self.every = int(every) if every else 0
        self.log_every = max(1, int(log_every))
        self.state = state
        self.batches = None
        self.last_logs = {}

    def on_epoch_begin(self, epoch, logs=None):
        if self.state["epoch"] != epoch:
            self.state.update(epoch=epoch, step_in_epoch=0, epoch_windows=0, resumed_epoch=None)

    def on_train_batch_end(self, batch, logs=None):
        # Counted here rather than read from the optimizer: on JAX, touching `self.model` syncs the
        # whole training state back to the variables, which is only worth it when saving.
        self.state["step_in_epoch"] += 1
        self.state["global_step"] += 1
        if self.batches is not None:
            self.state["epoch_windows"] += len(self.batches.batches[batch][0])
        self.last_logs = self._whole_epoch(logs)
        if self.state["global_step"] % self.log_every == 0:
            # Keras' batch logs are running means over the epoch so far.
            self.state["steps"].append(
                self.last_logs
                | {"step": self.state["global_step"], "epoch": self.state["epoch"] + 1}
            )
        if self.every and self.state["global_step"] % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.state["history"].append(self._whole_epoch(logs) | {"epoch": epoch + 1})
        self.state.update(epoch=epoch + 1, step_in_epoch=0, epoch_windows=0, resumed_epoch=None)
        self.last_logs = {}
        self.save()

    def _whole_epoch(self, logs):
        """Running means over the epoch so far, the steps before a resume included."""
        logs = {key: float(value) for key, value in (logs or {}).items()}
        resumed = self.state.get("resumed_epoch")
        if not resumed or not resumed["windows"]:
            return logs
        before, total = resumed["windows"], self.state["epoch_windows"]
        return {
            key: (resumed["logs"][key] * before + value * (total - before)) / total
            if key in resumed["logs"]
            else value
            for key, value in logs.items()
        }

    def save(self):
        # On JAX, reading `self.model` syncs the training state into the variables, which in a job
        # of several processes every process must do, writer or not.
        model = self.model
        if not self.writes:
            return
        os.makedirs(self.directory, exist_ok=True)
        name = WEIGHTS_PATTERN.format(step=self.state["global_step"])
        temporary = os.path.join(self.directory, "partial.weights.h5")
        with without_distribution():
            model.save_weights(temporary, overwrite=True)
        os.replace(temporary, os.path.join(self.directory, name))
        self.state.update(
            weights_file=name,
            weights_sha256=_sha256(os.path.join(self.directory, name)),
            epoch_logs=self.last_logs,
        )
        write_json_atomically(os.path.join(self.directory, STATE_FILE), self.state)
        for other in os.listdir(self.directory):  # only once the state names the new weights
            if other.startswith("weights-") and other != name:
                os.remove(os.path.join(self.directory, other))
