"""Sequence classification: one label per text or text pair (sentiment, NLI, topic, …), several labels per
text (multi-label), or a score per text (regression)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from transformers.utils import ModelOutput

from ..config import TaskConfig, option
from ..data.cached import map_cached
from ..errors import DataError, InputError, RecipeError
from .base import Task, TaskEvaluation
from .inference import InferenceEncoding, InferenceInput, Prediction

SINGLE, MULTI, REGRESSION = "single_label_classification", "multi_label_classification", "regression"


@dataclass
class SequenceClassificationConfig(TaskConfig):
    """A label per text, or per pair of texts; several labels per text; or a score per text."""

    text_column: str = option("Column holding the text (the first text of a pair).", default="text")
    text_pair_column: str | None = option("Column holding the second text of a pair, if any.", default=None)
    label_column: str = option(
        "Column holding the label: a name or an index into labels; a list of them for multi-label tasks; "
        "a number for regression.",
        default="label",
    )
    problem_type: Literal["single_label_classification", "multi_label_classification", "regression"] = option(
        "single_label_classification: one label per example (softmax); multi_label_classification: any number "
        "of labels (sigmoid per label); regression: a real-valued score (mean squared error).",
        default=SINGLE,
    )
    threshold: float | list[float] = option(
        "Multi-label only: a label is predicted when its probability reaches this threshold (one for all "
        "labels, or one per label in label order).",
        default=0.5,
        minimum=0,
        maximum=1,
    )


def _encode_texts(
    batch: dict[str, list],
    tokenizer: Any,
    text_column: str,
    text_pair_column: str | None,
    label_column: str,
    label_ids: dict[str, int],
    problem_type: str,
    max_length: int,
) -> dict[str, list]:
    """Tokenize texts (or pairs, truncating the longer text first) and turn labels into the head's targets:
    a class id, a multi-hot vector, or a float. ``truncated`` marks the examples cut at ``max_length``."""
    pairs = batch[text_pair_column] if text_pair_column else None
    encoding = tokenizer(batch[text_column], pairs, truncation=True, max_length=max_length)
    # The fast tokenizer keeps what truncation cut off as overflowing pieces: no second tokenization needed.
    truncated = [bool(piece.overflowing) for piece in encoding.encodings]
    values = batch[label_column]
    if problem_type == REGRESSION:
        targets = [float(value) for value in values]
    elif problem_type == MULTI:
        targets = []
        for names in values:
            hot = [0.0] * len(label_ids)
            for name in names:
                hot[label_ids[str(name)]] = 1.0
            targets.append(hot)
    else:
        targets = [label_ids[str(value)] for value in values]
    return {**encoding, "labels": targets, "truncated": truncated}


class SequenceClassificationTask(Task):
    """One label per example (or a label set, or a score), predicted from the head's logits."""

    type_name = "sequence_classification"
    config_class = SequenceClassificationConfig
    hub_pipeline_tag = "text-classification"
    stock_auto_class = "AutoModelForSequenceClassification"
    target_pad_values = {}
    config: SequenceClassificationConfig

    def head_description(self) -> dict[str, Any]:
        return {**super().head_description(), "problem_type": self.config.problem_type}

    def distillation_refusal(self) -> str | None:
        if self.config.problem_type == REGRESSION:
            return "a regression head predicts a score, not a distribution over labels, so it has no soft targets"
        return None

    def distillation_units(
        self, output: ModelOutput, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One unit per example over the labels (softmax); multi-label: one unit per label, over (off, on), whose
        softmax of (0, logit / T) is the label's sigmoid."""
        logits = output.logits
        if self.config.problem_type == MULTI:
            units = torch.stack([torch.zeros_like(logits), logits], dim=2)
        else:
            units = logits.unsqueeze(1)
        return units, torch.ones_like(units, dtype=torch.bool)

    def check(self, raw: DatasetDict) -> DatasetDict:
        texts = [self.config.text_column] + ([self.config.text_pair_column] if self.config.text_pair_column else [])
        for split, dataset in raw.items():
            for column in [*texts, self.config.label_column]:
                if column not in dataset.column_names:
                    raise DataError(
                        f"{self.split_source(split)}: no column {column!r} (columns: "
                        f"{', '.join(dataset.column_names)}). Set tasks.{self.name}.text_column / label_column."
                    )
            for column in [*texts, self.config.label_column]:
                empty = next((i for i, value in enumerate(dataset[column]) if value is None or value == ""), None)
                if empty is not None:
                    raise DataError(
                        f"{self.row_location(split, empty)}: the {column!r} value is empty. Fill it in or remove the "
                        "example."
                    )
        if self.labels is None:
            self.labels = self._labels_from(raw["train"])
        threshold = self.config.threshold
        if isinstance(threshold, list) and len(threshold) != len(self.labels):
            raise RecipeError(
                f"tasks.{self.name}.threshold: {len(threshold)} thresholds for {len(self.labels)} labels."
            )
        for split, dataset in raw.items():
            for index, value in enumerate(dataset[self.config.label_column]):
                problem = self._label_problem(value)
                if problem:
                    raise DataError(
                        f"{self.row_location(split, index)}: {problem} Fix the label or tasks.{self.name}.labels."
                    )
        return raw

    def _labels_from(self, train: Dataset) -> list[str]:
        """Label names from the training data: ClassLabel names, else the sorted distinct values."""
        if self.config.problem_type == REGRESSION:
            return [self.config.label_column]
        feature = train.features[self.config.label_column]
        feature = getattr(feature, "feature", feature)
        if isinstance(feature, ClassLabel):
            return list(feature.names)
        values = train[self.config.label_column]
        if self.config.problem_type == MULTI:
            values = [value for row in values for value in (row or [])]
        return [str(value) for value in sorted(set(values))]

    def _label_problem(self, value: Any) -> str | None:
        """What is wrong with one example's label value, or None."""
        if self.config.problem_type == REGRESSION:
            try:
                float(value)
            except (TypeError, ValueError):
                return f"label {value!r} is not a number (regression task)."
            return None
        if self.config.problem_type == MULTI:
            if not isinstance(value, list):
                return f"label {value!r} is not a list of labels (multi-label task)."
            unknown = [v for v in value if self._label_name(v) not in self.labels]
            return f"labels {unknown} are not among {self.labels}." if unknown else None
        if self._label_name(value) not in self.labels:
            return f"label {value!r} is not one of {self.labels}."
        return None

    def _label_name(self, value: Any) -> str:
        """Labels given as integers index the label list; names stand for themselves."""
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and str(value) not in self.labels:
            return self.labels[value] if 0 <= value < len(self.labels) else str(value)
        return str(value)

    def encode(self, dataset: Dataset) -> Dataset:
        values = dataset[self.config.label_column]
        if self.config.problem_type == MULTI:
            values = [v for row in values for v in row]
        distinct = set() if self.config.problem_type == REGRESSION else set(values)
        return map_cached(
            dataset,
            _encode_texts,
            batched=True,
            remove_columns=dataset.column_names,
            fn_kwargs={
                "tokenizer": self.tokenizer,
                "text_column": self.config.text_column,
                "text_pair_column": self.config.text_pair_column,
                "label_column": self.config.label_column,
                "label_ids": {str(v): self.labels.index(self._label_name(v)) for v in distinct},
                "problem_type": self.config.problem_type,
                "max_length": self.max_length,
            },
            desc=f"Tokenizing {self.name}",
        )

    def truncation_counts(self, split: str) -> dict[str, int]:
        return {"truncated_examples": sum(self.encoded[split]["truncated"])}

    def plot(self, evaluation: TaskEvaluation, directory: Path) -> list[Path]:
        if "predicted" not in evaluation.extras:
            return []
        from ..evaluation.plots import plot_confusion_matrix  # on use: see mtl_nlp.evaluation

        path = directory / f"{self.name}.{evaluation.split}.confusion.png"
        gold, predicted = evaluation.extras["gold"], evaluation.extras["predicted"]
        title = f"{self.name} / {evaluation.split}: confusion matrix"
        return [plot_confusion_matrix(gold, predicted, self.labels, path, title)]

    def batch_predictions(self, output: ModelOutput, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        return list(output.logits.float().cpu().numpy())

    def decide(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decision for a batch of logits (examples × outputs) and the scores it rests on: the label id and the
        softmax probabilities; the multi-hot labels at or above the threshold and the sigmoid probabilities; or
        the predicted score twice (regression)."""
        if self.config.problem_type == REGRESSION:
            return logits[:, 0], logits[:, 0]
        if self.config.problem_type == MULTI:
            probabilities = 1 / (1 + np.exp(-logits))
            return (probabilities >= np.asarray(self.config.threshold)).astype(int), probabilities
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities.argmax(axis=1), probabilities

    def evaluate(self, split: str, predictions: list[np.ndarray]) -> TaskEvaluation:
        from ..evaluation.classification import (  # on use: see mtl_nlp.evaluation
            label_report,
            multi_label_report,
            regression_report,
            score_labels,
            score_multi_label,
            score_regression,
        )

        predicted, probabilities = self.decide(np.stack(predictions))
        gold = np.asarray(self.encoded[split]["labels"])
        texts = self.raw[split][self.config.text_column]
        title = f"{self.name} / {split}"
        if self.config.problem_type == REGRESSION:
            metrics = score_regression(gold, predicted)
            return self._evaluation(
                split,
                metrics,
                "pearson",
                lambda: regression_report(gold, predicted, f"{title}: regression scores"),
                "text\tgold\tpredicted",
                lambda: [f"{t}\t{g:.4f}\t{p:.4f}" for t, g, p in zip(texts, gold, predicted)],
            )
        if self.config.problem_type == MULTI:
            metrics = score_multi_label(gold.astype(int), predicted, self.labels)
            return self._evaluation(
                split,
                metrics,
                "f1_micro",
                lambda: multi_label_report(gold.astype(int), predicted, self.labels, f"{title}: multi-label scores"),
                "text\tgold\tpredicted\tprobabilities",
                lambda: [
                    f"{t}\t{self._names(g)}\t{self._names(p)}\t{' '.join(f'{x:.4f}' for x in probs)}"
                    for t, g, p, probs in zip(texts, gold, predicted, probabilities)
                ],
            )
        metrics = score_labels(gold, predicted, self.labels)
        evaluation = self._evaluation(
            split,
            metrics,
            "accuracy",
            lambda: label_report(gold, predicted, self.labels, f"{title}: classification scores"),
            "text\tgold\tpredicted\tprobability",
            lambda: [
                f"{t}\t{self.labels[g]}\t{self.labels[p]}\t{probabilities[i, p]:.4f}"
                for i, (t, g, p) in enumerate(zip(texts, gold, predicted))
            ],
        )
        evaluation.extras = {"gold": gold, "predicted": predicted}
        return evaluation

    def encode_inputs(self, inputs: list[InferenceInput], stride: int | None = None) -> InferenceEncoding:
        """Texts (or pairs) truncated at ``max_length`` as in training: a classification reads the first window."""
        pairs = None
        if self.config.text_pair_column:
            missing = next((i for i, given in enumerate(inputs) if not given.text_pair), None)
            if missing is not None:
                raise InputError(f"input {missing}: task {self.name!r} classifies text pairs; give its second text.")
            pairs = [given.text_pair for given in inputs]
        encoding = self.tokenizer([given.text for given in inputs], pairs, truncation=True, max_length=self.max_length)
        model_inputs = {name: encoding[name] for name in self.tokenizer.model_input_names if name in encoding}
        return InferenceEncoding(model_inputs, list(range(len(inputs))))

    def decode(
        self, inputs: list[InferenceInput], encoding: InferenceEncoding, predictions: list[np.ndarray]
    ) -> list[Prediction | None]:
        predicted, scores = self.decide(np.stack(predictions))
        if self.config.problem_type == REGRESSION:
            return [Prediction({"score": float(score)}) for score in scores]
        if self.config.problem_type == MULTI:
            return [
                Prediction(
                    {
                        "labels": [label for label, on in zip(self.labels, hot) if on],
                        "scores": dict(zip(self.labels, row.tolist())),
                    }
                )
                for hot, row in zip(predicted, scores)
            ]
        return [
            Prediction({"label": self.labels[label], "score": float(row[label])})
            for label, row in zip(predicted, scores)
        ]

    def _names(self, hot: np.ndarray) -> str:
        return ",".join(label for label, on in zip(self.labels, hot) if on)

    def _evaluation(
        self,
        split: str,
        metrics: dict,
        headline: str,
        report: Callable[[], str],
        header: str,
        rows: Callable[[], list[str]],
    ) -> TaskEvaluation:
        """The evaluation, its report and predictions rendered when first read."""
        metrics.update(self.truncation_counts(split))

        def render() -> tuple[str, str]:
            text = report()
            if truncated := metrics["truncated_examples"]:
                text += (
                    f"\n{truncated} examples were longer than max_length {self.max_length} tokens and were scored "
                    "on their first tokens only.\n"
                )
            return text, "\n".join([header, *rows()]) + "\n"

        return TaskEvaluation(self.name, split, metrics, headline, render, ".tsv")
