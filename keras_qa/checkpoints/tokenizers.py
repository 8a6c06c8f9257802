"""A `QATokenizer` built from each kind of checkpoint folder or KerasHub tokenizer.

- Hugging Face folders of byte-level BPE (RoBERTa) and Unigram / SentencePiece (XLM-RoBERTa, ALBERT)
  checkpoints: their `tokenizer.json` as it is, with the pair layout read from its post-processor.
- Hugging Face WordPiece folders (BERT, DistilBERT, and the packaged all-MiniLM-L6-v2): the rules of
  Hugging Face's `BertTokenizerFast` (`do_lower_case`, `strip_accents`, `tokenize_chinese_chars` and the
  special tokens read from the folder). The vocabulary comes from `vocab.txt`, or from `tokenizer.json`
  where a folder has only that (transformers 5 writes no `vocab.txt`).
- KerasHub preset folders and KerasHub `WordPieceTokenizer` objects: the rules of KerasHub's WordPiece
  tokenizer (`keras_qa.text.tokenizer` says how they differ from Hugging Face's).

A folder with a SentencePiece model file but no `tokenizer.json` gets an error that says how to write one.
`keras_qa.checkpoints.loading.load_tokenizer` picks the builder for a model source.
"""

import os

from keras_qa.errors import ModelFileError
from keras_qa.files import read_json, read_json_object
from keras_qa.text.layouts import PairLayout
from keras_qa.text.tokenizer import (
    HUGGING_FACE_STYLE,
    KERAS_HUB_STYLE,
    TOKENIZER_JSON_FILE,
    VOCABULARY_FILE,
    QATokenizer,
    read_vocabulary,
)

# What a Hugging Face repository needs to hold for its tokenizer to be built.
HUGGING_FACE_TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "config.json",
)


SENTENCEPIECE_FILES = ("spiece.model", "sentencepiece.bpe.model", "sentencepiece.model")


def from_hugging_face_folder(folder):
    fast = read_json_object(os.path.join(folder, TOKENIZER_JSON_FILE))
    config = read_json_object(os.path.join(folder, "tokenizer_config.json"))
    if str(config.get("padding_side", "right")).lower() != "right":
        raise ModelFileError(
            f"{folder}/tokenizer_config.json: padding_side is {config['padding_side']!r}; keras-qa "
            "pads windows on the right (as BERT, RoBERTa, XLM-RoBERTa and ALBERT are trained)."
        )
    model_type = (fast.get("model") or {}).get("type")
    if model_type and model_type != "WordPiece":
        return _from_tokenizer_json_folder(folder, config)
    vocabulary = _hugging_face_vocabulary(folder, fast)
    settings = {"lowercase": True, "strip_accents": None, "split_on_cjk": True}
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
        if config.get(name) is not None:
            settings[name] = _special_token(folder, config, name)
    tokenizer = QATokenizer(vocabulary, style=HUGGING_FACE_STYLE, **settings)
    if "post_processor" in fast:
        _check_pair_layout(folder, fast["post_processor"], tokenizer)
    return tokenizer


def _special_token(folder, config, name):
    """A special token of `tokenizer_config.json`: a string, or an AddedToken dict's `content`."""
    value = config[name]
    token = value.get("content") if isinstance(value, dict) else value
    if not isinstance(token, str) or not token:
        raise ModelFileError(
            f"{folder}/tokenizer_config.json: {name} must be a token (a string), found {value!r}"
        )
    return token


def _check_pair_layout(folder, post_processor, tokenizer):
    """Refuse a WordPiece folder whose `tokenizer.json` lays out a pair otherwise than BERT's
    `[CLS] question [SEP] context [SEP]`: windows are cut that way, so they would not be what the
    checkpoint was trained on."""
    path = f"{folder}/{TOKENIZER_JSON_FILE}"
    try:
        layout = PairLayout.from_post_processor(post_processor)
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from error
    if layout != tokenizer.layout:
        raise ModelFileError(
            f"{path}: its post-processor lays out a pair as {layout.describe(tokenizer)}; a "
            f"WordPiece checkpoint's windows are {tokenizer.layout.describe(tokenizer)}"
        )


