"""The bodies the server takes, checked: schemas, one parser with clear client errors, and the model
work (windows) a request makes."""

import json

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, ValidationError

from keras_qa.answering.hf_pipeline import QuestionAnsweringPipeline
from keras_qa.text.features import prepare_eval_features

# The most answers one request may ask for (`top_k`).
MAX_TOP_K = 100


# The most documents one `POST /read` request may hold (their windows also count against the budget).
MAX_DOCUMENTS = 100


class AnswerRequest(BaseModel):
    """The body of `POST /answer` (strict types: a number is not a question)."""

    model_config = {"extra": "forbid"}

    question: StrictStr
    context: StrictStr
    top_k: StrictInt = Field(1, ge=1, le=MAX_TOP_K)
    max_answer_length: StrictInt = Field(30, ge=1, le=512)
    handle_impossible_answer: StrictBool = False
    align_to_words: StrictBool = True


class ReadRequest(BaseModel):
    """The body of `POST /read`: one question over many documents (`QuestionAnswerer.read`)."""

    model_config = {"extra": "forbid"}

    question: StrictStr
    documents: list[StrictStr] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    top_k: StrictInt = Field(5, ge=1, le=MAX_TOP_K)
    score_threshold: float | None = Field(None, ge=0.0, le=1.0)
    max_answer_length: StrictInt = Field(30, ge=1, le=512)
    align_to_words: StrictBool = True


class PipelineInputs(BaseModel):
    model_config = {"extra": "forbid"}

    question: StrictStr
    context: StrictStr


class PipelineParameters(BaseModel):
    """The question-answering pipeline's parameters (None: its default)."""

    model_config = {"extra": "forbid"}

    top_k: StrictInt | None = Field(None, ge=1, le=MAX_TOP_K)
    doc_stride: StrictInt | None = Field(None, ge=0)
    max_answer_len: StrictInt | None = Field(None, ge=1, le=512)
    max_seq_len: StrictInt | None = Field(None, ge=8)
    max_question_len: StrictInt | None = Field(
        None, ge=1
    )  # taken and ignored, as transformers does
    handle_impossible_answer: StrictBool | None = None
    align_to_words: StrictBool | None = None


class PipelineRequest(BaseModel):
    """Hugging Face's inference payload (`InferenceClient.question_answering`), answered as
    transformers' question-answering pipeline answers."""

    model_config = {"extra": "forbid"}

    inputs: PipelineInputs
    parameters: PipelineParameters = PipelineParameters()

    @property
    def question(self):
        return self.inputs.question

    @property
    def context(self):
        return self.inputs.context

    @property
    def settings(self):
        return self.parameters.model_dump(exclude_none=True)


class RequestError(Exception):
    """A client error: the HTTP status, the message sent back and any headers (`Retry-After`)."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers

    def response(self):
        return JSONResponse({"error": self.message}, self.status, headers=self.headers)


def parse_request(body, max_context_chars, kind=AnswerRequest):
    """An `AnswerRequest` (or `ReadRequest`) from the raw body, or a `RequestError` saying what is
    wrong."""
    try:
        payload = json.loads(body)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise RequestError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise RequestError(400, "the body is not valid JSON: it nests too deeply to read") from None
    if not isinstance(payload, dict):
        raise RequestError(422, "the body must be a JSON object")
    if "inputs" in payload and kind is AnswerRequest:  # Hugging Face's inference payload
        kind = PipelineRequest
        if payload.get("parameters") is None:
            payload = {key: value for key, value in payload.items() if key != "parameters"}
    try:
        request = kind.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise RequestError(422, problems) from None
    texts = {"question": request.question}
    if kind is ReadRequest:
        texts.update((f"document {i}", text) for i, text in enumerate(request.documents))
    else:
        texts["context"] = request.context
    for field, text in texts.items():
        # The pipeline refuses only empty strings (it answers a question of spaces).
        if not (text if kind is PipelineRequest else text.strip()):
            raise RequestError(422, f"{field} is empty")
        if field != "question" and len(text) > max_context_chars:
            raise RequestError(
                413, f"{field} has {len(text):,} characters; the limit is {max_context_chars:,}"
            )
    return request


def count_windows(answerer, request):
    """The windows `answerer` cuts `request`'s question and context (or documents) into: its share
    of model work."""
    contexts = request.documents if isinstance(request, ReadRequest) else [request.context]
    examples = [
        {"id": str(i), "question": request.question, "context": context, "answers": {}}
        for i, context in enumerate(contexts)
    ]
    max_length, doc_stride = answerer.max_length, answerer.doc_stride
    if isinstance(request, PipelineRequest):
        max_length, doc_stride = QuestionAnsweringPipeline(answerer).windows(request.settings)
    as_pipeline = isinstance(request, PipelineRequest)
    features = prepare_eval_features(
        examples, answerer.tokenizer, max_length, doc_stride, as_pipeline=as_pipeline
    )
    return len(features["example_index"])
