import pytest

import keras_qa
from keras_qa.evaluation.squad_metrics import exact_match_score, f1_score, normalize_answer
from tests.conftest import make_example


@pytest.mark.parametrize(
    "text, normalized",
    [
        ("The Cat!", "cat"),
        ("  an  apple, a pear; the end. ", "apple pear end"),
        ("Theatre another", "theatre another"),  # articles only as whole words
        ("Café—Zoë’s", "café—zoë’s"),  # unicode punctuation is kept, as in the official script
        ("U.S.A.", "usa"),
        ("", ""),
        ("...", ""),
    ],
)
def test_normalization_follows_the_official_script(text, normalized):
    assert normalize_answer(text) == normalized


def test_exact_match_and_f1():
    assert exact_match_score("the Denver Broncos", "Denver Broncos!") == 1.0
    assert f1_score("Denver Broncos", "Broncos") == pytest.approx(2 / 3)
    assert f1_score("x b b", "b b c") == pytest.approx(2 / 3)  # a token multiset
    assert f1_score("a b b", "b b c") == pytest.approx(0.8)  # "a" is an article
    assert f1_score("cat", "dog") == 0.0
    assert f1_score("", "") == 0.0  # v1.1: nothing in common
    assert f1_score("", "", version=2) == 1.0  # v2.0: both say "no answer"
    assert f1_score("the", "", version=2) == 1.0


def squad(qid, answers, context="Denver Broncos beat the Carolina Panthers in 2016."):
    example = make_example(context, "?", qid=qid)
    example["answers"] = {"text": answers, "answer_start": [context.index(a) for a in answers]}
    return example


def test_v1_takes_the_best_ground_truth_and_missing_predictions_score_zero():
    examples = [
        squad("a", ["Denver Broncos", "Broncos"]),
        squad("b", ["2016"]),
        squad("c", ["Carolina Panthers"]),
    ]
    with pytest.warns(UserWarning, match="1 of 3 questions have no prediction"):
        score = keras_qa.squad_score({"a": "broncos", "b": "in 2016"}, examples)
    assert score["exact_match"] == pytest.approx(100 / 3)
    assert score["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert score["total"] == 3


def test_ground_truth_scores_100_on_the_bundled_set(bundled_examples):
    predictions = {e["id"]: e["answers"]["text"][0] for e in bundled_examples}
    assert keras_qa.squad_score(predictions, bundled_examples) == {
        "exact_match": 100.0,
        "f1": 100.0,
        "total": len(bundled_examples),
    }


def test_v2_breaks_down_answerable_and_unanswerable():
    examples = [
        squad("a", ["Denver Broncos"]),
        squad("b", ["2016"]),
        squad("n1", []),
        squad("n2", []),
    ]
    predictions = {"a": "Denver Broncos", "b": "2015", "n1": "", "n2": "Panthers"}
    score = keras_qa.squad_score(predictions, examples, version=2)
    assert score["exact"] == pytest.approx(50.0)
    assert (score["HasAns_exact"], score["HasAns_total"]) == (50.0, 2)
    assert (score["NoAns_exact"], score["NoAns_total"]) == (50.0, 2)
    assert score["total"] == 4


def test_v2_best_threshold_matches_the_official_sweep():
    examples = [
        squad("a", ["Denver Broncos"]),
        squad("b", ["2016"]),
        squad("n1", []),
        squad("n2", []),
    ]
    predictions = {"a": "Denver Broncos", "b": "2015", "n1": "", "n2": "Panthers"}
    probabilities = {"a": 0.1, "b": 0.6, "n1": 0.9, "n2": 0.7}
    score = keras_qa.squad_score(
        predictions, examples, version=2, no_answer_probabilities=probabilities
    )
    # Sweep: start at 2 (both no-answer questions right); a +1 -> 3 at 0.1; b +0; n2 -1; n1 0.
    assert score["best_exact"] == pytest.approx(75.0)
    assert score["best_exact_thresh"] == pytest.approx(0.1)
    # Above no_answer_threshold a question counts as answered "".
    thresholded = keras_qa.squad_score(
        predictions,
        examples,
        version=2,
        no_answer_probabilities=probabilities,
        no_answer_threshold=0.65,
    )
    assert thresholded["NoAns_exact"] == 100.0 and thresholded["HasAns_exact"] == 50.0


def test_v1_refuses_unanswerable_examples_and_bad_versions():
    with pytest.raises(ValueError, match="Use version=2"):
        keras_qa.squad_score({"n": ""}, [squad("n", [])])
    with pytest.raises(ValueError, match="version must be"):
        keras_qa.squad_score({}, [], version=3)
