"""Data-parallel training in two real processes on CPU (torchrun, gloo) against one process with the global batch.

Two ranks with a per-device batch of B must train exactly what one process with a batch of 2B trains: the same
task and the same examples at every step, split between the ranks; they must hold identical weights throughout;
and distributed evaluation must score every example once. The model has no dropout, so that the only
randomness (the sampler's) is seeded and the two runs can be compared step by step.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
import yaml
from accelerate import Accelerator
from conftest import toy_recipe
from distributed_worker import run, tensor_digests
from safetensors.torch import load_file
from transformers import BertModel, BertTokenizerFast

from mtl_nlp import MultiTaskModel, load_recipe
from mtl_nlp.config import TrainingConfig
from mtl_nlp.errors import TrainingError
from mtl_nlp.evaluation.evaluator import evaluate_task, predict_split
from mtl_nlp.tasks.base import TEACHER_COLUMN
from mtl_nlp.tokenization import load_tokenizer
from mtl_nlp.training import distillation
from mtl_nlp.training.history import read_history
from mtl_nlp.training.run import prepare_tasks
from mtl_nlp.training.trainer import build_accelerator

REPO_ROOT = Path(__file__).resolve().parents[1]
WORLD_SIZE = 2
PER_DEVICE_BATCH = 4
TRAIN_ROWS, EVAL_ROWS, EVAL_BATCH = 64, 24, 5  # 5 eval batches: the ranks score 3 and 2, an uneven split
STEPS = 12
TIMEOUT_S = 300
# Each rank's token-classification loss is the mean over its own shard's labelled tokens, and DDP averages the
# ranks' gradients with equal weights; one process takes the mean over all the global batch's tokens. The
# two differ when the shards hold different numbers of tokens, so the trajectories drift apart slightly
# (measured: at most 1.3e-3 over 12 steps). Sequence-classification losses are means over equal shards: they
# agree to rounding until a token-classification step has moved the weights apart.
LOSS_TOLERANCE = 5e-3


def write_recipe(directory: Path, model_dir: Path, batch_size: int) -> Path:
    training = {
        "max_steps": STEPS,
        "gradient_accumulation_steps": 2,  # both DDP paths: micro-steps without and with gradient sync
        "learning_rate": 1e-3,
        "warmup_ratio": 0.1,
        "lr_scheduler": "linear",
        "log_every_steps": 1,
        "eval_every_steps": STEPS // 2,
        "eval_batch_size": EVAL_BATCH,
    }
    raw = toy_recipe(directory, model_dir, train_rows=TRAIN_ROWS, eval_rows=EVAL_ROWS, training=training)
    for task in raw["tasks"].values():
        task["batch_size"] = batch_size
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def no_dropout_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "classifier_dropout": 0.0}
    BertModel.from_pretrained(tiny_model_dir, **no_dropout).save_pretrained(directory)
    BertTokenizerFast.from_pretrained(tiny_model_dir).save_pretrained(directory)
    return directory


def run_two_processes(recipe: Path, record_dir: Path) -> list[dict]:
    """Train under torchrun in two processes; a hang is killed (with its workers) and fails the test."""
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD_SIZE)),
        *(str(Path(__file__).with_name("distributed_worker.py")), str(recipe), str(record_dir), str(WORLD_SIZE)),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # Its own session, so that a timeout can kill torchrun and the workers it started together.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"two-process training did not finish in {TIMEOUT_S} s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-4000:]
    return [json.loads((record_dir / f"rank-{rank}.json").read_text()) for rank in range(WORLD_SIZE)]


@contextmanager
def torch_threads(count: int):
    """Compute with ``count`` threads, as the workers do, so that their floating-point results repeat exactly."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def runs(no_dropout_model_dir, tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("distributed")
    two = write_recipe(directory / "two", no_dropout_model_dir, PER_DEVICE_BATCH)
    one = write_recipe(directory / "one", no_dropout_model_dir, PER_DEVICE_BATCH * WORLD_SIZE)
    ranks = run_two_processes(two, directory / "two" / "records")
    with torch_threads(1):
        single = run(one, directory / "one" / "records", world_size=1)
    return {"ranks": ranks, "single": single, "recipe": load_recipe(two), "model_dir": Path(ranks[0]["model_dir"])}


