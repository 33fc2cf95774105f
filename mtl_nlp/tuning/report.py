"""The report of a study: the best recipe as a runnable YAML file, a table of the trials, and optuna's plots."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from ..config import apply_overrides
from .space import SearchSpace, override

BEST_RECIPE = "best_recipe.yaml"
TRIALS_TABLE = "trials.md"


@dataclass
class StudyReport:
    """What the report holds: the best recipe (None until a trial completes), the trials table, the plots."""

    best_recipe: Path | None
    table: str
    plots: list[Path]


def trials_table(trials: list[FrozenTrial], keys: list[str]) -> str:
    """A Markdown table: each trial's number, state, value, last reported step and values."""
    lines = ["| trial | state | value | last step | " + " | ".join(keys) + " |", "|---" * (4 + len(keys)) + "|"]
    for trial in trials:
        value = "–" if trial.value is None else f"{trial.value:.4f}"
        step = "–" if trial.last_step is None else str(trial.last_step)
        values = [str(trial.params.get(key, "–")) for key in keys]
        lines.append(f"| {trial.number} | {trial.state.name.lower()} | {value} | {step} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def best_recipe(study: optuna.Study, raw: dict[str, Any], space: SearchSpace) -> str:
    """The recipe with the best trial's values, as YAML text headed by where they come from."""
    best = study.best_trial
    recipe = apply_overrides(copy.deepcopy(raw), [override(key, value) for key, value in best.params.items()])
    header = f"# Trial {best.number} of study {study.study_name}, the best: {space.objective} {best.value:.4f}\n"
    return header + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)


def write_plots(study: optuna.Study, directory: Path) -> list[Path]:
    """The optimization history and, with two completed trials or more, the parameters' importances, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    plots = {"optimization_history.png": plot_optimization_history}
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) >= 2:
        plots["param_importances.png"] = plot_param_importances
    written = []
    for name, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = plot(study)
        axes.figure.savefig(directory / name, dpi=120, bbox_inches="tight")
        plt.close(axes.figure)
        written.append(directory / name)
    return written


def write_report(study: optuna.Study, directory: Path, raw: dict[str, Any], space: SearchSpace) -> StudyReport:
    """Write ``best_recipe.yaml``, ``trials.md`` and the plots into the study's directory."""
    table = trials_table(study.get_trials(deepcopy=False), list(space.parameters))
    (directory / TRIALS_TABLE).write_text(table, encoding="utf-8")
    recipe_path = None
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        recipe_path = directory / BEST_RECIPE
        recipe_path.write_text(best_recipe(study, raw, space), encoding="utf-8")
    return StudyReport(recipe_path, table, write_plots(study, directory))
