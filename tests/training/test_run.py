import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import PIL.Image
import pytest

import keras_qa
from keras_qa.checkpoints.saving import calibration_of, load_trained_model, read_config
from keras_qa.errors import SettingsError
from keras_qa.evaluation.scoring import evaluate_answers
from keras_qa.models.batching import predict_logits
from keras_qa.text.calibration import Calibration
from keras_qa.training.data import RunData
from keras_qa.training.run import fine_tune
from keras_qa.training.settings import TrainSettings
from tests.conftest import (
    Crash,
    CrashAt,
    make_example,
    tiny_article_examples,
    tiny_settings,
    tiny_squad_examples,
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    paths = {}
    for name, count, seed in (("train", 48, 0), ("eval", 16, 1)):
        path = folder / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in tiny_squad_examples(count, seed)))
        paths[name] = str(path)
    return paths


def test_a_run_writes_a_model_that_reloads_and_reproduces_its_predictions(
    tiny_preset, tiny_data, tmp_path
):
    settings = tiny_settings(tiny_preset, tiny_data, tmp_path, eval_every_epoch=True)
    metrics = fine_tune(settings, verbose=0)
    for name in (
        "model.keras",
        "keras_qa.json",
        "metrics.json",
        "predictions.json",
        "training_curves.png",
        "tokenizer/vocab.txt",
    ):
        assert os.path.isfile(tmp_path / name), name
    assert not os.path.exists(tmp_path / "checkpoint")
    with open(tmp_path / "training_curves.png", "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["eval"]["f1"] == pytest.approx(metrics["eval"]["f1"])
    assert [entry["epoch"] for entry in saved["history"]] == [1, 2]
    assert all("eval_f1" in entry and "loss" in entry for entry in saved["history"])
    steps = [entry["step"] for entry in saved["step_history"]]
    assert steps == sorted(steps) and steps[-1] == 12 and "loss" in saved["step_history"][0]
    assert saved["history"][-1]["eval_f1"] == pytest.approx(metrics["eval"]["f1"])
    assert saved["settings"]["learning_rate"] == 3e-3
    assert saved["train_windows"] == 48 and saved["train_windows_per_second"] > 0
    assert {"keras", "keras_hub", keras.backend.backend()} <= set(saved["versions"])

    model, tokenizer, config = load_trained_model(str(tmp_path))
    assert config["doc_stride"] == 24  # answering shares half as much again as training's 16
    examples = keras_qa.load_examples(tiny_data["eval"])
    features = keras_qa.prepare_eval_features(
        examples, tokenizer, config["max_length"], config["doc_stride"]
    )
    start, end = predict_logits(model, features)
    predictions = json.loads((tmp_path / "predictions.json").read_text())
    assert keras_qa.decode_answers(examples, features, start, end) == predictions
    assert (
        saved["eval"]["exact_match"] == keras_qa.squad_score(predictions, examples)["exact_match"]
    )


def final_weights(directory):
    model, _, _ = load_trained_model(str(directory))
    return model.get_weights()


def test_resuming_after_a_crash_mid_epoch_matches_an_uninterrupted_run(
    tiny_preset, tiny_data, tmp_path
):
    whole = tmp_path / "whole"
    fine_tune(tiny_settings(tiny_preset, tiny_data, whole, eval_data=None), verbose=0)

    broken = tmp_path / "broken"
    settings = tiny_settings(tiny_preset, tiny_data, broken, eval_data=None)
    # 6 steps an epoch; the crash comes after step 9 (epoch 2), the last checkpoint is step 8.
    with pytest.raises(Crash):
        fine_tune(settings, verbose=0, callbacks=[CrashAt(9)])
    assert not os.path.exists(broken / "model.keras")
    state = json.loads((broken / "checkpoint" / "state.json").read_text())
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 8)

    with pytest.raises(FileExistsError, match="pass --resume"):
        fine_tune(settings, verbose=0)
    with pytest.raises(ValueError, match="learning_rate"):
        fine_tune(
            tiny_settings(
                tiny_preset, tiny_data, broken, eval_data=None, learning_rate=1e-3, resume=True
            ),
            verbose=0,
        )
    metrics = fine_tune(
        tiny_settings(tiny_preset, tiny_data, broken, eval_data=None, resume=True), verbose=0
    )
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2]
    assert not os.path.exists(broken / "checkpoint")
    for resumed, reference in zip(final_weights(broken), final_weights(whole)):
        np.testing.assert_allclose(resumed, reference, rtol=1e-5, atol=1e-6)
    # The resumed epoch's metrics cover the whole epoch, the steps before the crash included.
    uninterrupted = json.loads((whole / "metrics.json").read_text())["history"]
    for resumed, reference in zip(metrics["history"], uninterrupted, strict=True):
        assert resumed.keys() == reference.keys()
        for key in reference:
            assert resumed[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-6), key


