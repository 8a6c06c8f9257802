"""Export a trained model for serving outside Python's Keras: a TensorFlow SavedModel, ONNX, or a
Hugging Face transformers checkpoint (`python -m keras_qa.export` is the command line over it).

`huggingface` writes a `*ForQuestionAnswering` folder (BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT
backbones) that transformers loads with `AutoModelForQuestionAnswering` and `AutoTokenizer`; it is
checked with transformers on PyTorch (the `interop` extra), on any Keras backend.

The export takes `token_ids`, `segment_ids` (BERT-like backbones) and `padding_mask`, int32 of shape
`(batch, length)`, and returns `start_logits` and `end_logits`, float32 `(batch, length)`: the features
`prepare_eval_features` makes, and the logits `decode_answers` reads. The tokenizer (`tokenizer/`, with
`vocab.txt`) and `keras_qa.json` are copied beside a SavedModel. After exporting, the export is loaded
again and run on a sample batch; its logits must match the Keras model's.

Run it on the TensorFlow backend (`KERAS_BACKEND=tensorflow`) for exports that take any length; on JAX
the export takes windows of exactly the training `max_length` (padding is masked, so the logits are the
same). ONNX goes through Keras' exporter: tf2onnx on TensorFlow (the `onnx` extra installs it and
onnxruntime), jax2onnx on JAX. The Hugging Face export is checked with transformers in a process of
its own (transformers and torch, the `interop` extra), away from TensorFlow.
"""

import os
import shutil
import tempfile

import numpy as np

from keras_qa.checkpoints import saving
from keras_qa.checkpoints.to_huggingface import (
    run_transformers_script,
    save_question_answering_checkpoint,
)
from keras_qa.models.exact_gelu import use_erf_gelu
from keras_qa.models.task import copy_model
from keras_qa.text.features import prepare_eval_features

FORMATS = ("tf_saved_model", "onnx", "huggingface")
DEFAULT_OUTPUTS = {
    "tf_saved_model": "saved_model",
    "onnx": "model.onnx",
    "huggingface": "huggingface",
}
SAMPLE = [
    (
        "Which team won Super Bowl 50?",
        "The Denver Broncos defeated the Carolina Panthers 24-10 to earn their third Super Bowl title.",
    ),
    ("Where did the cat run?", "The cat ran to London. The dog sat in Paris."),
]


