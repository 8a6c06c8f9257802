"""Hugging Face question-answering checkpoints, loaded whole, against transformers' own PyTorch forward.

The checkpoints are tiny and random, of the five architectures, built by `tests.hugging_face_checkpoints`
(as `save_pretrained` writes them today: a `tokenizer.json` and no `vocab.txt`), with real fast
tokenizers: MiniLM's WordPiece, a byte-level BPE, Unigram models.
"""

import json
import os
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

import keras_qa
from keras_qa.answering.answerer import QuestionAnswerer
from keras_qa.checkpoints import from_huggingface as huggingface
from keras_qa.checkpoints import to_huggingface
from keras_qa.errors import ModelFileError
from tests.hugging_face_checkpoints import ARCHITECTURES, build_checkpoint

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

# Largest |keras-qa logit - transformers logit| accepted, in float32 on CPU (logits reach 30-80).
LOGIT_TOLERANCE = 1e-4
# The architectures whose models read token type ids (ALBERT: see README, "Hugging Face checkpoints").
READS_TOKEN_TYPES = ("bert", "albert")
HARD_TEXTS = [
    "Café au lait, naïve Zoë and the Ångström unit.",
    "東京は日本の首都です。 北京 and 서울 too.",
    "Emoji 🐈‍⬛ and 🗼 between words, flags 🇫🇷.",
    "   leading spaces,   repeated   spaces\tand\ttabs\n\nnew lines.",
]


@pytest.fixture(scope="module", params=ARCHITECTURES)
def checkpoint(request, tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp(request.param), request.param)


