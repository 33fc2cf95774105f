"""Task heads that are the stock ``transformers`` heads, fed by the shared encoder.

Each head is the backbone's own ``AutoModelFor…`` class with its encoder attribute replaced by
:class:`SharedEncoderOutput`, which hands over what the shared encoder already computed. Heads therefore
have exactly the parameters, initialisation, dropout, pooling and loss of the stock classes, for every
architecture ``transformers`` supports, and exporting a task to a stock checkpoint is a re-keying of the
state dict.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import (
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.utils import ModelOutput

HEAD_CLASSES = {
    "token_classification": AutoModelForTokenClassification,
    "sequence_classification": AutoModelForSequenceClassification,
    "question_answering": AutoModelForQuestionAnswering,
}


class SharedEncoderOutput(nn.Module):
    """Stands in for a stock head's encoder: returns the shared encoder's output for the current batch."""

    def __init__(self) -> None:
        super().__init__()
        self.output: ModelOutput | None = None

    def forward(self, *args: Any, **kwargs: Any) -> ModelOutput:
        if self.output is None:
            raise RuntimeError("the shared encoder's output was not set before calling the head.")
        return self.output


def head_config(encoder_config: PretrainedConfig, spec: dict[str, Any]) -> PretrainedConfig:
    """The stock config of a task's head: the encoder's config plus the task's labels and problem type."""
    config = encoder_config.__class__.from_dict(encoder_config.to_dict())
    if "id2label" in spec:
        config.id2label = dict(enumerate(spec["id2label"]))
        config.label2id = {label: i for i, label in enumerate(spec["id2label"])}
    config.problem_type = spec.get("problem_type")
    return config


def build_head(encoder_config: PretrainedConfig, spec: dict[str, Any]) -> PreTrainedModel:
    """Build the stock head for ``spec["type"]`` with its encoder replaced by a :class:`SharedEncoderOutput`."""
    if spec["type"] not in HEAD_CLASSES:
        raise ValueError(f"unknown head type {spec['type']!r}; known: {', '.join(HEAD_CLASSES)}.")
    auto_class = HEAD_CLASSES[spec["type"]]
    try:
        head = auto_class.from_config(head_config(encoder_config, spec))
    except ValueError as error:
        raise ValueError(
            f"{encoder_config.model_type!r} has no {auto_class.__name__.replace('AutoModelFor', '')} head in "
            f"transformers, so it cannot serve a {spec['type']} task: {error}"
        ) from None
    setattr(head, head.base_model_prefix, SharedEncoderOutput())
    return head


def shared_slot(head: PreTrainedModel) -> SharedEncoderOutput:
    """The head's :class:`SharedEncoderOutput`."""
    return getattr(head, head.base_model_prefix)
