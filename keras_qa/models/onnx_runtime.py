"""A question-answering ONNX file run by ONNX Runtime, in the place of the Keras model.

`OnnxRuntimeModel` has what answering asks of a `QuestionAnsweringModel`: `input_names`,
`predict_on_batch` returning `{"start_logits", "end_logits"}` with padding at `PADDING_LOGIT`, and the
number of positions. So `predict_logits`, `QuestionAnswerer`, the drop-in pipeline and the server run
it unchanged (see `keras_qa.checkpoints.quantizing` for how the int8 file is made).
"""

import numpy as np

from keras_qa.errors import ModelFileError, first_line
from keras_qa.models.task import MODEL_INPUTS, PADDING_LOGIT

INSTALL_HINT = 'pip install -e ".[int8]" (onnx and onnxruntime, with transformers and torch)'

# keras-qa's feature names -> transformers' input names, which the exported file takes.
ONNX_INPUTS = {
    "token_ids": "input_ids",
    "padding_mask": "attention_mask",
    "segment_ids": "token_type_ids",
}


class OnnxRuntimeModel:
    """Start and end logits from an ONNX file, batch by batch, on ONNX Runtime's CPU provider.

    Args:
        path: the ONNX file (inputs named as transformers names them, see `ONNX_INPUTS`).
        input_names: the Keras model's input names, in its order.
        max_sequence_length: the model's positions.
        precision: what the file computes in, for reports ("int8").
        threads: ONNX Runtime's threads within an operation (None: one per physical core).

    Example:
    >>> model = OnnxRuntimeModel(int8_model_file, ["token_ids", "segment_ids", "padding_mask"], 128)
    >>> batch = {"token_ids": np.array([[2, 5, 6, 3]]), "segment_ids": np.zeros((1, 4), int),
    ...     "padding_mask": np.array([[1, 1, 1, 0]])}
    >>> model.predict_on_batch(batch)["start_logits"].shape
    (1, 4)
    """

    def __init__(
        self,
        path,
        input_names=MODEL_INPUTS,
        max_sequence_length=512,
        precision="int8",
        threads=None,
    ):
        onnxruntime = import_onnxruntime()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = onnxruntime.InferenceSession(
                path, options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ONNX Runtime raises its own classes for unreadable files
            message = f"{path} is not an ONNX model ONNX Runtime can run: {first_line(error)}"
            raise ModelFileError(message) from None
        self.path = path
        self.input_names = list(input_names)
        self.max_sequence_length = int(max_sequence_length)
        self.precision = precision
        takes = {item.name for item in self.session.get_inputs()}
        self._feeds = [
            (name, ONNX_INPUTS[name]) for name in self.input_names if ONNX_INPUTS.get(name) in takes
        ]
        missing = takes - {onnx_name for _, onnx_name in self._feeds}
        if missing:
            raise ValueError(f"{path} takes inputs the model has no feature for: {sorted(missing)}")

    def predict_on_batch(self, inputs):
        """`{"start_logits", "end_logits"}` for a batch of features, float32, padding masked."""
        feed = {onnx_name: np.asarray(inputs[name], np.int64) for name, onnx_name in self._feeds}
        start_logits, end_logits = self.session.run(["start_logits", "end_logits"], feed)
        padding = np.asarray(inputs["padding_mask"]) == 0
        return {
            "start_logits": np.where(padding, PADDING_LOGIT, start_logits).astype(np.float32),
            "end_logits": np.where(padding, PADDING_LOGIT, end_logits).astype(np.float32),
        }


def import_onnxruntime():
    """The `onnxruntime` module, or an error that says what to install."""
    try:
        import onnxruntime
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"answering in int8 needs ONNX Runtime: {INSTALL_HINT}"
        ) from error
    return onnxruntime