def test_the_launch_forms_one_data_parallel_group_of_two_cpu_processes(runs):
    assert [(r["rank"], r["world_size"]) for r in runs["ranks"]] == [(0, WORLD_SIZE), (1, WORLD_SIZE)]
    assert {r["distributed_type"] for r in runs["ranks"]} == {"MULTI_CPU"}


def test_every_step_trains_one_task_on_disjoint_shards_of_the_single_process_batch(runs):
    per_rank = [r["batches"] for r in runs["ranks"]]
    single = runs["single"]["batches"]
    assert len(single) == STEPS * 2 and all(len(batches) == len(single) for batches in per_rank)
    for step, ((task0, shard0), (task1, shard1), (task, batch)) in enumerate(zip(*per_rank, single)):
        assert task0 == task1 == task, f"batch {step}: the ranks train {task0} and {task1}"
        assert len(shard0) == len(shard1) == PER_DEVICE_BATCH
        assert not set(shard0) & set(shard1), f"batch {step}: both ranks read examples {set(shard0) & set(shard1)}"
        assert sorted(shard0 + shard1) == sorted(batch), f"batch {step}: not the single process's global batch"
    assert {task for task, _ in single} == {"ner", "sentiment"}


def test_the_ranks_hold_identical_weights_equal_to_the_saved_model(runs, no_dropout_model_dir):
    rank0, rank1 = (r["digests"] for r in runs["ranks"])
    assert rank0 == rank1, f"{sum(rank0[name] != rank1[name] for name in rank0)} tensors differ between the ranks"
    saved = tensor_digests(load_file(runs["model_dir"] / "model.safetensors"))
    assert saved == rank0
    backbone = tensor_digests(load_file(no_dropout_model_dir / "model.safetensors"))
    unchanged = [name for name, digest in backbone.items() if saved[f"encoder.{name}"] == digest]
    assert not unchanged, f"training left {unchanged} as the backbone had them"


def test_two_processes_follow_the_loss_trajectory_of_one_process_with_the_global_batch(runs):
    def logged(output_dir: str | Path) -> list[dict]:
        return [record for record in read_history(Path(output_dir) / "metrics.jsonl") if "loss" in record]

    two = logged(runs["recipe"].output_dir)
    one = logged(Path(runs["single"]["model_dir"]).parent)
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, STEPS + 1))
    for mine, theirs in zip(two, one):
        assert mine["learning_rate"] == theirs["learning_rate"], f"step {mine['step']}: learning rates differ"
        assert mine["loss"].keys() == theirs["loss"].keys()
        for task, loss in mine["loss"].items():
            assert loss == pytest.approx(theirs["loss"][task], abs=LOSS_TOLERANCE), f"step {mine['step']}, {task}"
    ner = [record["loss"]["ner"] for record in two if "ner" in record["loss"]]
    assert ner[0] - ner[-1] > 20 * LOSS_TOLERANCE, "training must move the loss well beyond the tolerance"


def test_distributed_evaluation_scores_every_example_exactly_once(runs):
    evaluations = [r["evaluations"] for r in runs["ranks"]]
    # Two evaluations of both tasks during training, one more after the best model was loaded at the end.
    assert len(evaluations[0]) == len(evaluations[1]) >= 2 * 2
    for first, second in zip(*evaluations):
        assert (first["task"], first["split"]) == (second["task"], second["split"])
        assert not set(first["sent"]) & set(second["sent"]), f"{first['task']}: both ranks scored some examples"
        assert sorted(first["sent"] + second["sent"]) == list(range(EVAL_ROWS))
        for evaluation in (first, second):
            assert [index for index, _ in evaluation["received"]] == first["sent"] + second["sent"]
            assert evaluation["losses_received"] == first["losses_sent"] + second["losses_sent"]
        assert first["losses_sent"] + second["losses_sent"] == math.ceil(EVAL_ROWS / EVAL_BATCH)
        assert first["losses_sent"] != second["losses_sent"]


