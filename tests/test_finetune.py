"""The fine-tuning stage: each task alone from the joint weights, its own run and reports, the summary, the command."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from conftest import assert_same_logits, toy_recipe, write_toy_sentiment
from transformers import AutoModelForTokenClassification

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.cli import main
from mtl_nlp.errors import ModelBuildError
from mtl_nlp.evaluation.reports import read_eval_results
from mtl_nlp.export import export_saved_task
from mtl_nlp.training.callbacks import TrainerCallback
from mtl_nlp.training.finetune import finetune
from mtl_nlp.training.history import read_history

TRAINING = {"max_steps": 4, "learning_rate": 2e-3, "log_every_steps": 2, "save_every_steps": 0}
STAGE = {"max_steps": 3, "learning_rate": 1e-3}
TEXTS = ["the film was wonderful and funny", "angela merkel met officials of siemens in munich"]


def file_hashes(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def logits(model: MultiTaskModel, task: str, batch: dict) -> torch.Tensor:
    """The model's logits for ``task`` in evaluation mode (no dropout); the model's mode is kept."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(task=task, **batch).logits
    model.train(was_training)
    return output


class FirstLogits(TrainerCallback):
    """Records, when a run begins, its model's logits on a fixed batch."""

    def __init__(self, batch: dict) -> None:
        self.batch = batch
        self.logits: dict[str, torch.Tensor] = {}

    def on_train_begin(self, trainer) -> None:
        model = trainer.accelerator.unwrap_model(trainer.model)
        (task,) = model.task_names
        self.logits[task] = logits(model, task, self.batch)


@pytest.fixture(scope="module")
def joint_run(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("joint")
    raw = toy_recipe(directory, tiny_model_dir, train_rows=32, eval_rows=16, training=TRAINING)
    raw["tasks"]["sentiment"]["data"]["test"] = write_toy_sentiment(directory / "test.tsv", 16, seed=3)
    return raw, train(recipe_from_dict(raw))


@pytest.fixture(scope="module")
def stage(joint_run, tiny_tokenizer):
    raw, joint = joint_run
    before = file_hashes(joint.model_dir)
    recorder = FirstLogits(dict(tiny_tokenizer(TEXTS, padding=True, return_tensors="pt")))
    results = finetune(recipe_from_dict(raw | {"finetune": STAGE}), callbacks=[recorder])
    return joint, results, before, recorder


def run_copy(run_dir: Path, target: Path) -> Path:
    """What `mtl-nlp finetune` needs of a run (its model and recipe), somewhere else."""
    shutil.copytree(run_dir / "model", target / "model")
    shutil.copy(run_dir / "recipe.yaml", target / "recipe.yaml")
    return target


def test_the_joint_model_is_left_untouched(stage):
    joint, _, before, _ = stage
    assert before and file_hashes(joint.model_dir) == before


def test_each_task_starts_from_the_joint_weights(stage):
    joint, _, _, recorder = stage
    saved = MultiTaskModel.from_pretrained(joint.model_dir)
    assert set(recorder.logits) == {"ner", "sentiment"}
    for task, first in recorder.logits.items():
        assert_same_logits(first, logits(saved, task, recorder.batch))


def test_each_task_has_a_run_of_its_own(stage):
    joint, results, _, _ = stage
    output_dir = joint.model_dir.parent
    assert sorted(path.name for path in (output_dir / "finetuned").iterdir()) == ["ner", "sentiment"]
    for task, result in results.items():
        run_dir = output_dir / "finetuned" / task
        assert result.model_dir == run_dir / "model"
        assert list(MultiTaskModel.from_pretrained(result.model_dir).config.tasks) == [task]
        assert json.loads((result.report_dir / f"{task}.validation.report.json").read_text())["task"] == task
        assert [row["task"] for row in json.loads((result.report_dir / "summary.json").read_text())] == [task] * len(
            result.evaluations
        )
        losses = [record["loss"] for record in read_history(run_dir / "metrics.jsonl") if "loss" in record]
        assert losses and all(list(loss) == [task] for loss in losses)
        assert (run_dir / "checkpoints" / "step-00000003").is_dir()
        text = (run_dir / "recipe.yaml").read_text()
        assert text.startswith(f"# The fine-tuning stage of task {task}: trained alone from the joint model")
        assert text == (result.model_dir / "recipe.yaml").read_text()
        recipe = yaml.safe_load(text)
        assert list(recipe["tasks"]) == [task] and recipe["output_dir"] == str(run_dir)
        assert recipe["training"]["max_steps"] == 3 and recipe["training"]["learning_rate"] == 1e-3
        assert recipe["training"]["seed"] == 42 and recipe["finetune"] is None


def test_the_summary_sets_joint_and_finetuned_scores_side_by_side(stage):
    joint, results, _, _ = stage
    rows = json.loads((joint.report_dir / "finetune_summary.json").read_text())
    joint_scores = {(e["task"], e["split"]): e["headline_value"] for e in read_eval_results(joint.model_dir)}
    finetuned = {(task, e.split): e.headline_value for task, result in results.items() for e in result.evaluations}
    assert [(row["task"], row["split"]) for row in rows] == [
        ("ner", "validation"),
        ("sentiment", "validation"),
        ("sentiment", "test"),
    ]
    for row in rows:
        key = (row["task"], row["split"])
        assert row["joint"] == joint_scores[key] and row["finetuned"] == finetuned[key]
        assert row["difference"] == pytest.approx(row["finetuned"] - row["joint"])
    table = (joint.report_dir / "finetune_summary.md").read_text()
    assert table.startswith("| task | split | metric | joint | fine-tuned | difference |")
    test = rows[-1]
    assert f"| sentiment | test | accuracy | {test['joint']:.4f} | {test['finetuned']:.4f} |" in table


def test_a_finetuned_model_is_scored_and_exported_as_any_saved_model(joint_run, stage, tmp_path):
    raw, _ = joint_run
    _, results, _, _ = stage
    sentiment = results["sentiment"]
    command = ["evaluate", str(sentiment.model_dir), "--task", "sentiment", "--output-dir", str(tmp_path / "eval")]
    assert main([*command, "--file", raw["tasks"]["sentiment"]["data"]["test"]]) == 0
    rescored = json.loads((tmp_path / "eval" / "sentiment.test.report.json").read_text())["headline_value"]
    assert rescored == next(e.headline_value for e in sentiment.evaluations if e.split == "test")
    exported = export_saved_task(results["ner"].model_dir, "ner", tmp_path / "ner")  # checks the same outputs
    assert AutoModelForTokenClassification.from_pretrained(exported).config.num_labels == len(
        MultiTaskModel.from_pretrained(results["ner"].model_dir).config.tasks["ner"]["labels"]
    )


def test_train_runs_the_stage_and_the_command_reruns_it_elsewhere(tiny_model_dir, tmp_path, capsys):
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=32, eval_rows=16, training=TRAINING)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["train", str(path), "finetune.tasks=[sentiment]", "finetune.max_steps=2"]) == 0
    output_dir = Path(raw["output_dir"])
    assert [path.name for path in (output_dir / "finetuned").iterdir()] == ["sentiment"]
    assert "| sentiment | validation | accuracy |" in capsys.readouterr().out

    moved = run_copy(output_dir, tmp_path / "moved")
    assert main(["finetune", str(moved), "finetune.tasks=[ner]", "finetune.max_steps=2"]) == 0
    assert (moved / "finetuned" / "ner" / "model" / "model.safetensors").exists()
    assert not (output_dir / "finetuned" / "ner").exists()
    rows = json.loads((moved / "reports" / "finetune_summary.json").read_text())
    assert [row["task"] for row in rows] == ["ner"]


