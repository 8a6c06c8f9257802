import json

from keras_qa.data.distractors import with_distractors
from keras_qa.training.data import RunData, hold_out_articles
from tests.conftest import tiny_article_examples, tiny_settings


def test_distractors_join_the_asked_share_of_paragraphs_and_labels_keep_the_answer(tmp_path):
    path = tmp_path / "articles.jsonl"
    examples = tiny_article_examples(20, seed=1)
    path.write_text("\n".join(json.dumps(e) for e in examples))
    data = {"train": str(path), "eval": None}
    windows = {"max_length": 96, "doc_stride": 32}
    run = RunData(tiny_settings("minilm", data, tmp_path / "a", distractor_share=0.5, **windows))
    plain = RunData(tiny_settings("minilm", data, tmp_path / "b", **windows))
    # Of the half of the questions drawn, those whose article's other paragraph lacks their answer.
    assert run.train_examples == with_distractors(plain.train_examples, 0.5, seed=0)
    joined = [e for e, p in zip(run.train_examples, plain.train_examples) if e != p]
    assert 0 < run.distractors == len(joined) <= 20
    assert run.paragraph_examples == plain.train_examples
    # As many windows (they fit in 96 tokens), longer, every one still labelled with its answer.
    features, plain_features = run.train_features, plain.train_features
    assert len(features["example_index"]) == len(plain_features["example_index"]) == 40
    assert features["padding_mask"].sum() > plain_features["padding_mask"].sum()
    assert (features["start_positions"] > 0).all()
    assert (features["end_positions"] >= features["start_positions"]).all()


def test_held_out_articles_take_all_their_questions_and_only_answerable_ones():
    examples = tiny_article_examples(30, seed=3)
    unanswerable = dict(examples[0], id="none", answers={"text": [], "answer_start": []})
    kept, held_out = hold_out_articles([*examples, unanswerable], 0.1, seed=4)
    held = {e["title"] for e in held_out}
    # Two questions an article (three in the first): articles are drawn until they hold 10% of
    # the 61 questions, so the last one drawn brings them to 6.1 or more.
    held_questions = sum(e["title"] in held for e in [*examples, unanswerable])
    assert 6.1 <= held_questions < 6.1 + 3 and "none" not in {e["id"] for e in held_out}
    assert not held & {e["title"] for e in kept}
    assert len(kept) + len(held_out) + (examples[0]["title"] in held) == len(examples) + 1
    assert hold_out_articles([*examples, unanswerable], 0.1, seed=4) == (kept, held_out)
    assert hold_out_articles(examples, 0.1, seed=5) != (kept, held_out)
    # At most about so many questions: articles stop being drawn once they are reached.
    assert len(hold_out_articles(examples, 0.5, seed=4, max_questions=5)[1]) == 6
    # At least one article, never every one; nothing for a share of none or a single article.
    assert len({e["title"] for e in hold_out_articles(examples, 0.001)[1]}) == 1
    assert len({e["title"] for e in hold_out_articles(examples[:4], 0.99)[0]}) == 1
    assert hold_out_articles(examples, 0.0) == (examples, [])
    assert hold_out_articles(examples[:2], 0.5) == (examples[:2], [])
