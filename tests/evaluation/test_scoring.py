import numpy as np
import pytest

import keras_qa
from keras_qa.checkpoints.saving import load_trained_model
from keras_qa.evaluation.scoring import EpochEvaluation, evaluate_answers, nbest_predictions
from keras_qa.evaluation.squad_metrics import exact_match
from keras_qa.models.batching import predict_logits
from keras_qa.models.task import PADDING_LOGIT
from tests.conftest import make_example, tiny_squad_examples


@pytest.fixture(scope="module")
def trained(tiny_trained_model):
    model, tokenizer, config = load_trained_model(tiny_trained_model)
    return model, tokenizer, config


def features_of(trained, examples):
    _, tokenizer, config = trained
    return keras_qa.prepare_eval_features(
        examples, tokenizer, config["max_length"], config["doc_stride"]
    )


def test_every_question_gets_an_answer_and_the_official_score(trained):
    model = trained[0]
    examples = tiny_squad_examples(12, seed=3)
    features = features_of(trained, examples)
    predictions, scores = evaluate_answers(model, examples, features, batch_size=5)
    assert sorted(predictions) == sorted(example["id"] for example in examples)
    for example in examples:
        assert predictions[example["id"]] in example["context"]
        assert predictions[example["id"]]  # SQuAD v1.1: every question is answered
    assert scores == keras_qa.squad_score(predictions, examples) | {"squad_version": 1}
    # The answers are the model's: the same as decoding its logits by hand.
    start, end = predict_logits(model, features)
    assert predictions == keras_qa.decode_answers(examples, features, start, end)


class KeywordModel:
    """Logits that favour chosen words, and [CLS] (the null answer) a little: known best answers."""

    input_names = ("token_ids", "segment_ids", "padding_mask")

    def __init__(self, tokenizer, start_word, end_word, null_logit=3.0):
        vocabulary = list(tokenizer.vocabulary)
        self.start, self.end = vocabulary.index(start_word), vocabulary.index(end_word)
        self.cls, self.null_logit = vocabulary.index("[CLS]"), null_logit

    def predict_on_batch(self, inputs):
        ids = np.asarray(inputs["token_ids"])
        start = np.where(ids == self.start, 5.0, 0.0).astype("float32")
        end = np.where(ids == self.end, 5.0, 0.0).astype("float32")
        for logits in (start, end):
            logits[ids == self.cls] = self.null_logit
            logits[np.asarray(inputs["padding_mask"]) == 0] = PADDING_LOGIT
        return {"start_logits": start, "end_logits": end}


def test_decoding_options_reach_the_decoder(trained):
    model = KeywordModel(trained[1], "ran", "paris")
    examples = [make_example("the cat ran to paris .", "where did the cat run ?", "paris")]
    features = features_of(trained, examples)
    assert evaluate_answers(model, examples, features)[0] == {"q0": "ran to paris"}
    predictions, scores = evaluate_answers(model, examples, features, max_answer_length=1)
    assert predictions["q0"] in ("ran", "paris")  # a one-token answer
    assert scores == keras_qa.squad_score(predictions, examples) | {"squad_version": 1}


def test_data_with_unanswerable_questions_is_scored_as_squad_v2(trained):
    model = KeywordModel(trained[1], "paris", "paris")
    examples = [
        make_example("the cat ran to paris .", "where did the cat run ?", "paris", qid="a"),
        make_example("the dog sat in london .", "where did the dog sit ?", "london", qid="b"),
        make_example("the dog sat on the mat .", "what is the capital of france ?", qid="n1"),
        make_example("the red house is in paris .", "who ran to paris ?", qid="n2"),
    ]
    features = features_of(trained, examples)
    predictions, scores = evaluate_answers(model, examples, features, null_threshold=0.0)
    # v2.0 decoding answers "" where the null score (3 + 3) beats the best span (0 without "paris").
    assert predictions == {"a": "paris", "b": "", "n1": "", "n2": "paris"}
    official = keras_qa.squad_score(predictions, examples, version=2)
    assert {name: scores[name] for name in official} == official
    assert scores["squad_version"] == 2 and scores["null_score_diff_threshold"] == 0.0
    assert (scores["exact"], scores["HasAns_exact"], scores["NoAns_exact"]) == (50.0, 50.0, 50.0)
    assert (scores["HasAns_total"], scores["NoAns_total"]) == (2, 2)
    # No threshold given: the official sweep's best-F1 one on these examples. Here "a" and "n2"
    # tie on their null odds ("paris" in both), which the sweep splits and a threshold cannot.
    best_predictions, best, details = evaluate_answers(model, examples, features, details=True)
    odds = details["null_odds"]
    assert odds["a"] == odds["n2"] < odds["b"] == odds["n1"]
    assert best["null_score_diff_threshold"] == best["best_f1_thresh"] == odds["a"]
    assert best_predictions == {"a": "paris", "b": "", "n1": "", "n2": "paris"}
    assert best["best_f1"] == 75.0 and best["f1"] == 50.0
    # The same answerable questions alone are SQuAD v1.1 data: always answered.
    predictions, scores = evaluate_answers(model, examples[:2], features_of(trained, examples[:2]))
    assert scores["squad_version"] == 1 and "exact_match" in scores
    assert predictions["a"] == "paris" and predictions["b"] != ""