def transformers_logits(folder, features):
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    inputs = {
        "input_ids": torch.tensor(features["token_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(features["padding_mask"], dtype=torch.long),
    }
    if huggingface.model_type(folder) in READS_TOKEN_TYPES:
        inputs["token_type_ids"] = torch.tensor(features["segment_ids"], dtype=torch.long)
    with torch.no_grad():
        output = model(**inputs)
    return output.start_logits.numpy(), output.end_logits.numpy()


def test_the_checkpoint_folder_has_no_vocab_txt(checkpoint):
    # What transformers 5 writes; the tokenizer comes from tokenizer.json.
    assert not os.path.exists(os.path.join(checkpoint, "vocab.txt"))
    assert huggingface.has_span_head(checkpoint)


def test_logits_equal_transformers_forward(checkpoint):
    model, tokenizer, config = huggingface.load_question_answering_model(checkpoint)
    assert (config["max_length"], config["doc_stride"]) == (128, 42)
    examples = [
        {"id": str(i), "question": "Where did the cat go?", "context": text * 8, "answers": {}}
        for i, text in enumerate(HARD_TEXTS)
    ]
    features = keras_qa.prepare_eval_features(examples, tokenizer, 128, 42)
    start, end = keras_qa.predict_logits(model, features)
    reference_start, reference_end = transformers_logits(checkpoint, features)
    real = features["padding_mask"] == 1
    assert np.abs(reference_start[real]).max() > 10.0  # the scaled head: logits far from ties
    np.testing.assert_allclose(start[real], reference_start[real], atol=LOGIT_TOLERANCE, rtol=0)
    np.testing.assert_allclose(end[real], reference_end[real], atol=LOGIT_TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    "architecture, activation, backbone",
    [
        ("albert", "gelu_new", "AlbertBackbone"),  # ALBERT's default: KerasHub's approximation
        ("albert", "gelu", "ExactGeluAlbertBackbone"),
        ("bert", "gelu_pytorch_tanh", "BertBackbone"),
    ],
)
def test_the_checkpoints_activation_is_computed(architecture, activation, backbone, tmp_path):
    folder = build_checkpoint(tmp_path, architecture, hidden_act=activation)
    model, tokenizer, _ = huggingface.load_question_answering_model(folder)
    assert type(model.backbone).__name__ == backbone
    example = {"id": "0", "question": "What unit?", "context": HARD_TEXTS[0] * 6, "answers": {}}
    features = keras_qa.prepare_eval_features([example], tokenizer, 128, 42)
    start, end = keras_qa.predict_logits(model, features)
    reference_start, reference_end = transformers_logits(folder, features)
    real = features["padding_mask"] == 1
    np.testing.assert_allclose(start[real], reference_start[real], atol=LOGIT_TOLERANCE, rtol=0)
    np.testing.assert_allclose(end[real], reference_end[real], atol=LOGIT_TOLERANCE, rtol=0)


def test_keras_hubs_approximate_gelu_would_miss_the_tolerance(tmp_path, monkeypatch):
    # Why ExactGeluBertBackbone exists: a BERT trained with the exact GELU, run with KerasHub's tanh
    # approximation, gives logits farther from transformers' than the tolerance allows.
    folder = build_checkpoint(tmp_path, "bert")
    assert json.loads((tmp_path / "config.json").read_text())["hidden_act"] == "gelu"
    monkeypatch.setattr(huggingface, "_faithful_backbone_class", lambda found, *_: found)
    model, tokenizer, _ = huggingface.load_question_answering_model(folder)
    assert type(model.backbone).__name__ == "BertBackbone"
    example = {"id": "0", "question": "What unit?", "context": HARD_TEXTS[0] * 6, "answers": {}}
    features = keras_qa.prepare_eval_features([example], tokenizer, 128, 42)
    start, end = keras_qa.predict_logits(model, features)
    reference_start, reference_end = transformers_logits(folder, features)
    real = features["padding_mask"] == 1
    difference = max(
        np.abs(start - reference_start)[real].max(), np.abs(end - reference_end)[real].max()
    )
    print(f"tanh GELU: largest logit difference {difference:.4f}")
    assert difference > 10 * LOGIT_TOLERANCE


def test_a_roberta_activation_keras_hub_does_not_compute_is_refused(tmp_path):
    folder = build_checkpoint(tmp_path, "roberta", hidden_act="gelu_new")
    with pytest.raises(ModelFileError, match="hidden_act 'gelu_new'.*exact GELU"):
        huggingface.load_question_answering_model(folder)


def test_token_ids_and_offsets_equal_the_checkpoints_own_tokenizer(checkpoint):
    reference = transformers.AutoTokenizer.from_pretrained(checkpoint)
    tokenizer = keras_qa.load_tokenizer(checkpoint)
    long_context = " ".join(HARD_TEXTS) * 120
    assert len(long_context) > 20_000
    for text in HARD_TEXTS + [long_context]:
        expected = reference(text, add_special_tokens=False, return_offsets_mapping=True)
        [(ids, offsets)] = tokenizer.encode([text])
        assert ids.tolist() == expected["input_ids"]
        assert offsets.tolist() == [list(pair) for pair in expected["offset_mapping"]]


@pytest.mark.parametrize(
    "context", [HARD_TEXTS[0], " ".join(HARD_TEXTS) * 120], ids=["paragraph", "20k-characters"]
)
def test_windows_equal_the_checkpoints_own_pair_encoding(checkpoint, context):
    """Every window: ids, mask, token types, context offsets and words, as transformers lays them out."""
    reference = transformers.AutoTokenizer.from_pretrained(checkpoint)
    question = "  Where is Zoë?"
    example = {"id": "0", "question": question, "context": context, "answers": {}}
    features = keras_qa.prepare_eval_features(
        [example], keras_qa.load_tokenizer(checkpoint), 128, 42
    )
    expected = reference(
        question.lstrip(),
        context,
        truncation="only_second",
        max_length=128,
        stride=42,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
        return_token_type_ids=True,
    )
    assert features["token_ids"].tolist() == expected["input_ids"]
    assert features["padding_mask"].tolist() == expected["attention_mask"]
    if huggingface.model_type(checkpoint) in READS_TOKEN_TYPES:
        assert features["segment_ids"].tolist() == expected["token_type_ids"]
    for window in range(len(expected["input_ids"])):
        sequence_ids = expected.sequence_ids(window)
        context_tokens = [i for i, sequence in enumerate(sequence_ids) if sequence == 1]
        outside = [i for i, sequence in enumerate(sequence_ids) if sequence != 1]
        offsets = features["offsets"][window]
        assert offsets[context_tokens].tolist() == [
            list(expected["offset_mapping"][window][i]) for i in context_tokens
        ]
        assert (offsets[outside] == -1).all()
        words = [expected.token_to_word(window, i) for i in context_tokens]
        same_word = [False] + [a == b for a, b in zip(words, words[1:])]
        assert features["continues_word"][window][context_tokens].tolist() == same_word


def test_labels_of_a_train_feature_decode_to_the_answer(checkpoint):
    tokenizer = keras_qa.load_tokenizer(checkpoint)
    context = " ".join(HARD_TEXTS) * 3
    examples = [
        {
            "id": str(i),
            "question": "Which?",
            "context": context,
            "answers": {"text": [answer], "answer_start": [context.index(answer, at)]},
        }
        for i, (answer, at) in enumerate(
            [("Ångström", 0), ("naïve Zoë", 200), ("北京", 0), ("repeated   spaces", 300)]
        )
    ]
    train = keras_qa.prepare_train_features(examples, tokenizer, 64, 16)
    located = keras_qa.prepare_eval_features(examples, tokenizer, 64, 16)
    labelled = np.flatnonzero(train["start_positions"] > 0)
    assert set(train["example_index"][labelled]) == {0, 1, 2, 3}
    for row in labelled:
        example = examples[train["example_index"][row]]
        first = located["offsets"][row, train["start_positions"][row], 0]
        last = located["offsets"][row, train["end_positions"][row], 1]
        answer = example["answers"]["text"][0]
        # The labelled tokens cover the answer, and no more than the words around its ends.
        covered = context[first:last]
        assert answer in covered or answer.lower() in covered.lower()
        assert len(covered) <= len(answer) + 8


def test_the_answerer_answers_with_the_trained_head(checkpoint):
    answerer = QuestionAnswerer.from_pretrained(checkpoint)
    context = HARD_TEXTS[0] + " " + HARD_TEXTS[2]
    answer = answerer("What unit?", context, top_k=3, window_score="window_softmax")
    assert len(answer) == 3
    for item in answer:
        assert context[item["start"] : item["end"]] == item["answer"] and 0 < item["score"] < 1
    # The best span is the one transformers' logits rank first (one window, no widening needed).
    example = {"id": "0", "question": "What unit?", "context": context, "answers": {}}
    features = keras_qa.prepare_eval_features([example], answerer.tokenizer, 128, 42)
    start, end = transformers_logits(checkpoint, features)
    spans = keras_qa.decode_spans(features, start, end, max_answer_length=30)
    best = (int(spans["start_char"][0, 0]), int(spans["end_char"][0, 0]))
    unaligned = answerer("What unit?", context, align_to_words=False, window_score="raw")
    assert (unaligned["start"], unaligned["end"]) == best


def test_training_starts_from_the_trained_head(checkpoint):
    from keras_qa.checkpoints.loading import load_backbone, load_trained_span_head
    from keras_qa.models.task import QuestionAnsweringModel

    model = QuestionAnsweringModel(load_backbone(checkpoint))
    load_trained_span_head(model, checkpoint)
    reference = transformers.AutoModelForQuestionAnswering.from_pretrained(checkpoint)
    np.testing.assert_array_equal(
        np.asarray(model.head.dense.kernel), reference.qa_outputs.weight.detach().numpy().T
    )


def test_a_bare_encoder_trains_but_does_not_answer(tmp_path):
    from keras_qa.checkpoints.loading import load_backbone

    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + list("abc"))
    )
    assert load_backbone(str(tmp_path)).num_layers == 1  # no pooler needed
    assert not huggingface.has_span_head(str(tmp_path))
    with pytest.raises(ModelFileError, match="without a question-answering head"):
        QuestionAnswerer.from_pretrained(str(tmp_path))


