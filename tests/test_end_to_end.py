"""Train from a recipe on the tiny model: reports, predictions, learning, and a reloadable model."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
import yaml
from conftest import toy_recipe
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.cli import main
from mtl_nlp.evaluation.reports import read_eval_results
from mtl_nlp.hub import prepare_upload
from mtl_nlp.training.history import read_history


@pytest.fixture(scope="module")
def trained_run(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    training = {"max_steps": 300, "learning_rate": 2e-3, "warmup_ratio": 0.05, "log_every_steps": 30}
    # A validation and a checkpoint every 50 steps, all kept: model selection has six candidates to choose from.
    training |= {"eval_every_steps": 50, "save_every_steps": 50, "save_total_limit": 6}
    recipe = recipe_from_dict(toy_recipe(directory, tiny_model_dir, training=training))
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
    assert reloaded.config.tasks["sentiment"]["labels"][int(probabilities.argmax())] == "positive"


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


def test_the_best_validation_is_selected_and_its_weights_end_the_run(trained_run):
    recipe, result = trained_run
    validations = [r for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "aggregate" in r]
    assert [r["step"] for r in validations] == [50, 100, 150, 200, 250, 300]
    # After each validation, the best so far is the first with the highest aggregate (ties keep the earlier).
    best_so_far = [max(validations[:seen], key=lambda r: r["aggregate"])["step"] for seen in range(1, 7)]
    assert [r["best_step"] for r in validations] == best_so_far
    final = load_file(result.model_dir / "model.safetensors")
    for record in validations:
        checkpoint = load_file(
            result.model_dir.parent / "checkpoints" / f"step-{record['step']:08d}" / "model.safetensors"
        )
        same = all(torch.equal(final[name], tensor) for name, tensor in checkpoint.items())
        assert same == (record["step"] == best_so_far[-1]), f"step {record['step']}"


def test_predict_command_writes_every_heads_results(trained_run, tmp_path):
    _, result = trained_run
    texts = tmp_path / "texts.txt"
    texts.write_text("the film was wonderful and funny\n\nthe film was slow and dull\n", encoding="utf-8")
    command = ["predict", str(result.model_dir), str(texts), "--output", str(tmp_path / "out.jsonl")]
    assert main(command) == 2  # .txt does not say whether it holds texts or CoNLL columns
    assert main([*command, "--format", "text"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["sentiment"]["label"] for row in rows] == ["positive", "negative"]
    assert all(isinstance(row["ner"], list) for row in rows)

    conll = tmp_path / "tokens.conll"
    conll.write_text("EU\nrejects\nGerman\ncall\n\nPeter\nBlackburn\n", encoding="utf-8")
    assert main(["predict", str(result.model_dir), str(conll), "--output", str(tmp_path / "out.conll")]) == 0
    lines = (tmp_path / "out.conll").read_text().split("\n")
    assert [line.split()[0] for line in lines if line] == ["EU", "rejects", "German", "call", "Peter", "Blackburn"]
    assert all(line.split()[1] == "O" or line.split()[1][:2] in ("B-", "I-") for line in lines if line)


def test_predict_rejects_malformed_jsonl_naming_the_line(trained_run, tmp_path, capsys):
    _, result = trained_run
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "typo"}\n', encoding="utf-8")
    assert main(["predict", str(result.model_dir), str(bad), "--output", str(tmp_path / "out.jsonl")]) == 2
    assert f"{bad}:2" in capsys.readouterr().err


def test_model_dir_keeps_the_recipe_and_final_scores_for_publishing(trained_run, tmp_path):
    recipe, result = trained_run
    assert (result.model_dir / "recipe.yaml").read_text() == (result.model_dir.parent / "recipe.yaml").read_text()
    saved = read_eval_results(result.model_dir)
    assert [(e["task"], e["split"], e["headline_value"]) for e in saved] == [
        (e.task, e.split, e.headline_value) for e in result.evaluations
    ]
    prepare_upload(result.model_dir, tmp_path / "upload", "me/quick-mtl")
    card = ModelCard.load(tmp_path / "upload" / "README.md", ignore_metadata_errors=False)
    assert {(r.metric_name, r.metric_value) for r in card.data.eval_results} >= {
        (f"{e.task} {e.headline}", e.headline_value) for e in result.evaluations
    }
    assert yaml.safe_load(card.text.split("```yaml\n")[1].split("```")[0]) == recipe.to_dict()
