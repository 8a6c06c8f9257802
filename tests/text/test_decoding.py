import collections

import numpy as np
import pytest

import keras_qa
from tests.conftest import make_example


def utils_qa_reference(examples, features, start_logits, end_logits, n_best, max_answer_length):
    """Hugging Face utils_qa.postprocess_qa_predictions (v1), restricted to context tokens."""
    by_example = collections.defaultdict(list)
    for row, index in enumerate(features["example_index"]):
        by_example[index].append(row)
    answers = {}
    for index, example in enumerate(examples):
        best = (-np.inf, "")
        for row in by_example[index]:
            offsets = features["offsets"][row]
            context = offsets[:, 0] >= 0
            starts = np.where(context, start_logits[row], -np.inf)
            ends = np.where(context, end_logits[row], -np.inf)
            for s in np.argsort(starts)[::-1][:n_best]:
                for e in np.argsort(ends)[::-1][:n_best]:
                    if not (context[s] and context[e]) or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = start_logits[row, s] + end_logits[row, e]
                    if score > best[0]:
                        best = (score, example["context"][offsets[s, 0] : offsets[e, 1]])
        answers[example["id"]] = best[1]
    return answers


def test_random_logits_decode_like_hugging_face_utils_qa(dev_sample):
    examples, features = dev_sample
    rng = np.random.default_rng(0)
    shape = features["token_ids"].shape
    start_logits = rng.normal(size=shape).astype(np.float32)
    end_logits = rng.normal(size=shape).astype(np.float32)
    for n_best, max_answer_length in [(20, 30), (5, 4)]:
        ours = keras_qa.decode_answers(
            examples,
            features,
            start_logits,
            end_logits,
            n_best,
            max_answer_length,
            window_score="raw",  # utils_qa.py's rule
        )
        assert ours == utils_qa_reference(
            examples, features, start_logits, end_logits, n_best, max_answer_length
        )


def test_windows_paired_in_chunks_decode_as_all_at_once(dev_sample, monkeypatch):
    from keras_qa.text import decoding as postprocess

    examples, features = dev_sample
    rng = np.random.default_rng(1)
    shape = features["token_ids"].shape
    logits = [rng.normal(size=shape).astype(np.float32) for _ in range(2)]
    whole = postprocess.decode_spans(features, *logits, len(examples), top_k=3)
    # Chunks of 7 windows cut through examples whose windows span two chunks.
    assert len(features["example_index"]) > 7
    monkeypatch.setattr(postprocess, "WINDOW_CHUNK", 7)
    chunked = postprocess.decode_spans(features, *logits, len(examples), top_k=3)
    assert whole.keys() == chunked.keys()
    for name in whole:
        np.testing.assert_array_equal(chunked[name], whole[name])


def test_label_logits_decode_to_the_ground_truth(dev_sample):
    examples, features = dev_sample
    windows = np.arange(len(features["example_index"]))
    start_logits = np.zeros(features["token_ids"].shape, np.float32)
    end_logits = np.zeros_like(start_logits)
    start_logits[windows, features["start_positions"]] = 10
    end_logits[windows, features["end_positions"]] = 10
    answers = keras_qa.decode_answers(examples, features, start_logits, end_logits)
    # Labels sit on whole tokens, so a few answers inside a token ("1990" of "1990s") differ.
    score = keras_qa.squad_score(answers, examples)
    assert score["f1"] > 99.0


def one_window():
    context = "alpha beta gamma delta epsilon zeta eta theta"
    example = make_example(context, "which?")
    return example


def features_of(example, tokenizer, max_length=64, doc_stride=16):
    return keras_qa.prepare_eval_features([example], tokenizer, max_length, doc_stride)


def context_positions(features, row=0):
    return np.flatnonzero(features["offsets"][row, :, 0] >= 0)


def test_spans_end_after_they_start_and_stay_inside_the_context(minilm_tokenizer):
    example = one_window()
    features = features_of(example, minilm_tokenizer)
    positions = context_positions(features)
    start_logits = np.zeros(features["token_ids"].shape, np.float32)
    end_logits = np.zeros_like(start_logits)
    start_logits[0, 1:4] = 100  # question tokens: never part of an answer
    end_logits[0, 1:4] = 100
    start_logits[0, positions[5]] = 9  # the best start comes after the best end
    end_logits[0, positions[1]] = 9
    start_logits[0, positions[2]] = 5
    end_logits[0, positions[3]] = 5
    answers = keras_qa.decode_answers([example], features, start_logits, end_logits)
    assert answers == {"q0": "gamma delta"}


def test_max_answer_length_caps_spans(minilm_tokenizer):
    example = one_window()
    features = features_of(example, minilm_tokenizer)
    positions = context_positions(features)
    start_logits = np.zeros(features["token_ids"].shape, np.float32)
    end_logits = np.zeros_like(start_logits)
    start_logits[0, positions[0]] = 10
    end_logits[0, positions[7]] = 10
    end_logits[0, positions[1]] = 1
    assert keras_qa.decode_answers(
        [example], features, start_logits, end_logits, max_answer_length=8
    ) == {"q0": example["context"]}
    assert keras_qa.decode_answers(
        [example], features, start_logits, end_logits, max_answer_length=7
    ) == {"q0": "alpha beta"}