def test_an_unsupported_question_answering_type_is_named(tmp_path):
    config = transformers.ElectraConfig(
        vocab_size=40,
        embedding_size=16,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    transformers.ElectraForQuestionAnswering(config).save_pretrained(tmp_path)
    with pytest.raises(
        ModelFileError, match="'electra'.*bert, distilbert, roberta, xlm-roberta, albert"
    ):
        QuestionAnswerer.from_pretrained(str(tmp_path))


def test_a_folder_without_a_tokenizer_is_refused_clearly(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFileError, match="no tokenizer found"):
        keras_qa.load_tokenizer(str(tmp_path))


def test_a_model_fine_tuned_from_a_checkpoint_saves_reloads_and_answers(
    checkpoint, tiny_data_file, tmp_path
):
    from keras_qa.training.run import fine_tune
    from tests.conftest import tiny_settings

    data = {"train": tiny_data_file, "eval": tiny_data_file}
    settings = tiny_settings(checkpoint, data, tmp_path / "run", epochs=1, checkpoint_every=0)
    metrics = fine_tune(settings, verbose=0)
    assert 0 <= metrics["eval"]["f1"] <= 100
    model, _, _ = keras_qa.load_trained_model(str(tmp_path / "run"))
    trained_with = huggingface.load_question_answering_model(checkpoint)[0].backbone
    assert type(model.backbone) is type(trained_with)  # the exact GELU survives saving (BERT)
    answerer = QuestionAnswerer.from_pretrained(str(tmp_path / "run"))
    context = "the dog sat in paris . the cat ran to london ."
    answer = answerer("where did the cat run ?", context)
    assert context[answer["start"] : answer["end"]] == answer["answer"] != ""
    # Back to transformers: the export command compares its logits with keras-qa's.
    from keras_qa.export import export_model

    _, difference = export_model(str(tmp_path / "run"), format="huggingface")
    assert difference < LOGIT_TOLERANCE


def test_a_loaded_checkpoint_written_back_is_the_same_checkpoint(checkpoint, tmp_path):
    model, tokenizer, _ = huggingface.load_question_answering_model(checkpoint)
    to_huggingface.save_question_answering_checkpoint(model, tokenizer, str(tmp_path))
    written = json.loads((tmp_path / "config.json").read_text())
    original = json.loads(open(os.path.join(checkpoint, "config.json")).read())
    for name in (
        "model_type",
        "hidden_act",
        "max_position_embeddings",
        "vocab_size",
        "pad_token_id",
    ):
        assert written.get(name) == original.get(name), name
    examples = [
        {"id": "0", "question": "What unit?", "context": " ".join(HARD_TEXTS) * 4, "answers": {}}
    ]
    features = keras_qa.prepare_eval_features(examples, tokenizer, 128, 42)
    again = keras_qa.prepare_eval_features(
        examples, keras_qa.load_tokenizer(str(tmp_path)), 128, 42
    )
    for name in ("token_ids", "segment_ids", "offsets", "continues_word"):
        np.testing.assert_array_equal(again[name], features[name])
    real = features["padding_mask"] == 1
    for expected, found in zip(
        transformers_logits(checkpoint, features), transformers_logits(str(tmp_path), features)
    ):
        np.testing.assert_allclose(found[real], expected[real], atol=LOGIT_TOLERANCE, rtol=0)


def test_predict_answers_from_a_checkpoint_folder(checkpoint, capsys):
    from keras_qa.predict import main

    context = HARD_TEXTS[0]
    printed = main(["--model", checkpoint, "--question", "What unit?", "--context", context])
    assert printed == QuestionAnswerer.from_pretrained(checkpoint)("What unit?", context)
    assert json.loads(capsys.readouterr().out) == printed


def test_an_hf_source_downloads_what_loading_needs_and_nothing_else(
    checkpoint, tmp_path, monkeypatch
):
    import fnmatch
    import shutil

    import huggingface_hub

    hub = tmp_path / "hub"
    shutil.copytree(checkpoint, hub)
    (hub / "pytorch_model.bin").write_bytes(b"not needed")
    (hub / "README.md").write_text("model card")

    def snapshot_download(repo_id, allow_patterns):  # the Hub, served from a local folder
        assert repo_id == "org/name"
        downloaded = tmp_path / "downloaded"
        downloaded.mkdir(exist_ok=True)
        for name in os.listdir(hub):
            if any(fnmatch.fnmatch(name, pattern) for pattern in allow_patterns):
                shutil.copy(hub / name, downloaded / name)
        return str(downloaded)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    answerer = QuestionAnswerer.from_pretrained("hf://org/name")
    assert sorted(os.listdir(tmp_path / "downloaded")) == sorted(os.listdir(checkpoint))
    context = HARD_TEXTS[0] + " " + HARD_TEXTS[1]
    expected = QuestionAnswerer.from_pretrained(checkpoint)("What unit?", context, top_k=2)
    assert answerer("What unit?", context, top_k=2) == expected


@pytest.mark.parametrize("where", ["../outside", "absolute"])
def test_a_shard_index_that_points_outside_the_folder_is_refused(checkpoint, tmp_path, where):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    shutil.copytree(checkpoint, inside)
    outside.mkdir()
    os.replace(inside / "model.safetensors", outside / "model.safetensors")
    shard = (
        str(outside / "model.safetensors") if where == "absolute" else f"{where}/model.safetensors"
    )
    names = list(load_file(str(outside / "model.safetensors")))
    index = {"metadata": {}, "weight_map": {name: shard for name in names}}
    (inside / "model.safetensors.index.json").write_text(json.dumps(index))
    for load in (QuestionAnswerer.from_pretrained, keras_qa.load_backbone):
        with pytest.raises(ModelFileError, match="shards must be files of the checkpoint's own"):
            load(str(inside))
    # The same shard inside the folder loads.
    os.replace(outside / "model.safetensors", inside / "model.safetensors")
    index["weight_map"] = {name: "model.safetensors" for name in names}
    (inside / "model.safetensors.index.json").write_text(json.dumps(index))
    assert QuestionAnswerer.from_pretrained(str(inside))("What unit?", HARD_TEXTS[0])["answer"]


def test_a_shard_index_without_a_weight_map_names_the_file(checkpoint, tmp_path):
    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}}))
    with pytest.raises(ModelFileError, match="model.safetensors.index.json: no 'weight_map'"):
        QuestionAnswerer.from_pretrained(str(folder))


