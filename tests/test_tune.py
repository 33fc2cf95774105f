"""``mtl-nlp tune``: trials on the tiny model, pruning, a best recipe that trains, a study continued after a kill
and shared by two processes, and the checks made before any trial starts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import toy_recipe
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from mtl_nlp import load_recipe, train
from mtl_nlp.cli import main
from mtl_nlp.config import build_dataclass
from mtl_nlp.errors import RecipeError, SearchError
from mtl_nlp.training.history import read_history
from mtl_nlp.tuning.search import study_directory, tune
from mtl_nlp.tuning.space import SearchSpace, check_space
from mtl_nlp.tuning.study import JOURNAL_FILE, WORKER_ATTR

REPO_ROOT = Path(__file__).resolve().parents[1]
LEARNING_RATE = "training.learning_rate"


def write_files(directory: Path, model_dir: Path, space: dict | None = None, **training) -> tuple[Path, Path]:
    settings = {"max_steps": 8, "eval_every_steps": 4, "save_every_steps": 4, "log_every_steps": 2, **training}
    raw = toy_recipe(directory, model_dir, train_rows=32, eval_rows=8, training=settings)
    recipe, space_file = directory / "recipe.yaml", directory / "space.yaml"
    recipe.write_text(yaml.safe_dump(raw), encoding="utf-8")
    space = space or {
        # The evaluation loss of the sentiment task: a huge learning rate makes it far worse at once.
        "objective": "sentiment.loss",
        "direction": "minimize",
        "pruner": "median",
        "startup_trials": 2,
        "parameters": {LEARNING_RATE: {"type": "float", "low": 1e-4, "high": 1e3, "log": True}},
    }
    space_file.write_text(yaml.safe_dump(space), encoding="utf-8")
    return recipe, space_file


def journal_study(recipe: Path) -> optuna.Study:
    """The study that `mtl-nlp tune recipe` keeps in its default journal."""
    journal = study_directory(load_recipe(recipe).output_dir, "recipe") / JOURNAL_FILE
    return optuna.load_study(study_name="recipe", storage=JournalStorage(JournalFileBackend(str(journal))))


def test_trials_run_a_bad_one_is_pruned_and_the_best_recipe_trains(tmp_path, tiny_model_dir):
    recipe, space = write_files(tmp_path, tiny_model_dir)
    study_dir = study_directory(load_recipe(recipe).output_dir, "recipe")
    study_dir.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(study_dir / JOURNAL_FILE)))
    study = optuna.create_study(study_name="recipe", storage=storage, direction="minimize")
    for rate in (1e-3, 2e-3, 1e3):  # the trials' values, in order: two sound ones, then a huge one
        study.enqueue_trial({LEARNING_RATE: rate})

    assert main(["tune", str(recipe), "--space", str(space), "--trials", "3"]) == 0

    trials = optuna.load_study(study_name="recipe", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert [t.params[LEARNING_RATE] for t in trials] == [1e-3, 2e-3, 1e3]
    # Pruned at its first evaluation (step 4 of 8): it trained no further.
    assert trials[2].last_step == 4
    steps = [r["step"] for r in read_history(study_dir / "trial-0002" / "metrics.jsonl") if "loss" in r]
    assert max(steps) == 4 and max(r["step"] for r in read_history(study_dir / "trial-0000" / "metrics.jsonl")) == 8
    # Each trial reported its evaluation at step 4 before it ended.
    assert all(4 in t.intermediate_values for t in trials)

    table = (study_dir / "trials.md").read_text()
    assert len(table.splitlines()) == 2 + 3 and "| 2 | pruned |" in table
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (study_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    best = min(trials[:2], key=lambda t: t.value)
    best_recipe = load_recipe(study_dir / "best_recipe.yaml", [f"output_dir={tmp_path / 'best'}"])
    assert best_recipe.training.learning_rate == best.params[LEARNING_RATE]
    assert best_recipe.tasks["ner"].batch_size == 16  # the rest is the recipe as written
    result = train(best_recipe)
    assert {e.task for e in result.evaluations} == {"ner", "sentiment"}


def tune_command(recipe: Path, space: Path, trials: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mtl_nlp",
        "tune",
        str(recipe),
        "--space",
        str(space),
        "--trials",
        str(trials),
        *extra,
    ]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_a_killed_study_continues_its_unfinished_trial_from_its_checkpoint(tmp_path, tiny_model_dir):
    space = {"pruner": "none", "parameters": {LEARNING_RATE: {"type": "float", "low": 1e-4, "high": 1e-2}}}
    recipe, space_file = write_files(tmp_path, tiny_model_dir, space, max_steps=20, save_every_steps=5)
    study_dir = study_directory(load_recipe(recipe).output_dir, "recipe")
    checkpoints = study_dir / "trial-0000" / "checkpoints"
    process = subprocess.Popen(
        tune_command(recipe, space_file, 2), env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    while not (checkpoints / "step-00000010").is_dir():
        assert process.poll() is None, "the study ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = journal_study(recipe).trials
    assert [t.state for t in killed] == [TrialState.RUNNING]

    assert main(["tune", str(recipe), "--space", str(space_file), "--trials", "2"]) == 0
    trials = journal_study(recipe).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].params == killed[0].params
    assert trials[0].user_attrs[WORKER_ATTR] != killed[0].user_attrs[WORKER_ATTR]  # taken over by the new run
    history = read_history(study_dir / "trial-0000" / "metrics.jsonl")
    # Resumed, not restarted: one record per logging step, from step 2 to 20, in order.
    assert [r["step"] for r in history if "loss" in r] == list(range(2, 21, 2))


def test_two_processes_share_one_study_without_running_a_trial_twice(tmp_path, tiny_model_dir):
    space = {"pruner": "none", "parameters": {LEARNING_RATE: {"type": "float", "low": 1e-4, "high": 1e-2}}}
    recipe, space_file = write_files(tmp_path, tiny_model_dir, space, max_steps=6, save_every_steps=0)
    journal = tmp_path / "shared.journal"
    processes = [
        subprocess.Popen(
            tune_command(recipe, space_file, 4, "--storage", str(journal)),
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors[-3000:]
    trials = optuna.load_study(study_name="recipe", storage=JournalStorage(JournalFileBackend(str(journal)))).trials
    # Four trials, one more at most when both processes start their last one at the same moment.
    assert 4 <= len(trials) <= 5 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) == 2, "both processes ran trials"
    study_dir = study_directory(load_recipe(recipe).output_dir, "recipe")
    for trial in trials:
        history = read_history(study_dir / f"trial-{trial.number:04d}" / "metrics.jsonl")
        assert [r["step"] for r in history if "loss" in r] == [2, 4, 6], f"trial {trial.number} trained twice"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"training.learnig_rate": {"type": "float", "low": 1e-5, "high": 1e-3}}, r"Did you mean 'learning_rate'"),
        ({"tasks.nre.batch_size": {"type": "int", "low": 8, "high": 16}}, r"tasks\.nre: unknown key.*'ner'"),
        ({"training": {"type": "int", "low": 1, "high": 2}}, r"training: a section of the recipe"),
        ({LEARNING_RATE: {"type": "float", "low": 1e-2, "high": 1e-4}}, r"low: 0\.01 is above high 0\.0001.*reversed"),
        ({"tasks.ner.batch_size": {"type": "float", "low": 8, "high": 32}}, r"whole-number key: use type: int"),
        ({"training.lr_scheduler": {"type": "int", "low": 1, "high": 2}}, r"not a number key"),
        ({"training.warmup_ratio": {"type": "float", "low": 0, "high": 2}}, r"refuses 2.*must be from 0 to 1"),
        ({"training.lr_scheduler": {"type": "categorical", "choices": ["linear", "cubic"]}}, r"refuses 'cubic'"),
        ({LEARNING_RATE: {"type": "float", "low": 0, "high": 1, "log": True}}, r"log scale needs low above 0"),
    ],
)
def test_a_bad_search_space_is_refused_before_any_trial(tmp_path, tiny_model_dir, parameters, message):
    recipe, space = write_files(tmp_path, tiny_model_dir, {"parameters": parameters})
    with pytest.raises(SearchError, match=message):
        tune(recipe, space, trials=1)
    assert not study_directory(load_recipe(recipe).output_dir, "recipe").exists()


def test_a_bad_objective_pruner_storage_or_tracker_is_refused_before_any_trial(tmp_path, tiny_model_dir):
    rate = {LEARNING_RATE: {"type": "float", "low": 1e-4, "high": 1e-2}}
    recipe, space = write_files(tmp_path, tiny_model_dir, {"objective": "sentimnt.accuracy", "parameters": rate})
    with pytest.raises(SearchError, match=r"objective: .* Did you mean 'sentiment.accuracy'"):
        tune(recipe, space, trials=1)
    recipe, space = write_files(tmp_path, tiny_model_dir, {"parameters": rate}, eval_every_steps=0)
    with pytest.raises(SearchError, match=r"pruner: the recipe evaluates only at the end"):
        tune(recipe, space, trials=1)
    recipe, space = write_files(tmp_path, tiny_model_dir, {"parameters": rate})
    with pytest.raises(SearchError, match=r"--storage sqlite:////nowhere/at/all/study.db: .* cannot be opened"):
        tune(recipe, space, trials=1, storage="sqlite:////nowhere/at/all/study.db")
    with pytest.raises(RecipeError, match=r"training.report_to\[0\]: 'tensorbord' is not allowed"):
        tune(recipe, space, trials=1, overrides=["training.report_to=[tensorbord]"])
    assert not study_directory(load_recipe(recipe).output_dir, "recipe").exists()


def test_the_documented_search_space_fits_the_quickstart_recipe():
    text = (REPO_ROOT / "docs" / "search.md").read_text(encoding="utf-8")
    space_text = re.search(r"```yaml\n(# space\.yaml.*?)```", text, flags=re.S).group(1)
    recipe = load_recipe(REPO_ROOT / "recipes" / "quickstart.yaml", ["training.eval_every_steps=25"])
    space = build_dataclass(SearchSpace, yaml.safe_load(space_text))
    check_space(space, recipe)
    assert space.parameters["training.learning_rate"].to_optuna().log


def test_under_torchrun_one_process_asks_optuna_and_all_train_its_trials(tmp_path, tiny_model_dir):
    space = {"pruner": "none", "parameters": {LEARNING_RATE: {"type": "float", "low": 1e-4, "high": 1e-2}}}
    recipe, space_file = write_files(tmp_path, tiny_model_dir, space, max_steps=4, save_every_steps=0)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    arguments = ["-m", "mtl_nlp", "tune", str(recipe), "--space", str(space_file), "--trials", "2"]
    completed = subprocess.run(
        [*launcher, *arguments], env=subprocess_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    trials = journal_study(recipe).trials
    # Two trials, not two per process: the second rank never asked optuna for one.
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    study_dir = study_directory(load_recipe(recipe).output_dir, "recipe")
    assert len(list((study_dir / "workers").glob("*.lock"))) == 1
    for trial in trials:
        log = (study_dir / f"trial-{trial.number:04d}" / "metrics.jsonl").read_text()
        assert f"Trial {trial.number}: {{'{LEARNING_RATE}': {trial.params[LEARNING_RATE]!r}}}" in completed.stderr
        assert '"step": 4' in log
    # Both ranks logged each trial's values: the main process sent them to the other.
    assert completed.stderr.count("Trial 0: ") == 2