def test_a_killed_training_process_resumes_and_finishes(tiny_preset, tiny_data, tmp_path):
    command = [
        sys.executable,
        "-m",
        "keras_qa.train",
        "--model",
        tiny_preset,
        "--train-data",
        tiny_data["train"],
        "--eval-data",
        tiny_data["eval"],
        "--max-length",
        "48",
        "--doc-stride",
        "16",
        "--epochs",
        "3",
        "--batch-size",
        "2",
        "--learning-rate",
        "1e-3",
        "--mixed-precision",
        "off",
        "--checkpoint-every",
        "1",
        "--bucket-width",
        "16",
        "--output-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = tmp_path / "checkpoint" / "state.json"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            if state_path.exists():
                try:
                    if json.loads(state_path.read_text())["global_step"] >= 5:
                        break
                except (ValueError, KeyError):
                    pass
            time.sleep(0.05)
        assert process.poll() is None, "training ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    assert not (tmp_path / "model.keras").exists()
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "F1" in done.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2, 3]
    model, _, _ = load_trained_model(str(tmp_path))
    assert model.count_params() > 0


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"epochs": 0}, "--epochs must be an integer >= 1, not 0"),
        ({"epochs": -1}, "--epochs must be an integer >= 1, not -1"),
        ({"learning_rate": float("nan")}, "--learning-rate must be a finite number > 0"),
        ({"learning_rate": float("inf")}, "--learning-rate must be a finite number > 0"),
        ({"max_train_examples": -5}, "--max-train-examples must be an integer >= 1, not -5"),
        ({"eval_batch_size": 0}, "--eval-batch-size must be an integer >= 1, not 0"),
        ({"warmup": 1.0}, "--warmup must be a number in [0, 1)"),
        ({"dropout": -0.1}, "--dropout must be a number in [0, 1)"),
        ({"bucket_width": 0}, "--bucket-width must be an integer >= 1"),
        ({"mixed_precision": "int8"}, "--mixed-precision must be one of"),
        ({"doc_stride": 44}, "--doc-stride (44) must leave room in --max-length (48)"),
        (
            {"answer_doc_stride": 44},
            "--answer-doc-stride (44) must leave room in --max-length (48)",
        ),
        ({"max_length": 256}, "--max-length 256 is longer than the 128 positions"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_any_work(
    tiny_preset, tiny_data, tmp_path, changes, problem
):
    settings = tiny_settings(tiny_preset, tiny_data, tmp_path / "run", **changes)
    with pytest.raises(SettingsError, match=re.escape(problem)):
        fine_tune(settings, verbose=0)
    assert not (tmp_path / "run" / "checkpoint").exists()
    assert not (tmp_path / "run" / "model.keras").exists()


def test_an_output_dir_that_is_a_file_or_not_writable_is_refused(
    tiny_preset, tiny_data, tmp_path, monkeypatch
):
    a_file = tmp_path / "taken"
    a_file.write_text("")
    with pytest.raises(SettingsError, match="--output-dir .*taken is a file"):
        fine_tune(tiny_settings(tiny_preset, tiny_data, a_file), verbose=0)
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o500)
    if os.access(read_only, os.W_OK):  # root ignores permissions: the write fails as it would

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    try:
        with pytest.raises(SettingsError, match="read-only is not writable"):
            fine_tune(tiny_settings(tiny_preset, tiny_data, read_only), verbose=0)
    finally:
        read_only.chmod(0o700)


