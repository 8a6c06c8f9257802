"""Data parallelism: what `--distribute` means here, the scope models are built and trained in, this
process's share of a job, and prediction over every device (keras.distribution on JAX,
tf.distribute on TensorFlow)."""

import contextlib
import os
import socket
import time
import warnings

import keras
import numpy as np

from keras_qa.errors import SettingsError
from keras_qa.runtime.backend import backend_name, has_accelerator

# `--distribute`: data parallel over several devices when there are ("auto"), never, or always.
DISTRIBUTE_CHOICES = ("auto", "none", "data")


# What `keras.distribution.initialize` reads to join a job of several JAX processes.
JOB_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
# How long a process other than the first waits for the job's coordinator to listen.
JOB_WAIT_VARIABLE = "KERAS_QA_JOB_WAIT_SECONDS"


def plan_distribution(distribute, batch_size):
    """What `--distribute` means on this backend and machine, checked before anything is loaded.

    On JAX, a process started with the `KERAS_DISTRIBUTION_*` variables (`JOB_VARIABLES`) first joins
    its job (`keras.distribution.initialize`), so that the devices counted are every process's.

    Args:
        distribute: "auto" (data parallel over all accelerators when there are two or more, and
            over the job's devices in a job of several processes), "none", or "data" (data
            parallel over every device, virtual CPU devices included).
        batch_size: the global batch, which must divide by the device count.

    Returns:
        `{"kind": "none" or "data", "processes", "devices", "per_device_batch"}`.

    Raises:
        SettingsError: a batch that does not divide, a backend without data parallelism, several
            TensorFlow processes, or job variables with `--distribute none`.
    """
    single = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": int(batch_size)}
    if distribute not in DISTRIBUTE_CHOICES:
        raise SettingsError(f"--distribute must be one of {', '.join(DISTRIBUTE_CHOICES)}")
    job = _job_variables()
    if distribute == "none":
        if job:
            raise SettingsError(
                f"{', '.join(job)} ask for a job of several processes, but --distribute none "
                "trains in this process alone: unset them, or use --distribute data"
            )
        return single
    devices, processes, accelerators = _devices_to_distribute_over(distribute, job)
    if distribute == "auto" and processes == 1 and (len(devices) < 2 or not accelerators):
        return single
    count = len(devices)
    if batch_size % count:
        lower = max(count, batch_size // count * count)
        raise SettingsError(
            f"--batch-size {batch_size} does not divide over {count} devices (it is the global "
            f"batch): use {lower} or {lower + count}"
        )
    if count == 1:
        warnings.warn("--distribute data with one device: training on it alone", stacklevel=2)
        return single
    return {
        "kind": "data",
        "processes": processes,
        "devices": count,
        "per_device_batch": batch_size // count,
    }


def _job_variables():
    """The variables set that ask for a job of several processes (Keras' and TensorFlow's)."""
    return [name for name in (*JOB_VARIABLES, "TF_CONFIG") if os.environ.get(name)]


def _devices_to_distribute_over(distribute, job):
    """`(devices, processes, whether the devices are accelerators)` for data parallelism here."""
    backend = backend_name()
    if backend == "jax":
        import jax

        if job and not jax.distributed.is_initialized():
            _join_jax_job(job)
        devices = jax.devices()
        return devices, jax.process_count(), devices[0].platform != "cpu"
    if backend == "tensorflow" and job:
        raise SettingsError(
            f"{', '.join(job)}: training over several TensorFlow processes or hosts is not "
            "supported: Keras 3.15's fit fails under MultiWorkerMirroredStrategy before its "
            "first step (it reduces the first batch to build the model, a ValueError; "
            "keras-team/keras#20329, #20585): use KERAS_BACKEND=jax, whose jobs keras-qa joins "
            "from the KERAS_DISTRIBUTION_* variables"
        )
    if backend == "tensorflow":
        devices = _tensorflow_devices()
        return devices, 1, devices[0].device_type == "GPU"
    if distribute == "data":
        raise SettingsError(
            f"--distribute data is not available on the {backend} backend (Keras 3.15 has no data "
            "parallelism there): use KERAS_BACKEND=jax or tensorflow"
        )
    if backend == "torch" and has_accelerator():
        import torch

        if torch.cuda.device_count() > 1:
            warnings.warn(
                f"{torch.cuda.device_count()} GPUs are visible but Keras 3.15 has no data "
                "parallelism on torch: training on the first one (KERAS_BACKEND=jax or tensorflow "
                "train on all of them)",
                stacklevel=3,
            )
    return [None], 1, False


def _join_jax_job(job):
    """Join the job the `KERAS_DISTRIBUTION_*` variables describe (before any JAX computation:
    the other processes' devices then join this one's)."""
    _check_coordinator(os.environ)
    try:
        keras.distribution.initialize()
    except (ValueError, RuntimeError) as error:
        raise SettingsError(
            f"joining the JAX job of {', '.join(job)} failed ({error}): every process needs "
            "KERAS_DISTRIBUTION_JOB_ADDRESSES (host:port of process 0, the coordinator), "
            "KERAS_DISTRIBUTION_NUM_PROCESSES and its own KERAS_DISTRIBUTION_PROCESS_ID (on a "
            "TPU VM slice JAX finds the address and the id itself)"
        ) from error


def _check_coordinator(environment):
    """Refuse a coordinator address that cannot work, and, in a process other than the first, wait
    for the coordinator to listen (at most `$KERAS_QA_JOB_WAIT_SECONDS`, 300 by default): JAX
    would wait as long and then abort the process with no word of the address."""
    addresses = environment.get(JOB_VARIABLES[0], "").strip()
    if not addresses:
        return  # a TPU VM slice: JAX finds the coordinator itself
    coordinator = addresses.split(",")[0].strip()
    host, _, port = coordinator.rpartition(":")
    host = host.strip("[]")  # an IPv6 address is written [::1]:1234
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SettingsError(
            f"{JOB_VARIABLES[0]}={addresses!r}: the coordinator's address must be host:port, with "
            "a port from 1 to 65535"
        )
    try:
        socket.getaddrinfo(host, int(port))
    except (socket.gaierror, UnicodeError) as error:
        raise SettingsError(
            f"{JOB_VARIABLES[0]}={addresses!r}: the host {host!r} cannot be resolved ({error})"
        ) from error
    if environment.get(JOB_VARIABLES[2], "0").strip() not in ("", "0"):
        wait = environment.get(JOB_WAIT_VARIABLE, "300")
        try:
            seconds = float(wait)
        except ValueError:
            raise SettingsError(f"{JOB_WAIT_VARIABLE}={wait!r}: not a number of seconds") from None
        _wait_for_coordinator(host, int(port), seconds)


def _wait_for_coordinator(host, port, seconds):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=min(5.0, max(seconds, 0.1))).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise SettingsError(
                    f"the job's coordinator at {host}:{port} ({JOB_VARIABLES[0]}) did not answer "
                    f"in {seconds:g} s ({error}); start process 0 there first, or wait longer "
                    f"with {JOB_WAIT_VARIABLE}"
                ) from error
            time.sleep(0.5)


