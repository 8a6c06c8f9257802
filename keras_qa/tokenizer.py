"""A WordPiece tokenizer that also returns character offsets.

KerasHub tokenizers return token ids only; extractive question answering needs to know which characters
of the context each token covers, both to label answers and to cut answers back out of the text. This
module builds that tokenizer with the `tokenizers` library from the checkpoint's own vocabulary and casing
rules, so that ids are the ones the checkpoint was trained with:

- Hugging Face folders (BERT, DistilBERT, cased and uncased, and the packaged all-MiniLM-L6-v2): the
  rules of Hugging Face's `BertTokenizerFast` (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars`
  and the special tokens read from the folder), so ids and offsets equal the folder's own
  `tokenizer.json`. The vocabulary comes from `vocab.txt`, or from `tokenizer.json` where a folder has
  only that (transformers 5 writes no `vocab.txt`).
- KerasHub preset folders and KerasHub `WordPieceTokenizer` objects (`BertTokenizer`,
  `DistilBertTokenizer`, ...): the rules of KerasHub's WordPiece tokenizer (NFKC case folding when
  `lowercase`, accents kept unless `strip_accents`, control and format characters split words). Note
  that KerasHub's `BertTokenizer` does not strip accents, so an uncased vocabulary maps "café" to [UNK]
  where Hugging Face maps it to "cafe"; we reproduce what the checkpoint's tokenizer does. One known
  difference remains: KerasHub case-folds after splitting words, so a punctuation mark that NFKC expands
  into several ("…" into "...") is one word there and several here.

Only WordPiece vocabularies are supported (BERT-family encoders: BERT, DistilBERT, MiniLM, ELECTRA-style
checkpoints). Byte-level BPE and SentencePiece models (RoBERTa, ALBERT, DeBERTa-v3) raise a clear error.
"""

import json
import os
import reprlib

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

from keras_qa import sources
from keras_qa.errors import ModelFileError
from keras_qa.files import read_json, read_json_object
from keras_qa.saving import tokenizer_directory

HUGGING_FACE_STYLE = "huggingface"
KERAS_HUB_STYLE = "keras_hub"
VOCABULARY_FILE = "vocab.txt"
CONFIG_FILE = "keras_qa_tokenizer.json"
# What a Hugging Face repository needs to hold for its tokenizer to be built.
HUGGING_FACE_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "config.json")


class QATokenizer:
    """WordPiece tokenization with character offsets, for extractive question answering.

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
            vocabulary = _read_vocabulary(vocabulary)
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
        self.unk_token_id = token_to_id[unk_token]
        self._tokenizer = Tokenizer(
            models.WordPiece(token_to_id, unk_token=unk_token, max_input_chars_per_word=100)
        )
        self._tokenizer.normalizer = self._normalizer()
        self._tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

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

    def encode(self, texts):
        """Tokenize texts without special tokens.

        Args:
            texts: a list of strings.

        Returns:
            A list with, for each text, `(ids, offsets)`: int32 arrays of shape `(n,)` and `(n, 2)`,
            where `offsets[i] = (start, end)` are the characters of the text that token `i` covers.

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
        return [
            (
                np.asarray(encoding.ids, dtype=np.int32),
                np.asarray(encoding.offsets, dtype=np.int32).reshape(-1, 2),
            )
            for encoding in encodings
        ]

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
        """Write `vocab.txt` and `keras_qa_tokenizer.json` into `directory`."""
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, VOCABULARY_FILE), "w", encoding="utf-8") as file:
            file.writelines(f"{token}\n" for token in self.vocabulary)
        with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as file:
            json.dump(self.get_config(), file, indent=2)

    def save_hugging_face(self, directory):
        """Write the tokenizer as transformers' `AutoTokenizer` reads it: `tokenizer.json` (these
        normalization and WordPiece rules, with BERT's pair template `[CLS] q [SEP] c [SEP]` and
        token type ids) and `tokenizer_config.json`."""
        from tokenizers import decoders, processors

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
        }
        if "[MASK]" in self.vocabulary:
            config["mask_token"] = "[MASK]"
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as file:
            json.dump(config, file, indent=2)

    @classmethod
    def load(cls, directory):
        """Load what `save` wrote."""
        config = read_json(os.path.join(directory, CONFIG_FILE))
        return cls(os.path.join(directory, VOCABULARY_FILE), **config)

    def __repr__(self):
        return (
            f"QATokenizer(vocabulary_size={self.vocabulary_size}, lowercase={self.lowercase}, "
            f"strip_accents={self.strip_accents}, style={self.style!r})"
        )


_STRING_TYPE = {str}


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


def load_tokenizer(model):
    """Build the offsets-capable tokenizer of a checkpoint.

    Args:
        model: a model source as `keras_qa.backbones.resolve_model_source` accepts it (`"minilm"`, a local
            Hugging Face folder, a local KerasHub preset folder, a KerasHub preset name, `hf://org/name`,
            a directory written by `keras_qa.train`), a KerasHub `WordPieceTokenizer`, or a
            `QATokenizer` (returned as is).

    Returns:
        A `QATokenizer`.

    Example:
    >>> tokenizer = load_tokenizer("minilm")
    >>> tokenizer.tokenize("Café au lait")
    ['cafe', 'au', 'lai', '##t']
    """
    if isinstance(model, QATokenizer):
        return model
    if hasattr(model, "vocabulary") and hasattr(model, "lowercase"):
        return _from_keras_hub_tokenizer(model)
    source = sources.resolve_model_source(model)
    if source.kind == "keras_qa":
        return QATokenizer.load(tokenizer_directory(source.location))
    if source.kind == "huggingface_folder":
        return _from_hugging_face_folder(source.location)
    if source.kind == "keras_hub_folder":
        return _from_keras_hub_folder(source.location)
    if source.kind == "hf_hub":
        folder = sources.download_hugging_face_files(source.location, HUGGING_FACE_TOKENIZER_FILES)
        return _from_hugging_face_folder(folder)
    # A KerasHub preset name: KerasHub downloads it and knows its tokenizer class.
    return _from_keras_hub_tokenizer(sources.keras_hub_preset_tokenizer(source.location))


