"""An int8 ONNX Runtime copy of a question-answering model, to answer fast on a CPU.

    QuestionAnsweringModel -> Hugging Face folder (to_huggingface) -> transformers' ONNX export
        -> ONNX Runtime's transformer fusions -> dynamic int8 quantization -> model.onnx (cached)

ONNX Runtime fuses attention, GELU and layer normalisation only in the graph transformers exports with
its "eager" attention; Keras' own ONNX export (tf2onnx) leaves them as dozens of small operations,
and Keras' `model.quantize("int8")` ran slower than float32 on PyTorch and TensorFlow
(docs/performance.md, "Answering engines on a CPU"). The weights are quantized per output channel,
the activations per batch as they come; the products that read GELU's output stay in float32, since their
inputs' outliers cost most of the answers plain dynamic quantization loses.

The conversion needs transformers and torch (the `int8` extra) and runs transformers in a process of
its own (triton, which torch may bring, crashes a process that has loaded TensorFlow). The file is
kept in a cache folder under a digest of the weights, so a model is converted once.
"""

import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from keras_qa.checkpoints.to_huggingface import (
    run_transformers_script,
    save_question_answering_checkpoint,
)
from keras_qa.models.onnx_runtime import INSTALL_HINT, import_onnxruntime
from keras_qa.runtime.cpu import cpu_has_int8_dot_products
from keras_qa.version import __version__

QUANTIZE_CHOICES = ("int8",)
CACHE_VARIABLE = "KERAS_QA_CACHE"
# Changes whenever the recipe below does, so that a cached file of another recipe is not reused.
RECIPE = "fused-eager-attention/per-channel/float32-after-gelu/1"
_GELU_OPERATIONS = ("Gelu", "BiasGelu", "FastGelu", "QuickGelu")

EXPORT_SCRIPT = """
import sys
import torch
import transformers

folder, output, with_segments = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
model = transformers.AutoModelForQuestionAnswering.from_pretrained(
    folder, attn_implementation="eager"
).eval()
names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_segments else [])
sample = [torch.ones((2, 16), dtype=torch.long)] * 2 + [torch.zeros((2, 16), dtype=torch.long)]
axes = {name: {0: "batch", 1: "length"} for name in names + ["start_logits", "end_logits"]}
torch.onnx.export(
    model, tuple(sample[: len(names)]), output, input_names=names,
    output_names=["start_logits", "end_logits"], dynamic_axes=axes, opset_version=17, dynamo=False,
)
"""


def default_cache_folder():
    """Where converted models are kept: `$KERAS_QA_CACHE`, else `~/.cache/keras-qa`."""
    folder = os.environ.get(CACHE_VARIABLE) or os.path.join(
        os.path.expanduser("~"), ".cache", "keras-qa"
    )
    return os.path.join(folder, "int8")


def int8_onnx_model(model, tokenizer, cache_folder=None, refresh=False):
    """The path of an int8 ONNX file that computes `model`'s start and end logits.

    Args:
        model: a `QuestionAnsweringModel` with a BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT
            backbone (what keras-qa trains or loads from Hugging Face).
        tokenizer: its `QATokenizer`.
        cache_folder: where converted files are kept (default: `default_cache_folder()`).
        refresh: convert again even where the cache holds a file (one that would not load).

    Returns:
        The path of `model.onnx` in the cache; its inputs are transformers' names (`input_ids`,
        `attention_mask`, and `token_type_ids` where the model takes segments), int64.
    """
    key = _model_digest(model, import_onnxruntime().__version__)
    folder = os.path.join(cache_folder or default_cache_folder(), key)
    path = os.path.join(folder, "model.onnx")
    if refresh:
        shutil.rmtree(folder, ignore_errors=True)
    if os.path.isfile(path):
        return path
    os.makedirs(os.path.dirname(folder), mode=0o700, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".int8-", dir=os.path.dirname(folder))
    try:
        _convert(model, tokenizer, staging)
        for name in os.listdir(staging):
            if name != "model.onnx":
                _remove(os.path.join(staging, name))
        try:
            os.replace(staging, folder)
        except OSError:  # another process converted the same model meanwhile
            if not os.path.isfile(path):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _model_digest(model, onnxruntime_version):
    """A digest of everything the converted file depends on: weights, configuration, recipe."""
    digest = hashlib.sha256()
    described = {
        "config": model.get_config(),
        "recipe": RECIPE,
        "keras_qa": __version__,
        "onnxruntime": onnxruntime_version,
        "int8_dot_products": cpu_has_int8_dot_products(),
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights, np.float32).tobytes())
    return digest.hexdigest()[:24]


def _convert(model, tokenizer, staging):
    """Write `staging/model.onnx`: export, fuse, quantize."""
    hugging_face = os.path.join(staging, "huggingface")
    save_question_answering_checkpoint(model, tokenizer, hugging_face)
    exported = os.path.join(staging, "float32.onnx")
    with_segments = "segment_ids" in model.input_names
    _export_with_transformers(hugging_face, exported, with_segments)
    with open(os.path.join(hugging_face, "config.json"), encoding="utf-8") as file:
        config = json.load(file)
    fused = os.path.join(staging, "fused.onnx")
    _fuse(exported, fused, config)
    _quantize(fused, os.path.join(staging, "model.onnx"))


def _export_with_transformers(folder, output, with_segments):
    run_transformers_script(
        EXPORT_SCRIPT,
        [folder, output, "1" if with_segments else "0"],
        "quantize='int8' exports the model to ONNX with transformers",
        "the export",
        INSTALL_HINT,
    )


def _fuse(source, output, config):
    """ONNX Runtime's BERT fusions (attention, GELU, layer normalisation) on the exported graph."""
    from onnxruntime.transformers import optimizer

    heads = config.get("num_attention_heads") or config.get("n_heads")
    hidden = config.get("hidden_size") or config.get("dim")
    fused = optimizer.optimize_model(source, model_type="bert", num_heads=heads, hidden_size=hidden)
    fused.save_model_to_file(output)


def _quantize(source, output):
    """Dynamic int8: weights per output channel, activations per batch; what reads GELU stays
    float32. Without VNNI / AMX the weights take 7 bits, so that int8 sums cannot saturate."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(source).graph
    after_gelu = gelu_readers(graph)
    quantize_dynamic(
        source,
        output,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=not cpu_has_int8_dot_products(),
        nodes_to_exclude=after_gelu,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def gelu_readers(graph):
    """The names of the matrix products in an ONNX graph whose input is a GELU's output, fused
    (`Gelu`, `BiasGelu`, ...) or spelled out (`x * 0.5 * (1 + erf(x / sqrt 2))`)."""
    producers = {output: node for node in graph.node for output in node.output}

    def computes_gelu(node, depth=0):
        if node is None or depth > 4:
            return False
        if node.op_type in _GELU_OPERATIONS or node.op_type == "Erf":
            return True
        if node.op_type not in ("Mul", "Add", "Div"):
            return False
        return any(computes_gelu(producers.get(name), depth + 1) for name in node.input)

    return [
        node.name
        for node in graph.node
        if node.op_type in ("MatMul", "Gemm") and computes_gelu(producers.get(node.input[0]))
    ]


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
