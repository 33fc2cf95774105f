"""Task types: one module per type; ``TASK_TYPES`` maps the recipe's ``type`` to its class."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase

from ..config import TaskConfig, build_dataclass
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


def task_from_spec(
    name: str, spec: dict[str, Any], tokenizer: PreTrainedTokenizerBase, test_file: str | None = None
) -> Task:
    """Rebuild a trained task from its head spec (saved in the model's config), with its saved labels; its
    only data is ``test_file``, if given."""
    settings = dict(spec["task_config"])
    settings["labels"] = spec["id2label"] or None
    settings["data"] = {**settings["data"], "train": None, "validation": None, "test": test_file, "hub_dataset": None}
    settings["data"]["max_eval_examples"] = None
    return build_task(name, build_dataclass(TaskConfig, settings, f"tasks.{name}"), tokenizer)


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
    "task_from_spec",
]