def _tensorflow_devices():
    """TensorFlow's logical GPUs, or its logical CPUs where there is no GPU."""
    import tensorflow as tf

    return tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")


@contextlib.contextmanager
def distribution_scope(plan):
    """Within it, Keras builds, compiles and trains models as `plan` says: the variables created
    there are laid out over the devices (JAX `keras.distribution.DataParallel`, TensorFlow
    `tf.distribute.MirroredStrategy`); outside, nothing changes."""
    if plan["kind"] == "none":
        yield
    elif backend_name() == "jax":
        # Each process yields its own rows of every batch (`process_share`): Keras must not
        # split them again.
        distribution = keras.distribution.DataParallel(
            devices=keras.distribution.list_devices(), auto_shard_dataset=False
        )
        with distribution.scope():
            yield
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy([device.name for device in _tensorflow_devices()])
        with strategy.scope():
            yield


@contextlib.contextmanager
def without_distribution():
    """Within it, the variables Keras creates stay on this process's devices.

    Keras' saving creates throwaway variables; under a JAX distribution each would be laid out over
    every process's devices and wait for the job's other processes, which do not save.
    """
    distribution = keras.distribution.distribution() if backend_name() == "jax" else None
    if distribution is None:
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


def data_parallel_devices():
    """The devices a batch is split over now, in all processes (1 without data parallelism)."""
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.get_strategy().num_replicas_in_sync
    if backend_name() != "jax" or keras.distribution.distribution() is None:
        return 1
    return int(np.prod(keras.distribution.distribution().device_mesh.shape))


def process_share():
    """`(index, count)`: this process's place among the job's processes; it feeds the `index`-th
    of `count` equal blocks of rows of every global batch (`(0, 1)` outside a job)."""
    if backend_name() == "jax":
        import jax

        if jax.distributed.is_initialized():
            return jax.process_index(), jax.process_count()
    return 0, 1


def writes_files():
    """Whether this process writes the run's files: the first process of a job, or the only one."""
    return process_share()[0] == 0


def batch_predictor(model):
    """A function from a batch (this process's share of its rows) to the model's outputs for all
    its rows, as NumPy arrays.

    Under data parallelism each backend needs its own path: on JAX the process's rows are made one
    global array and the outputs are gathered from every process; on TensorFlow the batch goes
    through `predict`, which splits it over the replicas (`predict_on_batch` would give each
    replica the whole batch and return every copy).
    """
    if data_parallel_devices() == 1:
        return model.predict_on_batch
    if backend_name() == "tensorflow":
        import tensorflow as tf

        return lambda inputs: model.predict(tf.data.Dataset.from_tensors(inputs), verbose=0)
    return _jax_global_predictor(model)


def _jax_global_predictor(model):
    import jax
    from jax.experimental import multihost_utils

    distribution = keras.distribution.distribution()
    # One compiled function per model and batch shape, kept with the model.
    step = getattr(model, "_keras_qa_global_predict", None)
    if step is None:
        step = jax.jit(
            lambda trainable, other, inputs: model.stateless_call(
                trainable, other, inputs, training=False
            )[0]
        )
        model._keras_qa_global_predict = step

    def predict(inputs):
        layout = distribution.get_data_layout(next(iter(inputs.values())).shape).backend_layout
        inputs = {
            name: jax.make_array_from_process_local_data(layout, value)
            for name, value in inputs.items()
        }
        trainable = [variable.value for variable in model.trainable_variables]
        other = [variable.value for variable in model.non_trainable_variables]
        outputs = step(trainable, other, inputs)
        return {
            name: np.asarray(multihost_utils.process_allgather(value, tiled=True))
            for name, value in outputs.items()
        }

    return predict