def test_a_checkpoint_with_non_finite_weights_is_refused(checkpoint, tmp_path):
    from safetensors.numpy import save_file

    folder = tmp_path / "checkpoint"
    shutil.copytree(checkpoint, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["qa_outputs.bias"] = np.array([np.nan, 0.0], np.float32)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="holds NaN or infinite values"):
        QuestionAnswerer.from_pretrained(str(folder))


@pytest.fixture(scope="module")
def bert_checkpoint(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("bert"), "bert")


def with_config(checkpoint, folder, **changes):
    """A copy of the checkpoint folder with `changes` in its config.json (None removes a key)."""
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(
        json.dumps({k: v for k, v in config.items() if v is not None})
    )
    return folder


@pytest.mark.parametrize(
    "changes",
    [
        {"num_attention_heads": 0},
        {"model_type": "albert"},
        {"model_type": "distilbert"},
        {"vocab_size": 7},
    ],
    ids=["no heads", "albert over bert weights", "distilbert over bert weights", "wrong embedding"],
)
def test_a_config_that_does_not_fit_the_weights_is_one_line_naming_the_folder(
    bert_checkpoint, tmp_path, capsys, changes
):
    folder = with_config(bert_checkpoint, tmp_path / "checkpoint", **changes)
    with pytest.raises(ModelFileError) as raised:
        QuestionAnswerer.from_pretrained(str(folder))
    message = str(raised.value)
    assert str(folder) in message and "\n" not in message and len(message) < 600
    from keras_qa.predict import main

    with pytest.raises(SystemExit) as exited:
        main(["--model", str(folder), "--question", "What unit?", "--context", HARD_TEXTS[0]])
    assert exited.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2  # the error and the --debug hint


