"""A tokenizer that also returns character offsets and words, and knows the checkpoint's pair layout.

KerasHub tokenizers return token ids only; extractive question answering needs to know which characters
of the context each token covers, both to label answers and to cut answers back out of the text. This
module's `QATokenizer` is that tokenizer, built with the `tokenizers` library from the checkpoint's own
rules (`keras_qa.checkpoints.tokenizers` reads them from each kind of folder), so that ids are the ones
the checkpoint was trained with. It runs either a Hugging Face `tokenizer.json` as it is (WordPiece,
BPE or Unigram; the pair layout read from its post-processor, `keras_qa.text.layouts`) or WordPiece
rules of its own in one of two styles:

- `"huggingface"`: Hugging Face's `BertTokenizerFast` (`do_lower_case`, `strip_accents`,
  `tokenize_chinese_chars`), so ids and offsets equal a folder's own `tokenizer.json`;
- `"keras_hub"`: KerasHub's WordPiece tokenizer (NFKC case folding when `lowercase`, accents kept unless
  `strip_accents`, control and format characters split words). KerasHub's `BertTokenizer` does not
  strip accents, so an uncased vocabulary maps "café" to [UNK] where Hugging Face maps it to "cafe";
  this reproduces what the checkpoint's tokenizer does. One known difference remains: KerasHub
  case-folds after splitting words, so a punctuation mark that NFKC expands into several ("…" into
  "...") is one word there and several here.

WordPiece tokenizers lay out pairs as BERT does, `[CLS] question [SEP] context [SEP]`.
"""

import json
import os
import reprlib

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from keras_qa.errors import ModelFileError
from keras_qa.files import read_json
from keras_qa.text.layouts import PairLayout

HUGGING_FACE_STYLE = "huggingface"
KERAS_HUB_STYLE = "keras_hub"
# A Hugging Face `tokenizer.json` used as it is (any model type).
TOKENIZER_JSON_STYLE = "tokenizer_json"
TOKENIZER_JSON_FILE = "tokenizer.json"
VOCABULARY_FILE = "vocab.txt"
CONFIG_FILE = "keras_qa_tokenizer.json"


