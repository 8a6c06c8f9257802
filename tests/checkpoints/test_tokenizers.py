import json
import os

import numpy as np
import pytest
from tokenizers import Tokenizer

import keras_qa
from keras_qa.text.tokenizer import QATokenizer
from tests.conftest import MULTILINGUAL


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


def write_bpe_folder(folder, post_processor=None, tokenizer_config=None):
    """A Hugging Face folder with a small byte-level BPE `tokenizer.json`, as RoBERTa's."""
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(MULTILINGUAL * 20, trainer)
    tokenizer.post_processor = post_processor or processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0)
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    config = {"pad_token": "<pad>", "tokenizer_class": "RobertaTokenizer"}
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**config, **(tokenizer_config or {})})
    )
    return tokenizer


def test_a_bpe_tokenizer_json_is_used_as_it_is_with_its_pair_layout(tmp_path):
    reference = write_bpe_folder(tmp_path)
    tokenizer = keras_qa.load_tokenizer(str(tmp_path))
    for text in MULTILINGUAL:
        [(ids, offsets)] = tokenizer.encode([text])
        expected = reference.encode(text, add_special_tokens=False)
        assert ids.tolist() == expected.ids and [tuple(o) for o in offsets] == expected.offsets
    # RoBERTa's pair: <s> question </s></s> context </s>, no token types.
    layout = tokenizer.layout
    assert (layout.prefix, layout.middle, layout.suffix) == ([0], [2, 2], [2])
    assert tokenizer.pad_token_id == 1 and tokenizer.cls_token_id == 0
    ids = [int(i) for i in reference.encode("Where?", "in Paris").ids]
    window, _ = layout.window(
        *[reference.encode(t, add_special_tokens=False).ids for t in ("Where?", "in Paris")]
    )
    assert window.tolist() == ids


def test_a_tokenizer_json_tokenizer_saves_and_loads(tmp_path):
    write_bpe_folder(tmp_path)
    tokenizer = keras_qa.load_tokenizer(str(tmp_path))
    tokenizer.save(tmp_path / "saved")
    loaded = QATokenizer.load(tmp_path / "saved")
    assert loaded.get_config() == tokenizer.get_config() and loaded.layout == tokenizer.layout
    for text in MULTILINGUAL:
        assert loaded(text) == tokenizer(text)
    tokenizer.save_hugging_face(tmp_path / "exported")
    assert sorted(os.listdir(tmp_path / "exported")) == ["tokenizer.json", "tokenizer_config.json"]
    (tmp_path / "exported" / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    again = keras_qa.load_tokenizer(str(tmp_path / "exported"))
    assert again.layout == tokenizer.layout and again(MULTILINGUAL[0]) == tokenizer(MULTILINGUAL[0])


def test_words_are_the_pre_tokens(tmp_path):
    write_bpe_folder(tmp_path)
    tokenizer = keras_qa.load_tokenizer(str(tmp_path))
    text = "Zoë's naïveté, twice."
    [(ids, offsets, continues)] = tokenizer.encode([text], words=True)
    # A token continues a word exactly when it does not start a new pre-token.
    starts = [i for i in range(len(ids)) if not continues[i]]
    ends = [i - 1 for i in starts[1:]] + [len(ids) - 1]
    pieces = [text[offsets[a][0] : offsets[b][1]] for a, b in zip(starts, ends)]
    assert pieces == ["Zoë", "'s", "naïveté", ",", "twice", "."]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tokenizer_config": {"padding_side": "left"}}, "padding_side is 'left'"),
        ({"tokenizer_config": {"pad_token": "<nothing>"}}, "padding token '<nothing>' is not in"),
        ({"tokenizer_config": {"pad_token": None}}, "names no pad_token"),
    ],
)
def test_tokenizer_json_folders_with_problems_are_refused_clearly(tmp_path, change, message):
    write_bpe_folder(tmp_path, **change)
    with pytest.raises(ValueError, match=message):
        keras_qa.load_tokenizer(str(tmp_path))


def test_a_template_without_a_first_special_token_is_refused(tmp_path):
    from tokenizers import processors

    template = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=[("</s>", 2)]
    )
    write_bpe_folder(tmp_path, post_processor=template)
    with pytest.raises(ValueError, match="tokenizer.json: .*does not start with a special token"):
        keras_qa.load_tokenizer(str(tmp_path))


def test_folders_without_a_usable_tokenizer_are_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "albert"}))
    with pytest.raises(ValueError, match="no tokenizer found"):
        keras_qa.load_tokenizer(str(tmp_path))
    (tmp_path / "spiece.model").write_bytes(b"\x00")
    with pytest.raises(
        ValueError, match="SentencePiece model \\(spiece.model\\) without a tokenizer.json"
    ):
        keras_qa.load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}))
    with pytest.raises(ValueError, match="tokenizer.json: no tokenizer model in it"):
        keras_qa.load_tokenizer(str(tmp_path))
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE"}}))
    with pytest.raises(ValueError, match="tokenizer.json: not a tokenizer `tokenizers` can read"):
        keras_qa.load_tokenizer(str(tmp_path))
