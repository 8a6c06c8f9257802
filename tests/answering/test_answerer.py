import math
import os
import tracemalloc

import numpy as np
import pytest

from keras_qa import load_tokenizer
from keras_qa.answering.answerer import QuestionAnswerer
from keras_qa.models.batching import predict_logits
from keras_qa.models.task import PADDING_LOGIT
from keras_qa.text.calibration import Calibration
from keras_qa.text.features import prepare_eval_features
from tests.conftest import make_example


class KeywordModel:
    """Start and end logits that favour chosen words: a model whose best answers are known."""

    input_names = ("token_ids", "segment_ids", "padding_mask")

    def __init__(self, tokenizer, start_words, end_words):
        vocabulary = {word: index for index, word in enumerate(tokenizer.vocabulary)}
        self.start = {vocabulary[w]: v for w, v in start_words.items()}
        self.end = {vocabulary[w]: v for w, v in end_words.items()}
        self.calls = 0

    def predict_on_batch(self, inputs):
        self.calls += 1
        ids = inputs["token_ids"]
        start = np.zeros(ids.shape, np.float32)
        end = np.zeros(ids.shape, np.float32)
        for token, value in self.start.items():
            start[ids == token] = value
        for token, value in self.end.items():
            end[ids == token] = value
        padding = inputs["padding_mask"] == 0
        return {
            "start_logits": np.where(padding, PADDING_LOGIT, start),
            "end_logits": np.where(padding, PADDING_LOGIT, end),
        }


@pytest.fixture(scope="module")
def tokenizer(tiny_preset):
    return load_tokenizer(tiny_preset)


def keyword_answerer(tokenizer, start_words, end_words, **kwargs):
    model = KeywordModel(tokenizer, start_words, end_words)
    return QuestionAnswerer(model, tokenizer, max_length=48, doc_stride=16, **kwargs)


def softmax(row, allowed):
    top = max(row[i] for i in allowed)
    total = sum(math.exp(row[i] - top) for i in allowed)
    return {i: math.exp(row[i] - top) / total for i in allowed}


def reference_answer(answerer, question, context, max_answer_length=30):
    """Hugging Face's pipeline algorithm, window by window, in plain Python loops."""
    example = {"id": "0", "question": question, "context": context, "answers": {"text": []}}
    features = prepare_eval_features([example], answerer.tokenizer, 48, 16)
    starts, ends = predict_logits(answerer.model, features, 8, 16)
    best = (-1.0, None)
    for window in range(len(starts)):
        allowed = [i for i in range(48) if features["offsets"][window][i][0] >= 0 or i == 0]
        p_start, p_end = softmax(starts[window], allowed), softmax(ends[window], allowed)
        for s in allowed[1:]:
            for e in allowed[1:]:
                if s <= e < s + max_answer_length and p_start[s] * p_end[e] > best[0]:
                    offsets = features["offsets"][window]
                    best = (p_start[s] * p_end[e], (int(offsets[s][0]), int(offsets[e][1])))
    return best


def test_offsets_map_back_to_the_exact_substring_and_the_score_is_a_probability(tokenizer):
    answerer = keyword_answerer(tokenizer, {"paris": 6.0}, {"paris": 6.0})
    context = "The  cat ran to   Paris, the dog sat in London."
    result = answerer("Where did the cat run?", context)
    assert set(result) == {"answer", "score", "start", "end"}
    assert result["answer"] == "Paris" == context[result["start"] : result["end"]]
    score, (start, end) = reference_answer(answerer, "Where did the cat run?", context)
    assert (result["start"], result["end"]) == (start, end)
    assert result["score"] == pytest.approx(score, rel=1e-5)
    assert 0 < result["score"] < 1


def test_a_long_context_of_20_windows_returns_the_best_span(tokenizer):
    filler = "the big red house is in the city . " * 40
    context = filler + "the cat ran to paris . " + filler
    answerer = keyword_answerer(tokenizer, {"paris": 5.0, "london": 2.0}, {"paris": 5.0})
    example = {"id": "0", "question": "where did the cat run?", "context": context}
    windows = prepare_eval_features([example | {"answers": {"text": []}}], tokenizer, 48, 16)
    assert len(windows["token_ids"]) >= 20
    result = answerer("where did the cat run?", context, window_score="window_softmax")
    assert result["answer"] == "paris"
    assert context[result["start"] : result["end"]] == "paris"
    assert result["start"] == context.index("paris")
    assert answerer("where did the cat run?", context)["start"] == result["start"]
    score, span = reference_answer(answerer, "where did the cat run?", context)
    assert (result["start"], result["end"]) == span
    assert result["score"] == pytest.approx(score, rel=1e-5)


