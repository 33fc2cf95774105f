"""The interface every task type implements, and what they share: loading, encoding, batching."""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset, DatasetDict
from transformers import PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from ..config import DataConfig, TaskConfig
from ..data.collator import PaddingCollator
from ..data.loading import load_splits
from ..modeling.config import TASK_FORMAT, saved_settings
from ..modeling.heads import STOCK_KIND
from .inference import InferenceEncoding, InferenceInput, Prediction

MAX_DEFAULT_LENGTH = 512
HEADER_LINES = 1  # of .tsv and .csv files
TEACHER_COLUMN = "teacher_probabilities"  # a distilled task's soft targets (mtl_nlp.training.distillation)

logger = logging.getLogger(__name__)


@dataclass
class TaskEvaluation:
    """One task's scores on one split, with what the report files hold.

    ``render`` builds the report text and the predictions file's text on first use of :attr:`report` or
    :attr:`predictions`: an evaluation during training only needs the metrics, and the final one is written.
    """

    task: str
    split: str
    metrics: dict[str, Any]
    headline: str
    render: Callable[[], tuple[str, str]] = field(repr=False)
    predictions_suffix: str
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def _rendered(self) -> tuple[str, str]:
        return self.render()

    @property
    def report(self) -> str:
        """The text report (``<task>.<split>.report.txt``)."""
        return self._rendered[0]

    @property
    def predictions(self) -> str:
        """The predictions file's text (``<task>.<split>.predictions<suffix>``)."""
        return self._rendered[1]

    @property
    def headline_value(self) -> float:
        """The task's main score (F1, accuracy, …), the one that summaries and model selection use."""
        return float(self.metrics[self.headline])


