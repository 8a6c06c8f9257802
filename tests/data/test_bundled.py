import pytest

import keras_qa


def test_bundled_splits_are_disjoint_articles_with_the_documented_counts():
    train = keras_qa.load_examples("bundled", split="train")
    evaluation = keras_qa.load_examples("bundled", split="eval")
    everything = keras_qa.load_examples("bundled")
    assert (len(train), len(evaluation), len(everything)) == (8582, 1988, 10570)
    assert {e["title"] for e in train}.isdisjoint({e["title"] for e in evaluation})
    assert [e["id"] for e in everything] == [e["id"] for e in train + evaluation]
    assert len({e["id"] for e in everything}) == 10570
    for example in everything:
        for text, start in zip(example["answers"]["text"], example["answers"]["answer_start"]):
            assert example["context"][start : start + len(text)] == text


def test_bundled_split_names_are_checked():
    with pytest.raises(ValueError, match="Unknown split 'validation'"):
        keras_qa.load_examples("bundled", split="validation")


def test_bundled_data_carries_its_license():
    readme = keras_qa.data.bundled.bundled_path().replace("squad-v1.1-dev.json.gz", "README.md")
    with open(readme, encoding="utf-8") as file:
        text = file.read()
    assert "CC BY-SA 4.0" in text and "Rajpurkar" in text


def test_the_long_split_puts_each_paragraph_inside_its_neighbours():
    short = keras_qa.load_examples("bundled", split="eval")
    long = keras_qa.load_examples("bundled", split="eval-long")
    assert [e["id"] for e in long] == [e["id"] for e in short]
    for a, b in zip(short, long):
        assert a["question"] == b["question"] and a["answers"]["text"] == b["answers"]["text"]
        assert a["context"] in b["context"]
        shift = b["context"].index(a["context"])
        for text, start, moved in zip(
            a["answers"]["text"], a["answers"]["answer_start"], b["answers"]["answer_start"]
        ):
            assert moved == start + shift
            assert b["context"][moved : moved + len(text)] == text  # the offsets cut the answers
    mean_words = sum(len(e["context"].split()) for e in long) / len(long)
    assert mean_words > 5 * sum(len(e["context"].split()) for e in short) / len(short)
    assert keras_qa.load_examples("bundled", split="eval-long") == long  # deterministic
    with pytest.raises(ValueError, match="'eval-long'"):
        keras_qa.load_examples("bundled", split="dev-long")


def test_the_v2_split_adds_an_unanswerable_copy_of_each_question():
    from keras_qa.data.bundled import with_unanswerable_copies
    from keras_qa.evaluation.squad_metrics import squad_version

    answerable = keras_qa.load_examples("bundled", split="eval")
    mixed = keras_qa.load_examples("bundled", split="eval-v2")
    assert mixed[::2] == answerable and len(mixed) == 2 * len(answerable)
    assert squad_version(mixed) == 2 and len({e["id"] for e in mixed}) == len(mixed)
    titles = {e["context"]: e["title"] for e in answerable}
    for original, copy in zip(mixed[::2], mixed[1::2]):
        assert copy["id"] == original["id"] + "-unanswerable" and copy["answers"]["text"] == []
        assert copy["question"] == original["question"]
        assert titles[copy["context"]] != original["title"]  # another article's paragraph
    with pytest.raises(ValueError, match="one title found"):
        with_unanswerable_copies([answerable[0]])