def _hugging_face_vocabulary(folder, fast):
    """The WordPiece vocabulary of a Hugging Face folder: its vocab.txt, or else the one inside its
    tokenizer.json (transformers 5 saves only that file)."""
    vocabulary_path = os.path.join(folder, VOCABULARY_FILE)
    if os.path.isfile(vocabulary_path):
        return read_vocabulary(vocabulary_path)
    model = fast.get("model") or {}
    if model.get("type") == "WordPiece" and isinstance(model.get("vocab"), dict):
        by_id = sorted(model["vocab"].items(), key=lambda item: item[1])
        if [index for _, index in by_id] != list(range(len(by_id))):
            raise ModelFileError(
                f"{folder}/tokenizer.json: the WordPiece vocabulary's ids are not 0..{len(by_id) - 1}"
            )
        return [token for token, _ in by_id]
    if os.path.isfile(os.path.join(folder, TOKENIZER_JSON_FILE)):
        raise ModelFileError(
            f"{folder}/{TOKENIZER_JSON_FILE}: no tokenizer model in it (no 'model' with a 'type'); "
            "write the file again with the checkpoint's tokenizer."
        )
    present = [name for name in SENTENCEPIECE_FILES if os.path.isfile(os.path.join(folder, name))]
    if present:
        raise ModelFileError(
            f"{folder}: the tokenizer is a SentencePiece model ({present[0]}) without a "
            "tokenizer.json; write one with transformers: AutoTokenizer.from_pretrained(folder)"
            ".save_pretrained(folder)."
        )
    raise ModelFileError(
        f"{folder}: no tokenizer found: neither {VOCABULARY_FILE} nor a tokenizer.json. Add the "
        "checkpoint's tokenizer files to the folder."
    )


def _from_tokenizer_json_folder(folder, config):
    """A BPE or Unigram tokenizer from a Hugging Face folder's `tokenizer.json`."""
    path = os.path.join(folder, TOKENIZER_JSON_FILE)
    with open(path, encoding="utf-8") as file:
        text = file.read()
    pad_token = config.get("pad_token")
    if isinstance(pad_token, dict):  # older files store special tokens as AddedToken dicts
        pad_token = pad_token.get("content")
    if not isinstance(pad_token, str):
        raise ModelFileError(f"{folder}/tokenizer_config.json names no pad_token")
    kept = {name: value for name, value in config.items() if name != "auto_map"}
    try:
        return QATokenizer.from_tokenizer_json(text, pad_token, hugging_face_config=kept)
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from error
    except Exception as error:  # `tokenizers` raises its own exception types for a corrupt file
        raise ModelFileError(f"{path}: not a tokenizer `tokenizers` can read: {error}") from error


def from_keras_hub_folder(folder):
    config = read_json(os.path.join(folder, "tokenizer.json"), missing_ok=True)
    vocabulary_path = os.path.join(folder, "assets", "tokenizer", "vocabulary.txt")
    if config is None or not os.path.isfile(vocabulary_path):
        raise ModelFileError(
            f"{folder}: a KerasHub preset folder needs tokenizer.json and "
            "assets/tokenizer/vocabulary.txt (written by tokenizer.save_to_preset); "
            "from KerasHub presets keras-qa reads WordPiece tokenizers only (other tokenizers: use "
            "the model's Hugging Face folder, with its tokenizer.json)."
        )
    settings = config.get("config", {})
    if "suffix_indicator" not in settings and "lowercase" not in settings:
        raise ModelFileError(
            f"{folder}: the preset's tokenizer ({config.get('class_name')}) is not a WordPiece "
            "tokenizer; from KerasHub presets keras-qa reads WordPiece tokenizers only (RoBERTa, "
            "XLM-RoBERTa, ALBERT: use the model's Hugging Face folder, with its tokenizer.json)."
        )
    return QATokenizer(
        vocabulary_path,
        lowercase=settings.get("lowercase", False),
        strip_accents=settings.get("strip_accents", False),
        split_on_cjk=settings.get("split_on_cjk", True),
        style=KERAS_HUB_STYLE,
        unk_token=settings.get("oov_token", "[UNK]"),
    )


def from_keras_hub_tokenizer(tokenizer):
    vocabulary = tokenizer.vocabulary
    if vocabulary is None or not hasattr(tokenizer, "suffix_indicator"):
        raise ModelFileError(
            f"{type(tokenizer).__name__} is not a WordPiece tokenizer with a vocabulary; of KerasHub "
            "tokenizers keras-qa reads WordPiece ones only (RoBERTa, XLM-RoBERTa, ALBERT: use the "
            "model's Hugging Face folder, with its tokenizer.json)."
        )
    return QATokenizer(
        vocabulary,
        lowercase=tokenizer.lowercase,
        strip_accents=tokenizer.strip_accents,
        split_on_cjk=tokenizer.split_on_cjk,
        style=KERAS_HUB_STYLE,
        unk_token=tokenizer.oov_token,
    )
