"""Pruning: a trainer callback that reports each validation to the optuna trial and stops a trial the pruner
gives up on. Under several processes the main process asks the pruner and tells the others."""

from __future__ import annotations

import optuna
from accelerate.utils import broadcast_object_list

from ..tasks import TaskEvaluation
from ..training.callbacks import TrainerCallback, TrainerView
from .space import SearchSpace


class PruningCallback(TrainerCallback):
    """Reports the objective of every validation during training (not the final one: that is the trial's value)
    at its step; ``pruned_at`` is the step at which the pruner stopped the trial, if it did."""

    def __init__(self, trial: optuna.Trial | None, space: SearchSpace) -> None:
        self.trial = trial  # None on the processes that do not talk to optuna
        self.space = space
        self.pruned_at: int | None = None

    def on_validate(self, trainer: TrainerView, evaluations: list[TaskEvaluation], score: float | None) -> None:
        if score is None or self.pruned_at is not None or trainer.step >= trainer.total_steps:
            return
        prune = False
        if self.trial is not None:
            self.trial.report(self.space.objective_value(evaluations, score), trainer.step)
            prune = self.trial.should_prune()
        if trainer.accelerator.num_processes > 1:
            [prune] = broadcast_object_list([prune])
        if prune:
            self.pruned_at = trainer.step
            trainer.stop("the search's pruner stopped this trial")