def test_the_command_uses_the_defaults_for_a_run_without_a_finetune_section(joint_run, tmp_path):
    _, joint = joint_run
    moved = run_copy(joint.model_dir.parent, tmp_path)
    assert yaml.safe_load((moved / "recipe.yaml").read_text())["finetune"] is None
    assert main(["finetune", str(moved), "finetune.tasks=[sentiment]", "finetune.max_steps=2"]) == 0
    recipe = yaml.safe_load((moved / "finetuned" / "sentiment" / "recipe.yaml").read_text())
    assert recipe["training"]["learning_rate"] == 2e-3 / 4  # auto: a quarter of the joint run's 2e-3


def test_the_command_refuses_bad_input_with_one_line(joint_run, tmp_path, capsys):
    _, joint = joint_run
    assert main(["finetune", str(tmp_path)]) == 2
    assert "not the output directory of a finished training run (it has no model and no recipe.yaml)" in (
        capsys.readouterr().err
    )
    moved = run_copy(joint.model_dir.parent, tmp_path / "moved")
    assert main(["finetune", str(moved), "finetune.tasks=[pos]"]) == 2
    assert "finetune.tasks: unknown task 'pos'; the recipe's tasks are ner, sentiment." in capsys.readouterr().err
    assert main(["finetune", str(moved), "tasks.sentiment.labels=[positive, negative]"]) == 2
    assert (
        "tasks.sentiment: the task's labels (positive, negative) are not the joint model's (negative, positive); "
        "its data or labels changed since the joint run." in capsys.readouterr().err
    )
    assert not (moved / "finetuned").exists()  # refused before any task trained


@pytest.mark.parametrize(
    "sharing", [{}, {"task_layers": 1, "layer_attention": True}], ids=["hard", "task-layers-layer-attention"]
)
def test_a_single_task_model_gives_the_joint_models_outputs(sharing, tiny_model_dir, tiny_tokenizer):
    lora = {"type": "lora", "r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query", "value"]}
    tasks = {
        "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER"], "adapter": lora},
        "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
    }
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), tasks, sharing=sharing).eval()
    with torch.no_grad():  # every weight its own value: LoRA's B, the layer mixes and the towers start as no-ops
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    batch = dict(tiny_tokenizer(TEXTS, padding=True, return_tensors="pt"))
    for task in tasks:
        single = model.single_task(task).eval()
        assert single.task_names == [task]
        assert_same_logits(single(task=task, **batch).logits, model(task=task, **batch).logits)


def test_a_cross_stitch_model_cannot_be_split(tiny_model_dir):
    tasks = {
        "a": {"type": "sequence_classification", "id2label": ["x", "y"]},
        "b": {"type": "sequence_classification", "id2label": ["x", "y"]},
    }
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), tasks, sharing={"task_layers": 1, "cross_stitch": True})
    with pytest.raises(ModelBuildError, match=r"model\.sharing\.cross_stitch: each task's layers mix"):
        model.single_task("a")
