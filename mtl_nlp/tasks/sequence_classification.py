"""Sequence classification: one label per text or text pair (sentiment, NLI, topic, …)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from transformers.utils import ModelOutput

from ..config import TaskConfig, option
from ..errors import DataError
from ..evaluation.classification import label_report, score_labels
from .base import Task, TaskEvaluation

HEADER_LINES = 1


@dataclass
class SequenceClassificationConfig(TaskConfig):
    """A label per text, or per pair of texts."""

    text_column: str = option("Column holding the text (the first text of a pair).", default="text")
    text_pair_column: str | None = option("Column holding the second text of a pair, if any.", default=None)
    label_column: str = option("Column holding the label (a name, or an index into labels).", default="label")
    problem_type: Literal["single_label_classification"] = option(
        "single_label_classification: exactly one label per example.", default="single_label_classification"
    )


def _encode_texts(
    batch: dict[str, list],
    tokenizer: Any,
    text_column: str,
    text_pair_column: str | None,
    label_column: str,
    label_ids: dict[str, int],
    max_length: int,
) -> dict[str, list]:
    """Tokenize texts (or pairs, truncating the longer text first) and map labels to ids."""
    pairs = batch[text_pair_column] if text_pair_column else None
    encoding = tokenizer(batch[text_column], pairs, truncation=True, max_length=max_length)
    return {**encoding, "labels": [label_ids[str(value)] for value in batch[label_column]]}


class SequenceClassificationTask(Task):
    """One label per example, predicted from the head's logits."""

    config_class = SequenceClassificationConfig
    head_type = "sequence_classification"
    target_pad_values = {}
    config: SequenceClassificationConfig

    def _row(self, split: str, dataset: Dataset, index: int) -> str:
        source = self.split_source(split)
        if source.endswith((".tsv", ".csv")):
            return f"{source}:{index + 1 + HEADER_LINES}"
        if source.endswith(".jsonl"):
            return f"{source}:{index + 1}"
        return f"{source}: example {index}"

    def check(self, raw: DatasetDict) -> DatasetDict:
        columns = [self.config.text_column, self.config.label_column]
        columns += [self.config.text_pair_column] if self.config.text_pair_column else []
        for split, dataset in raw.items():
            for column in columns:
                if column not in dataset.column_names:
                    raise DataError(
                        f"{self.split_source(split)}: no column {column!r} (columns: "
                        f"{', '.join(dataset.column_names)}). Set tasks.{self.name}.text_column / label_column."
                    )
        feature = raw["train"].features[self.config.label_column] if "train" in raw else None
        if self.labels is None:
            if isinstance(feature, ClassLabel):
                self.labels = list(feature.names)
            else:
                values = set(raw["train"][self.config.label_column])
                self.labels = [str(v) for v in sorted(values)]
        for split, dataset in raw.items():
            for index, value in enumerate(dataset[self.config.label_column]):
                if self._label_name(value) not in self.labels:
                    raise DataError(
                        f"{self._row(split, dataset, index)}: label {value!r} is not one of {self.labels}. "
                        f"Fix the label or list it in tasks.{self.name}.labels."
                    )
            for column in columns[:1] + columns[2:]:
                empty = next((i for i, text in enumerate(dataset[column]) if not text), None)
                if empty is not None:
                    raise DataError(f"{self._row(split, dataset, empty)}: the {column!r} text is empty.")
        return raw

    def _label_name(self, value: Any) -> str:
        """Labels given as integers index the label list; names stand for themselves."""
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and str(value) not in self.labels:
            return self.labels[value] if 0 <= value < len(self.labels) else str(value)
        return str(value)

    def encode(self, dataset: Dataset) -> Dataset:
        values = set(dataset[self.config.label_column])
        return dataset.map(
            _encode_texts,
            batched=True,
            remove_columns=dataset.column_names,
            fn_kwargs={
                "tokenizer": self.tokenizer,
                "text_column": self.config.text_column,
                "text_pair_column": self.config.text_pair_column,
                "label_column": self.config.label_column,
                "label_ids": {str(v): self.labels.index(self._label_name(v)) for v in values},
                "max_length": self.max_length,
            },
            desc=f"Tokenizing {self.name}",
        )

    def batch_predictions(self, output: ModelOutput, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        return list(output.logits.float().cpu().numpy())

    def evaluate(self, split: str, predictions: list[np.ndarray]) -> TaskEvaluation:
        logits = np.stack(predictions)
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        predicted = probabilities.argmax(axis=1)
        gold = np.asarray(self.encoded[split]["labels"])
        metrics = score_labels(gold, predicted, self.labels)
        report = label_report(gold, predicted, self.labels, f"{self.name} / {split}: classification scores")
        texts = self.raw[split][self.config.text_column]
        lines = ["text\tgold\tpredicted\tprobability"]
        lines += [
            f"{text}\t{self.labels[g]}\t{self.labels[p]}\t{probabilities[i, p]:.4f}"
            for i, (text, g, p) in enumerate(zip(texts, gold, predicted))
        ]
        return TaskEvaluation(self.name, split, metrics, "accuracy", report, "\n".join(lines) + "\n", ".tsv")
