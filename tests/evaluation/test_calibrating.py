import numpy as np
import pytest

import keras_qa
from keras_qa.checkpoints.saving import load_trained_model
from keras_qa.evaluation.calibrating import (
    answer_log_odds,
    answers_calibration,
    calibration_line,
    fit_model_calibration,
    is_exact_match,
    long_context_examples,
)
from keras_qa.text.calibration import Calibration
from tests.conftest import make_example, tiny_article_examples, tiny_squad_examples


def test_exact_match_follows_squads_normalisation():
    assert is_exact_match("The Broncos!", ["Denver Broncos", "broncos"])
    assert not is_exact_match("Denver", ["Denver Broncos"])
    assert is_exact_match("", []) and not is_exact_match("Paris", [])


def test_each_answers_log_odds_is_its_span_against_its_windows_cls():
    examples = [
        make_example("the cat ran to paris .", "where did the cat run ?", "paris", qid="a"),
        make_example("the dog sat in london .", "where did the dog sit ?", "london", qid="b"),
    ]
    features = keras_qa.prepare_eval_features(examples, keras_qa.load_tokenizer("minilm"), 32, 8)
    start = np.zeros((2, 32), np.float32)
    end = np.zeros((2, 32), np.float32)
    offsets = features["offsets"]
    paris = int(np.flatnonzero(offsets[0, :, 0] == examples[0]["context"].index("paris"))[0])
    sat = int(np.flatnonzero(offsets[1, :, 0] == examples[1]["context"].index("sat"))[0])
    start[0, paris], end[0, paris], start[0, 0], end[0, 0] = 4.0, 3.0, 1.0, 0.5
    start[1, sat], end[1, sat], start[1, 0] = 2.0, 2.0, -1.0
    log_odds, correct = answer_log_odds(examples, features, start, end)
    np.testing.assert_allclose(log_odds, [4.0 + 3.0 - 1.0 - 0.5, 2.0 + 2.0 + 1.0])
    assert correct.tolist() == [True, False]  # "sat" is not "london"


def test_answers_calibration_reports_the_scores_answering_would_give():
    examples = [make_example("x y z", "q?", "y", qid=str(i)) for i in range(4)]
    predictions = {"0": "y", "1": "y", "2": "x", "3": ""}  # "3" abstained: left out
    log_odds = {"0": 3.0, "1": 1.0, "2": -1.0, "3": 2.0}
    uncalibrated = answers_calibration(examples, predictions, log_odds)
    assert uncalibrated["scores"] == "uncalibrated" and uncalibrated["answers"] == 3
    sigmoid = 1 / (1 + np.exp(-np.array([3.0, 1.0, -1.0])))
    expected = np.mean(np.abs(sigmoid - [1, 1, 0]))  # one answer per bin
    assert uncalibrated["expected_calibration_error"] == pytest.approx(expected)
    calibration = Calibration(weight=10.0, bias=0.0)
    calibrated = answers_calibration(examples, predictions, log_odds, calibration)
    assert calibrated["scores"] == "calibrated"
    assert calibrated["expected_calibration_error"] < uncalibrated["expected_calibration_error"]
    assert calibrated["uncalibrated_expected_calibration_error"] == pytest.approx(expected)
    assert calibrated["threshold_90"]["threshold"] == pytest.approx(calibration.probability(1.0))
    assert "calibrated scores: ECE" in calibration_line(calibrated)


def test_a_model_calibration_fits_its_answers_over_short_and_long_contexts(tiny_trained_model):
    model, tokenizer, config = load_trained_model(tiny_trained_model)
    examples = tiny_article_examples(24, seed=5) + tiny_squad_examples(24, seed=7)
    calibration, report = fit_model_calibration(
        model, tokenizer, examples, config["max_length"], config["doc_stride"]
    )
    assert report["answers"] == {"paragraph": 72, "long_context": 72}
    assert calibration.questions == 144
    # Its report is that of its own probabilities on the answers it was fitted on.
    assert report["scores"] == "calibrated"
    assert report["expected_calibration_error"] <= report["uncalibrated_expected_calibration_error"]
    assert sum(row["answers"] for row in report["reliability"]) == 144
    # Over its paragraphs alone, fewer answers.
    _, short_only = fit_model_calibration(
        model, tokenizer, examples, config["max_length"], config["doc_stride"], long_contexts=False
    )
    assert short_only["answers"] == {"paragraph": 72, "long_context": 0}


def test_the_long_contexts_set_each_paragraph_among_its_articles_neighbours():
    article = tiny_article_examples(6, seed=2)
    held_out = article[::4]
    widened = long_context_examples(held_out, neighbours=article)
    assert [e["id"] for e in widened] == [e["id"] for e in held_out]
    for long, short in zip(widened, held_out):
        other = next(
            e["context"] for e in article if e["title"] == short["title"] and e is not short
        )
        assert short["context"] in long["context"] and other in long["context"]
        start = long["answers"]["answer_start"][0]
        assert long["context"][start:].startswith(short["answers"]["text"][0])
