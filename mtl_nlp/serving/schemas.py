"""The JSON the HTTP API reads and writes, as pydantic models (they also make the OpenAPI schema at ``/docs``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class PredictRequest(BaseModel):
    """``POST /v1/predict``: texts to predict on, optionally a subset of tasks and a question per text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"texts": ["Angela Merkel met officials of Siemens in Munich .", "The film was wonderful ."]},
                {"texts": ["Serena Williams won the title at Wimbledon ."], "tasks": ["ner"]},
            ]
        },
    )

    texts: list[StrictStr] = Field(min_length=1, description="The texts, each read as whitespace-separated words.")
    tasks: list[StrictStr] | None = Field(
        default=None, min_length=1, description="Tasks to run (default: every task the model has)."
    )
    questions: list[StrictStr | None] | None = Field(
        default=None,
        description="One question (or null) per text, for question answering tasks; the text is the context.",
    )


class PredictResponse(BaseModel):
    """Per text, in request order: ``{"text": …, task: result, …}``, exactly as ``MultiTaskPipeline`` returns it."""

    results: list[dict[str, Any]]


class TaskInfo(BaseModel):
    """One task of the served model."""

    name: str
    type: str
    labels: list[str]
    needs_question: bool = Field(description="Whether the task answers a question about the text (a QA task).")
    scores: dict[str, dict[str, Any]] = Field(
        description="Its saved evaluation metrics per split (eval_results.json), when the model has them."
    )


class ModelInfo(BaseModel):
    """``GET /v1/model``: what the server runs."""

    backbone: dict[str, Any]
    backend: str
    quantization: str | None
    tasks: list[TaskInfo]
    limits: dict[str, int]


class ErrorDetail(BaseModel):
    """What went wrong: the HTTP status, a message for a person and, for bad input, the field at fault."""

    status: int
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """Every error response of the API."""

    error: ErrorDetail