def long_example(tokenizer):
    context = " ".join(f"word{i}" for i in range(60))
    example = make_example(context, "which?")
    features = features_of(example, tokenizer, max_length=32, doc_stride=8)
    assert len(features["example_index"]) > 3
    return example, features


def test_best_span_over_all_windows_wins(minilm_tokenizer):
    example, features = long_example(minilm_tokenizer)
    start_logits = np.zeros(features["token_ids"].shape, np.float32)
    end_logits = np.zeros_like(start_logits)
    last = len(features["example_index"]) - 1
    positions = context_positions(features, last)
    start_logits[last, positions[2]] = 3
    end_logits[last, positions[3]] = 3
    start_logits[0, context_positions(features, 0)[0]] = 2
    end_logits[0, context_positions(features, 0)[0]] = 2
    offsets = features["offsets"][last]
    expected = example["context"][offsets[positions[2], 0] : offsets[positions[3], 1]]
    assert keras_qa.decode_answers([example], features, start_logits, end_logits) == {
        "q0": expected
    }


def test_squad_v2_null_answer_uses_the_smallest_cls_score(minilm_tokenizer):
    """With raw scores (utils_qa.py's rule) the null score is the smallest [CLS] score."""
    example, features = long_example(minilm_tokenizer)
    windows = len(features["example_index"])
    start_logits = np.zeros(features["token_ids"].shape, np.float32)
    end_logits = np.zeros_like(start_logits)
    positions = context_positions(features, 1)
    start_logits[1, positions[0]] = end_logits[1, positions[0]] = 2.0  # best span: 4.0
    start_logits[:, 0] = end_logits[:, 0] = np.linspace(3.0, 5.0, windows)  # null: min 6.0
    answers, scores = keras_qa.decode_answers(
        [example],
        features,
        start_logits,
        end_logits,
        null_threshold=0.0,
        return_scores=True,
        window_score="raw",
    )
    assert answers == {"q0": ""}
    assert scores["q0"]["null_score"] == pytest.approx(6.0)
    assert scores["q0"]["score"] == pytest.approx(4.0)
    raw = {"window_score": "raw"}
    answer = keras_qa.decode_answers(
        [example], features, start_logits, end_logits, null_threshold=2.5, **raw
    )
    assert answer["q0"] != ""
    assert keras_qa.decode_answers([example], features, start_logits, end_logits, **raw)["q0"] != ""
    # Relative to its own window's [CLS] (the default), the span scores 4 less that window's [CLS]
    # score (over 6), so under a threshold of 0 the window's "not here" wins.
    relative = keras_qa.decode_answers(
        [example], features, start_logits, end_logits, null_threshold=0.0, return_scores=True
    )
    assert relative[0] == {"q0": ""}
    assert relative[1]["q0"]["null_score"] == 0.0


def test_top_k_spans_are_sorted_and_distinct(minilm_tokenizer):
    example, features = long_example(minilm_tokenizer)
    rng = np.random.default_rng(1)
    start_logits = rng.normal(size=features["token_ids"].shape).astype(np.float32)
    end_logits = rng.normal(size=features["token_ids"].shape).astype(np.float32)
    spans = keras_qa.decode_spans(features, start_logits, end_logits, top_k=10)
    scores = spans["score"][0]
    assert np.all(np.diff(scores) <= 0) and np.isfinite(scores).all()
    pairs = list(zip(spans["start_char"][0], spans["end_char"][0]))
    assert len(set(pairs)) == 10
    best = keras_qa.decode_spans(features, start_logits, end_logits, top_k=1)
    assert best["score"][0, 0] == scores[0]


def test_training_features_are_rejected(minilm_tokenizer):
    example = one_window()
    features = keras_qa.prepare_train_features([example], minilm_tokenizer, 64, 16)
    logits = np.zeros(features["token_ids"].shape, np.float32)
    with pytest.raises(ValueError, match="prepare_eval_features"):
        keras_qa.decode_answers([example], features, logits, logits)


def test_window_scores_let_the_window_that_does_not_say_not_here_win():
    """Two windows of one context: the first scores its span higher, but says "not here" louder."""
    context = "aaa bbb ccc ddd"
    example = {
        "id": "q",
        "context": context,
        "question": "?",
        "answers": {"text": [], "answer_start": []},
    }
    outside = [-1, -1]
    features = {
        "offsets": np.array(
            [[outside, [0, 3], [4, 7], outside], [outside, [8, 11], [12, 15], outside]]
        ),
        "example_index": np.array([0, 0]),
    }
    start = np.array([[9.0, 5.0, 0.0, -1e9], [0.0, 4.0, 0.0, -1e9]])
    end = start.copy()
    answers = {
        method: keras_qa.decode_answers([example], features, start, end, window_score=method)["q"]
        for method in ("raw", "null_relative", "window_softmax")
    }
    assert answers == {"raw": "aaa", "null_relative": "ccc", "window_softmax": "ccc"}
    with pytest.raises(ValueError, match="window_score must be one of"):
        keras_qa.decode_answers([example], features, start, end, window_score="max")
