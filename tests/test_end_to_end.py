"""Train from a recipe on the tiny model: reports, predictions, learning, and a reloadable model."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from conftest import write_toy_sentiment

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.cli import main
from mtl_nlp.training.history import read_history


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    recipe = recipe_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "output_dir": str(directory / "out"),
            "training": {
                "max_steps": 300,
                "learning_rate": 2e-3,
                "warmup_ratio": 0.05,
                "log_every_steps": 30,
            },
            "tasks": {
                "ner": {
                    "type": "token_classification",
                    "data": {
                        "train": "pkg:mtl_nlp/sample_data/ner_train.conll",
                        "validation": "pkg:mtl_nlp/sample_data/ner_dev.conll",
                        "max_train_examples": 160,
                        "max_eval_examples": 40,
                    },
                    "batch_size": 16,
                },
                "sentiment": {
                    "type": "sequence_classification",
                    "data": {
                        "train": write_toy_sentiment(directory / "train.tsv", 160, seed=1),
                        "validation": write_toy_sentiment(directory / "dev.tsv", 40, seed=2),
                    },
                    "batch_size": 16,
                },
            },
        }
    )
    return recipe, train(recipe)


def test_reports_and_predictions_are_written_and_parse(trained_run):
    _, result = trained_run
    for task, suffix in (("ner", ".conll"), ("sentiment", ".tsv")):
        report = json.loads((result.report_dir / f"{task}.validation.report.json").read_text())
        assert report["task"] == task and 0.0 <= report["headline_value"] <= 1.0
        assert (result.report_dir / f"{task}.validation.report.txt").read_text().startswith(f"{task} / validation")
        assert (result.report_dir / f"{task}.validation.predictions{suffix}").stat().st_size > 0
    ner = json.loads((result.report_dir / "ner.validation.report.json").read_text())["metrics"]
    assert {"precision", "recall", "f1", "per_type", "averages"} <= set(ner)
    lines = (result.report_dir / "ner.validation.predictions.conll").read_text().split("\n")
    sentences = [list(group) for blank, group in itertools.groupby(lines, key=lambda line: not line) if not blank]
    assert len(sentences) == 40 and all(len(line.split()) == 3 for s in sentences for line in s)
    summary = json.loads((result.report_dir / "summary.json").read_text())
    assert [row["task"] for row in summary] == ["ner", "sentiment"]
    assert (result.model_dir / "model.safetensors").exists()
    assert (result.model_dir / "tokenizer.json").exists()


def test_losses_go_down_and_the_toy_task_is_learned(trained_run):
    recipe, result = trained_run
    logged = [record["loss"] for record in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in record]
    assert len(logged) == 10
    for task in ("ner", "sentiment"):
        assert logged[-1][task] < 0.5 * logged[0][task]
    by_task = {e.task: e for e in result.evaluations}
    assert by_task["sentiment"].metrics["accuracy"] == 1.0


def test_saved_model_reloads_with_identical_logits(trained_run, tiny_tokenizer):
    _, result = trained_run
    reloaded = MultiTaskModel.from_pretrained(result.model_dir).eval()
    again = MultiTaskModel.from_pretrained(result.model_dir).eval()
    batch = tiny_tokenizer(["the film was wonderful and funny"], return_tensors="pt")
    assert torch.equal(reloaded(task="sentiment", **batch).logits, again(task="sentiment", **batch).logits)
    probabilities = reloaded(task="sentiment", **batch).logits.softmax(-1)[0]
    assert reloaded.config.tasks["sentiment"]["id2label"][int(probabilities.argmax())] == "positive"


def test_evaluate_command_rescoring_the_dev_file_reproduces_the_run(trained_run, tmp_path):
    recipe, result = trained_run
    dev = recipe.tasks["sentiment"].data.validation
    assert (
        main(["evaluate", str(result.model_dir), "--task", "sentiment", "--file", dev, "--output-dir", str(tmp_path)])
        == 0
    )
    rescored = json.loads((tmp_path / "sentiment.test.report.json").read_text())
    original = json.loads((result.report_dir / "sentiment.validation.report.json").read_text())
    assert rescored["metrics"]["accuracy"] == original["metrics"]["accuracy"]
    assert (tmp_path / "sentiment.test.confusion.png").exists()


def test_plots_are_written(trained_run):
    _, result = trained_run
    for name in ("training_curves.png", "ner.validation.entity_f1.png", "sentiment.validation.confusion.png"):
        assert (result.report_dir / name).read_bytes().startswith(b"\x89PNG")


def test_best_model_is_kept(trained_run):
    recipe, result = trained_run
    assert (result.model_dir.parent / "best" / "model.safetensors").exists()
    records = read_history(f"{recipe.output_dir}/metrics.jsonl")
    assert [r["best_step"] for r in records if "aggregate" in r] == [300]