def sample_inputs(tokenizer, input_names, max_length, length=None):
    """A small batch of real features for checking an export, `length` tokens long (default: the
    longest window's length)."""
    examples = [
        {"id": str(i), "question": q, "context": c, "answers": {"text": []}}
        for i, (q, c) in enumerate(SAMPLE)
    ]
    features = prepare_eval_features(examples, tokenizer, max_length, max_length // 4)
    length = length or int(features["padding_mask"].sum(axis=1).max())
    return {name: features[name][:, :length] for name in input_names}


def export_model(model_dir, output=None, format="tf_saved_model"):
    """Export the model in `model_dir`; return `(output path, max |logit difference| on a sample)`.

    The export is written and checked in a temporary folder beside `output` and moved into place
    only once the check has passed: a failure or an interruption leaves nothing at `output`.

    Args:
        model_dir: a directory written by `keras_qa.train`.
        output: where to write (default: `<model_dir>/export/saved_model`, `.../model.onnx` or
            `.../huggingface`).
        format: "tf_saved_model", "onnx" or "huggingface".
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    model, tokenizer, config = saving.load_trained_model(model_dir)
    if output is None:
        output = os.path.join(model_dir, "export", DEFAULT_OUTPUTS[format])
    if os.path.exists(output):
        raise FileExistsError(f"{output} exists; remove it or choose another --output")
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".export-")
    try:
        written = os.path.join(staging, os.path.basename(os.path.abspath(output)))
        if format == "huggingface":
            difference = _export_huggingface(model, tokenizer, config, written)
        else:
            difference = _export_with_keras(model, tokenizer, config, written, format)
            if format == "tf_saved_model":
                saving.copy_answering_files(model_dir, written)
        if os.path.exists(output):
            raise FileExistsError(f"{output} appeared while exporting; the export was not moved")
        os.replace(written, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output, difference


def _export_with_keras(model, tokenizer, config, output, format):
    """`model.export` to `output`, then the export run on a sample batch; the largest difference."""
    # TensorFlow exports an open length. JAX's shape-polymorphic export cannot decide KerasHub's
    # "length <= max_sequence_length" check on a symbolic length, and torch's exporter takes no open
    # axis of a dict input here, so those two export windows of exactly max_length tokens (what
    # prepare_eval_features makes).
    import keras

    if keras.backend.backend() == "torch":
        raise RuntimeError(
            "Export runs on the TensorFlow or JAX backend (KERAS_BACKEND=tensorflow python -m "
            "keras_qa.export ...): Keras' torch exporter does not take the model's dict of inputs. "
            "The saved model.keras loads on any backend."
        )
    if format == "onnx":
        # tf2onnx writes a mixed-precision graph that ONNX Runtime refuses (float16 beside bfloat16),
        # and TensorFlow's exact GELU as an `erfc` that ONNX has no operator for.
        model = copy_model(model, "float32")
        use_erf_gelu(model.backbone)
    length = None if keras.backend.backend() == "tensorflow" else config["max_length"]
    inputs = sample_inputs(tokenizer, model.input_names, config["max_length"], length)
    expected = model.predict_on_batch(inputs)
    signature = [
        {name: keras.InputSpec(shape=(None, length), dtype="int32") for name in model.input_names}
    ]
    model.export(output, format=format, verbose=False, input_signature=signature)
    run = _run_saved_model if format == "tf_saved_model" else _run_onnx
    return _largest_difference(expected, run(output, inputs))


def _largest_difference(expected, exported, mask=None):
    """The largest |logit difference| between two output dicts, over `mask`'s tokens if given."""
    differences = []
    for name in ("start_logits", "end_logits"):
        difference = np.abs(np.asarray(expected[name], np.float32) - exported[name])
        differences.append(float(np.max(difference if mask is None else difference[mask == 1])))
    return max(differences)


def _export_huggingface(model, tokenizer, config, output):
    """Write the Hugging Face folder, then load it with transformers and compare logits."""
    save_question_answering_checkpoint(model, tokenizer, output)
    inputs = sample_inputs(tokenizer, model.input_names, config["max_length"])
    # The export holds float32 weights and transformers computes in float32: compare with that.
    if model.backbone.dtype_policy.name != "float32":
        model = copy_model(model, "float32")
    expected = model.predict_on_batch(inputs)
    exported = _transformers_logits(output, inputs)
    # Padding is masked differently (keras-qa: a large negative logit); compare real tokens.
    return _largest_difference(expected, exported, inputs["padding_mask"])


# Run by run_transformers_script, in a process of its own, away from TensorFlow.
TRANSFORMERS_CHECK = """
import sys
import numpy as np
import torch
import transformers

folder, inputs, outputs = sys.argv[1:]
names = {"token_ids": "input_ids", "padding_mask": "attention_mask", "segment_ids": "token_type_ids"}
feed = {names[key]: torch.tensor(value, dtype=torch.long) for key, value in np.load(inputs).items()}
model = transformers.AutoModelForQuestionAnswering.from_pretrained(folder).eval()
with torch.no_grad():
    found = model(**feed)
np.savez(outputs, start_logits=found.start_logits.numpy(), end_logits=found.end_logits.numpy())
"""


def _transformers_logits(folder, inputs):
    """transformers' start and end logits of the Hugging Face folder on `inputs`, computed on
    PyTorch in a fresh process."""
    staging = os.path.dirname(os.path.abspath(folder))
    inputs_path = os.path.join(staging, "check-inputs.npz")
    outputs_path = os.path.join(staging, "check-outputs.npz")
    np.savez(inputs_path, **{name: np.asarray(value) for name, value in inputs.items()})
    run_transformers_script(
        TRANSFORMERS_CHECK,
        [folder, inputs_path, outputs_path],
        "--format huggingface checks the export with transformers on PyTorch",
        "the check",
        'pip install -e ".[interop]": transformers and torch',
    )
    with np.load(outputs_path) as found:
        return {name: found[name] for name in ("start_logits", "end_logits")}


def _run_saved_model(path, inputs):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    outputs = loaded.serve({name: tf.constant(value) for name, value in inputs.items()})
    return {name: np.asarray(value, np.float32) for name, value in outputs.items()}


def _run_onnx(path, inputs):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    # tf2onnx prefixes the input names ("args_0_token_ids"); the feature name ends each one.
    feed = {
        item.name: next(value for name, value in inputs.items() if item.name.endswith(name))
        for item in session.get_inputs()
    }
    names = [item.name for item in session.get_outputs()]
    values = session.run(names, feed)
    outputs = {}
    for name, value in zip(names, values):
        key = "start_logits" if "start" in name else "end_logits" if "end" in name else name
        outputs[key] = np.asarray(value, np.float32)
    return outputs
