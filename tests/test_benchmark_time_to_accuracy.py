"""benchmarks/time_to_accuracy.py: its schedule and stopping rule, and a tiny run of both sides."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "benchmarks", "time_to_accuracy.py"
)


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_time_to_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_schedule_is_trainers_default_linear_decay():
    script = load_script()
    rates = script.linear_learning_rates(5e-5, 10)
    assert rates[0] == 5e-5 and rates[5] == pytest.approx(2.5e-5)
    assert np.all(np.diff(rates) < 0) and rates[-1] == pytest.approx(5e-6)


def test_evaluations_are_spread_over_each_epoch_and_end_it():
    script = load_script()
    assert script.evaluation_steps(100, 2, 4) == [25, 50, 75, 100, 125, 150, 175, 200]
    assert script.evaluation_steps(7, 1, 3) == [2, 5, 7]


def test_the_time_to_a_target_is_the_first_point_that_reaches_it():
    script = load_script()
    points = [{"f1": 40.0, "seconds": 10}, {"f1": 69.5, "seconds": 20}, {"f1": 70, "seconds": 30}]
    assert script.first_reaching(points, 69.0)["seconds"] == 20
    assert script.first_reaching(points, 71.0) is None
    runs = [{"name": "a run", "points": [dict(p, epoch=i + 1) for i, p in enumerate(points)]}]
    assert "| a run | 0.3 | 2.00 | 0.00 | 69.50 | 70.00 |" in script.table(runs, 69.0)
    assert "| a run | not reached | 3.00 |" in script.table(runs, 71.0)


def test_a_tiny_run_of_both_sides_reports_their_curves(tmp_path):
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        pytest.skip(
            "the benchmark trains keras-qa on JAX whatever the session: the JAX one runs it"
        )
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    output_dir = tmp_path / "results"
    command = [sys.executable, SCRIPT, "--max-train-examples", "24", "--max-eval-examples", "8"]
    command += ["--reference-epochs", "1", "--evaluations-per-epoch", "2", "--target-f1", "0"]
    command += ["--output-dir", str(output_dir)]
    done = subprocess.run(
        command,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((output_dir / "time_to_accuracy.json").read_text())
    keras_qa_run, reference = report["runs"]
    assert keras_qa_run["train_windows"] >= 24 and keras_qa_run["peak_rss_mib"] > 100
    (point,) = keras_qa_run["points"]
    assert 0 <= point["f1"] <= 100 and point["seconds"] >= point["train_seconds"] > 0
    # F1 0 is reached at the first evaluation, where the reference stops.
    (first,) = reference["points"]
    assert 0 < first["epoch"] < 1
    assert first["seconds"] == pytest.approx(
        reference["setup_seconds"] + first["train_seconds"] + first["eval_seconds"]
    )
    assert reference["settings"]["learning_rate"] == 5e-5 and reference["settings"]["epochs"] == 1
    assert report["cpu_model"] and "minutes to F1 0" in done.stdout
