"""A drop-in for transformers' question-answering pipeline, which transformers 5 removed.

    from keras_qa.hf_pipeline import pipeline      # instead of: from transformers import pipeline
    qa = pipeline("question-answering", model="path/to/checkpoint")
    qa(question="Where do I live?", context="My name is Wolfgang and I live in Berlin")
    # {'score': 0.91, 'start': 34, 'end': 40, 'answer': 'Berlin'}

`QuestionAnsweringPipeline` takes what `QuestionAnsweringPipeline` of transformers 4.57 takes and answers
as it does, on any Keras backend and with no PyTorch: the same input forms (positional
`(question, context)`, `question=` / `context=` with strings or lists, a dict, a list of dicts, `X=` /
`data=`), the same parameters and defaults (`top_k=1`, `max_answer_len=15`, `max_seq_len=384` or fewer
where the model has fewer positions, `doc_stride=min(max_seq_len // 2, 128)`, `handle_impossible_answer`,
`align_to_words=True`, `max_question_len` and `padding` accepted and ignored as transformers ignores them
with fast tokenizers), the same output rules (a dict when one answer is left, a list otherwise, an empty
list when none; one input in a list gives one result) and the same errors. Its ranking is the
pipeline's: each window's spans by P(start) x P(end) in that window, `2 * top_k + 10` candidates per
window when answers are widened to words, and answers of equal text (ignoring case) merged with their
scores added. keras-qa's own names are aliases: `max_answer_length`, `max_length` (for `max_seq_len`).

For keras-qa's own ranking across windows (which answers long documents better), use
`keras_qa.QuestionAnswerer`.
"""

from collections.abc import Iterable

from keras_qa.answering.answerer import QuestionAnswerer
from keras_qa.models.batching import predict_logits
from keras_qa.text.decoding import pipeline_window_spans, widen_to_words
from keras_qa.text.features import prepare_eval_features

TASK = "question-answering"
# transformers' defaults, and what it caps `max_seq_len` and `doc_stride` at.
DEFAULT_MAX_SEQ_LEN, DEFAULT_MAX_DOC_STRIDE = 384, 128
DEFAULTS = {
    "top_k": 1,
    "max_answer_len": 15,
    "handle_impossible_answer": False,
    "align_to_words": True,
}
# keras-qa's names for the pipeline's parameters, and transformers' deprecated one.
ALIASES = {"max_answer_length": "max_answer_len", "max_length": "max_seq_len", "topk": "top_k"}
# Parameters transformers takes but does not use with fast tokenizers (every keras-qa tokenizer is one).
IGNORED = ("max_question_len", "padding")
PARAMETERS = (*DEFAULTS, "doc_stride", "max_seq_len", "batch_size")


def pipeline(
    task=TASK, model=None, tokenizer=None, batch_size=32, dtype="auto", quantize=None, **kwargs
):
    """A question-answering pipeline, as `transformers.pipeline("question-answering", model=...)`.

    Args:
        task: "question-answering" (the only task).
        model: a directory written by `keras_qa.train`, a Hugging Face question-answering folder, or
            `hf://org/name`.
        tokenizer: None, or the same path as `model` (the checkpoint's own tokenizer is always used).
        batch_size: windows per model call.
        dtype: the Keras dtype policy to compute in (see `QuestionAnswerer.from_pretrained`).
        quantize: None, or "int8" to answer with an int8 copy on ONNX Runtime (see
            `QuestionAnswerer.from_pretrained`).
        **kwargs: call parameters to use by default (`top_k`, `max_answer_len`, ...).

    Example:
    >>> qa = pipeline("question-answering", model=model_dir)
    >>> context = "the dog sat in london . the cat ran to paris ."
    >>> answer = qa(question="where did the cat run ?", context=context)
    >>> sorted(answer), context[answer["start"] : answer["end"]] == answer["answer"]
    (['answer', 'end', 'score', 'start'], True)
    """
    if task != TASK:
        raise ValueError(f"keras-qa provides the {TASK!r} task only; got {task!r}")
    if model is None:
        raise ValueError("pass model=: a keras-qa output directory or a Hugging Face checkpoint")
    if tokenizer is not None and tokenizer != model:
        raise ValueError("the tokenizer is the checkpoint's own; pass tokenizer=None")
    answerer = QuestionAnswerer.from_pretrained(
        model, batch_size=batch_size, dtype=dtype, quantize=quantize
    )
    return QuestionAnsweringPipeline(answerer, **kwargs)


