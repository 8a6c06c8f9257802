"""The drop-in for transformers' question-answering pipeline.

The tests at the top run everywhere. The parity tests at the bottom need transformers 4 (its last
question-answering pipeline, 4.57.1, with torch): `nox -s pipeline_parity` installs it in an
environment of its own, and `nox -s tests` runs that session too.
"""

import math

import numpy as np
import pytest

from keras_qa import load_tokenizer
from keras_qa.answering.answerer import QuestionAnswerer
from keras_qa.answering.hf_pipeline import QuestionAnsweringPipeline, parse_inputs, pipeline
from keras_qa.models.task import PADDING_LOGIT

CONTEXT = "the dog sat in london . the cat ran to paris . the big red house ."
# Scores are probabilities computed from logits that agree within 1e-4 (other batches: within 1e-6).
SCORE_TOLERANCE = {"rel": 1e-3, "abs": 1e-7}


def same_result(expected, found):
    if isinstance(expected, dict) != isinstance(found, dict):
        return False
    expected, found = ([expected], [found]) if isinstance(expected, dict) else (expected, found)
    return len(expected) == len(found) and all(
        (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        and b["score"] == pytest.approx(a["score"], **SCORE_TOLERANCE)
        for a, b in zip(expected, found)
    )


@pytest.fixture(scope="module")
def qa(tiny_trained_model):
    return pipeline("question-answering", model=tiny_trained_model)


def test_every_input_form_gives_the_same_answers(qa):
    question = "where did the cat run ?"
    expected = qa(question=question, context=CONTEXT)
    assert set(expected) == {"score", "start", "end", "answer"}
    assert CONTEXT[expected["start"] : expected["end"]] == expected["answer"]
    example = {"question": question, "context": CONTEXT}
    for result in (
        qa(question, CONTEXT),
        qa(example),
        qa([example]),  # one input in a list: one result, not a list
        qa(X=[example]),
        qa(data=example),
    ):
        assert result == expected
    other = qa(question="where did the dog sit ?", context=CONTEXT)
    batches = [
        (qa(question=[question, "where did the dog sit ?"], context=CONTEXT), [expected, other]),
        (qa(question=[question] * 2, context=[CONTEXT] * 2), [expected, expected]),
        (qa([example, example]), [expected, expected]),
        (qa(example, example), [expected, expected]),
    ]
    for found, wanted in batches:  # the same answers, scores computed in other batches
        assert len(found) == 2 and all(same_result(a, b) for a, b in zip(wanted, found))


def test_output_rules(qa):
    three = qa(question="where did the cat run ?", context=CONTEXT, top_k=3)
    assert isinstance(three, list) and len(three) == 3
    assert [a["score"] for a in three] == sorted((a["score"] for a in three), reverse=True)
    # No context tokens: what the pipeline gives, its [CLS] span with score 0.
    nothing = {"score": 0.0, "start": 0, "end": 0, "answer": ""}
    assert qa(question="where ?", context="   ") == nothing
    with_null = qa(question="where ?", context="   ", handle_impossible_answer=True, top_k=2)
    assert with_null[0]["score"] == 1.0 and with_null[1] == nothing  # P([CLS]) is 1 here
    # Only an empty string is refused: a question of spaces is asked.
    assert isinstance(qa(question="   ", context=CONTEXT), dict)


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((), {"question": "", "context": CONTEXT}, ValueError, "`question` cannot be empty"),
        ((), {"question": "q", "context": ""}, ValueError, "`context` cannot be empty"),
        (({"question": None, "context": CONTEXT},), {}, ValueError, "`question` cannot be None"),
        (({"question": "q"},), {}, KeyError, "You need to provide a dictionary with keys"),
        ((), {"question": ["a", "b"], "context": [CONTEXT]}, ValueError, "same lengths"),
        ((), {"question": "a", "context": [CONTEXT]}, ValueError, "Arguments can't be understood"),
        ((), {"top_k": 2}, ValueError, "Unknown arguments"),
        (("a question",), {}, ValueError, "argument needs to be of type"),
        ((5,), {}, ValueError, "Invalid arguments"),
    ],
)
def test_bad_inputs_raise_the_pipelines_errors(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        parse_inputs(args, kwargs)


def test_bad_parameters_raise_the_pipelines_errors(qa):
    with pytest.raises(ValueError, match=r"top_k parameter should be >= 1 \(got 0\)"):
        qa(question="q", context=CONTEXT, top_k=0)
    with pytest.raises(ValueError, match="max_answer_len parameter should be >= 1"):
        qa(question="q", context=CONTEXT, max_answer_len=0)
    with pytest.raises(ValueError, match="is larger than `max_seq_len`"):
        qa(question="q", context=CONTEXT, max_seq_len=32, doc_stride=40)
    with pytest.raises(TypeError, match="unknown parameter 'temperature'"):
        qa(question="q", context=CONTEXT, temperature=0.5)
    # Zero is not "the default" (batch_size) nor a window length that can work (max_seq_len).
    for name, value in (("max_seq_len", 0), ("batch_size", 0), ("doc_stride", -1)):
        with pytest.raises(ValueError, match=f"{name} parameter should be >="):
            qa(question="q", context=CONTEXT, **{name: value})
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        qa(question="q", context=CONTEXT, batch_size=2.0)


def test_keras_qa_names_are_aliases_and_defaults_can_be_set(qa, tiny_trained_model):
    question = "where did the cat run ?"
    assert qa(question=question, context=CONTEXT, max_answer_length=2) == qa(
        question=question, context=CONTEXT, max_answer_len=2
    )
    assert qa(question=question, context=CONTEXT, max_length=48, doc_stride=16) == qa(
        question=question, context=CONTEXT, max_seq_len=48, doc_stride=16
    )
    # max_question_len and padding are taken and ignored, as transformers does with fast tokenizers.
    assert qa(question=question, context=CONTEXT, max_question_len=1, padding="longest") == qa(
        question=question, context=CONTEXT
    )
    answers_of_two = pipeline(model=tiny_trained_model, top_k=2)(question=question, context=CONTEXT)
    assert answers_of_two == qa(question=question, context=CONTEXT, top_k=2)


class KeywordModel:
    """Start and end logits that favour chosen words."""

    input_names = ("token_ids", "segment_ids", "padding_mask")

    def __init__(self, tokenizer, words):
        vocabulary = {word: index for index, word in enumerate(tokenizer.vocabulary)}
        self.logits = {vocabulary[word]: value for word, value in words.items()}

    def predict_on_batch(self, inputs):
        logits = np.zeros(inputs["token_ids"].shape, np.float32)
        for token, value in self.logits.items():
            logits[inputs["token_ids"] == token] = value
        logits = np.where(inputs["padding_mask"] == 0, PADDING_LOGIT, logits)
        return {"start_logits": logits, "end_logits": logits}


def test_answers_of_equal_text_are_merged_with_their_scores_added(tiny_preset):
    tokenizer = load_tokenizer(tiny_preset)
    context = "paris is big . Paris is old ."
    answerer = QuestionAnswerer(KeywordModel(tokenizer, {"paris": 5.0}), tokenizer, 48, 16)
    qa = QuestionAnsweringPipeline(answerer)
    best = qa(question="where ?", context=context, top_k=2)
    # By hand: one window; a softmax over its 8 context tokens and [CLS], "paris" twice at e^5.
    p = math.exp(5) / (2 * math.exp(5) + 7)
    assert best[0] == {
        "score": pytest.approx(2 * p * p, rel=1e-5),
        "start": 0,
        "end": 5,
        "answer": "paris",
    }  # "paris" and "Paris" are one answer, first offsets kept
    assert best[1]["answer"] == "paris is big . Paris"
    assert best[1]["score"] == pytest.approx(p * p, rel=1e-5)


def test_top_k_answers_come_back_when_widening_merges_spans(tiny_trained_model):
    qa = pipeline(model=tiny_trained_model)
    answers = qa(question="where did the cat run ?", context=CONTEXT, top_k=5)
    assert len(answers) == 5 and len({a["answer"].lower() for a in answers}) == 5


# Parity with transformers' own pipeline: transformers 4 only.

transformers = pytest.importorskip("transformers")
NEEDS_TRANSFORMERS_4 = pytest.mark.skipif(
    int(transformers.__version__.split(".")[0]) >= 5,
    reason="transformers 5 has no question-answering pipeline: nox -s pipeline_parity runs these",
)
PARITY_ARCHITECTURES = ["bert", "distilbert", "roberta", "xlm-roberta", "albert", "keras-qa"]


@pytest.fixture(scope="module", params=PARITY_ARCHITECTURES)
def both_pipelines(request, tmp_path_factory):
    """transformers' pipeline and keras-qa's on the same checkpoint."""
    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip("transformers 5 has no question-answering pipeline")
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "keras-qa":  # a model trained by keras-qa, exported to transformers
        import keras_qa
        from keras_qa.checkpoints.saving import save_trained_model
        from keras_qa.export import export_model

        model, tokenizer, config = keras_qa.load_trained_model(
            request.getfixturevalue("tiny_trained_model")
        )
        # The tiny model's logits are nearly flat: its head is scaled up, as the random ones', so
        # that answers are not near ties.
        model.head.dense.kernel.assign(model.head.dense.kernel * 20.0)
        (folder / "model").mkdir()
        save_trained_model(model, tokenizer, str(folder / "model"), **config)
        folder, _ = export_model(str(folder / "model"), str(folder / "exported"), "huggingface")
    else:
        from tests.hugging_face_checkpoints import build_checkpoint

        build_checkpoint(folder, request.param)
    reference = transformers.pipeline(
        "question-answering", model=str(folder), tokenizer=str(folder)
    )
    return reference, pipeline("question-answering", model=str(folder)), request.param


def parity_cases(architecture, bundled_examples):
    """Calls over real questions: one paragraph (one window) or several (many windows), and every
    parameter. The model keras-qa trained knows only the tiny examples' words (SQuAD's would be
    [UNK], with logits tied to within rounding), so it is asked those."""
    if architecture == "keras-qa":
        from tests.conftest import tiny_squad_examples

        examples, joined = tiny_squad_examples(36, seed=5), 8
    else:
        examples, joined = bundled_examples[::61][:36], 3
    paragraphs = sorted({example["context"] for example in examples})
    cases = []
    for index, example in enumerate(examples):
        context = example["context"]
        if index % 2:
            context = " ".join(paragraphs[index : index + joined])  # several windows
        options = [
            {},
            {"top_k": 3},
            {"top_k": 5, "max_answer_len": 30},
            {"handle_impossible_answer": True, "top_k": 2},
            {"align_to_words": False, "top_k": 2},
            {"doc_stride": 32, "max_seq_len": 96},
        ][index % 6]
        cases.append(({"question": example["question"], "context": context}, options))
    return cases


@NEEDS_TRANSFORMERS_4
def test_answers_equal_transformers_pipeline(both_pipelines, bundled_examples):
    reference, ours, architecture = both_pipelines
    cases = parity_cases(architecture, bundled_examples)
    agree = [
        same_result(reference(**example, **options), ours(**example, **options))
        for example, options in cases
    ]
    rate = sum(agree) / len(agree)
    print(f"{architecture}: {sum(agree)} of {len(agree)} calls agree ({rate:.1%})")
    assert rate >= 0.95, f"{architecture}: {rate:.1%} agree"


@NEEDS_TRANSFORMERS_4
def test_input_forms_and_batches_equal_transformers_pipeline(both_pipelines, bundled_examples):
    reference, ours, architecture = both_pipelines
    (first, _), (second, _) = parity_cases(architecture, bundled_examples)[:2]
    calls = [
        ((first["question"], first["context"]), {}),
        ((first,), {}),
        (([first],), {}),
        (([first, second],), {"top_k": 2}),
        ((), {"question": [first["question"], second["question"]], "context": first["context"]}),
        (
            (),
            {
                "question": [first["question"], second["question"]],
                "context": [first["context"], second["context"]],
                "batch_size": 4,
            },
        ),
        ((), {"question": "   ", "context": first["context"]}),
    ]
    for args, kwargs in calls:
        expected, found = reference(*args, **kwargs), ours(*args, **kwargs)
        if isinstance(expected, list) and expected and not isinstance(expected[0], dict):
            assert all(same_result(a, b) for a, b in zip(expected, found)), (args, kwargs)
        else:
            assert same_result(expected, found), (args, kwargs)


@NEEDS_TRANSFORMERS_4
@pytest.mark.parametrize(
    "kwargs",
    [
        {"question": "", "context": "text"},
        {"question": "q", "context": ""},
        {"question": ["a", "b"], "context": ["text"]},
        {"question": None, "context": "text"},
        {"question": "q", "context": "text", "top_k": 0},
        {"question": "q", "context": "text", "max_answer_len": 0},
        {"data": {"question": "q"}},
    ],
)
def test_errors_equal_transformers_pipeline(both_pipelines, kwargs):
    reference, ours, _ = both_pipelines
    with pytest.raises(Exception) as expected:
        reference(**kwargs)
    with pytest.raises(type(expected.value)):
        ours(**kwargs)


def test_the_pipeline_answers_with_an_int8_copy(tiny_trained_model):
    pytest.importorskip("onnxruntime")
    qa = pipeline("question-answering", model=tiny_trained_model, quantize="int8")
    assert qa.answerer.model.precision == "int8"
    context = "the red mat . the cat ran to london . the dog sat in paris ."
    answers = qa(question="where did the cat run ?", context=context, top_k=2, max_seq_len=48)
    assert len(answers) == 2
    assert all(context[a["start"] : a["end"]] == a["answer"] for a in answers)
    with pytest.raises(ValueError, match="more than the model's 128 positions"):
        qa(question="where did the cat run ?", context=context, max_seq_len=129)
