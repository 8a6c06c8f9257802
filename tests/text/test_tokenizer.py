import os

import numpy as np
import pytest
from tokenizers import Tokenizer

import keras_qa
from keras_qa.text.tokenizer import QATokenizer
from tests.conftest import MULTILINGUAL


def hugging_face_reference():
    reference = Tokenizer.from_file(os.path.join(keras_qa.minilm_path(), "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    return reference


def test_minilm_ids_and_offsets_equal_the_checkpoints_own_tokenizer(
    minilm_tokenizer, bundled_examples
):
    reference = hugging_face_reference()
    texts = MULTILINGUAL + [e["context"] for e in bundled_examples[::500]]
    for text, (ids, offsets) in zip(texts, minilm_tokenizer.encode(texts)):
        expected = reference.encode(text, add_special_tokens=False)
        assert ids.tolist() == expected.ids, text
        assert [tuple(o) for o in offsets.tolist()] == expected.offsets, text


def test_uncased_minilm_strips_accents_like_hugging_face(minilm_tokenizer):
    assert minilm_tokenizer.tokenize("Café Naïve") == ["cafe", "naive"]


def test_offsets_point_at_the_characters_of_each_token(minilm_tokenizer):
    text = "The Normans (Norman: Nourmands) were in Normandy in the 10th century."
    ids, offsets = minilm_tokenizer.encode([text])[0]
    tokens = minilm_tokenizer.tokenize(text)
    for token, (start, end) in zip(tokens, offsets):
        assert text[start:end].lower() == token.removeprefix("##")


def test_save_and_load_round_trip(tmp_path, minilm_tokenizer):
    minilm_tokenizer.save(tmp_path)
    loaded = QATokenizer.load(tmp_path)
    assert loaded.get_config() == minilm_tokenizer.get_config()
    for text in MULTILINGUAL:
        assert loaded(text) == minilm_tokenizer(text)


def test_vocabulary_without_special_tokens_is_rejected():
    with pytest.raises(ValueError, match="lacks the special token"):
        QATokenizer(["[PAD]", "[UNK]", "a"], lowercase=True)


def test_encode_takes_a_list():
    tokenizer = QATokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], lowercase=True)
    with pytest.raises(TypeError, match="list of strings"):
        tokenizer.encode("a")


def tiny_tokenizer():
    return QATokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s"], lowercase=True)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("a cat \ud800 sat", "texts\\[2\\] holds a lone surrogate U\\+D800 at character 6"),
        ("\udfff", "texts\\[2\\] holds a lone surrogate U\\+DFFF at character 0"),
        (
            "café 😀 then half an emoji \ud83d",
            "texts\\[2\\] holds a lone surrogate U\\+D83D at char",
        ),
    ],
)
def test_encode_names_the_text_that_holds_a_lone_surrogate(bad, message):
    with pytest.raises(ValueError, match=message) as raised:
        tiny_tokenizer().encode(["the cats", "naïve", bad, "the cat"])
    assert "TextEncodeInput" not in str(raised.value)


@pytest.mark.parametrize(
    "bad, kind", [(None, "NoneType"), (b"the cat", "bytes"), (("the", "cat"), "tuple"), (3, "int")]
)
def test_encode_names_the_text_that_is_not_a_string(bad, kind):
    # A pair of strings, too: `tokenizers` would encode it as a question-context pair.
    with pytest.raises(TypeError, match=f"texts\\[1\\] is not a string but {kind}"):
        tiny_tokenizer().encode(["the cats", bad])


def test_tokenize_and_call_explain_a_bad_text():
    tokenizer = tiny_tokenizer()
    for method in (tokenizer.tokenize, tokenizer):
        with pytest.raises(ValueError, match="The text holds a lone surrogate U\\+DC00"):
            method("the \udc00 cat")
        with pytest.raises(TypeError, match="The text is not a string but NoneType"):
            method(None)


def test_encode_takes_any_iterable_of_strings_and_str_subclasses():
    tokenizer = tiny_tokenizer()
    texts = (text for text in ["the cats", np.str_("the cat")])
    assert [ids.tolist() for ids, _ in tokenizer.encode(texts)] == [[4, 5, 6], [4, 5]]
