import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

import keras_qa  # noqa: E402


@pytest.fixture(scope="session")
def minilm_tokenizer():
    return keras_qa.load_tokenizer("minilm")


@pytest.fixture(scope="session")
def bundled_examples():
    return keras_qa.load_examples("bundled")


def make_example(context, question, answer=None, answer_start=None, qid="q0"):
    """A one-question example; the answer's start is found in the context unless given."""
    if answer is None:
        answers = {"text": [], "answer_start": []}
    else:
        start = context.index(answer) if answer_start is None else answer_start
        answers = {"text": [answer], "answer_start": [start]}
    return {"id": qid, "title": "", "context": context, "question": question, "answers": answers}


TINY_WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "dog",
    "ran",
    "to",
    "park",
    "where",
    "did",
    "who",
    "what",
    "a",
    "big",
    "red",
    "blue",
    "house",
    "in",
    "city",
    "paris",
    "london",
    "is",
    "capital",
    "of",
    "france",
    "england",
    "?",
    ".",
    ",",
]


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A tiny random BERT saved as a KerasHub preset folder (backbone and tokenizer)."""
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + TINY_WORDS
    folder = str(tmp_path_factory.mktemp("tiny_preset"))
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=128,
        dropout=0.0,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone.save_to_preset(folder)
    tokenizer.save_to_preset(folder)
    return folder


def tiny_squad_examples(count, seed=0):
    """Synthetic questions whose answer is a city in a short context."""
    import random

    rng = random.Random(seed)
    cities = ["paris", "london", "the park", "a big red house", "the city"]
    animals = ["cat", "dog"]
    examples = []
    for i in range(count):
        city = rng.choice(cities)
        animal = rng.choice(animals)
        other = rng.choice([c for c in cities if c != city])
        filler = " ".join(
            rng.choice(["the", "big", "red", "blue", "mat"]) for _ in range(rng.randint(0, 6))
        )
        other_animal = "dog" if animal == "cat" else "cat"
        context = f"{filler} the {animal} ran to {city} . the {other_animal} sat in {other} ."
        question = f"where did the {animal} run ?"
        start = context.index(f"to {city}") + 3
        examples.append(
            {
                "id": f"t{i}",
                "title": "",
                "context": context,
                "question": question,
                "answers": {"text": [city], "answer_start": [start]},
            }
        )
    return examples


def tiny_settings(tiny_preset, tiny_data, output_dir, **changes):
    """`TrainSettings` of a few-second run of the tiny BERT on `tiny_data` ({"train", "eval"} paths)."""
    from keras_qa.training import TrainSettings

    base = dict(
        model=tiny_preset,
        train_data=tiny_data["train"],
        eval_data=tiny_data["eval"],
        max_length=48,
        doc_stride=16,
        epochs=2,
        batch_size=8,
        learning_rate=3e-3,
        warmup=0.1,
        dropout=0.0,
        mixed_precision="off",
        output_dir=str(output_dir),
        checkpoint_every=2,
        bucket_width=16,
        eval_batch_size=8,
    )
    return TrainSettings(**(base | changes))


@pytest.fixture(scope="session")
def tiny_trained_model(tiny_preset, tmp_path_factory):
    """A directory written by `fine_tune`: the tiny BERT trained on synthetic "where did ..." data."""
    import json

    from keras_qa.training import fine_tune

    folder = tmp_path_factory.mktemp("trained")
    data = folder / "train.jsonl"
    data.write_text("\n".join(json.dumps(e) for e in tiny_squad_examples(48, 0)))
    data_paths = {"train": str(data), "eval": None}
    settings = tiny_settings(
        tiny_preset, data_paths, folder / "model", epochs=3, checkpoint_every=0
    )
    fine_tune(settings, verbose=0)
    return str(folder / "model")
