"""The training state a run saves as it goes, and how a killed run resumes from it.

A checkpoint is `OUTPUT_DIR/checkpoint/`: `state.weights.h5` (the model's and the optimizer's
variables) and `state.json` (epoch, step in the epoch, global step, the loss history and the run's
settings). Each file is written to a temporary name and moved into place, so a crash at any moment
leaves the previous checkpoint whole.
"""

import os

import keras

from keras_qa.files import read_json, write_json_atomically

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
WEIGHTS_FILE = "state.weights.h5"


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
        raise FileNotFoundError(f"--resume: no checkpoint in {directory} (looked for {state_path}).")
    state = read_json(state_path)
    saved = state["settings"]
    differing = {
        key: (saved.get(key), value)
        for key, value in settings.items()
        if key not in ("resume", "output_dir") and saved.get(key) != value
    }
    if differing:
        raise ValueError(
            f"--resume: these settings differ from the checkpoint's in {directory}: "
            + ", ".join(f"{k} (checkpoint {a!r}, now {b!r})" for k, (a, b) in differing.items())
        )
    return state


def restore(model, output_dir, state, saved_state):
    """Load a checkpoint's weights and optimizer state into `model` and its progress into `state`."""
    model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(checkpoint_directory(output_dir), WEIGHTS_FILE))
    for key in ("epoch", "step_in_epoch", "global_step", "history", "steps"):
        state[key] = saved_state[key]


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves weights, optimizer state and progress every `every` steps and at each epoch end.

    It also keeps the history: the logs of every epoch, and of every `log_every`-th step.

    Args:
        directory: the checkpoint directory.
        every: save every this many steps (0 or None: at epoch ends only).
        state: the run's state dict (`new_state`), updated in place.
        log_every: keep the logs of every this many steps.
    """

    def __init__(self, directory, every, state, log_every=10):
        super().__init__()
        self.directory = directory
        self.every = int(every) if every else 0
        self.log_every = max(1, int(log_every))
        self.state = state

    def on_epoch_begin(self, epoch, logs=None):
        if self.state["epoch"] != epoch:
            self.state.update(epoch=epoch, step_in_epoch=0)

    def on_train_batch_end(self, batch, logs=None):
        # Counted here rather than read from the optimizer: on JAX, touching `self.model` syncs the
        # whole training state back to the variables, which is only worth it when saving.
        self.state["step_in_epoch"] += 1
        self.state["global_step"] += 1
        if self.state["global_step"] % self.log_every == 0:
            # Keras' batch logs are running means over the epoch so far.
            self.state["steps"].append(
                {key: float(value) for key, value in (logs or {}).items()}
                | {"step": self.state["global_step"], "epoch": self.state["epoch"] + 1}
            )
        if self.every and self.state["global_step"] % self.every == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.state["history"].append(
            {key: float(value) for key, value in (logs or {}).items()} | {"epoch": epoch + 1}
        )
        self.state.update(epoch=epoch + 1, step_in_epoch=0)
        self.save()

    def save(self):
        os.makedirs(self.directory, exist_ok=True)
        weights = os.path.join(self.directory, WEIGHTS_FILE)
        temporary = os.path.join(self.directory, "state.partial.weights.h5")
        self.model.save_weights(temporary, overwrite=True)
        os.replace(temporary, weights)
        write_json_atomically(os.path.join(self.directory, STATE_FILE), self.state)