class QATokenizer:
    """Tokenization with character offsets and a pair layout, for extractive question answering.

    The constructor builds a WordPiece tokenizer (BERT's layout); `QATokenizer.from_tokenizer_json`
    takes any Hugging Face fast tokenizer.

    Args:
        vocabulary: a list of tokens (the index is the id) or the path of a `vocab.txt` file.
        lowercase: whether text is lowercased before WordPiece, as the checkpoint was trained.
        strip_accents: whether accents are removed. `None` follows `lowercase` (Hugging Face's rule).
        split_on_cjk: whether each CJK ideograph is a word of its own.
        style: `"huggingface"` to reproduce Hugging Face's `BertTokenizerFast`, `"keras_hub"` to
            reproduce KerasHub's `WordPieceTokenizer` (they differ on accents and case folding).
        unk_token, cls_token, sep_token, pad_token: the special tokens, which must be in the vocabulary.

    Example:
    >>> tokenizer = QATokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s"],
    ...                         lowercase=True)
    >>> ids, offsets = tokenizer.encode(["The cats"])[0]
    >>> ids.tolist(), offsets.tolist()
    ([4, 5, 6], [[0, 3], [4, 7], [7, 8]])
    """

    def __init__(
        self,
        vocabulary,
        lowercase,
        strip_accents=None,
        split_on_cjk=True,
        style=HUGGING_FACE_STYLE,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
    ):
        if style not in (HUGGING_FACE_STYLE, KERAS_HUB_STYLE):
            raise ValueError(f"style must be 'huggingface' or 'keras_hub', got {style!r}")
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = read_vocabulary(vocabulary)
        self.vocabulary = list(vocabulary)
        self.lowercase = bool(lowercase)
        self.strip_accents = strip_accents
        self.split_on_cjk = bool(split_on_cjk)
        self.style = style
        self.unk_token = unk_token
        self.cls_token = cls_token
        self.sep_token = sep_token
        self.pad_token = pad_token
        token_to_id = {}
        for index, token in enumerate(self.vocabulary):
            token_to_id.setdefault(token, index)
        missing = [
            token
            for token in (unk_token, cls_token, sep_token, pad_token)
            if token not in token_to_id
        ]
        if missing:
            raise ModelFileError(
                f"The vocabulary lacks the special token(s) {missing}; a WordPiece vocabulary for "
                "question answering needs [UNK], [CLS], [SEP] and [PAD] (or the names you pass)."
            )
        self.cls_token_id = token_to_id[cls_token]
        self.sep_token_id = token_to_id[sep_token]
        self.pad_token_id = token_to_id[pad_token]
        _check_padding_token(pad_token, self.pad_token_id, self.cls_token_id)
        self.unk_token_id = token_to_id[unk_token]
        self.layout = PairLayout.bert(self.cls_token_id, self.sep_token_id)
        self.hugging_face_config = None
        self._tokenizer = Tokenizer(
            models.WordPiece(token_to_id, unk_token=unk_token, max_input_chars_per_word=100)
        )
        self._tokenizer.normalizer = self._normalizer()
        self._tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    @classmethod
    def from_tokenizer_json(cls, text, pad_token, layout=None, hugging_face_config=None):
        """A tokenizer from a Hugging Face `tokenizer.json` (WordPiece, BPE or Unigram), used as is.

        Args:
            text: the file's content.
            pad_token: the padding token (`tokenizer_config.json`'s `pad_token`).
            layout: a `PairLayout`; default: read from the file's post-processor.
            hugging_face_config: the folder's `tokenizer_config.json` as a dict, written back by
                `save_hugging_face`.
        """
        tokenizer = Tokenizer.from_str(text)
        # Windows are cut and padded here; a truncation or padding saved in the file would cut
        # contexts before they are windowed.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        if layout is None:
            layout = PairLayout.from_post_processor(json.loads(text).get("post_processor"))
        pad_token_id = tokenizer.token_to_id(pad_token)
        if pad_token_id is None:
            raise ModelFileError(f"the padding token {pad_token!r} is not in tokenizer.json")
        _check_padding_token(pad_token, pad_token_id, layout.prefix[0])
        self = cls.__new__(cls)
        self._tokenizer, self.tokenizer_json, self.layout = tokenizer, text, layout
        self.hugging_face_config = dict(hugging_face_config or {})
        self.style = TOKENIZER_JSON_STYLE
        self.pad_token, self.pad_token_id = pad_token, pad_token_id
        self.cls_token_id = layout.prefix[0]
        self.cls_token = tokenizer.id_to_token(self.cls_token_id)
        by_id = sorted(
            tokenizer.get_vocab(with_added_tokens=True).items(), key=lambda item: item[1]
        )
        self.vocabulary = [token for token, _ in by_id]
        return self

    def _normalizer(self):
        if self.style == HUGGING_FACE_STYLE:
            return normalizers.BertNormalizer(
                clean_text=True,
                handle_chinese_chars=self.split_on_cjk,
                strip_accents=self.strip_accents,
                lowercase=self.lowercase,
            )
        # KerasHub's WordPiece: control and format characters are word delimiters, CJK ideographs
        # are split, accents are stripped only when asked, and lowercasing is NFKC case folding.
        steps = [
            normalizers.Replace(Regex(r"[\p{Cc}\p{Cf}]"), " "),
            normalizers.BertNormalizer(
                clean_text=False,
                handle_chinese_chars=self.split_on_cjk,
                strip_accents=bool(self.strip_accents),
                lowercase=False,
            ),
        ]
        if self.lowercase:
            # Case folding is lowercasing plus a few one-to-many and final-form mappings.
            steps += [
                normalizers.NFKC(),
                normalizers.Lowercase(),
                normalizers.Replace("ß", "ss"),
                normalizers.Replace("ς", "σ"),
            ]
        return normalizers.Sequence(steps)

    @property
    def vocabulary_size(self):
        return len(self.vocabulary)

    def encode(self, texts, words=False):
        """Tokenize texts without special tokens.

        Args:
            texts: a list of strings.
            words: also say which tokens continue the word of the token before them.

        Returns:
            A list with, for each text, `(ids, offsets)`: int32 arrays of shape `(n,)` and `(n, 2)`,
            where `offsets[i] = (start, end)` are the characters of the text that token `i` covers;
            with `words`, `(ids, offsets, continues_word)`, the last a boolean array `(n,)` (words
            are the tokenizer's pre-tokens: what Hugging Face's `word_ids` number).

        Raises:
            TypeError: an item of `texts` is not a string (the message gives its index).
            ValueError: a text holds a lone surrogate such as "\\ud800", which is not Unicode text
                (the message gives its index and position).
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings; wrap a single text in a list.")
        texts = list(texts)
        # Checked here, as `tokenizers` would read a pair of strings as a question-context pair.
        if not _STRING_TYPE.issuperset(map(type, texts)):  # at C speed; str subclasses look closer
            _check_texts(texts)
        try:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        except TypeError as error:  # a lone surrogate: `tokenizers` does not say which text
            _check_texts(texts, cause=error)
            raise
        return [_arrays(encoding, words) for encoding in encodings]

    def tokenize(self, text):
        """The token strings of one text (for inspection)."""
        return self._encode_one(text).tokens

    def __call__(self, text):
        """The token ids of one text, without special tokens."""
        return self._encode_one(text).ids

    def _encode_one(self, text):
        if not isinstance(text, str):
            _check_texts([text], single=True)
        try:
            return self._tokenizer.encode(text, add_special_tokens=False)
        except TypeError as error:
            _check_texts([text], cause=error, single=True)
            raise

    def get_config(self):
        if self.style == TOKENIZER_JSON_STYLE:
            return {
                "style": self.style,
                "pad_token": self.pad_token,
                "layout": self.layout.get_config(),
                "hugging_face_config": self.hugging_face_config,
            }
        return {
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "split_on_cjk": self.split_on_cjk,
            "style": self.style,
            "unk_token": self.unk_token,
            "cls_token": self.cls_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
        }

    def save(self, directory):
        """Write `keras_qa_tokenizer.json` and `vocab.txt` (WordPiece) or `tokenizer.json` into
        `directory`."""
        os.makedirs(directory, exist_ok=True)
        if self.style == TOKENIZER_JSON_STYLE:
            with open(os.path.join(directory, TOKENIZER_JSON_FILE), "w", encoding="utf-8") as file:
                file.write(self.tokenizer_json)
        else:
            with open(os.path.join(directory, VOCABULARY_FILE), "w", encoding="utf-8") as file:
                file.writelines(f"{token}\n" for token in self.vocabulary)
        with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as file:
            json.dump(self.get_config(), file, indent=2)

    def save_hugging_face(self, directory, model_max_length=None):
        """Write the tokenizer as transformers' `AutoTokenizer` reads it: `tokenizer.json` (these
        normalization and WordPiece rules, with BERT's pair template `[CLS] q [SEP] c [SEP]` and
        token type ids) and `tokenizer_config.json`; a tokenizer read from a `tokenizer.json` writes
        that file and its folder's `tokenizer_config.json` back.

        Args:
            directory: where to write.
            model_max_length: the model's positions, written so that transformers' pipeline cuts
                windows the model can take (None: leave it out).
        """
        from tokenizers import decoders, processors

        limit = {} if model_max_length is None else {"model_max_length": int(model_max_length)}
        if self.style == TOKENIZER_JSON_STYLE:
            self.save(directory)
            os.remove(os.path.join(directory, CONFIG_FILE))
            with open(
                os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8"
            ) as file:
                json.dump({**self.hugging_face_config, **limit}, file, indent=2)
            return

        tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
        cls, sep = self.cls_token, self.sep_token
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, self.cls_token_id), (sep, self.sep_token_id)],
        )
        tokenizer.decoder = decoders.WordPiece(prefix="##")
        os.makedirs(directory, exist_ok=True)
        tokenizer.save(os.path.join(directory, "tokenizer.json"))
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
            "padding_side": "right",
            "unk_token": self.unk_token,
            "cls_token": cls,
            "sep_token": sep,
            "pad_token": self.pad_token,
            # Read by BertTokenizer-style loaders (keras-qa's included) when not using the file.
            "do_lower_case": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.split_on_cjk,
            **limit,
        }
        if "[MASK]" in self.vocabulary:
            config["mask_token"] = "[MASK]"
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2)

    @classmethod
    def load(cls, directory):
        """Load what `save` wrote."""
        config = read_json(os.path.join(directory, CONFIG_FILE))
        if config.get("style") == TOKENIZER_JSON_STYLE:
            with open(os.path.join(directory, TOKENIZER_JSON_FILE), encoding="utf-8") as file:
                text = file.read()
            layout = PairLayout(**config["layout"])
            return cls.from_tokenizer_json(
                text, config["pad_token"], layout, config.get("hugging_face_config")
            )
        return cls(os.path.join(directory, VOCABULARY_FILE), **config)

    def __repr__(self):
        if self.style == TOKENIZER_JSON_STYLE:
            model = json.loads(self._tokenizer.model.__getstate__()).get("type")
            return f"QATokenizer({model}, vocabulary_size={self.vocabulary_size}, {self.layout})"
        return (
            f"QATokenizer(vocabulary_size={self.vocabulary_size}, lowercase={self.lowercase}, "
            f"strip_accents={self.strip_accents}, style={self.style!r})"
        )


_STRING_TYPE = {str}


def _check_padding_token(pad_token, pad_token_id, first_token_id):
    """Refuse a padding token that is the window's first ("no answer") token: padding would then
    read as "no answer", and the model's padding mask would hide that token."""
    if pad_token_id == first_token_id:
        raise ModelFileError(
            f"the padding token {pad_token!r} (id {pad_token_id}) is the first token of every "
            "window, the one that says 'no answer'; the tokenizer's pad_token must be another"
        )