def _read_vocabulary(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: vocabulary file not found")
    with open(path, encoding="utf-8") as file:
        return [line.rstrip("\n").rstrip("\r") for line in file]


def _from_hugging_face_folder(folder):
    fast = read_json_object(os.path.join(folder, "tokenizer.json"))
    vocabulary = _hugging_face_vocabulary(folder, fast)
    settings = {"lowercase": True, "strip_accents": None, "split_on_cjk": True}
    config = read_json_object(os.path.join(folder, "tokenizer_config.json"))
    if "do_lower_case" in config:
        settings["lowercase"] = bool(config["do_lower_case"])
    if "strip_accents" in config:
        settings["strip_accents"] = config["strip_accents"]
    if "tokenize_chinese_chars" in config:
        settings["split_on_cjk"] = bool(config["tokenize_chinese_chars"])
    # The fast tokenizer's own normalizer, where present, is what the checkpoint really runs.
    normalizer = fast.get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer":
        settings["lowercase"] = bool(normalizer.get("lowercase", settings["lowercase"]))
        settings["strip_accents"] = normalizer.get("strip_accents", settings["strip_accents"])
        settings["split_on_cjk"] = bool(
            normalizer.get("handle_chinese_chars", settings["split_on_cjk"])
        )
    for name in ("unk_token", "cls_token", "sep_token", "pad_token"):
        if isinstance(config.get(name), str):
            settings[name] = config[name]
    return QATokenizer(vocabulary, style=HUGGING_FACE_STYLE, **settings)


def _hugging_face_vocabulary(folder, fast):
    """The WordPiece vocabulary of a Hugging Face folder: its vocab.txt, or else the one inside its
    tokenizer.json (transformers 5 saves only that file)."""
    vocabulary_path = os.path.join(folder, VOCABULARY_FILE)
    if os.path.isfile(vocabulary_path):
        return _read_vocabulary(vocabulary_path)
    model = fast.get("model") or {}
    if model.get("type") == "WordPiece" and isinstance(model.get("vocab"), dict):
        by_id = sorted(model["vocab"].items(), key=lambda item: item[1])
        if [index for _, index in by_id] != list(range(len(by_id))):
            raise ModelFileError(
                f"{folder}/tokenizer.json: the WordPiece vocabulary's ids are not 0..{len(by_id) - 1}"
            )
        return [token for token, _ in by_id]
    if model.get("type"):
        raise ModelFileError(
            f"{folder}: this checkpoint uses a {model['type']} tokenizer, which is not supported: "
            "keras-qa builds WordPiece tokenizers (BERT, DistilBERT, MiniLM) only."
        )
    raise ModelFileError(
        f"{folder}: no tokenizer found: neither {VOCABULARY_FILE} nor a tokenizer.json with a "
        "WordPiece model. Add the checkpoint's tokenizer files to the folder."
    )


def _from_keras_hub_folder(folder):
    config = read_json(os.path.join(folder, "tokenizer.json"), missing_ok=True)
    vocabulary_path = os.path.join(folder, "assets", "tokenizer", "vocabulary.txt")
    if config is None or not os.path.isfile(vocabulary_path):
        raise ModelFileError(
            f"{folder}: a KerasHub preset folder needs tokenizer.json and "
            "assets/tokenizer/vocabulary.txt (written by tokenizer.save_to_preset); "
            "only WordPiece tokenizers are supported."
        )
    settings = config.get("config", {})
    if "suffix_indicator" not in settings and "lowercase" not in settings:
        raise ModelFileError(
            f"{folder}: the preset's tokenizer ({config.get('class_name')}) is not a WordPiece "
            "tokenizer; keras-qa supports BERT-family WordPiece vocabularies only."
        )
    return QATokenizer(
        vocabulary_path,
        lowercase=settings.get("lowercase", False),
        strip_accents=settings.get("strip_accents", False),
        split_on_cjk=settings.get("split_on_cjk", True),
        style=KERAS_HUB_STYLE,
        unk_token=settings.get("oov_token", "[UNK]"),
    )


def _from_keras_hub_tokenizer(tokenizer):
    vocabulary = tokenizer.vocabulary
    if vocabulary is None or not hasattr(tokenizer, "suffix_indicator"):
        raise ModelFileError(
            f"{type(tokenizer).__name__} is not a WordPiece tokenizer with a vocabulary; keras-qa "
            "supports BERT-family WordPiece vocabularies only."
        )
    return QATokenizer(
        vocabulary,
        lowercase=tokenizer.lowercase,
        strip_accents=tokenizer.strip_accents,
        split_on_cjk=tokenizer.split_on_cjk,
        style=KERAS_HUB_STYLE,
        unk_token=tokenizer.oov_token,
    )
