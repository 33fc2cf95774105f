"""The search space file: which recipe keys a search varies and how, what it optimises, and when it prunes.

A YAML mapping (docs/search.md)::

    objective: aggregate            # or <task>.<metric>, scored on the validation split
    direction: maximize
    pruner: median                  # median, hyperband or none
    parameters:
      training.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
      tasks.ner.batch_size: {type: int, low: 8, high: 32, step: 8}
      sampling.strategy: {type: categorical, choices: [proportional, uniform]}

Every key is checked against the recipe before a trial starts: it must name a recipe value, its bounds or
choices must be values the recipe accepts there, and the distribution's type must fit the key's.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml

from ..config import (
    RecipeConfig,
    apply_overrides,
    build_dataclass,
    option,
    read_yaml_file,
    recipe_from_dict,
    unknown_key_error,
)
from ..errors import RecipeError, SearchError
from ..tasks import TaskEvaluation

AGGREGATE = "aggregate"


@dataclass
class Distribution:
    """The values one recipe key takes in the search."""

    type: Literal["float", "int", "categorical"] = option(
        "float (log: true samples evenly on a log scale), int, or categorical (one of 'choices')."
    )
    low: float | None = option("Smallest value (float and int).", default=None)
    high: float | None = option("Largest value (float and int), included.", default=None)
    log: bool = option("Sample on a log scale (float and int; low must be above 0).", default=False)
    step: float | None = option(
        "Spacing of the values from low (float and int; not with log).", default=None, minimum=0, exclusive_minimum=True
    )
    choices: list[Any] | None = option("The values of a categorical key.", default=None)

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.choices:
                raise RecipeError("choices: a categorical key needs at least one choice.")
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise RecipeError("type: categorical takes 'choices' only (no low, high, step or log).")
            return
        if self.low is None or self.high is None or self.choices is not None:
            raise RecipeError(f"type: {self.type} takes 'low' and 'high' (and optionally 'log' or 'step').")
        if self.low > self.high:
            raise RecipeError(f"low: {self.low} is above high {self.high}; the bounds are reversed.")
        if self.log and (self.low <= 0 or self.step is not None):
            raise RecipeError("log: a log scale needs low above 0 and no step.")
        if self.type == "int" and any(v is not None and v != int(v) for v in (self.low, self.high, self.step)):
            raise RecipeError("type: int takes whole-number low, high and step.")

    def values(self) -> list[Any]:
        """The values to check against the recipe: the bounds, or every choice."""
        if self.type == "categorical":
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.type == "int" else [self.low, self.high]

    def to_optuna(self) -> optuna.distributions.BaseDistribution:
        """The same distribution as optuna describes it."""
        if self.type == "categorical":
            return optuna.distributions.CategoricalDistribution(self.choices)
        if self.type == "int":
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log, step=self.step)


@dataclass
class SearchSpace:
    """A search: the recipe keys it varies, its objective and its pruning."""

    parameters: dict[str, Distribution] = option(
        "Recipe key (dotted, as in command-line overrides: training.learning_rate, tasks.ner.batch_size) → its "
        "distribution."
    )
    objective: str = option(
        "What a trial scores: 'aggregate' (the validation aggregate that selects the best model) or "
        "'<task>.<metric>' (e.g. ner.f1) on the validation split.",
        default=AGGREGATE,
    )
    direction: Literal["maximize", "minimize"] = option(
        "Whether the objective is better high or low.", default="maximize"
    )
    pruner: Literal["median", "hyperband", "none"] = option(
        "Stop trials early by their evaluations: median (below the median of earlier trials at the same step), "
        "hyperband, or none.",
        default="median",
    )
    startup_trials: int = option("Trials that end before the median pruner stops any.", default=2, minimum=0)
    min_steps: int = option(
        "Training steps before a trial can be pruned (the median pruner's warm-up; Hyperband's smallest budget).",
        default=1,
        minimum=1,
    )
    seed: int | None = option("Seed of the sampler (TPE), so that a study repeats.", default=None, minimum=0)

    def __post_init__(self) -> None:
        if not self.parameters:
            raise RecipeError("parameters: name at least one recipe key to search.")

    def objective_value(self, evaluations: list[TaskEvaluation], aggregate: float) -> float:
        """The objective of a validation: the aggregate score, or one task's metric."""
        if self.objective == AGGREGATE:
            return aggregate
        task, _, metric = self.objective.partition(".")
        metrics = next((e.metrics for e in evaluations if e.task == task), None)
        if metrics is None:
            raise SearchError(f"objective: task {task} has no validation split to score {metric} on.")
        if metric not in metrics:
            raise SearchError(f"objective: task {task} has no metric {metric!r}; it has {', '.join(sorted(metrics))}.")
        return float(metrics[metric])

    def pruner_for_optuna(self) -> optuna.pruners.BasePruner:
        """The optuna pruner the space asks for."""
        if self.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials, n_warmup_steps=self.min_steps)
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=self.min_steps)
        return optuna.pruners.NopPruner()