class NotHereModel(KeywordModel):
    """A `KeywordModel` whose [CLS] ("not here") logits are high in windows holding a chosen word."""

    def __init__(self, tokenizer, start_words, end_words, not_here_word, not_here_logit):
        super().__init__(tokenizer, start_words, end_words)
        self.not_here_token = tokenizer.vocabulary.index(not_here_word)
        self.not_here_logit = not_here_logit

    def predict_on_batch(self, inputs):
        logits = super().predict_on_batch(inputs)
        flagged = (inputs["token_ids"] == self.not_here_token).any(axis=1)
        for name in ("start_logits", "end_logits"):
            logits[name][flagged, 0] = self.not_here_logit
        return logits


def test_by_default_a_span_must_beat_its_own_windows_not_here(tokenizer):
    # "london" has the highest logits, but its window says "not here" more strongly still; "paris",
    # in a window that holds no "dog", wins. Its score stays its probability in its own window.
    context = "the dog sat in london . " + "the big red house . " * 12 + "the cat ran to paris ."
    keywords = {"london": 6.0, "paris": 4.0}
    model = NotHereModel(tokenizer, keywords, keywords, not_here_word="dog", not_here_logit=8.0)
    answerer = QuestionAnswerer(model, tokenizer, max_length=48, doc_stride=16)
    result = answerer("where did the cat run?", context)
    assert result["answer"] == "paris" and result["start"] == context.index("paris")
    example = make_example(context, "where did the cat run?")
    features = prepare_eval_features([example], tokenizer, 48, 16)
    start, end = predict_logits(model, features)
    window = max(w for w in range(len(start)) if (features["offsets"][w, :, 0] >= 0).any())
    allowed = [i for i in range(48) if features["offsets"][window][i][0] >= 0 or i == 0]
    token = next(i for i in allowed[1:] if features["offsets"][window][i][0] == result["start"])
    expected = softmax(start[window], allowed)[token] * softmax(end[window], allowed)[token]
    assert result["score"] == pytest.approx(expected, rel=1e-5)
    # The raw logits and the pipeline's rule both keep their own answers.
    assert answerer("where did the cat run?", context, window_score="raw")["answer"] == "london"
    pipeline_rule = answerer("where did the cat run?", context, window_score="window_softmax")
    assert pipeline_rule["answer"] == "paris"
    # On the same scale "no answer" (0: [CLS] less itself) beats a span its window says is not here.
    null = answerer("where?", "the dog sat in london .", top_k=2, handle_impossible_answer=True)
    assert [r["answer"] for r in null] == ["", "london"]
    with pytest.raises(ValueError, match="window_score must be one of"):
        answerer("where?", context, window_score="best")


def test_read_finds_the_answer_in_the_seventh_of_ten_documents(tokenizer):
    keywords = {"london": 6.0, "paris": 4.0}
    model = NotHereModel(tokenizer, keywords, keywords, not_here_word="dog", not_here_logit=8.0)
    answerer = QuestionAnswerer(model, tokenizer, max_length=48, doc_stride=16)
    documents = [f"the dog sat in london . the {'big ' * i}house ." for i in range(10)]
    documents[6] = "the big red house . the cat ran to paris ."
    answers = answerer.read("where did the cat run?", documents, top_k=3)
    assert model.calls == 1  # the windows of all documents share batches
    best = answers[0]
    assert best["document"] == 6 and best["answer"] == "paris"
    assert best["start"] == documents[6].index("paris") and best["end"] == best["start"] + 5
    scores = [answer["score"] for answer in answers]
    assert scores == sorted(scores, reverse=True) and all(0 <= x <= 1 for x in scores)
    # A london span lost to its window's "not here": log-odds 6 + 6 - 16 < 0, a score under 1/2.
    assert best["score"] > 0.5
    assert all(a["score"] < 0.5 for a in answers if a["answer"] == "london")
    assert answerer.read("where did the cat run?", documents, top_k=3, score_threshold=0.5) == [
        a for a in answers if a["score"] >= 0.5
    ]


