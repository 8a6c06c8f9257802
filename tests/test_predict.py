import json
import os
import subprocess
import sys

import pytest

import keras_qa
import keras_qa.cli
from keras_qa.predict import main
from tests.conftest import tiny_squad_examples

CONTEXT = "the red mat . the cat ran to london . the dog sat in paris ."


def test_one_question_prints_the_pipeline_answer(tiny_trained_model, capsys):
    result = main(
        [
            "--model",
            tiny_trained_model,
            "--question",
            "where did the cat run ?",
            "--context",
            CONTEXT,
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed == result
    assert printed["answer"] == CONTEXT[printed["start"] : printed["end"]] == "london"


def test_a_context_file_and_top_k(tiny_trained_model, tmp_path, capsys):
    path = tmp_path / "context.txt"
    path.write_text(CONTEXT, encoding="utf-8")
    main(
        [
            "--model",
            tiny_trained_model,
            "--question",
            "where did the cat run ?",
            "--context-file",
            str(path),
            "--top-k",
            "3",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == 3 and printed[0]["score"] >= printed[1]["score"] >= printed[2]["score"]


def test_a_squad_file_writes_predictions_and_scores_them(tiny_trained_model, tmp_path, capsys):
    examples = tiny_squad_examples(70, seed=5)
    data = tmp_path / "questions.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in examples))
    output = tmp_path / "out" / "predictions.json"
    os.makedirs(output.parent)
    scores = main(
        ["--model", tiny_trained_model, "--squad-file", str(data), "--output", str(output)]
    )
    predictions = json.loads(output.read_text())
    assert set(predictions) == {e["id"] for e in examples}
    out = capsys.readouterr().out
    assert f"EM {scores['exact_match']:.2f}" in out
    calibration = scores.pop("calibration")
    assert scores == keras_qa.squad_score(predictions, examples)
    # The tiny model learned "where did the X run ?": random spans would score near 0.
    assert scores["exact_match"] > 50
    # The scores' calibration on these answers, uncalibrated (the tiny model has none).
    assert calibration["scores"] == "uncalibrated" and calibration["answers"] == 70
    line = f"uncalibrated scores: ECE {calibration['expected_calibration_error']:.3f}"
    assert line in out
    right = scores["exact_match"] * len(examples) / 100
    assert sum(
        row["accuracy"] * row["answers"] for row in calibration["reliability"] if row["answers"]
    ) == pytest.approx(right)


def test_a_squad_file_with_an_empty_question_names_it(tiny_trained_model, tmp_path, capsys):
    examples = tiny_squad_examples(3)
    examples[1]["question"] = "  "
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in examples))
    with pytest.raises(SystemExit) as raised:
        main(["--model", tiny_trained_model, "--squad-file", str(data)])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert f"{data}: line 2 (id 't1'): field 'question' is empty" in error
    assert "Traceback" not in error


def test_wrong_arguments_are_refused(tiny_trained_model, capsys):
    with pytest.raises(SystemExit):
        main(["--model", tiny_trained_model, "--question", "where?"])
    assert "--context" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", tiny_trained_model, "--question", " ", "--context", CONTEXT])
    assert "question is empty" in capsys.readouterr().err


def test_the_module_runs_as_a_command(tiny_trained_model):
    completed = subprocess.run(
        [sys.executable, "-m", "keras_qa.predict", "--model", tiny_trained_model]
        + ["--question", "where did the cat run ?", "--context", CONTEXT],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads(completed.stdout)["answer"] == "london"


def test_the_output_folder_is_created_before_the_work(tiny_trained_model, tmp_path):
    data = tmp_path / "questions.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in tiny_squad_examples(3)))
    output = tmp_path / "new" / "deeper" / "predictions.json"
    main(["--model", tiny_trained_model, "--squad-file", str(data), "--output", str(output)])
    assert set(json.loads(output.read_text())) == {"t0", "t1", "t2"}


def test_an_output_that_cannot_be_written_is_refused_before_answering(
    tiny_trained_model, tmp_path, capsys, monkeypatch
):
    data = tmp_path / "questions.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in tiny_squad_examples(3)))
    answered = []
    monkeypatch.setattr(keras_qa.cli, "load_answerer", lambda args: answered.append(args))
    with pytest.raises(SystemExit) as raised:
        main(["--model", tiny_trained_model, "--squad-file", str(data), "--output", str(tmp_path)])
    assert raised.value.code == 2 and not answered
    assert f"--output {tmp_path} is a directory" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["questions.jsonl"]  # no stray .partial file
    blocked = tmp_path / "questions.jsonl" / "predictions.json"  # a folder that is a file
    with pytest.raises(SystemExit):
        main(["--model", tiny_trained_model, "--squad-file", str(data), "--output", str(blocked)])
    assert "cannot write in" in capsys.readouterr().err and not answered


def test_a_bundled_split_can_be_scored(tiny_trained_model, tmp_path, capsys, monkeypatch):
    import numpy as np

    import keras_qa.evaluation.scoring

    windows = []

    def predict_logits(model, features, batch_size=32, *args, **kwargs):  # no model work
        windows.append(len(features["token_ids"]))
        logits = np.zeros(features["token_ids"].shape, np.float32)
        return logits, logits

    monkeypatch.setattr(keras_qa.evaluation.scoring, "predict_logits", predict_logits)
    output = tmp_path / "long.json"
    main(
        ["--model", tiny_trained_model, "--squad-file", "bundled", "--split", "eval-long"]
        + ["--output", str(output)]
    )
    long = keras_qa.load_examples("bundled", split="eval-long")
    predictions = json.loads(output.read_text())
    assert set(predictions) == {e["id"] for e in long}
    assert all(predictions[e["id"]] in e["context"] for e in long)
    assert sum(windows) > len(long)  # long contexts: several windows each
    nbest = json.loads((tmp_path / "nbest_predictions.json").read_text())
    assert set(nbest) == set(predictions) and not (tmp_path / "null_odds.json").exists()
    assert "SQuAD v1.1: EM" in capsys.readouterr().out


def test_one_question_over_many_document_files(tiny_trained_model, tmp_path, capsys):
    texts = ["the red mat . the big blue house .", CONTEXT, "a mat . the red house ."]
    paths = []
    for index, text in enumerate(texts):
        paths.append(tmp_path / f"document-{index}.txt")
        paths[-1].write_text(text, encoding="utf-8")
    question = ["--question", "where did the cat run ?"]
    answers = main(["--model", tiny_trained_model, *question, "--documents", *map(str, paths)])
    assert json.loads(capsys.readouterr().out) == answers
    best = answers[0]
    assert (best["document"], best["file"]) == (1, str(paths[1]))
    assert CONTEXT[best["start"] : best["end"]] == best["answer"] == "london"
    assert 1 <= len(answers) <= 5 and all(a["file"] == str(paths[a["document"]]) for a in answers)
    (tmp_path / "latin-1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(SystemExit):
        main(
            ["--model", tiny_trained_model, *question, "--documents", str(tmp_path / "latin-1.txt")]
        )
    assert "latin-1.txt: not UTF-8 text" in capsys.readouterr().err


def test_a_squad_v2_file_writes_null_odds_and_takes_the_threshold(tiny_trained_model, tmp_path):
    examples = tiny_squad_examples(6, seed=2)
    for example in examples[::2]:
        example["answers"] = {"text": [], "answer_start": []}  # unanswerable: SQuAD v2.0 data
    path = tmp_path / "v2.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in examples))
    found = {}
    for threshold in ("-1e9", "1e9"):
        output = tmp_path / threshold / "answers.json"
        main(
            [
                "--model",
                tiny_trained_model,
                "--squad-file",
                str(path),
                "--output",
                str(output),
                f"--null-score-diff-threshold={threshold}",
                "--n-best-size",
                "3",
            ]
        )
        found[threshold] = json.loads(output.read_text())
        odds = json.loads((output.parent / "null_odds.json").read_text())
        nbest = json.loads((output.parent / "nbest_predictions.json").read_text())
        assert set(odds) == set(nbest) == {e["id"] for e in examples}
        assert all(1 <= len(entries) <= 4 for entries in nbest.values())
    assert all(answer == "" for answer in found["-1e9"].values())  # "no answer" always wins
    assert all(answer != "" for answer in found["1e9"].values())  # never


def test_existing_predictions_are_refused_unless_overwrite(tiny_trained_model, tmp_path, capsys):
    examples = tiny_squad_examples(4, seed=2)
    data = tmp_path / "questions.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in examples))
    command = ["--model", tiny_trained_model, "--squad-file", str(data)]
    for existing in ("predictions.json", "nbest_predictions.json"):
        folder = tmp_path / existing.split(".")[0]
        folder.mkdir()
        (folder / existing).write_text('{"kept": true}')
        with pytest.raises(SystemExit) as raised:
            main(command + ["--output", str(folder / "predictions.json")])
        assert raised.value.code == 2
        error = capsys.readouterr().err
        assert f"{folder / existing} exists" in error and "--overwrite" in error
        assert json.loads((folder / existing).read_text()) == {"kept": True}
    output = tmp_path / "predictions" / "predictions.json"
    main(command + ["--output", str(output), "--overwrite"])
    assert set(json.loads(output.read_text())) == {e["id"] for e in examples}
