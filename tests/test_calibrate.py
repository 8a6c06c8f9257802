import json
import shutil
import subprocess
import sys

import pytest

from keras_qa.answering.answerer import QuestionAnswerer
from keras_qa.calibrate import main
from keras_qa.checkpoints.saving import calibration_of, read_config
from tests.conftest import tiny_article_examples


@pytest.fixture
def questions(tmp_path):
    """Questions the tiny model was not trained on: two-paragraph articles (some answers right,
    some wrong)."""
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in tiny_article_examples(40, seed=9)))
    return str(path)


def test_a_keras_qa_model_gets_the_calibration_in_its_own_config(
    tiny_trained_model, questions, tmp_path, capsys
):
    model = str(shutil.copytree(tiny_trained_model, tmp_path / "model"))
    calibration, report = main(["--model", model, "--squad-file", questions])
    assert calibration_of(read_config(model)) == calibration
    assert calibration.questions == 160 and report["answers"] == {
        "paragraph": 80,
        "long_context": 80,
    }
    printed = capsys.readouterr().out
    assert "fitted on 80 answers over their own contexts and 80 over long contexts" in printed
    assert f"calibrated scores: ECE {report['expected_calibration_error']:.3f}" in printed
    answerer = QuestionAnswerer.from_pretrained(model)
    assert answerer.calibration == calibration
    answer = answerer("where did the cat run ?", "the dog sat in paris . the cat ran to london .")
    assert 0 <= answer["score"] <= 1
    # Fitted on the questions' own contexts only.
    _, short_only = main(["--model", model, "--squad-file", questions, "--no-long-contexts"])
    assert short_only["answers"] == {"paragraph": 80, "long_context": 0}
    # Saved elsewhere, the model (now calibrated on its own contexts only) carries the new
    # calibration, not the one it had.
    copy = str(tmp_path / "copy")
    recalibrated, _ = main(["--model", model, "--squad-file", questions, "--output-dir", copy])
    assert recalibrated == calibration != calibration_of(read_config(model))
    assert calibration_of(read_config(copy)) == calibration
    assert read_config(copy)["max_length"] == read_config(model)["max_length"]


def test_a_hugging_face_checkpoint_is_saved_as_a_calibrated_keras_qa_model(
    tiny_trained_model, questions, tmp_path, capsys
):
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    from keras_qa.checkpoints.exporting import export_model

    checkpoint, _ = export_model(tiny_trained_model, str(tmp_path / "hf"), "huggingface")
    with pytest.raises(SystemExit) as exited:
        main(["--model", checkpoint, "--squad-file", questions])
    assert exited.value.code == 2
    assert "is not a keras-qa model: give --output-dir" in capsys.readouterr().err
    output = str(tmp_path / "calibrated")
    calibration, _ = main(
        ["--model", checkpoint, "--squad-file", questions, "--output-dir", output]
    )
    calibrated = QuestionAnswerer.from_pretrained(output)
    assert calibrated.calibration == calibration
    original = QuestionAnswerer.from_pretrained(checkpoint)
    assert original.calibration is None
    context = "the dog sat in paris . the cat ran to london ."
    found = calibrated.read("where did the cat run ?", [context])
    reference = original.read("where did the cat run ?", [context])
    assert [a["answer"] for a in found] == [a["answer"] for a in reference]
    # Refused rather than replaced without --overwrite.
    with pytest.raises(SystemExit):
        main(["--model", checkpoint, "--squad-file", questions, "--output-dir", output])
    assert "holds a trained model" in capsys.readouterr().err
    main(["--model", checkpoint, "--squad-file", questions, "--output-dir", output, "--overwrite"])


def test_questions_without_answers_are_refused(tiny_trained_model, tmp_path, capsys):
    path = tmp_path / "unanswered.jsonl"
    example = tiny_article_examples(1)[0] | {"answers": {"text": [], "answer_start": []}}
    path.write_text(json.dumps(example))
    model = str(shutil.copytree(tiny_trained_model, tmp_path / "model"))
    with pytest.raises(SystemExit) as exited:
        main(["--model", model, "--squad-file", str(path)])
    assert exited.value.code == 2
    assert "no question has an answer" in capsys.readouterr().err
    assert calibration_of(read_config(model)) is None


def test_help_names_every_flag():
    done = subprocess.run(
        [sys.executable, "-m", "keras_qa.calibrate", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    for flag in ("--model", "--squad-file", "--split", "--output-dir", "--overwrite"):
        assert flag in done.stdout
    assert "--no-long-contexts" in done.stdout and "--batch-size" in done.stdout