def test_a_calibrated_answerer_scores_each_answer_with_its_calibrated_log_odds(tokenizer):
    keywords = {"london": 6.0, "paris": 4.0}
    model = NotHereModel(tokenizer, keywords, keywords, not_here_word="dog", not_here_logit=8.0)
    calibration = Calibration(weight=0.4, bias=-1.0)
    plain = QuestionAnswerer(model, tokenizer, max_length=48, doc_stride=16)
    calibrated = QuestionAnswerer(
        model, tokenizer, max_length=48, doc_stride=16, calibration=calibration
    )
    documents = [f"the dog sat in london . the {'big ' * i}house ." for i in range(4)]
    documents[2] = "the big red house . the cat ran to paris ."
    # read: the same answers in the same order, each scored sigmoid(0.4 * log-odds - 1).
    before = plain.read("where did the cat run?", documents, top_k=4)
    after = calibrated.read("where did the cat run?", documents, top_k=4)
    assert [(a["answer"], a["document"]) for a in after] == [
        (a["answer"], a["document"]) for a in before
    ]
    for old, new in zip(before, after):
        log_odds = math.log(old["score"] / (1 - old["score"]))
        assert new["score"] == pytest.approx(calibration.probability(log_odds), rel=1e-4)
    # paris: 4 + 4 less its window's [CLS] logits, 0 + 0.
    assert after[0]["score"] == pytest.approx(calibration.probability(8.0), rel=1e-5)
    # One question: the same answers, ranked alike, with the calibrated score of their log-odds,
    # whichever way windows are ranked.
    context = "the dog sat in london . " + "the big red house . " * 12 + "the cat ran to paris ."
    for window_score in ("null_relative", "window_softmax"):
        answers = calibrated("where did the cat run?", context, top_k=2, window_score=window_score)
        reference = plain("where did the cat run?", context, top_k=2, window_score=window_score)
        assert [a["answer"] for a in answers] == [a["answer"] for a in reference]
        assert answers[0]["answer"] == "paris"
        assert answers[0]["score"] == pytest.approx(calibration.probability(8.0), rel=1e-5)


@pytest.mark.parametrize(
    "documents, error, message",
    [
        ([], ValueError, "no documents"),
        (["a", " "], ValueError, "document 1 is empty"),
        ("a text", TypeError, "list of strings"),
        (["a", 3], TypeError, "document 1 must be"),
    ],
)
def test_read_refuses_bad_documents(tokenizer, documents, error, message):
    answerer = keyword_answerer(tokenizer, {"paris": 1.0}, {"paris": 1.0})
    with pytest.raises(error, match=message):
        answerer.read("where?", documents)


def test_top_k_answers_are_sorted_by_score_and_never_end_before_they_start(tokenizer):
    context = "paris is the capital of france . london is the capital of england ."
    answerer = keyword_answerer(
        tokenizer, {"paris": 4.0, "london": 3.0, "france": 1.0}, {"france": 3.0, "england": 2.5}
    )
    results = answerer("what is the capital?", context, top_k=5)
    assert isinstance(results, list) and len(results) == 5
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert len({(r["start"], r["end"]) for r in results}) == 5
    for result in results:
        assert 0 <= result["start"] < result["end"] <= len(context)
        assert result["answer"] == context[result["start"] : result["end"]]
    assert results[0]["answer"] == "paris is the capital of france"
    assert answerer("what is the capital?", context) == results[0]
    short = answerer("what is the capital?", context, top_k=5, max_answer_length=3)
    assert all(len(r["answer"].split()) <= 3 for r in short)


