import json

import pytest
from tokenizers import Tokenizer, models, processors

from keras_qa.errors import ModelFileError
from keras_qa.text.layouts import PairLayout

SPECIALS = {"[CLS]": 5, "[SEP]": 6, "<s>": 0, "</s>": 2}


def post_processor(processor):
    """The post-processor as `tokenizer.json` stores it."""
    tokenizer = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tokenizer.post_processor = processor
    return json.loads(tokenizer.to_str())["post_processor"]


def encode_pair(processor, question, context):
    """What `tokenizers` builds for a pair of id lists, through the same post-processor."""
    vocabulary = {f"w{i}": i for i in range(100)}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="w1"))
    tokenizer.post_processor = processor
    encoding = tokenizer.encode(
        [f"w{i}" for i in question], [f"w{i}" for i in context], is_pretokenized=True
    )
    return encoding.ids, encoding.type_ids


PROCESSORS = {
    "bert template": processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 5), ("[SEP]", 6)],
    ),
    "bert processing": processors.BertProcessing(("[SEP]", 6), ("[CLS]", 5)),
    "roberta processing": processors.RobertaProcessing(("</s>", 2), ("<s>", 0)),
    "xlm-roberta template": processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    ),
    "sequence": processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=True),
            processors.RobertaProcessing(("</s>", 2), ("<s>", 0)),
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(PROCESSORS))
def test_the_layout_builds_what_the_post_processor_builds(name):
    layout = PairLayout.from_post_processor(post_processor(PROCESSORS[name]))
    question, context = [10, 11, 12], [20, 21]
    ids, type_ids = encode_pair(PROCESSORS[name], question, context)
    window_ids, window_types = layout.window(question, context)
    assert window_ids.tolist() == ids and window_types.tolist() == type_ids
    assert layout.special_token_count == len(ids) - 5
    assert ids[layout.context_position(len(question))] == 20


def test_round_trip_through_config():
    layout = PairLayout.from_post_processor(post_processor(PROCESSORS["roberta processing"]))
    assert PairLayout(**json.loads(json.dumps(layout.get_config()))) == layout
    assert layout != PairLayout.bert(0, 2)


@pytest.mark.parametrize(
    "processor, message",
    [
        (None, "post-processor is missing"),
        (processors.ByteLevel(), "post-processor is ByteLevel"),
        (
            processors.TemplateProcessing(
                single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 2)]
            ),
            "does not start with a special token",
        ),
        (
            processors.TemplateProcessing(
                single="<s> $A", pair="<s> $B:1 </s> $A", special_tokens=[("<s>", 0), ("</s>", 2)]
            ),
            "does not put the first sequence",
        ),
    ],
)
def test_layouts_keras_qa_cannot_use_are_refused(processor, message):
    stored = post_processor(processor) if processor is not None else None
    with pytest.raises(ModelFileError, match=message):
        PairLayout.from_post_processor(stored)
