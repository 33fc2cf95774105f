"""A task type defined here, registered through the public API, goes through everything a built-in type does:
recipe, training, evaluation and reports, saving, reloading, ``mtl-nlp evaluate``, the pipeline and ``predict``
— with a head of its own kind (mean pooling over the shared encoder's tokens), which the stock export refuses.
Nothing else in mtl-nlp knows this type: the proof that a new type is one module and one registration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from conftest import write_toy_sentiment
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from mtl_nlp import MultiTaskPipeline, recipe_from_dict, train
from mtl_nlp.cli import main
from mtl_nlp.config import TaskConfig, option
from mtl_nlp.data.cached import map_cached
from mtl_nlp.errors import ExportError, ModelLoadError
from mtl_nlp.export import export_saved_task
from mtl_nlp.modeling import register_head_kind
from mtl_nlp.tasks import TASK_TYPES, InferenceEncoding, Prediction, Task, TaskEvaluation, register_task_type


class MeanPoolHead(nn.Module):
    """A head that reads every token of the shared encoder's output: the masked mean, then a linear layer."""

    def __init__(self, hidden_size: int, num_labels: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, encoded, inputs: dict[str, torch.Tensor], labels: torch.Tensor | None = None):
        mask = inputs["attention_mask"].unsqueeze(-1).to(encoded.last_hidden_state.dtype)
        pooled = (encoded.last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1)
        logits = self.classifier(pooled)
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


register_head_kind("mean_pool", lambda config, description, labels: MeanPoolHead(config.hidden_size, len(labels)))


@dataclass
class MeanPooledConfig(TaskConfig):
    """A label per text, read from the mean of the encoder's token states."""

    text_column: str = option("Column holding the text.", default="text")
    label_column: str = option("Column holding the label.", default="label")


def encode_texts(batch: dict[str, list], tokenizer: Any, label_ids: dict[str, int], max_length: int) -> dict:
    encoding = tokenizer(batch["text"], truncation=True, max_length=max_length)
    return {**encoding, "labels": [label_ids[label] for label in batch["label"]]}


@register_task_type
class MeanPooledClassificationTask(Task):
    type_name = "mean_pooled_classification"
    config_class = MeanPooledConfig
    hub_pipeline_tag = "text-classification"

    def head_description(self) -> dict[str, Any]:
        return {"kind": "mean_pool"}

    def check(self, raw):
        self.labels = self.labels or sorted(set(raw["train"][self.config.label_column]))
        return raw

    def encode(self, dataset):
        label_ids = {label: i for i, label in enumerate(self.labels)}
        return map_cached(
            dataset,
            encode_texts,
            batched=True,
            remove_columns=dataset.column_names,
            fn_kwargs={"tokenizer": self.tokenizer, "label_ids": label_ids, "max_length": self.max_length},
        )

    def batch_predictions(self, output, batch):
        return list(output.logits.float().softmax(-1).cpu().numpy())

    def evaluate(self, split, predictions):
        predicted = np.stack(predictions).argmax(axis=1)
        gold = np.asarray(self.encoded[split]["labels"])
        accuracy = float((predicted == gold).mean())
        rows = "\n".join(self.labels[p] for p in predicted) + "\n"

        def render():
            return f"accuracy {accuracy}\n", rows

        return TaskEvaluation(self.name, split, {"accuracy": accuracy}, "accuracy", render, ".txt")

    def encode_inputs(self, inputs, stride=None):
        encoding = self.tokenizer([given.text for given in inputs], truncation=True, max_length=self.max_length)
        return InferenceEncoding(
            {name: encoding[name] for name in ("input_ids", "attention_mask")}, list(range(len(inputs)))
        )

    def decode(self, inputs, encoding, predictions):
        return [Prediction({"label": self.labels[int(p.argmax())], "score": float(p.max())}) for p in predictions]


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("extending")
    data = {
        "train": write_toy_sentiment(directory / "train.tsv", 160, seed=1),
        "validation": write_toy_sentiment(directory / "dev.tsv", 40, seed=2),
    }
    recipe = recipe_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "output_dir": str(directory / "out"),
            "tasks": {"opinion": {"type": "mean_pooled_classification", "data": data, "batch_size": 16}},
            "training": {"max_steps": 120, "learning_rate": 3e-3, "save_every_steps": 0},
        }
    )
    return directory, data, train(recipe)


def test_a_registered_task_type_trains_and_is_scored(run):
    _, _, result = run
    [evaluation] = result.evaluations
    assert evaluation.task == "opinion" and evaluation.metrics["accuracy"] >= 0.9
    assert (result.report_dir / "opinion.validation.predictions.txt").exists()
    saved = json.loads((result.model_dir / "config.json").read_text())["tasks"]["opinion"]
    assert saved["type"] == "mean_pooled_classification" and saved["head"] == {"kind": "mean_pool"}


def test_it_reloads_evaluates_and_predicts_through_the_public_commands(run, tmp_path, capsys):
    _, data, result = run
    assert main(["evaluate", str(result.model_dir), "--task", "opinion", "--file", data["validation"],
                 "--output-dir", str(tmp_path / "eval")]) == 0  # fmt: skip
    assert float(capsys.readouterr().out.split()[1]) == result.evaluations[0].metrics["accuracy"]
    results = MultiTaskPipeline(result.model_dir, device="cpu")(["the film was wonderful and funny"])
    assert results[0]["opinion"]["label"] == "positive"
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "the film was slow and dull"}\n')
    assert main(["predict", str(result.model_dir), str(texts), "--output", str(tmp_path / "out.jsonl")]) == 0
    assert json.loads((tmp_path / "out.jsonl").read_text())["opinion"]["label"] == "negative"


def test_a_head_without_a_stock_class_is_refused_by_export(run, tmp_path):
    _, _, result = run
    with pytest.raises(ExportError, match="head is of kind 'mean_pool', which has no stock transformers class"):
        export_saved_task(result.model_dir, "opinion", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_pipeline_names_a_task_type_this_process_does_not_know(run, monkeypatch):
    _, _, result = run
    monkeypatch.delitem(TASK_TYPES, "mean_pooled_classification")
    with pytest.raises(ModelLoadError, match="task type 'mean_pooled_classification' is not registered"):
        MultiTaskPipeline(result.model_dir, device="cpu")
