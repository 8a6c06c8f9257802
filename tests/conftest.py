"""Helpers the test files share: small examples, the tiny model's words and its training settings.

The fixtures themselves live in the repository's root `conftest.py`, so that the docstring examples
in `keras_qa/` can use them too.
"""


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


def tiny_article_examples(articles, seed=0):
    """Synthetic articles of two paragraphs for long contexts: in one the cat runs somewhere (and the
    dog sits), in the other the dog runs (and the cat sits). One question per paragraph ("where did
    the cat run ?"), answered there and nowhere else in its article, so that the other paragraph's
    windows truly do not hold the answer. Each paragraph is a `tiny_squad_examples` context with up
    to 24 filler words first."""
    import random

    rng = random.Random(seed)
    places = ["paris", "london", "the park", "a big red house", "the city"]

    def filler(most):
        return " ".join(
            rng.choice(["the", "big", "red", "blue", "mat"]) for _ in range(rng.randint(0, most))
        )

    examples = []
    for article in range(articles):
        for runner in rng.sample(["cat", "dog"], 2):
            sitter = "dog" if runner == "cat" else "cat"
            run_to, sit_in = rng.sample(places, 2)
            # Filler of any length first, so that no position in a window tells the answer.
            context = f"{filler(24)} the {runner} ran to {run_to} . the {sitter} sat in {sit_in} ."
            start = context.index(f"{runner} ran to {run_to}") + len(f"{runner} ran to ")
            examples.append(
                {
                    "id": f"a{article}-{runner}",
                    "title": f"article {article}",
                    "context": context,
                    "question": f"where did the {runner} run ?",
                    "answers": {"text": [run_to], "answer_start": [start]},
                }
            )
    return examples


def tiny_settings(tiny_preset, tiny_data, output_dir, **changes):
    """`TrainSettings` of a few-second run of the tiny BERT on `tiny_data` ({"train", "eval"} paths),
    without distractors or calibration unless `changes` ask for them."""
    from keras_qa.training.settings import TrainSettings

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
        # Paragraphs only and no held-out calibration questions: a few dozen synthetic questions
        # teach the tiny model what the tests ask of it; the tests of distractors and calibration
        # set them.
        distractor_share=0.0,
        calibration_share=0.0,
    )
    return TrainSettings(**(base | changes))


class Crash(Exception):
    """What `CrashAt` raises: a stand-in for a process that dies mid-training."""


def CrashAt(step):  # noqa: N802 - used like a class
    """A Keras callback that raises `Crash` after the `step`-th training step it sees."""
    import keras

    class _CrashAt(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seen = 0

        def on_train_batch_end(self, batch, logs=None):
            self.seen += 1
            if self.seen == step:
                raise Crash(f"crash after step {step}")

    return _CrashAt()


def run_python(code, backend="jax", devices=None, env=None):
    """Run `code` in a fresh interpreter (a backend and a device count are fixed at start)."""
    import os
    import subprocess
    import sys

    environment = {**os.environ, "KERAS_BACKEND": backend, **(env or {})}
    if devices:
        environment["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=300
    )


# Texts of many scripts, for comparing tokenizers with their references.
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
