"""Task types: one module per type; ``TASK_TYPES`` maps the recipe's ``type`` to its class."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from ..config import TaskConfig
from .base import Task, TaskEvaluation
from .question_answering import QuestionAnsweringConfig, QuestionAnsweringTask
from .sequence_classification import SequenceClassificationConfig, SequenceClassificationTask
from .token_classification import TokenClassificationConfig, TokenClassificationTask

TASK_TYPES: dict[str, type[Task]] = {
    "token_classification": TokenClassificationTask,
    "sequence_classification": SequenceClassificationTask,
    "question_answering": QuestionAnsweringTask,
}


def build_task(name: str, config: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> Task:
    """The task object for a task's recipe settings."""
    return TASK_TYPES[config.type](name, config, tokenizer)


__all__ = [
    "TASK_TYPES",
    "QuestionAnsweringConfig",
    "QuestionAnsweringTask",
    "SequenceClassificationConfig",
    "SequenceClassificationTask",
    "Task",
    "TaskEvaluation",
    "TokenClassificationConfig",
    "TokenClassificationTask",
    "build_task",
]
