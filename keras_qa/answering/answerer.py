"""Answer questions with a trained model: `QuestionAnswerer`.

    questions + contexts -> windows (prepare_eval_features) -> logits (predict_logits)
        -> per-window probabilities -> best spans across windows (decode_spans) -> answers

The output follows Hugging Face's question-answering pipeline, so that its clients keep working:
`{"answer", "score", "start", "end"}`, with `start` / `end` character offsets into the context given.
A model with a score calibration (`keras_qa.json`'s `calibration`: what training fits, or
`python -m keras_qa.calibrate`) scores an answer with the probability that it is right; without one,
`score` is the pipeline's: in the span's window, a softmax over the start logits of the context tokens
and [CLS] (and the same for the end), and a span's score is P(start) x P(end).

Which span wins across the windows of a long context is `window_score`'s choice
(`keras_qa.text.decoding.WINDOW_SCORES`): by default "null_relative", each window's spans less its own
"not here" ([CLS]) score, which answered long contexts best; "window_softmax" ranks by the score itself,
as the pipeline does. Within one window both give the same order.
"""

import math
import numbers

import numpy as np

from keras_qa.checkpoints.loading import load_answering_model
from keras_qa.checkpoints.quantizing import QUANTIZE_CHOICES, int8_onnx_model
from keras_qa.checkpoints.saving import calibration_of
from keras_qa.errors import ModelFileError, is_finite_number
from keras_qa.models.batching import predict_logits
from keras_qa.models.onnx_runtime import OnnxRuntimeModel
from keras_qa.models.task import copy_model
from keras_qa.runtime.precision import answering_dtype
from keras_qa.text.decoding import (
    decode_spans,
    widen_to_words,
    window_log_probabilities,
    window_scores,
)
from keras_qa.text.features import prepare_eval_features
from keras_qa.text.layouts import CLS_INDEX