def test_a_missing_weights_file_is_named(bert_checkpoint, tmp_path):
    folder = with_config(bert_checkpoint, tmp_path / "checkpoint")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        QuestionAnswerer.from_pretrained(str(folder))


@pytest.mark.parametrize("activation", ["relu", "os.system"])
def test_an_activation_keras_hub_does_not_compute_is_refused_for_every_family(
    checkpoint, tmp_path, activation
):
    key = "activation" if huggingface.model_type(checkpoint) == "distilbert" else "hidden_act"
    folder = with_config(checkpoint, tmp_path / "checkpoint", **{key: activation})
    for load in (QuestionAnswerer.from_pretrained, keras_qa.load_backbone):
        with pytest.raises(ModelFileError, match=f"{key} '{activation}'.*computes the exact GELU"):
            load(str(folder))


def rewrite_json(path, change):
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))


BAD_PAIR_LAYOUTS = {
    "no [CLS]": lambda t: t["post_processor"]["pair"].pop(0),
    "sequences swapped": lambda t: t["post_processor"]["pair"].reverse(),
    "null": lambda t: t.update(post_processor=None),
    "starts with [PAD]": lambda t: (
        t["post_processor"]["pair"][0]["SpecialToken"].update(id="[PAD]")
        or t["post_processor"]["special_tokens"].update(
            {"[PAD]": {"id": "[PAD]", "ids": [0], "tokens": ["[PAD]"]}}
        )
    ),
}


