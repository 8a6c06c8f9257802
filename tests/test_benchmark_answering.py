"""benchmarks/answering.py: a tiny race run for real, and its bookkeeping of windows and questions."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks", "answering.py")


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_answering", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tiny_race_reports_real_figures(tiny_trained_model, tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("matplotlib")
    output_dir = tmp_path / "answering"
    command = [sys.executable, SCRIPT, "--model", tiny_trained_model, "--windows", "16"]
    command += [
        "--calls",
        "3",
        "--engines",
        "keras-qa-jax-float32",
        "--output-dir",
        str(output_dir),
    ]
    done = subprocess.run(
        command,
        env={**os.environ, "KERAS_BACKEND": "jax"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((output_dir / "answering.json").read_text())
    (engine,) = report["engines"]
    assert engine["engine"] == "keras-qa-jax-float32" and engine["status"] == "ok", engine
    assert engine["windows"] == report["windows"] == 16
    assert engine["windows_per_s"] > 0 and engine["first_pass_s"] > 0
    assert 0 <= engine["exact_match"] <= engine["f1"] <= 100
    assert report["questions_scored"] >= 1
    (single,) = report["single_call"]
    assert single["engine"] == "pipeline keras-qa-jax-float32" and single["calls"] == 3
    assert 0 < single["p50_ms"] <= single["p95_ms"]
    assert single["same_as_transformers"] is None  # no --pipeline-python
    assert report["machine"]["versions"]["jax"] and report["machine"]["cpu_model"]
    assert (output_dir / "answering.png").stat().st_size > 0

    table_row = next(line for line in done.stdout.splitlines() if line.startswith("| keras-qa-jax"))
    assert f"{engine['f1']:.2f}" in table_row
    assert "| pipeline keras-qa-jax-float32 |" in done.stdout


def test_only_questions_with_every_window_in_are_scored():
    script = load_script()
    examples = [{"id": str(index)} for index in range(3)]
    all_features = {"example_index": np.array([0, 0, 1, 1, 1, 2]), "token_ids": np.arange(6)}
    first_four = {name: array[:4] for name, array in all_features.items()}

    kept, features, rows = script.complete_examples(examples, all_features, first_four)

    assert [example["id"] for example in kept] == ["0"]
    assert rows.tolist() == [0, 1] and features["example_index"].tolist() == [0, 0]


def test_peers_batch_windows_sorted_by_length_padded_to_the_longest():
    script = load_script()
    lengths = np.array([5, 40, 7] + [20] * 32)
    windows = {"padding_mask": (np.arange(48) < lengths[:, None]).astype(np.int32)}

    batches = script.peer_batches(windows)

    assert [len(rows) for rows, _ in batches] == [32, 3]
    assert batches[0][0][:2].tolist() == [0, 2] and batches[0][1] == 20
    assert batches[1][0].tolist()[-1] == 1 and batches[1][1] == 40


def test_a_failed_engine_is_listed_with_its_error():
    script = load_script()
    results = [
        {
            "engine": "transformers-float32",
            "status": "ok",
            "windows_per_s": 10.0,
            "exact_match": 50.0,
            "f1": 60.0,
        },
        {
            "engine": "keras-qa-jax-float32",
            "status": "ok",
            "windows_per_s": 20.0,
            "exact_match": 50.0,
            "f1": 61.0,
        },
        {
            "engine": "onnxruntime-int8",
            "status": "failed",
            "error": "No module named 'onnxruntime'",
        },
    ]

    table = script.engines_table(results)

    assert "| keras-qa-jax-float32 | 20.0 | 2.00 | 2.00 | 50.00 | 61.00 | 0.00 |" in table
    assert "onnxruntime-int8: failed: No module named 'onnxruntime'" in table
