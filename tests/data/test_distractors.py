import pytest

from keras_qa.data.distractors import question_words, with_distractors


def example(qid, title, context, question, answer):
    return {
        "id": qid,
        "title": title,
        "context": context,
        "question": question,
        "answers": {"text": [answer], "answer_start": [context.index(answer)]},
    }


ARTICLE = [
    example(
        "q1",
        "rivers",
        "The Rhine flows into the North Sea.",
        "Where does the Rhine flow?",
        "North Sea",
    ),
    # Shares "Rhine" and "flow(s)" with q1's question but not its answer: the hardest distractor.
    example(
        "q2",
        "rivers",
        "The Rhine flows past Basel and Cologne.",
        "What city does it pass?",
        "Basel",
    ),
    # Names q1's answer: never a distractor for q1.
    example(
        "q3",
        "rivers",
        "Ships from the North Sea reach the Rhine.",
        "Where do ships come from?",
        "North Sea",
    ),
    example(
        "q4", "rivers", "Fish swim upstream in spring.", "When do fish swim upstream?", "in spring"
    ),
    example(
        "q5",
        "deserts",
        "The Sahara is hot; the Rhine is far away.",
        "Which desert is hot?",
        "Sahara",
    ),
]


def joined_by_id(examples, share=1.0, seed=0):
    return {e["id"]: e for e in with_distractors(examples, share, seed)}


def test_a_paragraph_is_joined_with_the_hardest_paragraph_of_its_article_without_the_answer():
    first = joined_by_id(ARTICLE)["q1"]
    paragraphs = first["context"].split("\n\n")
    assert sorted(paragraphs) == sorted([ARTICLE[0]["context"], ARTICLE[1]["context"]])
    assert first["question"] == ARTICLE[0]["question"] and first["title"] == "rivers"
    for joined in joined_by_id(ARTICLE).values():
        source = next(e for e in ARTICLE if e["id"] == joined["id"])
        own, *others = joined["context"].split("\n\n")
        if own != source["context"]:
            others, own = [own], others[0]
        assert own == source["context"] and len(others) <= 1
        for other in others:
            assert source["answers"]["text"][0].lower() not in other.lower()
            assert other in {e["context"] for e in ARTICLE if e["title"] == source["title"]}


def test_the_answers_still_point_at_their_text_whichever_side_the_distractor_goes():
    for seed in range(8):
        for joined in with_distractors(ARTICLE, 1.0, seed):
            (text,), (start,) = joined["answers"]["text"], joined["answers"]["answer_start"]
            assert joined["context"][start : start + len(text)] == text
    before = [
        joined_by_id(ARTICLE, seed=seed)["q1"]["context"].startswith("The Rhine flows past")
        for seed in range(8)
    ]
    assert any(before) and not all(before)


def test_an_article_of_one_paragraph_or_an_unanswerable_question_keeps_its_paragraph():
    unanswerable = dict(ARTICLE[3], id="none", answers={"text": [], "answer_start": []})
    joined = joined_by_id([*ARTICLE, unanswerable])
    assert joined["q5"] == ARTICLE[4]
    assert joined["none"] == unanswerable


def test_the_share_sets_how_many_questions_get_one_and_the_seed_which():
    examples = [
        example(f"q{i}", f"t{i // 4}", f"paragraph {i} says {i}x.", f"what does {i} say?", f"{i}x")
        for i in range(40)
    ]

    def changed(share, seed=0):
        joined = with_distractors(examples, share, seed)
        assert [e["id"] for e in joined] == [e["id"] for e in examples]
        return {e["id"] for e, o in zip(joined, examples) if e["context"] != o["context"]}

    assert len(changed(0.25)) == 10
    assert changed(0.25) == changed(0.25)
    assert changed(0.25) != changed(0.25, seed=1)
    assert changed(0.0) == set()
    assert len(changed(1.0)) == 40


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match=r"share must be in \[0, 1\]"):
        with_distractors(ARTICLE, share)


def test_question_words_leave_out_stop_words_and_case():
    assert question_words("What is the Capital of France?") == {"capital", "france"}
