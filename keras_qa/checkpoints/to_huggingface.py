"""A keras-qa model written as a Hugging Face `*ForQuestionAnswering` folder that transformers loads.

The encoder's weights are named and shaped by running KerasHub's own converter backwards: each weight it
would read from a checkpoint is recorded with its reshaping, which is then undone.
"""

import json
import os
import subprocess
import sys

import numpy as np

from keras_qa.checkpoints.from_huggingface import HEAD_BIAS, HEAD_WEIGHT, WEIGHTS_FILE
from keras_qa.errors import ModelFileError


def save_question_answering_checkpoint(model, tokenizer, folder):
    """Write a keras-qa model as a Hugging Face `*ForQuestionAnswering` folder.

    transformers loads the folder with `AutoModelForQuestionAnswering` and `AutoTokenizer`:
    `config.json`, `model.safetensors` (the encoder's weights under transformers' names, the span head
    as `qa_outputs`) and the tokenizer (`tokenizer.json` with the pair template, and
    `tokenizer_config.json`).

    Args:
        model: a `QuestionAnsweringModel` with a KerasHub BERT, DistilBERT, RoBERTa, XLM-RoBERTa or
            ALBERT backbone.
        tokenizer: its `QATokenizer`.
        folder: the folder to write (created; it must not hold a checkpoint already).
    """
    import keras
    from safetensors.numpy import save_file

    config = _transformers_config(model.backbone, tokenizer)
    tensors = _transformers_weights(model.backbone)
    tensors[HEAD_WEIGHT] = np.asarray(keras.ops.convert_to_numpy(model.head.dense.kernel)).T
    tensors[HEAD_BIAS] = np.asarray(keras.ops.convert_to_numpy(model.head.dense.bias))
    os.makedirs(folder, exist_ok=True)
    tensors = {name: np.ascontiguousarray(value, np.float32) for name, value in tensors.items()}
    save_file(tensors, os.path.join(folder, WEIGHTS_FILE), metadata={"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as file:
        json.dump(config, file, indent=2)
    tokenizer.save_hugging_face(folder, model_max_length=model.backbone.max_sequence_length)


def run_transformers_script(script, arguments, purpose, step, install_hint):
    """Run `script` (Python that imports transformers on PyTorch) with `arguments` in a fresh process.

    transformers imports triton where torch brought it, and triton crashes a process that has loaded
    TensorFlow (which KerasHub imports), so transformers never runs in keras-qa's own process.

    Args:
        script: the Python source, reading `sys.argv[1:]`.
        arguments: its command-line arguments (strings).
        purpose: what the script is for, the start of the error message if it fails.
        step: what failed, in that message ("the check", "the export").
        install_hint: what to install, told when the failure is a missing module.
    """
    environment = {**os.environ, "USE_TF": "0", "USE_TORCH": "1", "TRANSFORMERS_VERBOSITY": "error"}
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        env=environment,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        hint = f" ({install_hint})" if "No module named" in done.stderr else ""
        raise RuntimeError(
            f"{purpose}{hint}; {step} failed (exit {done.returncode}): "
            f"{done.stderr.strip()[-1500:]}"
        )


def _transformers_config(backbone, tokenizer):
    """transformers' `config.json` for a KerasHub BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT
    backbone."""
    import keras_hub

    from keras_qa.models.exact_gelu import ExactGeluAlbertBackbone, ExactGeluBertBackbone

    common = {
        "vocab_size": backbone.vocabulary_size,
        "max_position_embeddings": backbone.max_sequence_length,
        "pad_token_id": tokenizer.pad_token_id,
        "initializer_range": 0.02,
    }
    if isinstance(backbone, keras_hub.models.DistilBertBackbone):
        return {
            "architectures": ["DistilBertForQuestionAnswering"],
            "model_type": "distilbert",
            "dim": backbone.hidden_dim,
            "n_layers": backbone.num_layers,
            "n_heads": backbone.num_heads,
            "hidden_dim": backbone.intermediate_dim,
            "activation": "gelu",
            "dropout": backbone.dropout,
            "attention_dropout": backbone.dropout,
            "sinusoidal_pos_embds": False,
            **common,
        }
    family = _export_family(backbone)
    roberta = family["model_type"] in ("roberta", "xlm-roberta")
    exact = isinstance(backbone, (ExactGeluBertBackbone, ExactGeluAlbertBackbone)) or roberta
    encoder = {
        "architectures": [f"{family['class']}ForQuestionAnswering"],
        "model_type": family["model_type"],
        "hidden_size": backbone.hidden_dim,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_dim,
        # KerasHub's own BERT and ALBERT compute the tanh approximation: say so, so that
        # transformers does; RoBERTa's compute the exact GELU.
        "hidden_act": "gelu" if exact else family["approximate_gelu"],
        "type_vocab_size": getattr(backbone, "num_segments", 1),
        "layer_norm_eps": 1e-5 if roberta else 1e-12,
        "hidden_dropout_prob": backbone.dropout,
        "attention_probs_dropout_prob": backbone.dropout,
        **common,
    }
    if roberta:
        encoder["max_position_embeddings"] += family["position_offset"]
        encoder["bos_token_id"] = tokenizer.cls_token_id
        encoder["eos_token_id"] = tokenizer.layout.suffix[-1]
    if family["model_type"] == "albert":
        encoder["embedding_size"] = backbone.embedding_dim
        encoder["num_hidden_groups"] = backbone.num_groups
        encoder["inner_group_num"] = backbone.num_inner_repetitions
    return encoder


def _export_family(backbone):
    """What the export of a BERT-like backbone needs to know: transformers' class and model type,
    KerasHub's converter module, and how many position rows transformers reserves before the first."""
    import keras_hub

    families = [  # subclasses first: XLM-RoBERTa is a RoBERTa in KerasHub
        (
            keras_hub.models.XLMRobertaBackbone,
            "XLMRoberta",
            "xlm-roberta",
            "convert_xlm_roberta",
            2,
        ),
        (keras_hub.models.RobertaBackbone, "Roberta", "roberta", "convert_roberta", 2),
        (keras_hub.models.AlbertBackbone, "Albert", "albert", "convert_albert", 0),
        (keras_hub.models.BertBackbone, "Bert", "bert", "convert_bert", 0),
        (keras_hub.models.DistilBertBackbone, "DistilBert", "distilbert", "convert_distilbert", 0),
    ]
    for backbone_class, name, model_type, converter, offset in families:
        if isinstance(backbone, backbone_class):
            return {
                "class": name,
                "model_type": model_type,
                "converter": converter,
                "position_offset": offset,
                # transformers' two names of the tanh approximation; ALBERT's configs use the first.
                "approximate_gelu": "gelu_new" if model_type == "albert" else "gelu_pytorch_tanh",
            }
    raise ModelFileError(
        "export to Hugging Face format takes BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT "
        f"backbones; this model has a {type(backbone).__name__}"
    )


def _transformers_weights(backbone):
    """The backbone's weights under transformers' names, by running KerasHub's own converter
    backwards: each weight it would read is recorded with its reshaping, which is then undone."""
    import importlib

    import keras

    family = _export_family(backbone)
    converter = importlib.import_module(f"keras_hub.src.utils.transformers.{family['converter']}")
    recorder = _RecordingLoader()
    converter.convert_weights(backbone, recorder, {})
    # transformers' XLM-RoBERTa keeps RoBERTa's weight names.
    prefix = {"xlm-roberta": "roberta."}.get(family["model_type"], f"{family['model_type']}.")
    tensors = {}
    for variable, key, hook in recorder.ports:
        if "pooler" in key.split("."):
            continue  # question-answering checkpoints have no pooler
        name = key if key.startswith(prefix) else prefix + key
        value = keras.ops.convert_to_numpy(variable)
        if family["position_offset"] and key.endswith("position_embeddings.weight"):
            # Rows transformers reserves before the first position (padding) are never read for
            # real tokens; the token type row, folded into the positions on loading, stays there.
            reserved = np.zeros((family["position_offset"], value.shape[1]), value.dtype)
            tensors[name] = np.concatenate([reserved, value])
            tensors[prefix + "embeddings.token_type_embeddings.weight"] = reserved[:1]
            continue
        tensors[name] = _undo_hook(value, key, hook)
    return tensors


def _undo_hook(value, key, hook):
    """The transformers tensor that `hook` (a reshape and / or transpose) turns into `value`."""
    if hook is None:
        return value
    total = value.size
    if key.endswith("bias"):
        shape = (total,)
    elif value.ndim == 3:  # attention projections: square (hidden, hidden) matrices in PyTorch
        side = int(round(total**0.5))
        shape = (side, side)
    elif value.ndim == 2:  # feedforward Linear weights: (out, in) in PyTorch
        shape = value.shape[::-1]
    else:
        shape = (total,)
    probe = np.arange(total).reshape(shape)
    positions = np.asarray(hook(probe, list(value.shape))).reshape(-1)
    if positions.size != total or not np.array_equal(np.sort(positions), np.arange(total)):
        raise ModelFileError(f"cannot map the Keras weight of {key} back to transformers' layout")
    flat = np.empty(total, dtype=value.dtype)
    flat[positions] = value.reshape(-1)
    return flat.reshape(shape)


class _RecordingLoader:
    """Stands in for KerasHub's `SafetensorLoader`: records what would be ported, reads nothing."""

    def __init__(self):
        self.ports = []

    def get_tensor(self, hf_weight_key):
        if hf_weight_key.endswith("token_type_embeddings.weight"):
            # XLM-RoBERTa's converter adds this row into the position embeddings: adding zeros
            # leaves them as they are.
            return np.zeros((1, 1), dtype="float32")
        raise KeyError(hf_weight_key)  # BERT's converter probes the LayerNorm naming this way

    def port_weight(self, keras_variable, hf_weight_key, hook_fn=None):
        self.ports.append((keras_variable, hf_weight_key, hook_fn))