class QuestionAnswerer:
    """Extractive question answering with a trained keras-qa model, offline.

    Args:
        model: a `QuestionAnsweringModel` (or a model with the same inputs and outputs).
        tokenizer: its `QATokenizer`.
        max_length: tokens per window (the length the model was trained with).
        doc_stride: default overlap, in tokens, between consecutive windows of a long context.
        batch_size: windows per model call.
        null_threshold: with `handle_impossible_answer`, "no answer" wins when its null score beats
            the best span's by more than this (on the "null_relative" scale; SQuAD v2.0 training
            saves the best eval threshold, which `from_pretrained` reads).
        calibration: a `keras_qa.text.calibration.Calibration` that makes each answer's score the
            probability that it is right (`from_pretrained` reads the model's), or None.

    Example:
    >>> answerer = QuestionAnswerer.from_pretrained(model_dir)  # a folder keras_qa.train wrote
    >>> context = "the dog sat in london . the cat ran to paris ."
    >>> answer = answerer("where did the cat run ?", context)
    >>> sorted(answer), context[answer["start"] : answer["end"]] == answer["answer"]
    (['answer', 'end', 'score', 'start'], True)
    >>> len(answerer(["where did the cat run ?", "where did the dog sit ?"], context, top_k=2))
    2
    """

    def __init__(
        self,
        model,
        tokenizer,
        max_length=384,
        doc_stride=128,
        batch_size=32,
        null_threshold=0.0,
        calibration=None,
    ):
        for name, value, least in (
            ("max_length", max_length, 1),
            ("doc_stride", doc_stride, 0),
            ("batch_size", batch_size, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")
        if not is_finite_number(null_threshold):
            raise ValueError(f"null_threshold must be a finite number; got {null_threshold!r}")
        self.model = model
        self.null_threshold = float(null_threshold)
        self.calibration = calibration
        self.tokenizer = tokenizer
        self.max_length, self.doc_stride, self.batch_size = map(
            int, (max_length, doc_stride, batch_size)
        )

    @classmethod
    def from_pretrained(cls, path, batch_size=32, dtype="auto", quantize=None):
        """Load a model that answers: what `python -m keras_qa.train` saved, or a Hugging Face
        question-answering checkpoint (BERT, DistilBERT, RoBERTa, XLM-RoBERTa or ALBERT
        `*ForQuestionAnswering`, with its trained head and tokenizer).

        Args:
            path: a directory written by `keras_qa.train`, a local Hugging Face folder, or
                `hf://org/name` (downloaded; online only).
            batch_size: windows per model call.
            dtype: the Keras dtype policy to compute in ("float32", "mixed_bfloat16", ...); "auto":
                float32 on a CPU, the training precision on a GPU; None: the training precision.
            quantize: None, or "int8": answer with an int8 copy of the model on ONNX Runtime
                (`keras_qa.checkpoints.quantizing`; made once and cached, it needs the `int8`
                extra), the CPU's fastest path where bfloat16 is not. `dtype` must then be "auto"
                or "float32".
        """
        if quantize is not None and quantize not in QUANTIZE_CHOICES:
            raise ValueError(
                f"quantize must be None or one of {QUANTIZE_CHOICES}; got {quantize!r}"
            )
        if quantize is not None and dtype not in ("auto", "float32"):
            raise ValueError(
                f"quantize={quantize!r} computes in int8; dtype {dtype!r} does not apply"
            )
        model, tokenizer, config = load_answering_model(path)
        dtype = answering_dtype(dtype)
        if quantize == "int8":
            model = _int8_model(model, tokenizer)
        elif dtype is not None and dtype != model.backbone.dtype_policy.name:
            model = copy_model(model, dtype)
        null_threshold = config.get("null_score_diff_threshold", 0.0)
        windows = (config["max_length"], config["doc_stride"], batch_size)
        return cls(model, tokenizer, *windows, null_threshold, calibration_of(config))

    def __call__(
        self,
        question,
        context,
        top_k=1,
        max_answer_length=30,
        doc_stride=None,
        handle_impossible_answer=False,
        align_to_words=True,
        window_score="null_relative",
    ):
        """Answer one question, or lists of them.

        Args:
            question: a string, or a list of strings.
            context: a string, or a list of strings (one per question; a single string is shared by
                every question).
            top_k: how many answers per question, best first.
            max_answer_length: the longest answer, in tokens.
            doc_stride: context tokens shared by consecutive windows of a long context (default: the
                model's training setting).
            handle_impossible_answer: also consider "no answer" (the [CLS] span): it is returned as
                `{"answer": "", "start": 0, "end": 0}` when it ranks among the best.
            align_to_words: widen a span that starts or ends inside a word to the whole word (as
                Hugging Face's pipeline does by default); False keeps the tokens' own characters.
            window_score: how spans of different windows are ranked (`WINDOW_SCORES`):
                "null_relative" (the default; a span must beat its window's "not here") or
                "window_softmax" (Hugging Face's pipeline); the `score` returned is the same
                either way (see the module's docstring).

        Returns:
            For one question: a dict, or a list of `top_k` dicts when `top_k > 1`. For a list of
            questions: a list of those, in order.
        """
        questions, contexts, single = _as_lists(question, context)
        _check_counts(top_k, max_answer_length)
        features = self._features(questions, contexts, doc_stride)
        scores = self._score_windows(features, len(questions), window_score)
        spans, found = self._distinct_answers(
            features, scores, contexts, top_k, max_answer_length, align_to_words
        )
        results = []
        for index, answers in enumerate(found):
            if handle_impossible_answer or not answers:
                null_score = math.exp(scores["null_log_probabilities"][index])
                null = {"answer": "", "score": null_score, "start": 0, "end": 0}
                threshold = self.null_threshold if window_score == "null_relative" else 0.0
                answers.append((float(spans["null_score"][index]) - threshold, null))
                answers.sort(key=lambda ranked: -ranked[0])
            answers = [answer for _, answer in answers[:top_k]]
            results.append(answers[0] if top_k == 1 else answers)
        return results[0] if single else results

    def read(
        self,
        question,
        documents,
        top_k=5,
        score_threshold=None,
        max_answer_length=30,
        doc_stride=None,
        align_to_words=True,
    ):
        """Answer one question over many documents, the best answers of all of them ranked together.

        Every window of every document goes through the model in shared batches. A span's `score` is
        comparable across documents: with the model's calibration, the probability that the answer
        is right; without one, the probability that it, rather than its own window's "not here"
        ([CLS]), is the answer, `sigmoid(start + end logit - [CLS] start and end logits)`. Both rank
        alike; the pipeline's per-window probability does not (a window with no answer spreads it
        over wrong spans).

        Args:
            question: a string.
            documents: a list of strings.
            top_k: how many answers to return at most, best first.
            score_threshold: drop answers whose score is below this (None keeps `top_k`).
            max_answer_length, doc_stride, align_to_words: as in `__call__`.

        Returns:
            A list of `{"answer", "score", "start", "end", "document"}`, best first: `document` is the
            index of the document in `documents`, `start` / `end` character offsets into it.

        Example:
        >>> answerer = QuestionAnswerer.from_pretrained(model_dir)
        >>> documents = ["the red mat .", "the cat ran to london .", "a blue house ."]
        >>> best = answerer.read("where did the cat run ?", documents, top_k=2)[0]
        >>> documents[best["document"]][best["start"] : best["end"]] == best["answer"]
        True
        """
        questions, documents = _question_over_documents(question, documents)
        _check_counts(top_k, max_answer_length)
        if score_threshold is not None and not is_finite_number(score_threshold):
            raise ValueError(
                f"score_threshold must be a finite number or None; got {score_threshold!r}"
            )
        features = self._features(questions, documents, doc_stride)
        scores = self._score_windows(features, len(questions), "null_relative")
        _, found = self._distinct_answers(
            features, scores, documents, top_k, max_answer_length, align_to_words
        )
        ranked = []
        for index, answers in enumerate(found):
            for log_odds, answer in answers:
                score = self._probability(log_odds)
                ranked.append((log_odds, answer | {"score": score, "document": index}))
        ranked.sort(key=lambda item: -item[0])
        answers = [answer for _, answer in ranked[:top_k]]
        if score_threshold is not None:
            answers = [answer for answer in answers if answer["score"] >= score_threshold]
        return answers

    def _probability(self, log_odds):
        """An answer's log-odds against its window's "not here" as a probability: calibrated with
        the model's calibration, else its sigmoid."""
        if self.calibration is not None:
            return self.calibration.probability(float(log_odds))
        return 1.0 / (1.0 + math.exp(-log_odds)) if log_odds > -700 else 0.0

    def _features(self, questions, contexts, doc_stride):
        """The windows of question i over context i (`doc_stride` None: the model's own)."""
        doc_stride = self.doc_stride if doc_stride is None else int(doc_stride)
        examples = [
            {"id": str(i), "question": q, "context": c, "answers": {"text": [], "answer_start": []}}
            for i, (q, c) in enumerate(zip(questions, contexts))
        ]
        return prepare_eval_features(examples, self.tokenizer, self.max_length, doc_stride)

    def _score_windows(self, features, num_examples, window_score):
        """The model's logits made into the span ranking of `window_score`, the windows'
        log-probabilities, and each example's "no answer" log-probability (what is reported,
        whatever ranked)."""
        start_logits, end_logits = predict_logits(self.model, features, self.batch_size)
        offsets = features["offsets"]
        ranks = window_scores(start_logits, end_logits, offsets, window_score)
        # A calibrated score maps the log-odds against "not here", whichever window score ranks.
        log_odds = ranks if window_score == "null_relative" else None
        if log_odds is None and self.calibration is not None:
            log_odds = window_scores(start_logits, end_logits, offsets, "null_relative")
        log_probabilities = (
            window_log_probabilities(start_logits, offsets),
            window_log_probabilities(end_logits, offsets),
        )
        null_log_probabilities = _null_log_probabilities(
            log_probabilities, features["example_index"], num_examples
        )
        return {
            "ranks": ranks,
            "log_odds": log_odds,
            "log_probabilities": log_probabilities,
            "null_log_probabilities": null_log_probabilities,
        }

    def _distinct_answers(self, features, scores, texts, top_k, max_answer_length, align_to_words):
        """The decoded spans and, per example, up to `top_k` `(rank score, answer)` pairs of distinct
        characters. Widening to words can turn several spans into one answer, so more spans are
        decoded until `top_k` distinct answers come back or no span is left."""
        count = top_k
        while True:
            spans = decode_spans(
                features,
                *scores["ranks"],
                num_examples=len(texts),
                n_best=max(20, count),
                max_answer_length=max_answer_length,
                top_k=count,
            )
            found = [
                self._answers(features, spans, scores, index, text, align_to_words)
                for index, text in enumerate(texts)
            ]
            # Fewer columns than asked for: every candidate span is already there.
            complete = spans["score"].shape[1] < count
            more_exist = np.isfinite(spans["score"]).all(axis=1) & (not complete)
            if not any(len(a) < top_k and more for a, more in zip(found, more_exist)):
                return spans, [answers[:top_k] for answers in found]
            count *= 4

    def _answers(self, features, spans, scores, index, text, align_to_words):
        """`(rank score, answer)` pairs of one question, best first, from its ranked spans."""
        log_probabilities, log_odds = scores["log_probabilities"], scores["log_odds"]
        answers, seen = [], set()
        for rank in range(spans["score"].shape[1]):
            rank_score = float(spans["score"][index, rank])
            if not math.isfinite(rank_score):
                break
            window = spans["window"][index, rank]
            start_token = spans["start_token"][index, rank]
            end_token = spans["end_token"][index, rank]
            start = int(spans["start_char"][index, rank])
            end = int(spans["end_char"][index, rank])
            if align_to_words:
                start, end = widen_to_words(
                    features["offsets"][window],
                    start_token,
                    end_token,
                    features["continues_word"][window],
                )
            if (start, end) in seen:  # two spans inside the same words
                continue
            seen.add((start, end))
            if self.calibration is None:
                score = math.exp(
                    log_probabilities[0][window, start_token]
                    + log_probabilities[1][window, end_token]
                )
            else:
                score = self._probability(
                    log_odds[0][window, start_token] + log_odds[1][window, end_token]
                )
            answers.append(
                (
                    rank_score,
                    {"answer": text[start:end], "score": score, "start": start, "end": end},
                )
            )
        return answers


def _int8_model(model, tokenizer):
    """The model's int8 copy on ONNX Runtime; a cached file that does not load is made again."""
    arguments = (model.input_names, model.backbone.max_sequence_length)
    try:
        return OnnxRuntimeModel(int8_onnx_model(model, tokenizer), *arguments)
    except ModelFileError:
        return OnnxRuntimeModel(int8_onnx_model(model, tokenizer, refresh=True), *arguments)


def _null_log_probabilities(log_probabilities, example_index, num_examples):
    """Per example, the least log P(start = [CLS]) + log P(end = [CLS]) over its windows (the
    pipeline's "no answer" score)."""
    start, end = log_probabilities
    null = np.full(num_examples, np.inf)
    np.minimum.at(null, example_index, start[:, CLS_INDEX] + end[:, CLS_INDEX])
    return null


def _question_over_documents(question, documents):
    """`(questions, documents)`: the question once per document, checked, with clear errors."""
    if not isinstance(question, str):
        raise TypeError(f"question must be a string; got {type(question).__name__}")
    if not isinstance(documents, (list, tuple)):
        raise TypeError(f"documents must be a list of strings; got {type(documents).__name__}")
    if not documents:
        raise ValueError("no documents given")
    try:
        questions, documents, _ = _as_lists([question] * len(documents), list(documents))
    except (TypeError, ValueError) as error:
        raise type(error)(str(error).replace("context", "document")) from None
    return questions, documents


def _check_counts(top_k, max_answer_length):
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer; got {top_k!r}")
    if not isinstance(max_answer_length, int) or max_answer_length < 1:
        raise ValueError(f"max_answer_length must be a positive integer; got {max_answer_length!r}")


def _as_lists(question, context):
    """`(questions, contexts, single)`, checked: clear errors for wrong types and empty text."""
    single = isinstance(question, str)
    questions = [question] if single else question
    if not isinstance(questions, (list, tuple)):
        raise TypeError(
            f"question must be a string or a list of strings; got {type(question).__name__}"
        )
    if isinstance(context, str):
        contexts = [context] * len(questions)
    elif isinstance(context, (list, tuple)):
        contexts = list(context)
        if single:
            raise TypeError("one question takes one context string; got a list of contexts")
    else:
        raise TypeError(
            f"context must be a string or a list of strings; got {type(context).__name__}"
        )
    if len(contexts) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    if not questions:
        raise ValueError("no questions given")
    for name, values in (("question", questions), ("context", contexts)):
        for index, value in enumerate(values):
            where = "" if single else f" {index}"
            if not isinstance(value, str):
                raise TypeError(f"{name}{where} must be a string; got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"{name}{where} is empty")
    return list(questions), contexts, single