def test_distributed_evaluation_equals_one_process_scoring_the_saved_model(runs):
    recipe, model_dir = runs["recipe"], runs["model_dir"]
    model = MultiTaskModel.from_pretrained(model_dir)
    tasks = prepare_tasks(recipe, load_tokenizer(str(model_dir)))
    final = {e["task"]: e for e in runs["ranks"][0]["evaluations"][-len(tasks) :]}
    accelerator = Accelerator()
    for name, task in tasks.items():
        with torch_threads(1):
            predictions, _ = predict_split(model, task, "validation", accelerator, EVAL_BATCH)
            evaluation = evaluate_task(model, task, "validation", accelerator, EVAL_BATCH)
        gathered = dict(final[name]["received"])
        assert [gathered[i] for i in range(EVAL_ROWS)] == [p.tolist() for p in predictions], name
        report = json.loads((model_dir.parent / "reports" / f"{name}.validation.report.json").read_text())
        distributed_loss = report["metrics"].pop("loss")
        assert distributed_loss == pytest.approx(evaluation.metrics.pop("loss"), rel=1e-6)
        assert report["metrics"] == json.loads(json.dumps(evaluation.metrics)), name


@pytest.fixture(scope="module")
def distilled_ranks(no_dropout_model_dir, tmp_path_factory) -> dict:
    """Two processes training a student of a teacher (an untrained copy of the model: what it teaches does not
    matter here, only that both ranks learn the same from it)."""
    directory = tmp_path_factory.mktemp("distributed-distillation")
    recipe_path = write_recipe(directory, no_dropout_model_dir, PER_DEVICE_BATCH)
    raw = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(str(no_dropout_model_dir))
    tasks = prepare_tasks(load_recipe(recipe_path), tokenizer)
    teacher = directory / "teacher"
    descriptions = {name: task.description() for name, task in tasks.items()}
    MultiTaskModel.from_backbone(str(no_dropout_model_dir), descriptions).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    raw["distillation"] = {"teachers": {name: [str(teacher)] for name in tasks}, "alpha": 0.5}
    recipe_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    ranks = run_two_processes(recipe_path, directory / "records")
    return {"ranks": ranks, "recipe": load_recipe(recipe_path), "teacher": teacher}


def test_distributed_distillation_runs_the_teachers_once_and_trains_both_ranks_on_the_same_targets(
    distilled_ranks, monkeypatch
):
    first, second = distilled_ranks["ranks"]
    # The main process runs the teachers; the other reads their probabilities from the datasets cache.
    assert sorted(first["teacher_loads"]) == [str(distilled_ranks["teacher"])] * 2
    assert second["teacher_loads"] == []
    assert first["soft_targets"].keys() == {"ner", "sentiment"}
    assert first["soft_targets"] == second["soft_targets"]
    # They are the teacher's probabilities as one process computes them, here, without the ranks' cache.
    loads = []
    load = distillation.Teacher.load
    monkeypatch.setattr(distillation.Teacher, "load", lambda self, device: loads.append(self) or load(self, device))
    recipe = distilled_ranks["recipe"]
    tokenizer = load_tokenizer(recipe.model.name_or_path)
    datasets.disable_caching()
    try:
        tasks = prepare_tasks(recipe, tokenizer)
        teachers = distillation.check_teachers(recipe, tokenizer)
        with torch_threads(1):
            distillation.add_teacher_probabilities(
                tasks, teachers, recipe.distillation, torch.device("cpu"), EVAL_BATCH
            )
    finally:
        datasets.enable_caching()
    assert len(loads) == 2
    for name, task in tasks.items():
        for mine, theirs in zip(task.encoded["train"][TEACHER_COLUMN], first["soft_targets"][name], strict=True):
            np.testing.assert_allclose(mine, theirs, atol=1e-6)
    assert first["digests"] == second["digests"]


def test_a_launch_that_accelerate_cannot_join_fails_instead_of_training_alone(monkeypatch):
    # An accelerator without a multi-process backend (as Apple's MPS): torchrun's processes would each train
    # alone.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: True)
    with pytest.raises(TrainingError, match="2 processes were launched"):
        build_accelerator(TrainingConfig())