@pytest.mark.parametrize("change", BAD_PAIR_LAYOUTS.values(), ids=BAD_PAIR_LAYOUTS)
def test_a_wordpiece_post_processor_other_than_berts_is_refused(bert_checkpoint, tmp_path, change):
    folder = with_config(bert_checkpoint, tmp_path / "checkpoint")
    rewrite_json(folder / "tokenizer.json", change)
    with pytest.raises(ModelFileError, match="tokenizer.json"):
        keras_qa.load_tokenizer(str(folder))


@pytest.mark.parametrize("pad_token", ["[CLS]", 5, {"special": True}, ""])
def test_a_padding_token_that_cannot_work_is_refused(bert_checkpoint, tmp_path, pad_token):
    folder = with_config(bert_checkpoint, tmp_path / "checkpoint")
    rewrite_json(folder / "tokenizer_config.json", lambda c: c.update(pad_token=pad_token))
    with pytest.raises(ModelFileError, match="pad_token|padding token"):
        keras_qa.load_tokenizer(str(folder))


def test_an_added_token_dict_names_a_special_token(bert_checkpoint, tmp_path):
    folder = with_config(bert_checkpoint, tmp_path / "checkpoint")
    rewrite_json(
        folder / "tokenizer_config.json", lambda c: c.update(pad_token={"content": "[PAD]"})
    )
    assert keras_qa.load_tokenizer(str(folder)).pad_token == "[PAD]"


@pytest.mark.parametrize("size", ["positions", "hidden", "layers", "vocabulary", "intermediate"])
def test_sizes_the_weights_do_not_hold_are_refused_before_anything_is_built(
    checkpoint, tmp_path, size
):
    from keras_qa.checkpoints.weight_shapes import BERT_SIZE_NAMES, SIZE_NAMES

    model_type = huggingface.model_type(checkpoint)
    name = SIZE_NAMES.get(model_type, BERT_SIZE_NAMES)[size]
    huge = 100_000 if size == "layers" else 10**9
    folder = with_config(checkpoint, tmp_path / "checkpoint", **{name: huge})
    for load in (QuestionAnswerer.from_pretrained, keras_qa.load_backbone):
        with pytest.raises(ModelFileError, match=f"config.json: {name} is {huge}") as raised:
            load(str(folder))
        # ALBERT shares its layers' weights: their count is bounded instead.
        shared = model_type == "albert" and size == "layers"
        assert ("shares its layers" if shared else "the weights say") in str(raised.value)


def test_heads_that_do_not_divide_the_hidden_size_are_refused(bert_checkpoint, tmp_path):
    for heads in (0, 3, "2"):
        folder = with_config(
            bert_checkpoint, tmp_path / f"heads-{heads}", num_attention_heads=heads
        )
        with pytest.raises(ModelFileError, match="num_attention_heads is"):
            QuestionAnswerer.from_pretrained(str(folder))