def test_a_huge_top_k_returns_every_span_in_bounded_memory(tokenizer):
    context = "paris is the capital of france . london is the capital of england ."
    answerer = keyword_answerer(tokenizer, {"paris": 4.0}, {"france": 3.0})
    every_span = answerer("what is the capital?", context, top_k=100_000, align_to_words=False)
    tracemalloc.start()
    try:
        results = answerer("what is the capital?", context, top_k=10**8, align_to_words=False)
        answers = answerer.read("what is the capital?", [context, context], top_k=10**8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    # Every span of at most 30 tokens inside the context's 14 tokens, once each, best first.
    tokens = 14
    assert len(results) == len(every_span) == sum(min(30, tokens - i) for i in range(tokens))
    assert results[0]["answer"] == "paris is the capital of france"
    assert len(answers) == 2 * len(results) and answers[0]["answer"] == results[0]["answer"]


def test_a_batch_equals_one_by_one_and_shares_model_calls(tokenizer):
    answerer = keyword_answerer(
        tokenizer, {"paris": 5.0, "london": 4.0}, {"paris": 5.0, "london": 4.0}
    )
    questions = ["where did the cat run?", "who ran?", "where is the dog?"]
    contexts = [
        "the cat ran to paris .",
        "the dog ran to london . " * 12,
        "the dog sat in london , the cat sat in paris .",
    ]
    one_by_one = [answerer(q, c, top_k=2) for q, c in zip(questions, contexts)]
    calls = answerer.model.calls
    batched = answerer(questions, contexts, top_k=2)
    assert batched == one_by_one
    assert answerer.model.calls - calls < calls
    shared = answerer(questions, contexts[0])
    assert [r["answer"] for r in shared] == ["paris"] * 3


def test_unicode_and_emoji_contexts_keep_character_offsets(tokenizer):
    answerer = keyword_answerer(tokenizer, {"paris": 5.0}, {"paris": 5.0})
    context = "Le 🐈 café — Zoë ran to PARIS 🗼 then home. 東京"
    result = answerer("where?", context)
    assert result["answer"] == "PARIS"
    assert context[result["start"] : result["end"]] == "PARIS"


def test_the_impossible_answer_competes_when_asked_for(tokenizer):
    answerer = keyword_answerer(
        tokenizer, {"[CLS]": 9.0, "paris": 1.0}, {"[CLS]": 9.0, "paris": 1.0}
    )
    context = "the cat ran to paris ."
    plain = answerer("where?", context)
    assert plain["answer"] == "paris"
    null = answerer("where?", context, handle_impossible_answer=True)
    assert null["answer"] == "" and (null["start"], null["end"]) == (0, 0)
    assert null["score"] > plain["score"]
    both = answerer("where?", context, top_k=2, handle_impossible_answer=True)
    assert [r["answer"] for r in both] == ["", "paris"]


@pytest.mark.parametrize(
    "question, context, error, message",
    [
        ("", "some text", ValueError, "question is empty"),
        ("where?", "   ", ValueError, "context is empty"),
        (["a", " "], "text", ValueError, "question 1 is empty"),
        (["a", "b"], ["text"], ValueError, "2 questions but 1 contexts"),
        ([], "text", ValueError, "no questions"),
        (3, "text", TypeError, "question must be a string"),
        ("where?", None, TypeError, "context must be a string"),
        (["a", 5], "text", TypeError, "question 1 must be a string"),
    ],
)
def test_bad_inputs_raise_clear_errors(tokenizer, question, context, error, message):
    answerer = keyword_answerer(tokenizer, {"paris": 1.0}, {"paris": 1.0})
    with pytest.raises(error, match=message):
        answerer(question, context)


def test_bad_options_raise_clear_errors(tokenizer):
    answerer = keyword_answerer(tokenizer, {"paris": 1.0}, {"paris": 1.0})
    with pytest.raises(ValueError, match="top_k"):
        answerer("where?", "paris", top_k=0)
    with pytest.raises(ValueError, match="max_answer_length"):
        answerer("where?", "paris", max_answer_length=0)


def test_from_pretrained_answers_like_the_trained_model(tiny_trained_model):
    answerer = QuestionAnswerer.from_pretrained(tiny_trained_model)
    # keras_qa.json holds the answering stride: half as much again as the training windows' 16.
    assert answerer.max_length == 48 and answerer.doc_stride == 24
    context = "the red mat . the cat ran to london . the dog sat in paris ."
    result = answerer("where did the cat run ?", context)
    assert result["answer"] == context[result["start"] : result["end"]]
    assert result["answer"] == "london"
    batch = answerer(["where did the cat run ?", "where did the dog run ?"], [context, context])
    assert batch[0] == pytest.approx(result)  # float32 sums differ with the batch shape


def test_spans_inside_a_word_widen_to_the_whole_word_unless_asked_not_to():
    from keras_qa.text.tokenizer import QATokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "ran", "to", "lon", "##don"]
    vocabulary += ["##er", "where", "?", "."]
    tokenizer = QATokenizer(vocabulary, lowercase=True)
    assert tokenizer.tokenize("London") == ["lon", "##don"]
    context = "the cat ran to London ."
    answerer = keyword_answerer(tokenizer, {"##don": 5.0}, {"##don": 5.0})
    aligned = answerer("where?", context)
    assert aligned["answer"] == "London" and aligned["start"] == context.index("London")
    assert answerer("where?", context, align_to_words=False)["answer"] == "don"
    answerer = keyword_answerer(tokenizer, {"ran": 5.0}, {"lon": 5.0})
    assert answerer("where?", "the cat ran to Londoner .")["answer"] == "ran to Londoner"
    # Spans that widen to the same words count once.
    answerer = keyword_answerer(tokenizer, {"lon": 5.0, "##don": 4.0}, {"##don": 5.0, "lon": 4.0})
    answers = answerer("where?", context, top_k=3)
    assert [a["answer"] for a in answers].count("London") == 1


