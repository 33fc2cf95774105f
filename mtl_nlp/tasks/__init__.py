"""Task types: one module per type, registered in ``TASK_TYPES`` by :func:`register_task_type`.

A registered type is everything that differs between types — its recipe settings, head, encoding, decoder,
metrics, Hub task — so adding one is one module and one call; see docs/extending.md.
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase

from ..config import TASK_CONFIG_CLASSES, TaskConfig
from ..errors import ModelLoadError
from .base import Task, TaskEvaluation
from .inference import InferenceEncoding, InferenceInput, Prediction, check_inputs
from .question_answering import QuestionAnsweringConfig, QuestionAnsweringTask
from .sequence_classification import SequenceClassificationConfig, SequenceClassificationTask
from .token_classification import TokenClassificationConfig, TokenClassificationTask

TASK_TYPES: dict[str, type[Task]] = {}
BUILT_IN_TASK_TYPES: tuple[type[Task], ...] = (
    TokenClassificationTask,
    SequenceClassificationTask,
    QuestionAnsweringTask,
)


def register_task_type(task_class: type[Task]) -> type[Task]:
    """Register a task type under its ``type_name``, so recipes, saved models, the pipeline, export and the model
    card know it. Returns the class, so it can decorate the class definition."""
    TASK_TYPES[task_class.type_name] = task_class
    TASK_CONFIG_CLASSES[task_class.type_name] = task_class.config_class
    return task_class


for _built_in in BUILT_IN_TASK_TYPES:
    register_task_type(_built_in)


def task_type(name: str) -> type[Task]:
    """The registered task type ``name``; a clear error when this process does not know it."""
    if name not in TASK_TYPES:
        raise ModelLoadError(
            f"task type {name!r} is not registered (known: {', '.join(TASK_TYPES)}). Import the module that "
            "registers it (mtl_nlp.tasks.register_task_type) before loading the model."
        )
    return TASK_TYPES[name]


def build_task(name: str, config: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> Task:
    """The task object for a task's recipe settings."""
    return task_type(config.type)(name, config, tokenizer)


def task_from_description(
    name: str, description: dict[str, Any], tokenizer: PreTrainedTokenizerBase, test_file: str | None = None
) -> Task:
    """Rebuild a trained task from its saved description (``model.config.tasks[name]``); its only data is
    ``test_file``, if given."""
    return task_type(description["type"]).from_description(name, description, tokenizer, test_file)


__all__ = [
    "BUILT_IN_TASK_TYPES",
    "TASK_TYPES",
    "InferenceEncoding",
    "InferenceInput",
    "Prediction",
    "QuestionAnsweringConfig",
    "QuestionAnsweringTask",
    "SequenceClassificationConfig",
    "SequenceClassificationTask",
    "Task",
    "TaskEvaluation",
    "TokenClassificationConfig",
    "TokenClassificationTask",
    "build_task",
    "check_inputs",
    "register_task_type",
    "task_from_description",
    "task_type",
]
