"""Hugging Face question-answering checkpoints, loaded whole, against transformers' own PyTorch forward.

The checkpoints are tiny and random, built here with transformers (as `save_pretrained` writes them
today: a `tokenizer.json` and no `vocab.txt`), with the MiniLM WordPiece vocabulary. Their `qa_outputs`
are scaled up so that the best answers are not near ties.
"""

import json
import os

import numpy as np
import pytest

import keras_qa
from keras_qa import huggingface
from keras_qa.errors import ModelFileError
from keras_qa.pipeline import QuestionAnswerer

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

# Largest |keras-qa logit - transformers logit| accepted, in float32 on CPU.
LOGIT_TOLERANCE = 1e-4
HARD_TEXTS = [
    "Café au lait, naïve Zoë and the Ångström unit.",
    "東京は日本の首都です。 北京 and 서울 too.",
    "Emoji 🐈‍⬛ and 🗼 between words, flags 🇫🇷.",
    "   leading spaces,   repeated   spaces\tand\ttabs\n\nnew lines.",
]


def build_checkpoint(folder, architecture):
    """A tiny random `*ForQuestionAnswering` checkpoint with MiniLM's WordPiece tokenizer."""
    torch.manual_seed(0)
    tokenizer = transformers.BertTokenizerFast(
        os.path.join(keras_qa.minilm_path(), "vocab.txt"), do_lower_case=True
    )
    size = {"vocab_size": tokenizer.vocab_size, "max_position_embeddings": 128}
    if architecture == "bert":
        config = transformers.BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            initializer_range=0.2, **size,
        )
        model = transformers.BertForQuestionAnswering(config)
    else:
        config = transformers.DistilBertConfig(
            dim=32, n_layers=2, n_heads=2, hidden_dim=64, initializer_range=0.2, **size
        )
        model = transformers.DistilBertForQuestionAnswering(config)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(20.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def checkpoint(request, tmp_path_factory):
    return build_checkpoint(str(tmp_path_factory.mktemp(request.param)), request.param)


def transformers_logits(folder, features):
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    inputs = {
        "input_ids": torch.tensor(features["token_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(features["padding_mask"], dtype=torch.long),
    }
    if huggingface.model_type(folder) == "bert":
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
    assert np.abs(reference_start[real]).max() > 1.0  # the scaled head: logits far from ties
    np.testing.assert_allclose(start[real], reference_start[real], atol=LOGIT_TOLERANCE, rtol=0)
    np.testing.assert_allclose(end[real], reference_end[real], atol=LOGIT_TOLERANCE, rtol=0)


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
    # The pair layout: [CLS] question [SEP] context [SEP], segment ids 0 then 1.
    question, context = "Where is Zoë?", HARD_TEXTS[0]
    expected = reference(question, context)
    example = {"id": "0", "question": question, "context": context, "answers": {}}
    features = keras_qa.prepare_eval_features([example], tokenizer, 128, 42)
    real = features["padding_mask"][0] == 1
    assert features["token_ids"][0][real].tolist() == expected["input_ids"]
    assert features["segment_ids"][0][real].tolist() == expected["token_type_ids"]


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
    from keras_qa.backbones import load_backbone
    from keras_qa.model import QuestionAnsweringModel
    from keras_qa.training import _start_from_a_trained_head

    model = QuestionAnsweringModel(load_backbone(checkpoint))
    _start_from_a_trained_head(model, checkpoint)
    reference = transformers.AutoModelForQuestionAnswering.from_pretrained(checkpoint)
    np.testing.assert_array_equal(
        np.asarray(model.head.dense.kernel), reference.qa_outputs.weight.detach().numpy().T
    )


def test_a_bare_encoder_trains_but_does_not_answer(tmp_path):
    from keras_qa.backbones import load_backbone

    config = transformers.BertConfig(
        vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64,
    )
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + list("abc")))
    assert load_backbone(str(tmp_path)).num_layers == 1  # no pooler needed
    assert not huggingface.has_span_head(str(tmp_path))
    with pytest.raises(ModelFileError, match="without a question-answering head"):
        QuestionAnswerer.from_pretrained(str(tmp_path))


def test_an_unsupported_question_answering_type_is_named(tmp_path):
    config = transformers.ElectraConfig(
        vocab_size=40, embedding_size=16, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
    )
    transformers.ElectraForQuestionAnswering(config).save_pretrained(tmp_path)
    with pytest.raises(ModelFileError, match="'electra'.*bert, distilbert"):
        QuestionAnswerer.from_pretrained(str(tmp_path))


def test_a_folder_without_a_tokenizer_is_refused_clearly(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelFileError, match="no tokenizer found"):
        keras_qa.load_tokenizer(str(tmp_path))


def test_a_model_fine_tuned_from_a_checkpoint_saves_reloads_and_answers(
    checkpoint, tiny_data_file, tmp_path
):
    from keras_qa.training import fine_tune
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


def test_predict_answers_from_a_checkpoint_folder(checkpoint, capsys):
    from keras_qa.predict import main

    context = HARD_TEXTS[0]
    printed = main(["--model", checkpoint, "--question", "What unit?", "--context", context])
    assert printed == QuestionAnswerer.from_pretrained(checkpoint)("What unit?", context)
    assert json.loads(capsys.readouterr().out) == printed