def override(key: str, value: Any) -> str:
    """A ``key=value`` recipe override that gives ``key`` exactly ``value`` (written as YAML)."""
    return f"{key}={yaml.safe_dump(value)}"


def load_space(path: str | Path, recipe: RecipeConfig) -> SearchSpace:
    """Read a search space file and check it against ``recipe``; errors name the file and the key."""
    path = Path(path)
    raw = read_yaml_file(path, "search space", SearchError)
    try:
        space = build_dataclass(SearchSpace, raw)
        check_space(space, recipe)
    except RecipeError as error:
        raise SearchError(f"{path}: {error}") from None
    return space


def check_space(space: SearchSpace, recipe: RecipeConfig) -> None:
    """Every parameter names a recipe value whose type fits its distribution and accepts its bounds or choices;
    the objective names a task of the recipe; a pruner has evaluations to judge."""
    for key, distribution in space.parameters.items():
        annotation = _key_annotation(recipe, key)
        accepted = _number_types(annotation)
        if distribution.type == "float" and float not in accepted:
            kind = "a whole-number key: use type: int" if int in accepted else "not a number key: use categorical"
            raise RecipeError(f"parameters.{key}: {kind}.")
        if distribution.type == "int" and not accepted:
            raise RecipeError(f"parameters.{key}: not a number key: use type: categorical.")
        for value in distribution.values():
            try:
                recipe_from_dict(apply_overrides(copy.deepcopy(recipe.written), [override(key, value)]))
            except RecipeError as error:
                raise RecipeError(f"parameters.{key}: the recipe refuses {value!r}: {error}") from None
    if space.objective != AGGREGATE:
        task, _, metric = space.objective.partition(".")
        if task not in recipe.tasks or not metric:
            close = difflib.get_close_matches(task, list(recipe.tasks), n=1)
            hint = f" Did you mean '{close[0]}.{metric}'?" if close else ""
            raise RecipeError(
                f"objective: {space.objective!r} is neither 'aggregate' nor <task>.<metric> of a task of the "
                f"recipe ({', '.join(recipe.tasks)}).{hint}"
            )
    if space.pruner != "none" and not recipe.training.eval_every_steps:
        raise RecipeError(
            "pruner: the recipe evaluates only at the end (training.eval_every_steps: 0), so the pruner has nothing "
            "to judge; set training.eval_every_steps, or pruner: none."
        )


def _key_annotation(recipe: RecipeConfig, key: str) -> Any:
    """The type of the recipe value that dotted ``key`` names; an unknown key is reported with the nearest one."""
    node: Any = recipe
    annotation: Any = RecipeConfig
    parts = key.split(".")
    for depth, part in enumerate(parts):
        where = "".join(f"{name}." for name in parts[:depth])
        if dataclasses.is_dataclass(node):
            fields = [spec.name for spec in dataclasses.fields(node) if spec.init]
            if part not in fields:
                raise unknown_key_error(f"parameters.{where}", part, fields)
            annotation = typing.get_type_hints(type(node))[part]
            node = getattr(node, part)
        elif isinstance(node, dict) and part in node:
            annotation = typing.get_args(annotation)[1]
            node = node[part]
        else:
            raise unknown_key_error(f"parameters.{where}", part, list(node) if isinstance(node, dict) else [])
    if dataclasses.is_dataclass(node) or isinstance(node, dict):
        raise RecipeError(f"parameters.{key}: a section of the recipe, not a value; name one of its keys.")
    return annotation


def _number_types(annotation: Any) -> set[type]:
    """Which of int and float a key's type accepts (int keys take whole numbers only)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_number_types(arg) for arg in typing.get_args(annotation)))
    return {annotation} if annotation in (int, float) else set()