class QuestionAnsweringPipeline:
    """transformers' question-answering pipeline over a keras-qa model (see the module docstring).

    Args:
        answerer: a `keras_qa.QuestionAnswerer` (its model, tokenizer and batch size are used).
        **defaults: call parameters to use when a call does not give them.
    """

    task = TASK

    def __init__(self, answerer, **defaults):
        self.answerer = answerer
        self.tokenizer = answerer.tokenizer
        self.defaults = _parameters(defaults)

    def __call__(self, *args, **kwargs):
        """Answer, exactly as `transformers.QuestionAnsweringPipeline.__call__` does."""
        examples = parse_inputs(args, kwargs)
        results = self.answer(examples, **_parameters(kwargs))
        return results[0] if len(examples) == 1 else results

    def answer(self, examples, **parameters):
        """The result of each `{"question", "context"}` example (a dict, a list, or `[]`)."""
        settings = {**DEFAULTS, **self.defaults, **parameters}
        max_seq_len, doc_stride = self.windows(settings)
        features = prepare_eval_features(
            [{"id": str(i), **example, "answers": {}} for i, example in enumerate(examples)],
            self.tokenizer,
            max_seq_len,
            doc_stride,
            as_pipeline=True,
        )
        batch_size = settings.get("batch_size") or self.answerer.batch_size
        start_logits, end_logits = predict_logits(self.answerer.model, features, batch_size)
        windows = [[] for _ in examples]
        for window, example in enumerate(features["example_index"]):
            windows[example].append(window)
        return [
            self._answers(features, start_logits, end_logits, rows, example["context"], settings)
            for rows, example in zip(windows, examples)
        ]

    def windows(self, settings):
        """`(max_seq_len, doc_stride)` of a call with these parameters: the pipeline's defaults,
        checked (a `ValueError` says what is wrong)."""
        model = self.answerer.model
        positions = getattr(getattr(model, "backbone", model), "max_sequence_length", None)
        # transformers' default is min(tokenizer.model_max_length, 384): the model's positions, which
        # keras-qa's Hugging Face export writes as model_max_length.
        model_length = positions or self.answerer.max_length
        max_seq_len = settings.get("max_seq_len") or min(model_length, DEFAULT_MAX_SEQ_LEN)
        if max_seq_len > (positions or max_seq_len):
            raise ValueError(
                f"max_seq_len ({max_seq_len}) is more than the model's {positions} positions"
            )
        doc_stride = settings.get("doc_stride")
        doc_stride = (
            min(max_seq_len // 2, DEFAULT_MAX_DOC_STRIDE) if doc_stride is None else doc_stride
        )
        if doc_stride > max_seq_len:
            raise ValueError(
                f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
            )
        return max_seq_len, doc_stride

    def _answers(self, features, start_logits, end_logits, rows, context, settings):
        """One example's result from its windows, as the pipeline's `postprocess`."""
        top_k, align = settings["top_k"], settings["align_to_words"]
        candidates = 2 * top_k + 10 if align else top_k  # widening to words may merge some
        answers, null_score = [], None
        for row in rows:
            length = int(features["padding_mask"][row].sum())
            offsets = features["offsets"][row]
            allowed = (offsets[:length, 0] >= 0) | (
                features["token_ids"][row, :length] == self.tokenizer.cls_token_id
            )
            starts, ends, scores, null_score = pipeline_window_spans(
                start_logits[row, :length],
                end_logits[row, :length],
                allowed,
                candidates,
                settings["max_answer_len"],
                null_score,
            )
            for start, end, score in zip(starts, ends, scores):
                first, last = _characters(
                    offsets, features["continues_word"][row], start, end, align
                )
                text = context[first:last]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score.item()
                else:
                    answers.append(
                        {"score": score.item(), "start": first, "end": last, "answer": text}
                    )
        if settings["handle_impossible_answer"]:
            answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _characters(offsets, continues_word, start, end, align_to_words):
    """A span's characters as the pipeline finds them: widened to whole words when both ends are
    context tokens, else the tokens' own offsets ((0, 0) for a special token such as [CLS])."""
    in_context = offsets[start, 0] >= 0 and offsets[end, 0] >= 0
    if align_to_words and in_context:
        return widen_to_words(offsets, start, end, continues_word)
    first = int(offsets[start, 0]) if offsets[start, 0] >= 0 else 0
    last = int(offsets[end, 1]) if offsets[end, 0] >= 0 else 0
    return first, last


def _parameters(kwargs):
    """The call parameters among `kwargs` under the pipeline's names, checked as it checks them;
    `question`, `context`, `X` and `data` are left for `parse_inputs`."""
    parameters = {}
    for name, value in kwargs.items():
        if name in ("question", "context", "X", "data") or name in IGNORED:
            continue
        name = ALIASES.get(name, name)
        if name not in PARAMETERS:
            known = ", ".join(sorted((*PARAMETERS, *IGNORED, *ALIASES)))
            raise TypeError(f"unknown parameter {name!r}; the pipeline takes {known}")
        parameters[name] = value
    if "top_k" in parameters and parameters["top_k"] < 1:
        raise ValueError(f"top_k parameter should be >= 1 (got {parameters['top_k']})")
    if "max_answer_len" in parameters and parameters["max_answer_len"] < 1:
        raise ValueError(
            f"max_answer_len parameter should be >= 1 (got {parameters['max_answer_len']}"
        )
    # transformers fails on these later, or (batch_size 0) reads them as "the default": say so now.
    for name, least in (("max_seq_len", 1), ("batch_size", 1), ("doc_stride", 0)):
        value = parameters.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value is not None and value < least:
            raise ValueError(f"{name} parameter should be >= {least} (got {value})")
    return parameters


def parse_inputs(args, kwargs):
    """The `{"question", "context"}` examples of a pipeline call, as transformers' argument handler
    reads them (the same forms and the same errors)."""
    if args:
        if len(args) == 1:
            inputs = args[0]
        elif len(args) == 2 and {type(arg) for arg in args} == {str}:
            inputs = [{"question": args[0], "context": args[1]}]
        else:
            inputs = list(args)
    elif "X" in kwargs:
        inputs = kwargs["X"]
    elif "data" in kwargs:
        inputs = kwargs["data"]
    elif "question" in kwargs and "context" in kwargs:
        inputs = _from_keywords(kwargs["question"], kwargs["context"])
    else:
        raise ValueError(f"Unknown arguments {kwargs}")
    if isinstance(inputs, dict):
        inputs = [inputs]
    elif isinstance(
        inputs, Iterable
    ):  # a string too, as in transformers: its characters fail below
        inputs = list(inputs)
    else:
        raise ValueError(f"Invalid arguments {kwargs}")
    return [_example(item) for item in inputs]


def _from_keywords(question, context):
    if isinstance(question, list) and isinstance(context, str):
        return [{"question": q, "context": context} for q in question]
    if isinstance(question, list) and isinstance(context, list):
        if len(question) != len(context):
            raise ValueError("Questions and contexts don't have the same lengths")
        return [{"question": q, "context": c} for q, c in zip(question, context)]
    if isinstance(question, str) and isinstance(context, str):
        return [{"question": question, "context": context}]
    raise ValueError("Arguments can't be understood")


def _example(item):
    if not isinstance(item, dict):
        raise ValueError(f"{item} argument needs to be of type (SquadExample, dict)")
    for key in ("question", "context"):
        if key not in item:
            raise KeyError("You need to provide a dictionary with keys {question:..., context:...}")
        if item[key] is None:
            raise ValueError(f"`{key}` cannot be None")
        if isinstance(item[key], str) and len(item[key]) == 0:
            raise ValueError(f"`{key}` cannot be empty")
        if not isinstance(item[key], str):
            raise TypeError(f"`{key}` must be a string; got {type(item[key]).__name__}")
    return {"question": item["question"], "context": item["context"]}
