"""Checkpoints: atomic writes, rotation, and a killed run that resumes to exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import toy_recipe
from safetensors.torch import load_file

from mtl_nlp import recipe_from_dict, train
from mtl_nlp.errors import TrainingError
from mtl_nlp.training.checkpoint import CheckpointDirectory
from mtl_nlp.training.history import read_history
from mtl_nlp.training.trainer import MultiTaskTrainer

REPO_ROOT = Path(__file__).resolve().parents[1]


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert a.keys() == b.keys()
    different = [name for name in a if not (a[name] == b[name]).all()]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_checkpoint_directory_keeps_the_last_k_and_ignores_partial_saves(tmp_path):
    checkpoints = CheckpointDirectory(tmp_path, keep=2)
    for step in (10, 20, 30):
        (checkpoints.begin(step) / "state").write_text(str(step))
        checkpoints.commit(step)
    assert [path.name for path in checkpoints.completed()] == ["step-00000020", "step-00000030"]
    (checkpoints.begin(40) / "half-written").write_text("")
    assert checkpoints.latest() == tmp_path / "step-00000030"
    checkpoints.begin(50)
    assert not checkpoints.partial_path(40).exists()


def small_recipe(directory: Path, model_dir: Path, **training) -> dict:
    settings = {"max_steps": 30, "save_every_steps": 10, "log_every_steps": 5, "eval_every_steps": 15, **training}
    return toy_recipe(directory, model_dir, train_rows=48, eval_rows=16, training=settings)


def crash_while_checkpointing(recipe, monkeypatch, step: int = 20) -> None:
    """Train ``recipe`` until the checkpoint of ``step`` is half written (the Accelerate state is, the trainer's
    own state is not), as a process killed at that moment leaves it."""
    write_state = MultiTaskTrainer._write_process_state

    def crash(trainer, directory):
        if trainer.step == step:
            raise KeyboardInterrupt("killed between the Accelerate state and the trainer state")
        write_state(trainer, directory)

    monkeypatch.setattr(MultiTaskTrainer, "_write_process_state", crash)
    with pytest.raises(KeyboardInterrupt):
        train(recipe)
    monkeypatch.undo()


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_to_resume(tmp_path, tiny_model_dir, monkeypatch):
    reference = train(recipe_from_dict(small_recipe(tmp_path / "a", tiny_model_dir)))

    recipe = recipe_from_dict(small_recipe(tmp_path / "b", tiny_model_dir))
    crash_while_checkpointing(recipe, monkeypatch)
    checkpoints = CheckpointDirectory(Path(recipe.output_dir) / "checkpoints", keep=2)
    assert checkpoints.latest().name == "step-00000010"
    assert checkpoints.partial_path(20).exists()

    resumed = train(recipe, resume=True)
    assert_same_weights(reference.model_dir, resumed.model_dir)
    assert read_history(Path(recipe.output_dir) / "metrics.jsonl") == read_history(
        reference.model_dir.parent / "metrics.jsonl"
    )


def test_resume_without_a_checkpoint_says_so(tmp_path, tiny_model_dir):
    recipe = recipe_from_dict(small_recipe(tmp_path, tiny_model_dir))
    with pytest.raises(TrainingError, match="no finished checkpoint"):
        train(recipe, resume=True)


def run_command(recipe_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mtl_nlp", "train", str(recipe_path), *extra]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def logged_steps(metrics: Path) -> list[int]:
    if not metrics.exists():
        return []
    return [record["step"] for record in read_history(metrics) if "loss" in record]


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path, tiny_model_dir):
    total, every = 120, 30
    recipes = {}
    for name in ("uninterrupted", "killed"):
        raw = small_recipe(
            tmp_path / name,
            tiny_model_dir,
            max_steps=total,
            save_every_steps=every,
            log_every_steps=1,
            eval_every_steps=60,
        )
        recipes[name] = tmp_path / f"{name}.yaml"
        recipes[name].write_text(yaml.safe_dump(raw))
    subprocess.run(run_command(recipes["uninterrupted"]), env=subprocess_env(), check=True, capture_output=True)

    metrics = tmp_path / "killed" / "out" / "metrics.jsonl"
    process = subprocess.Popen(
        run_command(recipes["killed"]), env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600  # generous: a busy machine may be slow; a hang still fails
    while not any(step > every + every // 2 for step in logged_steps(metrics)):
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = max(logged_steps(metrics))
    last_checkpoint = CheckpointDirectory(metrics.parent / "checkpoints", keep=2).latest()
    checkpoint_step = int(last_checkpoint.name.removeprefix("step-"))
    assert checkpoint_step < killed_at < total, "the kill must fall between two checkpoints"

    subprocess.run(run_command(recipes["killed"], "--resume"), env=subprocess_env(), check=True, capture_output=True)
    assert_same_weights(tmp_path / "uninterrupted" / "out" / "model", tmp_path / "killed" / "out" / "model")
    assert read_history(metrics) == read_history(tmp_path / "uninterrupted" / "out" / "metrics.jsonl")