class Task(ABC):
    """One named task: its data, labels, encoding, head, decoding and metrics.

    A task type is a subclass registered with :func:`mtl_nlp.tasks.register_task_type`: it sets ``type_name``
    (the recipe's ``type``), ``config_class`` (its recipe settings), ``hub_pipeline_tag`` (the Hub task of its
    stock export) and ``stock_auto_class`` (its stock ``AutoModelFor…`` head, or override
    :meth:`head_description` for a head of another kind), and implements the abstract methods. Nothing outside
    ``mtl_nlp.tasks`` branches on the task type.
    """

    type_name: ClassVar[str]
    config_class: ClassVar[type[TaskConfig]]
    hub_pipeline_tag: ClassVar[str]
    stock_auto_class: ClassVar[str | None] = None
    tags_words: ClassVar[bool] = False
    """Whether its predictions carry a tag per word (``Prediction.word_tags``, a CoNLL column)."""
    target_columns: ClassVar[tuple[str, ...]] = ("labels",)
    target_pad_values: ClassVar[dict[str, int]] = {"labels": -100}

    def __init__(self, name: str, config: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        self.name = name
        self.config = config
        self.tokenizer = tokenizer
        self.labels: list[str] | None = list(config.labels) if config.labels else None
        self.raw = DatasetDict()
        self.encoded = DatasetDict()

    @property
    def max_length(self) -> int:
        """The longest encoded input: the recipe's value, else the tokenizer's limit capped at 512."""
        return self.config.max_length or min(self.tokenizer.model_max_length, MAX_DEFAULT_LENGTH)

    def prepare(self) -> None:
        """Load and check every split, settle the label list, and encode the splits (cached by ``datasets``)."""
        self.raw = self.check(load_splits(self.config.data))
        self.encoded = DatasetDict({split: self.encode(dataset) for split, dataset in self.raw.items()})
        for split in self.encoded:
            for what, count in self.truncation_counts(split).items():
                if count:
                    logger.warning(
                        "%s/%s: %d %s (max_length %d); counted in the reports. A larger tasks.%s.max_length "
                        "keeps more of what truncation cuts.",
                        self.name,
                        split,
                        count,
                        what.replace("_", " "),
                        self.max_length,
                        self.name,
                    )

    def truncation_counts(self, split: str) -> dict[str, int]:
        """What of an encoded split did not fit ``max_length``, by metric name (e.g. ``truncated_examples``).

        Logged when the task is prepared and added to the split's metrics, so that nothing is cut silently.
        """
        return {}

    def lengths(self, split: str) -> np.ndarray:
        """The encoded length (in tokens) of every example of a split, read from Arrow without decoding rows."""
        column = self.encoded[split].data.column("input_ids")
        return pc.list_value_length(column).to_numpy(zero_copy_only=False)

    def split_source(self, split: str) -> str:
        """Where a split came from (file path or Hub name), for error messages."""
        return self.config.data.files().get(split) or f"{self.config.data.hub_dataset}[{split}]"

    def row_location(self, split: str, index: int) -> str:
        """Where example ``index`` of a split is, for error messages: file and line for line-based files."""
        source = self.split_source(split)
        if source.endswith((".tsv", ".csv")):
            return f"{source}:{index + 1 + HEADER_LINES}"
        if source.endswith(".jsonl"):
            return f"{source}:{index + 1}"
        return f"{source}: example {index}"

    def head_description(self) -> dict[str, Any]:
        """The head this task trains, as a serialisable description (see :mod:`mtl_nlp.modeling.heads`)."""
        return {"kind": STOCK_KIND, "auto_class": self.stock_auto_class, "problem_type": None}

    def description(self) -> dict[str, Any]:
        """What a saved model keeps of this task for inference (see :mod:`mtl_nlp.modeling.config`)."""
        description = {
            "format": TASK_FORMAT,
            "type": self.type_name,
            "labels": list(self.labels or []),
            "head": self.head_description(),
            "settings": saved_settings(dataclasses.asdict(self.config)),
        }
        if self.config.adapter is not None:
            description["adapter"] = dataclasses.asdict(self.config.adapter)
        return description

    @classmethod
    def from_description(
        cls, name: str, description: dict[str, Any], tokenizer: PreTrainedTokenizerBase, test_file: str | None = None
    ) -> Task:
        """Rebuild a trained task from its saved description, with its saved labels; its only data is
        ``test_file``, if given. Settings this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls.config_class)}
        settings = {key: value for key, value in description["settings"].items() if key in known}
        data_known = {f.name for f in dataclasses.fields(DataConfig)}
        data = {key: value for key, value in settings.pop("data", {}).items() if key in data_known}
        config = cls.config_class(
            **settings,
            type=cls.type_name,
            labels=list(description["labels"]) or None,
            data=DataConfig(**data, test=test_file),
        )
        return cls(name, config, tokenizer)

    def model_columns(self) -> list[str]:
        """Encoded columns a batch feeds the model: the tokenizer's inputs and the head's targets."""
        present = self.encoded[next(iter(self.encoded))].column_names
        names = [*self.tokenizer.model_input_names, *self.target_columns]
        return [name for name in names if name in present]

    def training_columns(self) -> list[str]:
        """Encoded columns a training batch reads: the model's, and the teachers' soft targets when present."""
        distilled = TEACHER_COLUMN in self.encoded["train"].column_names
        return [*self.model_columns(), *([TEACHER_COLUMN] if distilled else [])]

    def distillation_refusal(self) -> str | None:
        """Why this task cannot learn from a teacher's probabilities (None: it can, see :meth:`distillation_units`)."""
        return f"its task type {self.type_name!r} defines no soft targets (Task.distillation_units)"

    def teacher_labels(self) -> list[str] | None:
        """The label names, in order, that a teacher's outputs must have (None: its outputs are not labels)."""
        return self.labels

    def distillation_units(
        self, output: ModelOutput, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits of the units that carry a target, as distributions to distil: ``logits`` of shape (batch,
        units, classes), padded, and a same-shaped mask of the real units' classes. Teacher and student alike are
        read through it; each real unit is one softmax distribution over its masked-in classes."""
        raise NotImplementedError(self.distillation_refusal())

    def collator(self, pad_to_multiple_of: int | None = None) -> PaddingCollator:
        """The padding collator for this task's encoded columns."""
        pad_values = {
            "input_ids": self.tokenizer.pad_token_id,
            "token_type_ids": self.tokenizer.pad_token_type_id,
        }
        return PaddingCollator({**pad_values, **self.target_pad_values}, pad_to_multiple_of)

    def plot(self, evaluation: TaskEvaluation, directory: Path) -> list[Path]:
        """Write this task type's plots of an evaluation (none by default); return their paths."""
        return []

    @abstractmethod
    def check(self, raw: DatasetDict) -> DatasetDict:
        """Validate the raw splits (columns, label values), set ``self.labels`` and return the splits to use."""

    @abstractmethod
    def encode(self, dataset: Dataset) -> Dataset:
        """Tokenize a raw split into model inputs and targets (with ``Dataset.map``, so it is cached)."""

    @abstractmethod
    def batch_predictions(self, output: ModelOutput, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        """Reduce the head's output for a batch to one compact array per example (what evaluation keeps)."""

    @abstractmethod
    def evaluate(self, split: str, predictions: list[np.ndarray]) -> TaskEvaluation:
        """Score per-example predictions (in encoded order) against the split's gold labels."""

    @abstractmethod
    def encode_inputs(self, inputs: list[InferenceInput], stride: int | None = None) -> InferenceEncoding:
        """Encode inputs to predict on into windows, exactly as training encodes examples; ``stride`` (tokens
        shared by consecutive windows) lets tasks that read every token of a long text split it into windows."""

    @abstractmethod
    def decode(
        self, inputs: list[InferenceInput], encoding: InferenceEncoding, predictions: list[np.ndarray]
    ) -> list[Prediction | None]:
        """Turn the per-window predictions (from :meth:`batch_predictions`) into one prediction per input (None for
        inputs the task does not answer), with the decoding that :meth:`evaluate` scores."""
