"""Tiny random Hugging Face question-answering checkpoints of the five architectures, built offline.

Each is a `*ForQuestionAnswering` model written by transformers' `save_pretrained`, with a real fast
tokenizer saved by the architecture's own tokenizer class: BERT and DistilBERT with MiniLM's WordPiece
vocabulary, RoBERTa with a byte-level BPE, XLM-RoBERTa and ALBERT with a Unigram (SentencePiece)
model, the last three trained here with `tokenizers` on the bundled SQuAD text. The `qa_outputs`
weights are scaled up so that the best answers are not near ties. transformers and torch are imported
when a checkpoint is built, so that importing this module costs nothing.
"""

import functools
import os

ARCHITECTURES = ("bert", "distilbert", "roberta", "xlm-roberta", "albert")
# Positions of every checkpoint (RoBERTa-style models reserve two more rows, see `_config`).
POSITIONS = 128
HEAD_SCALE = 20.0
VOCABULARY_SIZE = 1500


@functools.lru_cache(maxsize=1)
def _training_text():
    from keras_qa.data.examples import load_examples

    examples = load_examples("bundled", split="train")
    contexts = sorted({example["context"] for example in examples})
    return contexts[:600] + [example["question"] for example in examples[:3000]]


def _byte_level_bpe(special_tokens):
    """`(vocab, merges)` of a byte-level BPE trained on the bundled text."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCABULARY_SIZE,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(), trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [
        tuple(merge.split(" ") if isinstance(merge, str) else merge) for merge in model["merges"]
    ]
    return model["vocab"], merges


def _unigram(special_tokens, lowercase):
    """`[(piece, score), ...]` of a Unigram (SentencePiece) model trained on the bundled text."""
    import json

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    steps = [normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()]
    tokenizer.normalizer = normalizers.Sequence(steps if lowercase else [normalizers.NFKC()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=VOCABULARY_SIZE,
        special_tokens=special_tokens,
        unk_token="<unk>",
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(), trainer)
    return [tuple(piece) for piece in json.loads(tokenizer.to_str())["model"]["vocab"]]


def build_tokenizer(architecture):
    """The architecture's own transformers tokenizer class, with a vocabulary for the tests.

    transformers 5's classes build their `tokenizers` pipeline from a vocabulary; transformers 4's
    fast classes take one built here the same way (`_pipeline_for_transformers_4`)."""
    import transformers

    import keras_qa

    length = {"model_max_length": POSITIONS}
    if architecture in ("bert", "distilbert"):
        vocabulary = os.path.join(keras_qa.minilm_path(), "vocab.txt")
        wordpiece_class = {
            "bert": transformers.BertTokenizerFast,
            "distilbert": transformers.DistilBertTokenizerFast,  # no token type ids
        }[architecture]
        return wordpiece_class(vocabulary, do_lower_case=True, **length)
    if architecture == "roberta":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        vocabulary = _byte_level_bpe(special)
    elif architecture == "xlm-roberta":
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        vocabulary = _unigram(special, lowercase=False)
    else:
        special = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
        vocabulary = _unigram(special, lowercase=True)
    fast_class = {
        "roberta": transformers.RobertaTokenizerFast,
        "xlm-roberta": transformers.XLMRobertaTokenizerFast,
        "albert": transformers.AlbertTokenizerFast,
    }[architecture]
    if int(transformers.__version__.split(".")[0]) < 5:
        pipeline = _pipeline_for_transformers_4(architecture, vocabulary)
        return fast_class(tokenizer_object=pipeline, **length)
    if architecture == "roberta":
        return fast_class(vocab=vocabulary[0], merges=vocabulary[1], **length)
    return fast_class(vocab=vocabulary, **length)


def _pipeline_for_transformers_4(architecture, vocabulary):
    """The `tokenizers` pipeline transformers 5's tokenizer class builds for `architecture`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    if architecture == "roberta":
        tokenizer = Tokenizer(models.BPE(*vocabulary))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
        return tokenizer
    unknown = [piece for piece, _ in vocabulary].index("<unk>")
    tokenizer = Tokenizer(models.Unigram(vocabulary, unk_id=unknown, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(prepend_scheme="always")
    if architecture == "xlm-roberta":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>",
            pair="<s> $A </s> </s> $B </s>",
            special_tokens=[("<s>", 0), ("</s>", 2)],
        )
        return tokenizer
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFKD(),
            normalizers.StripAccents(),
            normalizers.Lowercase(),
        ]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tokenizer


def _config(architecture, tokenizer, changes):
    import transformers

    size = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "initializer_range": 0.2,
        "max_position_embeddings": POSITIONS,
        "pad_token_id": tokenizer.pad_token_id,
    }
    size.update(changes)
    if architecture == "bert":
        return transformers.BertConfig(**size)
    if architecture == "distilbert":
        return transformers.DistilBertConfig(
            vocab_size=size["vocab_size"],
            dim=32,
            n_layers=2,
            n_heads=2,
            hidden_dim=64,
            initializer_range=0.2,
            max_position_embeddings=POSITIONS,
        )
    if architecture == "albert":
        return transformers.AlbertConfig(embedding_size=16, **size)
    # RoBERTa's positions start after the padding index: two rows more for the same length; its
    # real checkpoints (and KerasHub) use this LayerNorm epsilon, not the config class's default.
    size["max_position_embeddings"] = POSITIONS + 2
    size["layer_norm_eps"] = 1e-5
    config_class = {
        "roberta": transformers.RobertaConfig,
        "xlm-roberta": transformers.XLMRobertaConfig,
    }
    return config_class[architecture](bos_token_id=0, eos_token_id=2, **size)


def build_checkpoint(folder, architecture, **config_changes):
    """Write a tiny random `*ForQuestionAnswering` checkpoint and its tokenizer into `folder`
    (`config_changes`: config values to replace, such as `hidden_act="gelu"`; not for DistilBERT)."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = build_tokenizer(architecture)
    config = _config(architecture, tokenizer, config_changes)
    model = transformers.AutoModelForQuestionAnswering.from_config(config)
    with torch.no_grad():
        model.qa_outputs.weight.mul_(HEAD_SCALE)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