def test_epoch_evaluation_adds_the_scores_to_the_epoch_logs(trained, capsys):
    model = trained[0]
    examples = tiny_squad_examples(10, seed=6)
    features = features_of(trained, examples)
    _, scores = evaluate_answers(model, examples, features, batch_size=4)

    callback = EpochEvaluation(examples, features, batch_size=4)
    callback.set_model(model)
    logs = {"loss": 1.5}
    callback.on_epoch_end(2, logs)
    assert logs == {"loss": 1.5, "eval_f1": scores["f1"], "eval_exact": exact_match(scores)}
    assert f"epoch 3: eval F1 {scores['f1']:.2f}" in capsys.readouterr().out
    callback.on_epoch_end(3, None)  # Keras may pass no logs; the scores are still printed
    assert "epoch 4: eval F1" in capsys.readouterr().out


def test_no_answer_entry_takes_the_cls_logits_of_the_window_where_they_sum_lowest(dev_sample):
    examples, features = dev_sample
    rng = np.random.default_rng(2)
    shape = features["token_ids"].shape
    start, end = (rng.normal(size=shape).astype(np.float32) for _ in range(2))
    listed = nbest_predictions(examples, features, start, end, include_null=True)
    example_index = np.asarray(features["example_index"])
    assert np.bincount(example_index).max() > 1  # examples of several windows
    for i, example in enumerate(examples):
        rows = np.flatnonzero(example_index == i)
        lowest = rows[np.argmin(start[rows, 0] + end[rows, 0])]
        null = next(entry for entry in listed[example["id"]] if entry["text"] == "")
        assert (null["start_logit"], null["end_logit"]) == (start[lowest, 0], end[lowest, 0])


def test_nbest_predictions_by_hand():
    from keras_qa.text.tokenizer import QATokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "ran", "to", "paris", "."]
    tokenizer = QATokenizer(vocabulary + ["where", "?"], lowercase=True)
    context = "the cat ran to paris ."
    example = {"id": "q", "question": "where ?", "context": context, "answers": {"text": []}}
    features = keras_qa.prepare_eval_features([example], tokenizer, 16, 4)
    # [CLS] where ? [SEP] the cat ran to paris . [SEP]: the context is tokens 4 to 9.
    start = np.full((1, 16), -1e9, np.float32)
    end = np.full((1, 16), -1e9, np.float32)
    start[0, :11] = [1.0, 0, 0, 0, 0.1, 0.2, 2.0, 0.3, 3.0, 0.4, 0]
    end[0, :11] = [1.0, 0, 0, 0, 0.1, 0.2, 0.5, 0.3, 3.0, 1.0, 0]
    listed = nbest_predictions([example], features, start, end, n_best=3, include_null=True)["q"]
    # The 3 best starts (paris 3, ran 2, ". " 0.4) and ends (paris 3, "." 1, ran 0.5) pair into
    # paris-paris 6, ran-paris 5, paris-. 4, ran-. 3, ran-ran 2.5, .-. 1.4; the best 3 are kept and
    # "no answer" ([CLS] 1 + 1 = 2), not among them, is added last, as run_qa.py does.
    scores = np.array([6.0, 5.0, 4.0, 2.0])
    probabilities = np.exp(scores - 6.0) / np.exp(scores - 6.0).sum()
    expected = [
        ("paris", 3.0, 3.0),
        ("ran to paris", 2.0, 3.0),
        ("paris .", 3.0, 1.0),
        ("", 1.0, 1.0),
    ]
    assert [(e["text"], e["start_logit"], e["end_logit"]) for e in listed] == expected
    np.testing.assert_allclose([e["probability"] for e in listed], probabilities, rtol=1e-6)
    # Without "no answer", and ranked on the raw scale: the same three (one window).
    raw = nbest_predictions([example], features, start, end, n_best=3, window_score="raw")["q"]
    assert [e["text"] for e in raw] == ["paris", "ran to paris", "paris ."]
    np.testing.assert_allclose(
        [e["probability"] for e in raw], probabilities[:3] / probabilities[:3].sum(), rtol=1e-6
    )
    # The null odds of null_odds.json: the null score less the best span's, 2 - 6.
    _, decoded = keras_qa.decode_answers([example], features, start, end, return_scores=True)
    assert decoded["q"]["null_odds"] == pytest.approx(-4.0)
