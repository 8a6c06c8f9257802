import json
import os

import numpy as np
import pytest
from tokenizers import Tokenizer

import keras_qa
from keras_qa.tokenizer import QATokenizer

MULTILINGUAL = [
    "Café crème brûlée, naïve façade — ÀÉÎÕÜ ñ ç",
    "Straße ＦＵＬＬＷＩＤＴＨ e\u0301 İstanbul ΣΑΣ",
    "Москва́ — столица России.",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "한국어 텍스트",
    "日本語のテキスト、カタカナ 東京",
    "emoji 😀 👩‍👩‍👧 👍🏽 🇫🇷 end",
    "a\u200db soft\u00adhyphen tab\tnew\nline",
    "$100 + 5^2 = `x` ~y @z #tag (1990s) U.S.A.",
    "   leading and  repeated   spaces ",
]


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


@pytest.fixture(scope="module")
def keras_hub_preset(tmp_path_factory):
    import keras_hub

    vocabulary = os.path.join(keras_qa.minilm_path(), "vocab.txt")
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    folder = str(tmp_path_factory.mktemp("preset"))
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=64,
    )
    backbone.save_to_preset(folder)
    tokenizer.save_to_preset(folder)
    return folder, tokenizer


def test_keras_hub_preset_ids_equal_keras_hubs_own_tokenizer(keras_hub_preset):
    folder, keras_hub_tokenizer = keras_hub_preset
    ours = keras_qa.load_tokenizer(folder)
    assert ours.style == "keras_hub" and ours.lowercase and not ours.strip_accents
    for text in MULTILINGUAL:
        expected = np.asarray(keras_hub_tokenizer(text)).tolist()
        assert ours(text) == expected, text


def test_keras_hub_tokenizer_objects_are_accepted(keras_hub_preset):
    _, keras_hub_tokenizer = keras_hub_preset
    ours = keras_qa.load_tokenizer(keras_hub_tokenizer)
    assert ours(MULTILINGUAL[0]) == np.asarray(keras_hub_tokenizer(MULTILINGUAL[0])).tolist()


def test_cased_hugging_face_folder_keeps_case(tmp_path):
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Paris", "paris", "é", "Café"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    tokenizer = keras_qa.load_tokenizer(str(tmp_path))
    assert not tokenizer.lowercase
    assert tokenizer.tokenize("Paris paris Café") == ["Paris", "paris", "Café"]


def test_save_and_load_round_trip(tmp_path, minilm_tokenizer):
    minilm_tokenizer.save(tmp_path)
    loaded = QATokenizer.load(tmp_path)
    assert loaded.get_config() == minilm_tokenizer.get_config()
    for text in MULTILINGUAL:
        assert loaded(text) == minilm_tokenizer(text)


def test_vocabulary_without_special_tokens_is_rejected():
    with pytest.raises(ValueError, match="lacks the special token"):
        QATokenizer(["[PAD]", "[UNK]", "a"], lowercase=True)


def test_unsupported_tokenizers_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE"}}))
    with pytest.raises(ValueError, match="BPE tokenizer, which is not supported"):
        keras_qa.load_tokenizer(str(tmp_path))


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
