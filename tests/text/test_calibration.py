import numpy as np
import pytest

from keras_qa.text.calibration import (
    Calibration,
    expected_calibration_error,
    fit_calibration,
    precision_threshold,
    reliability,
)


@pytest.mark.parametrize("temperature, bias", [(0.5, 0.0), (2.0, 0.0), (3.0, -1.5), (1.0, 2.0)])
def test_fitting_known_logits_recovers_their_temperature_and_bias(temperature, bias):
    rng = np.random.default_rng(1)
    log_odds = rng.normal(1.0, 5.0, 40_000)
    right = rng.random(len(log_odds)) < 1 / (1 + np.exp(-(log_odds / temperature + bias)))
    calibration = fit_calibration(log_odds, right)
    assert 1 / calibration.weight == pytest.approx(temperature, rel=0.05)
    assert calibration.bias == pytest.approx(bias, abs=0.08)
    assert calibration.questions == len(log_odds)


def test_a_calibrated_score_matches_the_share_of_right_answers():
    rng = np.random.default_rng(2)
    log_odds = rng.normal(3.0, 4.0, 20_000)
    right = rng.random(len(log_odds)) < 1 / (1 + np.exp(-(0.3 * log_odds - 1.0)))
    raw = 1 / (1 + np.exp(-log_odds))
    calibrated = fit_calibration(log_odds[:10_000], right[:10_000]).probability(log_odds[10_000:])
    assert expected_calibration_error(raw[10_000:], right[10_000:]) > 0.15
    assert expected_calibration_error(calibrated, right[10_000:]) < 0.02


def test_the_order_of_answers_is_kept_and_extreme_scores_do_not_overflow():
    calibration = Calibration(weight=0.7, bias=-0.2)
    scores = calibration.probability(np.array([-1e6, -3.0, 0.0, 3.0, 1e6]))
    assert scores[0] == 0.0 and scores[-1] == 1.0
    assert np.all(np.diff(scores) > 0)
    assert isinstance(calibration.probability(1.0), float)


@pytest.mark.parametrize(
    "log_odds, right, message",
    [
        ([], [], "got none"),
        ([1.0, 2.0], [True, True], "all 2 answers are right"),
        ([1.0, 2.0], [False, False], "all 2 answers are wrong"),
        ([1.0, np.nan], [True, False], "finite"),
        ([1.0, 2.0, 3.0], [True, False], "3 scores but 2"),
    ],
)
def test_what_cannot_be_fitted_is_refused_with_the_reason(log_odds, right, message):
    with pytest.raises(ValueError, match=message):
        fit_calibration(log_odds, right)


def test_scores_that_do_not_rank_right_answers_higher_give_each_answer_the_share_right():
    calibration = fit_calibration([1.0, 2.0, 3.0, 4.0, 5.0], [True, True, True, False, False])
    assert calibration.weight == 0.0 and calibration.questions == 5
    assert calibration.probability(-10.0) == pytest.approx(0.6)
    assert calibration.probability(10.0) == pytest.approx(0.6)


def test_separable_answers_still_fit_a_finite_calibration():
    calibration = fit_calibration([-3.0, -2.0, 2.0, 3.0], [False, False, True, True])
    assert np.isfinite(calibration.weight) and calibration.weight > 0
    assert calibration.probability(3.0) > 0.9 and calibration.probability(-3.0) < 0.1


@pytest.mark.parametrize(
    "config, message",
    [
        ({"weight": -1.0, "bias": 0.0}, "weight must be a finite number >= 0"),
        ({"weight": float("nan"), "bias": 0.0}, "weight must be"),
        ({"weight": 1.0, "bias": float("inf")}, "bias must be a finite number"),
        ({"weight": "1", "bias": 0.0}, "weight must be"),
        ({"weight": True, "bias": 0.0}, "weight must be"),
        ({"weight": 1.0, "bias": 0.0, "questions": -3}, "questions must be"),
        ({"weight": 1.0}, r"missing keys \['bias'\]"),
        ({"weight": 1.0, "bias": 0.0, "temperature": 2}, r"unknown keys \['temperature'\]"),
        ([1.0, 0.0], "must be an object"),
    ],
)
def test_a_calibration_config_is_validated(config, message):
    with pytest.raises(ValueError, match=message):
        Calibration.from_config(config)


def test_a_calibration_round_trips_through_its_config():
    calibration = Calibration(weight=0.25, bias=-0.75, questions=512)
    assert Calibration.from_config(calibration.get_config()) == calibration


def test_expected_calibration_error_weighs_each_bin_by_its_answers():
    # Bin [0.9, 1): 4 answers at 0.95, 3 right (0.75): gap 0.2. Bin [0.1, 0.2): 1 answer at 0.15,
    # wrong: gap 0.15. ECE = (4 * 0.2 + 1 * 0.15) / 5.
    scores = [0.95, 0.95, 0.95, 0.95, 0.15]
    right = [True, True, True, False, False]
    assert expected_calibration_error(scores, right) == pytest.approx((4 * 0.2 + 0.15) / 5)
    bins = reliability(scores, right)
    assert len(bins) == 10 and sum(row["answers"] for row in bins) == 5
    assert bins[9]["accuracy"] == 0.75 and bins[1]["mean_score"] == pytest.approx(0.15)
    assert bins[5]["answers"] == 0 and bins[5]["accuracy"] is None
    # A score of exactly 1 falls in the last bin.
    assert reliability([1.0], [True])[9]["answers"] == 1


def test_the_precision_threshold_keeps_the_most_answers_at_the_asked_precision():
    scores = [0.99, 0.97, 0.9, 0.8, 0.8, 0.5, 0.4]
    right = [True, True, False, True, True, True, False]
    # Kept at 0.5: 5 of 6 right (0.83); at 0.8: 4 of 5 (0.8); at 0.97: 2 of 2.
    assert precision_threshold(scores, right, 0.8) == {
        "threshold": 0.5,
        "kept": pytest.approx(6 / 7),
        "precision": pytest.approx(5 / 6),
    }
    assert precision_threshold(scores, right, 0.9)["threshold"] == 0.97
    assert precision_threshold([0.9, 0.8], [False, False])["threshold"] is None
    # Tied scores are kept or dropped together: 0.8 keeps both answers of 0.8.
    assert precision_threshold([0.8, 0.8, 0.7], [True, False, False], 0.5)["kept"] == 2 / 3


def test_scores_outside_zero_to_one_are_refused():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        expected_calibration_error([1.5, 0.2], [True, False])
