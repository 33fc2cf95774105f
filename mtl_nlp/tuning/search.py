"""``tune``: run a study's trials — each a training run of the recipe with the trial's values, in its own output
directory, resumed from its checkpoint when a process left it unfinished — then report the study.

Under several processes (torchrun), the main process alone talks to optuna; the trial to run is broadcast to all,
which train it together.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from accelerate.utils import broadcast_object_list

from ..config import apply_overrides, load_recipe, recipe_from_dict
from ..errors import TrainingError
from ..training.accelerator import build_accelerator
from ..training.checkpoint import CheckpointDirectory
from ..training.run import train
from ..training.selection import aggregate_score
from ..training.tracking import check_trackers
from .pruning import PruningCallback
from .report import StudyReport, write_report
from .space import SearchSpace, load_space, override
from .study import Worker, open_storage, open_study

logger = logging.getLogger(__name__)

TRIAL_DIR = "trial-{number:04d}"


@dataclass
class TrialPlan:
    """What every process needs to run one trial."""

    number: int
    params: dict[str, Any]


def study_directory(output_dir: str | Path, study_name: str) -> Path:
    """Where a study keeps its trials, journal and report: ``<output_dir>/tune/<study_name>``."""
    return Path(output_dir) / "tune" / study_name


def tune(
    recipe_path: str | Path,
    space_path: str | Path,
    trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    timeout: float | None = None,
    overrides: list[str] | None = None,
) -> StudyReport | None:
    """Run trials of the study until it has ``trials`` (or ``timeout`` seconds have passed), then write its
    report (main process; None on the others). Everything is checked before the first trial."""
    recipe = load_recipe(recipe_path, overrides)
    space = load_space(space_path, recipe)
    check_trackers(recipe.training.report_to)
    study_name = study_name or Path(recipe_path).stem
    study_dir = study_directory(recipe.output_dir, study_name)
    accelerator = build_accelerator(recipe.training)
    worker = None
    if accelerator.is_main_process:
        study = open_study(open_storage(storage, study_dir), study_name, space)
        worker = Worker(study, study_dir / "workers")
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        trial = None
        if worker is not None and (deadline is None or time.monotonic() < deadline):
            trial = worker.next_trial(trials, space)
        plan = TrialPlan(trial.number, trial.params) if trial is not None else None
        if accelerator.num_processes > 1:
            [plan] = broadcast_object_list([plan])
        if plan is None:
            break
        run_trial(plan, trial, recipe.written, space, study_dir, study_name)
    report = write_report(worker.study, study_dir, recipe.written, space) if worker is not None else None
    # Every process leaves together, with the process group closed: a rank that exits while another still writes
    # the report tears down live communication threads and aborts.
    accelerator.wait_for_everyone()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return report


def trial_recipe(raw: dict[str, Any], params: dict[str, Any], output_dir: Path, run_name: str) -> dict[str, Any]:
    """The recipe mapping of a trial: ``raw`` with the trial's values, its own output directory and, unless the
    recipe names one, the study's name as the trackers' run name (so they group the study's trials)."""
    values = {**params, "output_dir": str(output_dir)}
    if not raw.get("training", {}).get("run_name"):
        values["training.run_name"] = run_name
    return apply_overrides(copy.deepcopy(raw), [override(key, value) for key, value in values.items()])


def run_trial(
    plan: TrialPlan,
    trial: optuna.Trial | None,
    raw: dict[str, Any],
    space: SearchSpace,
    study_dir: Path,
    study_name: str,
) -> None:
    """Train one trial (continuing its checkpoint, if it has one) and tell the study how it ended (``trial`` is
    None on the processes that do not talk to optuna)."""
    output_dir = study_dir / TRIAL_DIR.format(number=plan.number)
    recipe = recipe_from_dict(trial_recipe(raw, plan.params, output_dir, study_name))
    resume = CheckpointDirectory(output_dir / "checkpoints", keep=1).latest() is not None
    logger.info("Trial %d%s: %s", plan.number, " (resumed)" if resume else "", plan.params)
    pruning = PruningCallback(trial, space)
    try:
        result = train(recipe, resume=resume, callbacks=[pruning])
    except TrainingError as error:  # e.g. losses that stay non-finite: the trial fails, the study goes on
        logger.warning("Trial %d failed: %s", plan.number, error)
        if trial is not None:
            trial.set_user_attr("error", str(error))
            trial.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    if trial is None:
        return
    trial.set_user_attr("output_dir", str(output_dir))
    if pruning.pruned_at is not None:
        trial.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    evaluations = [e for e in result.evaluations if e.split == "validation"]
    weights = {name: task.selection_weight for name, task in recipe.tasks.items()}
    trial.study.tell(trial, space.objective_value(evaluations, aggregate_score(evaluations, weights)))
