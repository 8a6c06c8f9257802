"""How a checkpoint lays out a question and a context in one window: special tokens and token types.

Each model family was trained with its own pair template: BERT, DistilBERT and ALBERT
`[CLS] question [SEP] context [SEP]` with token type 0 up to the first [SEP] and 1 after it; RoBERTa and
XLM-RoBERTa `<s> question </s></s> context </s>` with no token types. A Hugging Face `tokenizer.json`
states it in its post-processor; `PairLayout.from_post_processor` reads it from there, so windows are
built the way the checkpoint was trained rather than by BERT's rules.

keras-qa puts the "no answer" label on the window's first token (run_qa.py's `cls_index`), so a layout
must start with a special token (every one of these families does).
"""

import numpy as np

from keras_qa.errors import ModelFileError

# Where a window keeps its "no answer" token, the label of a window that does not hold the answer.
CLS_INDEX = 0


class PairLayout:
    """The special tokens around a question and a context, and the token type of each part.

    Args:
        prefix: ids of the special tokens before the question (at least one: the "no answer" token).
        middle: ids between the question and the context.
        suffix: ids after the context.
        prefix_types, middle_types, suffix_types: the token type of each of those tokens (default 0).
        question_type, context_type: the token type of the question's and the context's tokens.

    Example:
    >>> layout = PairLayout.bert(cls_id=101, sep_id=102)
    >>> token_ids, type_ids = layout.window([7, 8], [9])
    >>> token_ids.tolist(), type_ids.tolist()
    ([101, 7, 8, 102, 9, 102], [0, 0, 0, 0, 1, 1])
    """

    def __init__(
        self,
        prefix,
        middle,
        suffix,
        prefix_types=None,
        middle_types=None,
        suffix_types=None,
        question_type=0,
        context_type=1,
    ):
        self.prefix, self.middle, self.suffix = list(prefix), list(middle), list(suffix)
        if not self.prefix:
            raise ModelFileError(
                "the tokenizer's pair template does not start with a special token; keras-qa labels "
                "'no answer' on a window's first token ([CLS] or <s>), so it needs one there."
            )
        self.prefix_types = list(prefix_types or [0] * len(self.prefix))
        self.middle_types = list(middle_types or [0] * len(self.middle))
        self.suffix_types = list(suffix_types or [0] * len(self.suffix))
        self.question_type, self.context_type = int(question_type), int(context_type)
        part_types = [*self.prefix_types, self.question_type, *self.middle_types]
        self._question_part, self._context_part = len(self.prefix), len(part_types)
        part_types += [self.context_type, *self.suffix_types]
        self._part_types = np.asarray(part_types, dtype=np.int32)

    @classmethod
    def bert(cls, cls_id, sep_id):
        """`[CLS] question [SEP] context [SEP]`, token types 0 then 1 (BERT, DistilBERT, ALBERT)."""
        return cls([cls_id], [sep_id], [sep_id], suffix_types=[1])

    @classmethod
    def from_post_processor(cls, post_processor):
        """The layout a `tokenizer.json` post-processor (a dict) builds for a pair.

        Takes `TemplateProcessing`, `BertProcessing`, `RobertaProcessing`, and a `Sequence` holding one
        of them; anything else raises a `ModelFileError` naming what was found.
        """
        kind = (post_processor or {}).get("type")
        if kind == "Sequence":
            found = [
                step
                for step in post_processor.get("processors", [])
                if step.get("type") in ("TemplateProcessing", "BertProcessing", "RobertaProcessing")
            ]
            if len(found) == 1:
                return cls.from_post_processor(found[0])
        if kind == "BertProcessing":
            return cls.bert(post_processor["cls"][1], post_processor["sep"][1])
        if kind == "RobertaProcessing":
            cls_id, sep_id = post_processor["cls"][1], post_processor["sep"][1]
            return cls([cls_id], [sep_id, sep_id], [sep_id], context_type=0)
        if kind == "TemplateProcessing":
            return _from_template(cls, post_processor)
        raise ModelFileError(
            f"the tokenizer's post-processor is {kind or 'missing'}; keras-qa reads the pair layout "
            "from a TemplateProcessing, BertProcessing or RobertaProcessing post-processor."
        )

    @property
    def special_token_count(self):
        """Special tokens per window."""
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def context_position(self, question_length):
        """Where the context's first token goes, after a question of `question_length` tokens."""
        return len(self.prefix) + question_length + len(self.middle)

    def window(self, question, context):
        """One window before padding: `(token_ids, type_ids)`, int32 arrays, from the question's and
        the context's token ids."""
        parts = [self.prefix, question, self.middle, context, self.suffix]
        token_ids = np.concatenate(parts, dtype=np.int32, casting="unsafe")
        # One type per special token, one for all the question's and one for all the context's.
        lengths = np.ones(len(self._part_types), dtype=np.int64)
        lengths[self._question_part], lengths[self._context_part] = len(question), len(context)
        return token_ids, np.repeat(self._part_types, lengths)

    def describe(self, tokenizer):
        """The layout in words, with `tokenizer`'s token strings: `[CLS] question [SEP] context
        [SEP]`."""

        def tokens(ids):
            return [
                tokenizer.vocabulary[i] if 0 <= i < len(tokenizer.vocabulary) else str(i)
                for i in ids
            ]

        parts = [
            *tokens(self.prefix),
            "question",
            *tokens(self.middle),
            "context",
            *tokens(self.suffix),
        ]
        return " ".join(parts)

    def get_config(self):
        return {
            "prefix": self.prefix,
            "middle": self.middle,
            "suffix": self.suffix,
            "prefix_types": self.prefix_types,
            "middle_types": self.middle_types,
            "suffix_types": self.suffix_types,
            "question_type": self.question_type,
            "context_type": self.context_type,
        }

    def __eq__(self, other):
        return isinstance(other, PairLayout) and self.get_config() == other.get_config()

    def __repr__(self):
        return f"PairLayout({self.get_config()})"


def _from_template(cls, template):
    """A `TemplateProcessing` pair template, such as `[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1`."""
    special = template.get("special_tokens") or {}
    parts = {"prefix": [], "middle": [], "suffix": []}
    types = {"prefix": [], "middle": [], "suffix": []}
    sequence_types = {}
    where = "prefix"
    for item in template.get("pair") or []:
        if "Sequence" in item:
            name = item["Sequence"]["id"]
            if name in sequence_types or (name == "B") != ("A" in sequence_types):
                raise ModelFileError(
                    f"the tokenizer's pair template {template.get('pair')} does not put the first "
                    "sequence (the question) before the second (the context) once each."
                )
            sequence_types[name] = item["Sequence"].get("type_id", 0)
            where = "middle" if name == "A" else "suffix"
            continue
        token = item["SpecialToken"]
        ids = special.get(token["id"], {}).get("ids")
        if not ids:
            raise ModelFileError(
                f"the tokenizer's pair template uses {token['id']!r}, which its special_tokens do "
                "not define."
            )
        parts[where] += list(ids)
        types[where] += [token.get("type_id", 0)] * len(ids)
    if set(sequence_types) != {"A", "B"}:
        raise ModelFileError("the tokenizer's pair template does not hold both $A and $B.")
    return cls(
        parts["prefix"],
        parts["middle"],
        parts["suffix"],
        types["prefix"],
        types["middle"],
        types["suffix"],
        question_type=sequence_types["A"],
        context_type=sequence_types["B"],
    )
