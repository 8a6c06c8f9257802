import json
import socket

import pytest

from keras_qa.errors import SettingsError
from keras_qa.runtime.distribution import plan_distribution
from tests.conftest import run_python

PLAN = "from keras_qa.runtime.distribution import plan_distribution; print(plan_distribution({!r}, {}))"


def test_a_distribution_plan_on_this_machine():
    single = {"kind": "none", "processes": 1, "devices": 1, "per_device_batch": 8}
    assert plan_distribution("none", 8) == single
    assert plan_distribution("auto", 8) == single  # a CPU: its devices are not accelerators
    with pytest.raises(SettingsError, match="--distribute must be one of auto, none, data"):
        plan_distribution("model", 8)


def test_data_parallelism_over_four_virtual_devices_and_its_errors():
    found = run_python(PLAN.format("data", 16), devices=4)
    assert "'kind': 'data'" in found.stdout and "'per_device_batch': 4" in found.stdout, (
        found.stderr
    )
    uneven = run_python(PLAN.format("data", 6), devices=4)
    assert "--batch-size 6 does not divide over 4 devices" in uneven.stderr
    assert "use 4 or 8" in uneven.stderr
    hosts = run_python(PLAN.format("data", 8), env={"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"})
    assert "joining the JAX job of KERAS_DISTRIBUTION_NUM_PROCESSES failed" in hosts.stderr
    assert "KERAS_DISTRIBUTION_JOB_ADDRESSES (host:port of process 0" in hosts.stderr
    alone = run_python(PLAN.format("none", 8), env={"KERAS_DISTRIBUTION_PROCESS_ID": "1"})
    assert "--distribute none trains in this process alone" in alone.stderr


def test_torch_has_no_data_parallelism_and_says_so():
    found = run_python(PLAN.format("data", 8), backend="torch")
    assert "--distribute data is not available on the torch backend" in found.stderr
    # auto falls back to one device there.
    assert "'kind': 'none'" in run_python(PLAN.format("auto", 8), backend="torch").stdout


# TensorFlow sees one CPU device unless told, before it starts, to split it into logical ones.
TWO_TENSORFLOW_CPUS = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def test_tensorflow_mirrors_over_its_devices_and_refuses_several_processes():
    two = run_python(TWO_TENSORFLOW_CPUS + PLAN.format("data", 8), backend="tensorflow")
    assert "'kind': 'data', 'processes': 1, 'devices': 2, 'per_device_batch': 4" in two.stdout, (
        two.stderr[-2000:]
    )
    assert "'kind': 'none'" in run_python(PLAN.format("auto", 8), backend="tensorflow").stdout
    cluster = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker"}}
    several = run_python(
        PLAN.format("data", 8), backend="tensorflow", env={"TF_CONFIG": json.dumps(cluster)}
    )
    assert "several TensorFlow processes or hosts is not supported" in several.stderr
    assert "use KERAS_BACKEND=jax" in several.stderr


JOB = "KERAS_DISTRIBUTION_JOB_ADDRESSES"


@pytest.mark.parametrize(
    "address, message",
    [
        ("garbage:99999", "a port from 1 to 65535"),
        ("garbage", "must be host:port"),
        ("127.0.0.1:-3", "a port from 1 to 65535"),
        ("no host here:1234", "cannot be resolved"),
    ],
)
def test_a_job_address_that_cannot_work_is_refused_at_once(address, message):
    env = {
        JOB: address,
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
        "KERAS_DISTRIBUTION_PROCESS_ID": "1",
    }
    found = run_python(PLAN.format("data", 8), env=env)
    assert message in found.stderr and address in found.stderr, found.stderr[-2000:]


def test_a_process_waits_for_its_coordinator_as_long_as_asked_then_names_it():
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    env = {
        JOB: f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
        "KERAS_DISTRIBUTION_PROCESS_ID": "1",
        "KERAS_QA_JOB_WAIT_SECONDS": "2",
    }
    found = run_python(PLAN.format("data", 8), env=env)
    assert f"the job's coordinator at 127.0.0.1:{port}" in found.stderr, found.stderr[-2000:]
    assert "did not answer in 2 s" in found.stderr