def _arrays(encoding, words):
    """`(ids, offsets)` or `(ids, offsets, continues_word)` of one `tokenizers` encoding."""
    ids = np.asarray(encoding.ids, dtype=np.int32)
    offsets = np.asarray(encoding.offsets, dtype=np.int32).reshape(-1, 2)
    if not words:
        return ids, offsets
    word_ids = np.asarray([-1 if word is None else word for word in encoding.word_ids])
    continues = np.zeros(len(ids), dtype=bool)
    continues[1:] = (word_ids[1:] == word_ids[:-1]) & (word_ids[1:] >= 0)
    return ids, offsets, continues


def _check_texts(texts, cause=None, single=False):
    """Raise for the first text that `tokenizers` cannot take, saying which text and why.

    A TypeError for an item that is not a string; a ValueError for a lone UTF-16 surrogate (Python
    strings can hold one, from a JSON escape such as "\\ud800", but it is not Unicode text).
    """
    for index, text in enumerate(texts):
        name = "The text" if single else f"texts[{index}]"
        if not isinstance(text, str):
            raise TypeError(
                f"{name} is not a string but {type(text).__name__} {reprlib.repr(text)}; the "
                "tokenizer takes strings."
            ) from cause
        if text.isascii():
            continue
        try:
            text.encode("utf-8")  # surrogates are the only code points UTF-8 cannot encode
        except UnicodeEncodeError as error:
            position = error.start
            raise ValueError(
                f"{name} holds a lone surrogate U+{ord(text[position]):04X} at character "
                f"{position} ({text[max(0, position - 20) : position + 20]!r}), which is not "
                "valid Unicode text and cannot be tokenized; fix or remove it."
            ) from cause


def read_vocabulary(path):
    """The tokens of a `vocab.txt` file, one a line (the line number is the id)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: vocabulary file not found")
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\n").rstrip("\r") for line in file]
