import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

import keras_qa
from keras_qa.text.tokenizer import QATokenizer
from tests.conftest import make_example


def keras_io_reference(examples, max_length, doc_stride):
    """The keras.io example's featurisation: Hugging Face's fast tokenizer plus its Python loop."""
    tokenizer = Tokenizer.from_file(os.path.join(keras_qa.minilm_path(), "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, stride=doc_stride, strategy="only_second")
    rows = []
    for index, example in enumerate(examples):
        encoding = tokenizer.encode(example["question"].lstrip(), example["context"])
        for window in [encoding, *encoding.overflowing]:
            sequence_ids, offsets = window.sequence_ids, window.offsets
            start_char = example["answers"]["answer_start"][0]
            end_char = start_char + len(example["answers"]["text"][0])
            first = sequence_ids.index(1)
            last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
                start = end = 0
            else:
                start = first
                while start <= last and offsets[start][0] <= start_char:
                    start += 1
                end = last
                while offsets[end][1] >= end_char:
                    end -= 1
                start, end = start - 1, end + 1
            rows.append((index, window.ids, window.type_ids, start, end))
    return rows


def active(features, row, name="token_ids"):
    return features[name][row][: features["padding_mask"][row].sum()].tolist()


@pytest.mark.parametrize("max_length, doc_stride", [(384, 128), (96, 32)])
def test_windows_and_labels_equal_the_keras_io_example(
    minilm_tokenizer, bundled_examples, max_length, doc_stride
):
    examples = bundled_examples[::40]
    features = keras_qa.prepare_train_features(examples, minilm_tokenizer, max_length, doc_stride)
    reference = keras_io_reference(examples, max_length, doc_stride)
    assert len(reference) == len(features["token_ids"])
    assert len(reference) > len(examples)  # Some contexts need several windows.
    for row, (index, ids, type_ids, start, end) in enumerate(reference):
        assert features["example_index"][row] == index
        assert active(features, row) == ids
        assert active(features, row, "segment_ids") == type_ids
        assert (features["start_positions"][row], features["end_positions"][row]) == (start, end)


def test_features_are_padded_numpy_arrays(minilm_tokenizer, bundled_examples):
    features = keras_qa.prepare_eval_features(bundled_examples[:20], minilm_tokenizer, 128, 32)
    windows = len(features["example_index"])
    for name in ("token_ids", "segment_ids", "padding_mask"):
        assert features[name].shape == (windows, 128) and features[name].dtype == np.int32
    assert features["offsets"].shape == (windows, 128, 2)
    pad = features["padding_mask"] == 0
    assert (features["token_ids"][pad] == minilm_tokenizer.pad_token_id).all()
    # Offsets are -1 for [CLS], the question, [SEP] and padding, and real characters elsewhere.
    outside = features["offsets"][:, :, 0] < 0
    assert (features["segment_ids"][~outside] == 1).all()
    assert outside[:, 0].all() and outside[pad].all()


def numbered_context(count):
    words = [f"w{i}" for i in range(count)]
    return " ".join(words), words


def tiny_tokenizer(extra=()):
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "where", "?", "."]
    vocabulary += [f"w{i}" for i in range(2000)] + list(extra)
    return QATokenizer(vocabulary, lowercase=True)


def decode_label(example, features, row):
    start, end = features["start_positions"][row], features["end_positions"][row]
    offsets = features["offsets"][row]
    return example["context"][offsets[start, 0] : offsets[end, 1]]


def test_answer_on_the_last_token_of_a_window(bundled_examples):
    # max_length 16 with a 2-token question leaves 11 context tokens: window 0 holds w0..w10.
    context, words = numbered_context(40)
    example = make_example(context, "where ?", "w10", answer_start=context.index("w10 "))
    features = keras_qa.prepare_eval_features([example], tiny_tokenizer(), 16, 4)
    assert features["end_positions"][0] == 4 + 10 == features["start_positions"][0]
    assert decode_label(example, features, 0) == "w10"
    # The next window starts 11 - 4 = 7 tokens later and holds it too.
    assert decode_label(example, features, 1) == "w10"
    assert features["start_positions"][2] == 0


def test_answer_that_is_the_contexts_last_token():
    context, words = numbered_context(30)
    example = make_example(context, "where ?", "w29", answer_start=len(context) - 3)
    features = keras_qa.prepare_eval_features([example], tiny_tokenizer(), 16, 4)
    last = len(features["example_index"]) - 1
    assert decode_label(example, features, last) == "w29"
    assert features["end_positions"][last] == features["padding_mask"][last].sum() - 2


def test_answer_across_a_window_boundary_is_labelled_only_where_whole():
    context, words = numbered_context(30)
    example = make_example(context, "where ?", "w9 w10 w11")
    features = keras_qa.prepare_eval_features([example], tiny_tokenizer(), 16, 4)
    labelled = [
        row for row in range(len(features["example_index"])) if features["start_positions"][row] > 0
    ]
    assert labelled == [1]
    assert decode_label(example, features, 1) == "w9 w10 w11"


def test_whitespace_in_questions_contexts_and_answers(minilm_tokenizer):
    context = "  The   cat\u00a0sat \n\n on   the mat.  "
    plain = make_example(context, "Where did it sit?", "on   the mat")
    padded = make_example(
        context,
        "   \t Where did it sit?",
        " on   the mat ",
        answer_start=context.index("on   the mat") - 1,
    )
    a = keras_qa.prepare_eval_features([plain], minilm_tokenizer, 64, 16)
    b = keras_qa.prepare_eval_features([padded], minilm_tokenizer, 64, 16)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert decode_label(plain, a, 0) == "on   the mat"


@pytest.mark.parametrize(
    "context, answer",
    [
        ("Le café de la Cinémathèque française ouvre à Paris.", "Cinémathèque française"),
        ("東京は日本の首都であり、人口は約1400万人です。", "日本の首都"),
        ("Party 🎉🎉 tonight at the café 😀 with Zoë!", "café 😀 with Zoë"),
        ("Москва́ — столица России, крупнейший город.", "столица России"),
    ],
)
def test_accents_cjk_and_emoji_decode_to_the_answer(minilm_tokenizer, context, answer):
    example = make_example(context, "What?", answer)
    features = keras_qa.prepare_eval_features([example], minilm_tokenizer, 64, 16)
    assert decode_label(example, features, 0) == answer


def test_a_hundred_thousand_character_context(minilm_tokenizer):
    words = [f"word{i % 997}" for i in range(16000)]
    context = " ".join(words)[:100_000]
    answer_start = context.index("word500", 90_000)
    example = make_example(context, "Which word?", "word500", answer_start=answer_start)
    features = keras_qa.prepare_eval_features([example], minilm_tokenizer)
    tokens = len(minilm_tokenizer(context))
    capacity = 384 - 3 - len(minilm_tokenizer("Which word?"))
    assert len(features["example_index"]) == 1 + -(-(tokens - capacity) // (capacity - 128))
    assert features["padding_mask"].sum(axis=1).max() == 384
    labelled = np.flatnonzero(features["start_positions"])
    assert len(labelled) >= 1
    assert all(decode_label(example, features, row) == "word500" for row in labelled)


def test_a_question_longer_than_max_length_is_cut_with_a_warning():
    context, _ = numbered_context(50)
    question = " ".join(f"w{i}" for i in range(100)) + " ?"
    example = make_example(context, question, "w40")
    with pytest.warns(UserWarning, match="1 question\\(s\\) are longer than 8 tokens"):
        features = keras_qa.prepare_eval_features([example], tiny_tokenizer(), 16, 4)
    assert (features["padding_mask"].sum(axis=1) <= 16).all()
    # 8 question tokens leave 5 context tokens per window, one more than the stride.
    assert features["token_ids"][0, 1:9].tolist() == tiny_tokenizer()(question)[:8]
    assert (features["token_ids"][:, 9] == tiny_tokenizer().sep_token_id).all()
    labelled = np.flatnonzero(features["start_positions"])
    assert len(labelled) and all(decode_label(example, features, r) == "w40" for r in labelled)


@pytest.mark.parametrize("field", ["context", "question"])
@pytest.mark.parametrize("value", ["", "   \n "])
def test_empty_context_or_question_is_a_clear_error(minilm_tokenizer, field, value):
    good = make_example("The cat sat.", "Who sat?", "cat", qid="good")
    bad = make_example("The cat sat.", "Who sat?", qid="bad") | {field: value}
    with pytest.raises(ValueError, match=f"Example 1 \\(id 'bad'\\): the {field} is empty"):
        keras_qa.prepare_train_features([good, bad], minilm_tokenizer)


def test_settings_that_leave_no_room_are_rejected(minilm_tokenizer):
    example = make_example("The cat sat.", "Who sat?", "cat")
    with pytest.raises(ValueError, match="leave no room"):
        keras_qa.prepare_train_features([example], minilm_tokenizer, max_length=32, doc_stride=28)


def test_unanswerable_examples_are_labelled_with_cls(minilm_tokenizer):
    example = make_example("The cat sat on the mat.", "Where is the dog?")
    features = keras_qa.prepare_train_features([example], minilm_tokenizer)
    assert features["start_positions"].tolist() == features["end_positions"].tolist() == [0]


WORDS = st.sampled_from(
    [
        "the",
        "cat",
        "Café",
        "naïve",
        "東京",
        "日本",
        "😀",
        "🎉",
        "U.S.",
        "1990s",
        "—",
        "x",
        "Zoë",
        "straße",
        "mat.",
        "(a)",
        "123,456",
    ]
)
SPACES = st.sampled_from([" ", "  ", "\n", " \t ", "\u00a0"])


@st.composite
def windowed_examples(draw):
    count = draw(st.integers(1, 120))
    words = [draw(WORDS) for _ in range(count)]
    gaps = [draw(SPACES) for _ in range(count + 1)]
    context = "".join(gap + word for gap, word in zip(gaps, words)) + gaps[-1]
    first = draw(st.integers(0, count - 1))
    last = draw(st.integers(first, min(count - 1, first + 3)))
    starts = []
    position = 0
    for gap, word in zip(gaps, words):
        position += len(gap)
        starts.append(position)
        position += len(word)
    answer = context[starts[first] : starts[last] + len(words[last])]
    question = draw(st.lists(WORDS, min_size=1, max_size=6).map(" ".join))
    max_length = draw(st.integers(24, 64))
    doc_stride = draw(st.integers(0, 8))
    return (
        make_example(context, question, answer, answer_start=starts[first]),
        max_length,
        doc_stride,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windowed_examples())
def test_every_window_holding_the_answer_is_labelled_on_its_tokens(minilm_tokenizer, case):
    example, max_length, doc_stride = case
    features = keras_qa.prepare_eval_features([example], minilm_tokenizer, max_length, doc_stride)
    start_char = example["answers"]["answer_start"][0]
    end_char = start_char + len(example["answers"]["text"][0])
    _, token_offsets = minilm_tokenizer.encode([example["context"]])[0]
    whole_answer_fits = False
    for row in range(len(features["example_index"])):
        offsets = features["offsets"][row]
        context_rows = np.flatnonzero(offsets[:, 0] >= 0)
        holds = (
            offsets[context_rows[0], 0] <= start_char and offsets[context_rows[-1], 1] >= end_char
        )
        start, end = features["start_positions"][row], features["end_positions"][row]
        if not holds:
            assert start == end == 0
            continue
        whole_answer_fits = True
        assert context_rows[0] <= start <= end <= context_rows[-1]
        assert (
            example["answers"]["text"][0] in example["context"][offsets[start, 0] : offsets[end, 1]]
        )
        # start is the answer's first token: the next token starts after the answer's start;
        # end is its last: the token before ends before the answer's end.
        assert offsets[start, 0] <= start_char
        assert start == context_rows[-1] or offsets[start + 1, 0] > start_char
        assert offsets[end, 1] >= end_char
        assert end == context_rows[0] or offsets[end - 1, 1] < end_char
    first_token = np.searchsorted(token_offsets[:, 0], start_char, side="right") - 1
    last_token = np.searchsorted(token_offsets[:, 1], end_char)
    capacity = (
        max_length
        - 3
        - min(len(minilm_tokenizer(example["question"])), max_length - doc_stride - 4)
    )
    if last_token - first_token + 1 <= doc_stride + 1 or len(token_offsets) <= capacity:
        assert whole_answer_fits  # Consecutive windows share doc_stride tokens.


@pytest.mark.parametrize(
    "max_length, doc_stride", [(40, 8), (40, 16), (40, 24), (64, 30), (64, 50)]
)
def test_sharing_more_tokens_reads_every_token_further_from_a_window_edge(
    minilm_tokenizer, bundled_examples, max_length, doc_stride
):
    context = " ".join(example["context"] for example in bundled_examples[:3])
    features = keras_qa.prepare_eval_features(
        [make_example(context, "Why?")], minilm_tokenizer, max_length, doc_stride
    )
    # Consecutive windows share doc_stride tokens, so one window holding a token has doc_stride // 2
    # of the context's tokens on each side of it, wherever the context has them.
    _, token_offsets = minilm_tokenizer.encode([context])[0]
    tokens = len(token_offsets)
    margin = np.full(tokens, -1)
    for offsets in features["offsets"]:
        rows = np.flatnonzero(offsets[:, 0] >= 0)
        first = np.searchsorted(token_offsets[:, 0], offsets[rows[0], 0])
        covered = np.arange(first, first + len(rows))
        margin[covered] = np.maximum(
            margin[covered], np.minimum(covered - first, covered[-1] - covered)
        )
    everywhere = np.arange(tokens)
    expected = np.minimum(doc_stride // 2, np.minimum(everywhere, tokens - 1 - everywhere))
    assert len(features["offsets"]) > 3
    assert (margin >= expected).all(), np.flatnonzero(margin < expected)[:10]


def test_a_context_too_long_to_featurise_is_refused_at_once(minilm_tokenizer):
    from keras_qa.text.features import MAX_CONTEXT_CHARS

    document = "word " * (MAX_CONTEXT_CHARS // 5 + 1)
    examples = [make_example("a short one.", "What?"), make_example(document, "What?", qid="long")]
    with pytest.raises(ValueError, match=r"Example 1 \(id 'long'\): the context has 1,000,005"):
        keras_qa.prepare_eval_features(examples, minilm_tokenizer)


def test_long_context_windows_pair_an_answer_window_with_a_not_here_one(
    minilm_tokenizer, bundled_examples
):
    from keras_qa.data.bundled import with_neighbouring_contexts
    from keras_qa.text.features import concatenate_features, long_context_windows

    examples = bundled_examples[:40]
    short = keras_qa.prepare_train_features(examples, minilm_tokenizer, 128, 32)
    long = keras_qa.prepare_train_features(
        with_neighbouring_contexts(examples), minilm_tokenizer, 128, 32
    )
    extra = long_context_windows(long, 30, seed=1)
    assert len(extra["example_index"]) == 30 and extra.keys() == long.keys()
    # 15 questions, each with one window labelled with its span and one labelled [CLS].
    for question in np.unique(extra["example_index"]):
        rows = np.flatnonzero(extra["example_index"] == question)
        starts = sorted(extra["start_positions"][rows].tolist())
        assert len(rows) == 2 and starts[0] == 0 and starts[1] > 0
        answer_row = rows[extra["start_positions"][rows] > 0][0]
        assert extra["end_positions"][answer_row] >= extra["start_positions"][answer_row]
    assert len(np.unique(extra["example_index"])) == 15
    # Every window is one of the long features' own windows, labels and all.
    for row in range(30):
        same = np.flatnonzero(long["example_index"] == extra["example_index"][row])
        assert any(
            np.array_equal(long["token_ids"][r], extra["token_ids"][row])
            and long["start_positions"][r] == extra["start_positions"][row]
            for r in same
        )
    again = long_context_windows(long, 30, seed=1)
    assert all(np.array_equal(extra[name], again[name]) for name in extra)  # seeded
    other = long_context_windows(long, 30, seed=2)
    assert not np.array_equal(extra["example_index"], other["example_index"])
    # No more pairs than questions with both kinds of window.
    both = {
        int(q)
        for q in np.unique(long["example_index"])
        if (long["start_positions"][long["example_index"] == q] == 0).any()
        and (long["start_positions"][long["example_index"] == q] > 0).any()
    }
    assert len(long_context_windows(long, 10**6)["example_index"]) == 2 * len(both)
    # With the examples, windows that hold an answer's text anyway are not "not here".
    long_examples = with_neighbouring_contexts(examples)
    located = keras_qa.prepare_eval_features(long_examples, minilm_tokenizer, 128, 32)
    clean = long_context_windows(located, 10**6, examples=long_examples)
    assert "offsets" not in clean and 0 < len(clean["example_index"]) < len(located["token_ids"])
    for row in np.flatnonzero(clean["start_positions"] == 0):
        window = next(
            r
            for r in np.flatnonzero(located["example_index"] == clean["example_index"][row])
            if np.array_equal(located["token_ids"][r], clean["token_ids"][row])
        )
        offsets = located["offsets"][window][located["offsets"][window][:, 0] >= 0]
        example = long_examples[located["example_index"][window]]
        text = example["context"][offsets[0, 0] : offsets[-1, 1]].lower()
        assert not any(answer.lower() in text for answer in example["answers"]["text"])
    joined = concatenate_features(short, extra)
    windows = len(short["example_index"])
    assert len(joined["token_ids"]) == windows + 30
    np.testing.assert_array_equal(joined["token_ids"][windows:], extra["token_ids"])
    assert joined["example_index"][windows:].min() > short["example_index"].max()
