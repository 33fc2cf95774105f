"""GradNorm: the update rule on a hand-made example, balancing a loss 100× larger than another, exact resume, and
the same updates in two data-parallel processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import toy_recipe
from safetensors.torch import load_file
from test_checkpoint import assert_same_weights, crash_while_checkpointing
from test_distributed import PER_DEVICE_BATCH, run_two_processes, write_recipe

from mtl_nlp import recipe_from_dict, train
from mtl_nlp.config import WeightingConfig
from mtl_nlp.training.callbacks import TrainerCallback
from mtl_nlp.training.checkpoint import CheckpointDirectory
from mtl_nlp.training.history import read_history
from mtl_nlp.training.weighting import GradNorm, build_weighting


def no_reduce(tensor):
    return tensor


def test_one_gradnorm_step_moves_the_weights_as_the_paper_says():
    shared = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    weighting = build_weighting(
        WeightingConfig(method="gradnorm", gradnorm_alpha=0.0, gradnorm_learning_rate=0.1), {"a": 1.0, "b": 3.0}
    )
    assert isinstance(weighting, GradNorm)
    weighting.watch([shared])
    # L_a = 2·x·y = 4 (∇ = (4, 2), ‖·‖ = √20); L_b = 3·(x + y) = 9 (∇ = (3, 3), ‖·‖ = √18).
    loss = weighting({"a": 2 * shared[0] * shared[1]}) + weighting({"b": shared.sum()})
    assert float(loss.detach()) == pytest.approx(4.0 + 9.0)
    weighting.end_step(no_reduce)
    torch.testing.assert_close(weighting.gradient_norms, torch.tensor([20**0.5, 18**0.5], dtype=torch.float64))
    # α = 0: both norms aim at their mean; a's is above it, so a's weight falls and b's rises. Adam's first step is
    # ±lr on log λ, and the weights are renormalised to sum to the number of tasks.
    expected = 2 * torch.softmax(torch.tensor([-0.1, 0.1], dtype=torch.float64), dim=0)
    torch.testing.assert_close(weighting.lambdas, expected)
    assert float(weighting.lambdas.sum()) == pytest.approx(2.0)
    assert weighting.weights() == pytest.approx({"a": float(expected[0]), "b": 3 * float(expected[1])})


def test_a_step_missing_a_task_is_refused():
    weighting = build_weighting(WeightingConfig(method="gradnorm"), {"a": 1.0, "b": 1.0})
    shared = torch.nn.Parameter(torch.ones(2))
    weighting.watch([shared])
    weighting({"a": shared.sum()})
    with pytest.raises(RuntimeError, match="every task's loss in each step"):
        weighting.end_step(no_reduce)


class SharedGradientNorms(TrainerCallback):
    """At the end of training: ‖∇_W (weight_t · L_t)‖ at the last shared layer for each task's first 16 training
    examples, with the weights in force (dropout off)."""

    def on_train_end(self, trainer) -> None:
        model = trainer.accelerator.unwrap_model(trainer.model).eval()
        shared = model.last_shared_parameters()
        weights = trainer.state.weighting.weights()
        self.norms = {}
        for name, task in trainer.tasks.items():
            batch = task.collator()(task.encoded["train"].select_columns(task.model_columns())[:16])
            loss = weights[name] * model(task=name, **batch).loss
            gradients = torch.autograd.grad(loss, shared)
            self.norms[name] = float(torch.cat([g.reshape(-1) for g in gradients]).norm())
        self.weighting = trainer.state.weighting


def scaled_recipe(directory: Path, model_dir: Path, method: str, **training) -> dict:
    """Two copies of the sample NER task, each with its own head, both in every step; the second one's loss is
    multiplied by 100."""
    recipe = toy_recipe(
        directory,
        model_dir,
        train_rows=64,
        eval_rows=16,
        training={"max_steps": 40, "save_every_steps": 0, "log_every_steps": 10, "learning_rate": 1e-3, **training},
        sampling={"mode": "all_tasks"},
        weighting={"method": method, "gradnorm_alpha": 0.0, "gradnorm_learning_rate": 0.2},
    )
    ner = recipe["tasks"]["ner"]
    recipe["tasks"] = {"ner": ner, "scaled": {**ner, "loss_weight": 100.0}}
    return recipe


def test_gradnorm_balances_the_gradients_of_a_loss_100_times_larger(tmp_path, tiny_model_dir):
    ratios = {}
    for method in ("static", "gradnorm"):
        norms = SharedGradientNorms()
        train(recipe_from_dict(scaled_recipe(tmp_path / method, tiny_model_dir, method)), callbacks=[norms])
        ratios[method] = norms.norms["scaled"] / norms.norms["ner"]
        if method == "gradnorm":
            assert float(norms.weighting.lambdas.sum()) == pytest.approx(2.0)
            records = [r for r in read_history(tmp_path / method / "out" / "metrics.jsonl") if "loss_weights" in r]
            # The scaled task's multiplier (100 λ) fell far below the 100 it started at.
            assert records[-1]["loss_weights"]["scaled"] < 10 * records[-1]["loss_weights"]["ner"]
    # Without GradNorm the scaled task's gradient dominates by far; with it the two are within a factor of 3.
    assert ratios["static"] > 30, ratios
    assert 1 / 3 < ratios["gradnorm"] < 3, ratios


def test_gradnorm_resumes_exactly(tmp_path, tiny_model_dir, monkeypatch):
    settings = {"max_steps": 30, "save_every_steps": 10, "log_every_steps": 5}
    reference = train(recipe_from_dict(scaled_recipe(tmp_path / "a", tiny_model_dir, "gradnorm", **settings)))
    recipe = recipe_from_dict(scaled_recipe(tmp_path / "b", tiny_model_dir, "gradnorm", **settings))
    crash_while_checkpointing(recipe, monkeypatch)
    resumed = train(recipe, resume=True)
    assert_same_weights(reference.model_dir, resumed.model_dir)
    logged = [read_history(Path(run) / "metrics.jsonl") for run in (tmp_path / "a" / "out", tmp_path / "b" / "out")]
    assert logged[0] == logged[1]
    assert any(r.get("loss_weights", {}).get("scaled", 100.0) != 100.0 for r in logged[0])


def test_two_processes_make_the_same_gradnorm_updates(tmp_path, tiny_model_dir):
    path = write_recipe(tmp_path, tiny_model_dir, PER_DEVICE_BATCH)
    raw = yaml.safe_load(path.read_text())
    raw["sampling"] = {"mode": "all_tasks"}
    raw["weighting"] = {"method": "gradnorm", "gradnorm_learning_rate": 0.2}
    path.write_text(yaml.safe_dump(raw))
    rank0, rank1 = run_two_processes(path, tmp_path / "records")
    assert rank0["digests"] == rank1["digests"]
    # Each rank saves its own weighting state: the per-task gradients were averaged before their norms were taken.
    (checkpoint,) = CheckpointDirectory(Path(raw["output_dir"]) / "checkpoints", keep=1).completed()[-1:]
    states = [load_file(checkpoint / f"trainer_state_{rank}.safetensors") for rank in (0, 1)]
    assert torch.equal(states[0]["weighting.lambdas"], states[1]["weighting.lambdas"])
    assert torch.equal(states[0]["weighting.gradient_norms"], states[1]["weighting.gradient_norms"])
    assert not torch.equal(states[0]["weighting.lambdas"], torch.ones(2, dtype=torch.float64))