def test_a_trained_model_in_the_output_dir_is_kept_unless_overwrite(
    tiny_preset, tiny_data, tiny_trained_model, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(tiny_trained_model, run)
    before = {name.name: name.read_bytes() for name in run.iterdir() if name.is_file()}
    settings = tiny_settings(tiny_preset, tiny_data, run, eval_data=None)
    with pytest.raises(FileExistsError, match="holds a trained model.*--overwrite"):
        fine_tune(settings, verbose=0)
    assert {name: (run / name).read_bytes() for name in before} == before
    command = [sys.executable, "-m", "keras_qa.train", "--output-dir", str(run), "--epochs", "1"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    # The error and the --debug hint close it (TensorFlow may log its start-up before them).
    error = refused.stderr.strip().splitlines()[-2]
    assert (
        error.startswith("python -m keras_qa.train: error: --output-dir") and "--overwrite" in error
    )
    fine_tune(dataclasses.replace(settings, overwrite=True), verbose=0)
    assert (run / "model.keras").read_bytes() != before["model.keras"]


def test_a_diverged_run_saves_no_model(tiny_preset, tiny_data, tmp_path):
    settings = tiny_settings(
        tiny_preset, tiny_data, tmp_path, eval_data=None, learning_rate=1e38, epochs=1
    )
    with pytest.raises(SettingsError, match="training diverged"):
        fine_tune(settings, verbose=0)
    assert not (tmp_path / "model.keras").exists()


def test_a_user_mistake_on_the_command_line_is_one_line_without_traceback(tmp_path):
    command = [
        sys.executable,
        "-m",
        "keras_qa.train",
        "--epochs",
        "0",
        "--output-dir",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "python -m keras_qa.train: error: --epochs must be an integer >= 1, not 0" in done.stderr
    assert "Traceback" not in done.stderr
    debug = subprocess.run(command + ["--debug"], capture_output=True, text=True, timeout=300)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "SettingsError" in debug.stderr


def test_long_context_windows_are_added_at_the_asked_share(tiny_preset, tiny_data, tmp_path):
    settings = tiny_settings(
        tiny_preset, tiny_data, tmp_path, eval_data=None, epochs=1, long_context_share=0.5
    )
    metrics = fine_tune(settings, verbose=0)
    plain = fine_tune(
        tiny_settings(tiny_preset, tiny_data, tmp_path / "plain", eval_data=None, epochs=1),
        verbose=0,
    )
    # In pairs: an answer window and a "not here" window of one question.
    assert metrics["long_context_windows"] == 2 * (round(0.5 * plain["train_windows"]) // 2) > 0
    assert metrics["train_windows"] == plain["train_windows"] + metrics["long_context_windows"]


def _train_on_tiny_articles(tmp_path, **changes):
    """A tiny model of its own, seeded, trained on synthetic two-paragraph articles: so small a
    model's first weights decide how well it learns "not here", and the session's depend on which
    tests ran before. `(metrics, its QuestionAnswerer)`."""
    from conftest import save_tiny_preset
    from keras_qa.answering.answerer import QuestionAnswerer

    keras.utils.set_random_seed(0)
    tiny_preset = save_tiny_preset(str(tmp_path / "preset"), "Bert", 128)
    path = tmp_path / "articles.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in tiny_article_examples(64, seed=0)))
    data = {"train": str(path), "eval": None}
    # Answering windows share 16 tokens as training's, the windows `_context_with_a_distractor_first`
    # checks: with the default 24 (1.5x) this tiny model answered "london" in both tests below.
    base = {"epochs": 8, "max_length": 64, "checkpoint_every": 0, "answer_doc_stride": 16}
    changes = base | changes
    metrics = fine_tune(tiny_settings(tiny_preset, data, tmp_path / "model", **changes), verbose=0)
    return metrics, QuestionAnswerer.from_pretrained(str(tmp_path / "model"))


def _context_with_a_distractor_first(tokenizer):
    """A context of at least three 64-token windows: the first names places and the cat, but
    nobody runs there; the last says where the cat ran."""
    words = ["the", "big", "red", "blue", "mat"]
    filler = " ".join(words[(7 * i) % 5] for i in range(80))
    context = (
        f"the dog sat in london . the cat sat in the park . {filler} . "
        "the cat ran to paris . the dog sat in the city ."
    )
    question = make_example(context, "where did the cat run ?", "paris")
    windows = keras_qa.prepare_eval_features([question], tokenizer, 64, 16)
    assert len(windows["example_index"]) >= 3
    first_text = _window_text(windows, 0, context)
    last_text = _window_text(windows, len(windows["example_index"]) - 1, context)
    assert "dog sat in london" in first_text and "ran to" not in first_text
    assert "cat ran to paris" in last_text and "london" not in last_text
    return context


def test_trained_on_long_contexts_the_answer_comes_from_the_last_window_past_a_distractor(tmp_path):
    _, answerer = _train_on_tiny_articles(tmp_path, long_context_share=1.0)
    context = _context_with_a_distractor_first(answerer.tokenizer)
    # Ranked by each window's own probabilities: so small a model's [CLS] logits are too loose for
    # "null_relative" (right for about half the seeds tried, against all of them here).
    answer = answerer("where did the cat run ?", context, window_score="window_softmax")
    assert answer["answer"] == "paris" and answer["start"] == context.index("paris")


def test_trained_by_default_the_answer_comes_from_the_last_window_past_a_distractor(tmp_path):
    """The test above with the default recipe (distractors, no long-context pairs) and the default
    decoding (`null_relative`)."""
    defaults = TrainSettings()
    metrics, answerer = _train_on_tiny_articles(
        tmp_path,
        distractor_share=defaults.distractor_share,
        calibration_share=defaults.calibration_share,
        long_context_share=defaults.long_context_share,
    )
    assert metrics["distractors"] > 0 and metrics["long_context_windows"] == 0
    context = _context_with_a_distractor_first(answerer.tokenizer)
    answer = answerer("where did the cat run ?", context)
    assert answer["answer"] == "paris" and answer["start"] == context.index("paris")


def test_training_fits_the_score_calibration_on_held_out_articles_and_reports_it(
    tiny_preset, tiny_data, tmp_path
):
    path = tmp_path / "articles.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in tiny_article_examples(100, seed=2)))
    data = {"train": str(path), "eval": tiny_data["eval"]}
    settings = tiny_settings(
        tiny_preset, data, tmp_path / "model", epochs=8, max_length=64, calibration_share=0.2
    )
    data = RunData(settings)
    held_out = {example["title"] for example in data.calibration_examples}
    assert len(held_out) == 20 and not held_out & {e["title"] for e in data.train_examples}
    metrics = fine_tune(settings, verbose=0)
    fitted = metrics["calibration"]
    assert fitted["answers"]["paragraph"] == len(data.calibration_examples)
    assert fitted["answers"]["long_context"] == len(data.calibration_examples)
    saved = calibration_of(read_config(str(tmp_path / "model")))
    assert saved == Calibration(fitted["weight"], fitted["bias"], fitted["questions"])
    report = metrics["eval"]["calibration"]
    assert report["scores"] == "calibrated" and report["answers"] == metrics["eval"]["examples"]
    assert 0 <= report["expected_calibration_error"] <= 1
    assert len(report["reliability"]) == 10
    written = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert written["eval"]["calibration"] == report
    # The reliability diagram is a third panel beside the training curves.
    with PIL.Image.open(tmp_path / "model" / "training_curves.png") as image:
        assert image.size[0] > 1500


def _window_text(features, row, context):
    offsets = features["offsets"][row][features["offsets"][row][:, 0] >= 0]
    return context[offsets[0, 0] : offsets[-1, 1]]


def test_squad_v2_eval_data_writes_run_qa_files_and_saves_the_no_answer_threshold(
    tiny_preset, tiny_data, tmp_path
):
    from keras_qa.answering.answerer import QuestionAnswerer
    from keras_qa.train import settings_from_args

    # Half the eval questions asked of a context that does not hold their animal: unanswerable.
    examples = tiny_squad_examples(16, seed=1)
    for example in examples[::2]:
        animal = "dog" if "the cat ran" in example["context"] else "cat"
        example["question"] = f"where did the {animal} fly ?"
        example["answers"] = {"text": [], "answer_start": []}
    eval_path = tmp_path / "eval-v2.jsonl"
    eval_path.write_text("\n".join(json.dumps(e) for e in examples))
    args = ["--model", tiny_preset, "--n-best-size", "4", "--output-dir", str(tmp_path / "run")]
    assert settings_from_args(args).n_best == 4  # run_qa.py's flag name
    data = {**tiny_data, "eval": str(eval_path)}
    settings = tiny_settings(tiny_preset, data, tmp_path / "run", n_best=4, checkpoint_every=0)
    metrics = fine_tune(settings, verbose=0)
    scores = metrics["eval"]
    assert scores["squad_version"] == 2 and "HasAns_f1" in scores and "NoAns_f1" in scores
    run = tmp_path / "run"
    null_odds = json.loads((run / "null_odds.json").read_text())
    nbest = json.loads((run / "nbest_predictions.json").read_text())
    predictions = json.loads((run / "predictions.json").read_text())
    threshold = scores["null_score_diff_threshold"]
    assert threshold == scores["best_f1_thresh"]
    assert set(null_odds) == set(nbest) == set(predictions) == {e["id"] for e in examples}
    for qid, entries in nbest.items():
        assert 1 <= len(entries) <= 5 and any(entry["text"] == "" for entry in entries)
        assert sum(entry["probability"] for entry in entries) == pytest.approx(1.0)
        assert (predictions[qid] == "") == (null_odds[qid] > threshold)
    # The threshold goes with the model, and the answerer uses it when "no answer" may compete.
    config = json.loads((run / "keras_qa.json").read_text())
    assert config["null_score_diff_threshold"] == threshold
    answerer = QuestionAnswerer.from_pretrained(str(run))
    assert answerer.null_threshold == threshold


DATA_PARALLEL_RUN = """
import dataclasses, json, sys
import numpy as np
from keras_qa.runtime.distribution import writes_files
from keras_qa.training.run import fine_tune
from keras_qa.checkpoints.saving import load_trained_model
from tests.conftest import Crash, CrashAt, tiny_settings
preset, train, evaluation, output, distribute, *crash_at = sys.argv[1:]
settings = tiny_settings(preset, {"train": train, "eval": evaluation}, output, epochs=1,
                         checkpoint_every=2 if crash_at else 0, distribute=distribute, batch_size=8)
resumed = False
if crash_at:  # stop mid-epoch, then resume from the last checkpoint
    try:
        fine_tune(settings, verbose=0, callbacks=[CrashAt(int(crash_at[0]))])
    except Crash:
        settings, resumed = dataclasses.replace(settings, resume=True), True
metrics = fine_tune(settings, verbose=0)
if writes_files():  # the other processes of a job write nothing
    model, _, _ = load_trained_model(output)
    np.save(output + "/weights.npy", np.concatenate([w.ravel() for w in model.get_weights()]))
run = {name: metrics[name] for name in ("distribution", "step_history", "eval")}
print(json.dumps(run | {"resumed": resumed}))
"""
# Largest |weight difference| after a data-parallel epoch against one device: the gradient is
# reduced in another order, and Adam turns such float32 rounding into slightly different steps.
DATA_PARALLEL_WEIGHT_TOLERANCE = 5e-5
# The span head's two biases (the last weights) are left out: a softmax does not change when a
# constant is added to all its logits, so their gradient is zero but for rounding, which Adam
# normalises into steps of the learning rate's size, in any direction.
HEAD_BIASES = 2


def start_data_parallel_run(
    tiny_preset, tiny_data, output, distribute, devices, job=None, crash_at=None, log=None
):
    """A `DATA_PARALLEL_RUN` process on `devices` virtual JAX devices (`job`: its variables); its
    output goes to files (`log`, or beside `output`), so that nothing blocks on a full pipe."""
    environment = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": os.getcwd(),
        **(job or {}),
    }
    log = log or output
    crash = [] if crash_at is None else [str(crash_at)]
    with open(f"{log}.stdout", "w") as stdout, open(f"{log}.stderr", "w") as stderr:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                DATA_PARALLEL_RUN,
                tiny_preset,
                tiny_data["train"],
                tiny_data["eval"],
                str(output),
                distribute,
                *crash,
            ],
            env=environment,
            stdout=stdout,
            stderr=stderr,
        )


def finish_data_parallel_runs(processes, outputs, logs=None, timeout=600):
    """Each run's distribution, step history, eval scores and (where it wrote them) weights; if one
    process of a job fails, the others are stopped rather than left waiting for it."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            codes = [process.poll() for process in processes]
            if all(code == 0 for code in codes) or any(code not in (None, 0) for code in codes):
                break
            time.sleep(0.5)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    runs = []
    for process, output, log in zip(processes, outputs, logs or outputs):
        stderr = open(f"{log}.stderr").read()
        assert process.returncode == 0, stderr[-3000:]
        run = json.loads(open(f"{log}.stdout").read().strip().splitlines()[-1])
        if os.path.isfile(output / "weights.npy"):
            run["weights"] = np.load(output / "weights.npy")
        runs.append(run)
    return runs


@pytest.fixture(scope="module")
def one_and_four_devices(tiny_preset, tiny_data, tmp_path_factory):
    """The same epoch trained on one device and data parallel over four."""
    runs = {}
    for distribute, devices in (("none", 1), ("data", 4)):
        output = tmp_path_factory.mktemp(distribute) / "run"
        process = start_data_parallel_run(tiny_preset, tiny_data, output, distribute, devices)
        runs[devices] = finish_data_parallel_runs([process], [output])[0]
    return runs


def assert_same_training(run, expected):
    """The same steps with the same losses, nearly the same weights and the same eval F1."""
    steps = [(step["step"], step["loss"]) for step in run["step_history"]]
    expected_steps = [(step["step"], step["loss"]) for step in expected["step_history"]]
    assert [s for s, _ in steps] == [s for s, _ in expected_steps]
    np.testing.assert_allclose(
        [loss for _, loss in steps], [loss for _, loss in expected_steps], rtol=1e-5
    )
    np.testing.assert_allclose(
        run["weights"][:-HEAD_BIASES],
        expected["weights"][:-HEAD_BIASES],
        atol=DATA_PARALLEL_WEIGHT_TOLERANCE,
    )
    assert run["eval"]["f1"] == pytest.approx(expected["eval"]["f1"], abs=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX distribution")
def test_four_devices_train_as_one_with_the_same_global_batch(one_and_four_devices):
    one, four = one_and_four_devices[1], one_and_four_devices[4]
    assert four["distribution"] == {
        "kind": "data",
        "processes": 1,
        "devices": 4,
        "per_device_batch": 2,
    }
    # 48 windows in batches of 8 over 16-token buckets: the last batch is short and padded.
    assert_same_training(four, one)


def start_job_of_two(tiny_preset, tiny_data, outputs, logs=None, **options):
    """Two `DATA_PARALLEL_RUN` processes of 2 virtual devices each forming one JAX job, with a
    coordinator on a free loopback port."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    job = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
    }
    return [
        start_data_parallel_run(
            tiny_preset,
            tiny_data,
            output,
            devices=2,
            job=job | {"KERAS_DISTRIBUTION_PROCESS_ID": str(index)},
            log=(logs or outputs)[index],
            **options,
        )
        for index, output in enumerate(outputs)
    ]


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX distribution")
def test_two_processes_on_loopback_train_as_four_devices_and_only_the_first_writes(
    tiny_preset, tiny_data, tmp_path, one_and_four_devices
):
    outputs = [tmp_path / f"process-{index}" for index in range(2)]
    processes = start_job_of_two(tiny_preset, tiny_data, outputs, distribute="auto")
    first, second = finish_data_parallel_runs(processes, outputs)
    for run in (first, second):
        assert run["distribution"] == {
            "kind": "data",
            "processes": 2,
            "devices": 4,
            "per_device_batch": 2,
        }
    assert not outputs[1].exists()
    assert_same_training(first, one_and_four_devices[4])
    assert second["step_history"] == first["step_history"]
    assert second["eval"]["f1"] == first["eval"]["f1"]
    # The job's model is an ordinary one: one device loads it and scores the same.
    model, tokenizer, _ = load_trained_model(str(outputs[0]))
    examples = keras_qa.load_examples(tiny_data["eval"])
    features = keras_qa.prepare_eval_features(examples, tokenizer, 48, 16)
    _, scores = evaluate_answers(model, examples, features, batch_size=8)
    assert scores["f1"] == pytest.approx(first["eval"]["f1"], abs=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX distribution")
def test_a_job_of_two_processes_resumes_from_their_shared_checkpoint(
    tiny_preset, tiny_data, tmp_path, one_and_four_devices
):
    shared = tmp_path / "shared"  # both processes read the checkpoint that the first writes
    logs = [tmp_path / f"process-{index}" for index in range(2)]
    processes = start_job_of_two(
        tiny_preset, tiny_data, [shared, shared], logs, distribute="data", crash_at=5
    )
    resumed, _ = finish_data_parallel_runs(processes, [shared, shared], logs)
    assert resumed["resumed"]
    assert_same_training(resumed, one_and_four_devices[4])


MIRRORED_RUNS = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
import keras_qa
from keras_qa.models.batching import BucketedBatches, predict_logits
from keras_qa.runtime.distribution import batch_predictor, distribution_scope, plan_distribution
from keras_qa.checkpoints.saving import load_trained_model
from keras_qa.training.run import fine_tune
from tests.conftest import tiny_settings
preset, train, evaluation, folder = sys.argv[1:]
runs = {}
for distribute in ("none", "data"):
    output = f"{folder}/{distribute}"
    settings = tiny_settings(preset, {"train": train, "eval": evaluation}, output, epochs=1,
                             checkpoint_every=0, distribute=distribute, batch_size=8)
    metrics = fine_tune(settings, verbose=0)
    runs[distribute] = {name: metrics[name] for name in ("distribution", "step_history", "eval")}
    model, tokenizer, _ = load_trained_model(output)
    np.save(output + "/weights.npy", np.concatenate([w.ravel() for w in model.get_weights()]))
# One model's logits on one device, and split over the two replicas.
examples = keras_qa.load_examples(evaluation)
features = keras_qa.prepare_eval_features(examples, tokenizer, 48, 16)
alone = predict_logits(model, features, batch_size=8)
with distribution_scope(plan_distribution("data", 8)):
    mirrored_model, _, _ = load_trained_model(output)
    mirrored = predict_logits(mirrored_model, features, batch_size=8)
    batch = BucketedBatches(features, 8, input_names=model.input_names)[0]
    outputs = batch_predictor(mirrored_model)(batch)
runs["logits"] = {"rows": [len(batch["token_ids"]), len(outputs["start_logits"])],
                  "difference": float(max(np.abs(a - b).max() for a, b in zip(alone, mirrored)))}
print(json.dumps(runs))
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a tf.distribute strategy")
def test_mirrored_strategy_over_two_devices_trains_as_one(tiny_preset, tiny_data, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MIRRORED_RUNS,
            tiny_preset,
            tiny_data["train"],
            tiny_data["eval"],
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("none", "data"):
        runs[name]["weights"] = np.load(tmp_path / name / "weights.npy")
    assert runs["data"]["distribution"] == {
        "kind": "data",
        "processes": 1,
        "devices": 2,
        "per_device_batch": 4,
    }
    assert_same_training(runs["data"], runs["none"])
    predictions = json.loads((tmp_path / "data" / "predictions.json").read_text())
    assert len(predictions) == runs["data"]["eval"]["examples"] == 16
    # A batch's outputs have its rows (`predict_on_batch` returns each replica's copy: twice as
    # many), and the logits split over the replicas are one device's.
    batch_rows, output_rows = runs["logits"]["rows"]
    assert output_rows == batch_rows == 8
    assert runs["logits"]["difference"] < 1e-5


DATA_PARALLEL_RESUME = """
import sys
import numpy as np
from keras_qa.training.run import fine_tune
from keras_qa.checkpoints.saving import load_trained_model
from tests.conftest import Crash, CrashAt, tiny_settings
preset, train, folder = sys.argv[1:]
def settings(output, **changes):
    return tiny_settings(preset, {"train": train, "eval": None}, output, eval_data=None,
                         distribute="data", **changes)
fine_tune(settings(folder + "/whole"), verbose=0)
try:
    fine_tune(settings(folder + "/broken"), verbose=0, callbacks=[CrashAt(9)])
except Crash:
    pass
fine_tune(settings(folder + "/broken", resume=True), verbose=0)
for name in ("whole", "broken"):
    model, _, _ = load_trained_model(folder + "/" + name)
    np.save(f"{folder}/{name}.npy", np.concatenate([w.ravel() for w in model.get_weights()]))
"""


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX distribution")
def test_a_data_parallel_run_resumes_after_a_crash_mid_epoch(tiny_preset, tiny_data, tmp_path):
    environment = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHONPATH": os.getcwd(),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            DATA_PARALLEL_RESUME,
            tiny_preset,
            tiny_data["train"],
            str(tmp_path),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    np.testing.assert_allclose(
        np.load(tmp_path / "broken.npy"), np.load(tmp_path / "whole.npy"), rtol=1e-5, atol=1e-6
    )