def test_top_k_distinct_answers_come_back_when_widening_merges_the_best_spans():
    from keras_qa.text.tokenizer import QATokenizer

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "ran", "to", "lon", "##don"]
    vocabulary += ["##der", "##ry", "where", "?", "."]
    tokenizer = QATokenizer(vocabulary, lowercase=True)
    context = "the cat ran to Londonderry ."
    # The ten best spans all lie inside "Londonderry" and widen to it; the next ones do not.
    pieces = {"lon": 9.0, "##don": 9.0, "##der": 9.0, "##ry": 9.0}
    answerer = keyword_answerer(tokenizer, {**pieces, "cat": 2.0}, {**pieces, "ran": 1.0})
    answers = answerer("where?", context, top_k=3)
    assert len(answers) == 3 and answers[0]["answer"] == "Londonderry"
    assert len({(a["start"], a["end"]) for a in answers}) == 3
    assert all(context[a["start"] : a["end"]] == a["answer"] for a in answers)
    assert answers[0]["score"] >= answers[1]["score"] >= answers[2]["score"]
    # Fewer exist than asked for: all of them, once each.
    everything = answerer("where?", "Londonderry", top_k=5)
    assert [a["answer"] for a in everything] == ["Londonderry"]


def test_the_no_answer_threshold_decides_when_no_answer_may_compete(tokenizer):
    context = "the cat ran to paris ."
    # "paris" beats the window's "not here" by 1 + 1 = 2 (null odds -2).
    answerer = keyword_answerer(tokenizer, {"paris": 1.0}, {"paris": 1.0})
    assert answerer("where?", context, handle_impossible_answer=True)["answer"] == "paris"
    for threshold, expected in ((-1.5, "paris"), (-2.5, "")):
        answerer.null_threshold = threshold
        assert answerer("where?", context, handle_impossible_answer=True)["answer"] == expected
        assert answerer("where?", context)["answer"] == "paris"  # only when asked for


def test_numbers_that_cannot_work_are_refused_not_taken_as_defaults(tokenizer):
    model = KeywordModel(tokenizer, {"paris": 1.0}, {"paris": 1.0})
    for option in ({"batch_size": 0}, {"max_length": 0}, {"doc_stride": -1}, {"batch_size": 2.5}):
        with pytest.raises(ValueError, match=f"{next(iter(option))} must be an integer"):
            QuestionAnswerer(model, tokenizer, **{"max_length": 48, "doc_stride": 16, **option})
    with pytest.raises(ValueError, match="null_threshold must be a finite number"):
        QuestionAnswerer(model, tokenizer, max_length=48, doc_stride=16, null_threshold=math.nan)
    answerer = QuestionAnswerer(model, tokenizer, max_length=48, doc_stride=16)
    for threshold in (math.nan, math.inf, "0.5"):
        with pytest.raises(ValueError, match="score_threshold must be a finite number"):
            answerer.read("where?", ["paris is big ."], score_threshold=threshold)
    assert answerer.read("where?", ["paris is big ."], score_threshold=0.0)


def test_an_int8_answerer_gives_the_float_answers(tiny_trained_model, tiny_data_file):
    pytest.importorskip("onnxruntime")
    from keras_qa import load_examples

    examples = load_examples(tiny_data_file)[:16]
    questions = [example["question"] for example in examples]
    contexts = [example["context"] for example in examples]
    float_answers = QuestionAnswerer.from_pretrained(tiny_trained_model)(questions, contexts)
    int8 = QuestionAnswerer.from_pretrained(tiny_trained_model, quantize="int8")
    int8_answers = int8(questions, contexts)
    same = [a["answer"] == b["answer"] for a, b in zip(float_answers, int8_answers)]
    assert sum(same) >= 0.9 * len(same)
    for found, context in zip(int8_answers, contexts):
        assert context[found["start"] : found["end"]] == found["answer"]
        assert 0 < found["score"] <= 1


@pytest.mark.parametrize("quantize", ["int4", "INT8", True])
def test_quantize_other_than_int8_is_refused(tiny_trained_model, quantize):
    with pytest.raises(ValueError, match="quantize must be None or one of"):
        QuestionAnswerer.from_pretrained(tiny_trained_model, quantize=quantize)


def test_a_damaged_int8_file_in_the_cache_is_made_again(tiny_trained_model, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("KERAS_QA_CACHE", str(tmp_path))
    first = QuestionAnswerer.from_pretrained(tiny_trained_model, quantize="int8")
    path = first.model.path
    with open(path, "wb") as file:
        file.write(b"damaged")
    again = QuestionAnswerer.from_pretrained(tiny_trained_model, quantize="int8")
    assert again.model.path == path and os.path.getsize(path) > 1000
    context = "the red mat . the cat ran to london ."
    assert again("where did the cat run ?", context) == first("where did the cat run ?", context)
