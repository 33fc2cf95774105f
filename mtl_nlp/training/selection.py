"""Model selection across evaluations: an aggregate score over tasks, the best step, and early stopping."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from ..tasks import TaskEvaluation


def aggregate_score(evaluations: list[TaskEvaluation], weights: Mapping[str, float]) -> float:
    """The weighted mean of each task's headline metric (all headline metrics grow with quality)."""
    total = sum(weights[e.task] for e in evaluations)
    if not evaluations or total <= 0:
        raise ValueError("the aggregate score needs at least one evaluated task with a positive weight.")
    return sum(weights[e.task] * e.headline_value for e in evaluations) / total


@dataclass
class ModelSelection:
    """Tracks the best aggregate score; ``should_stop`` after ``patience`` evaluations without improvement."""

    patience: int | None = None
    best_score: float = -math.inf
    best_step: int | None = None
    evaluations_without_improvement: int = 0

    def update(self, step: int, score: float) -> bool:
        """Record an evaluation; True when it is the best so far (ties keep the earlier step)."""
        if score > self.best_score:
            self.best_score, self.best_step = score, step
            self.evaluations_without_improvement = 0
            return True
        self.evaluations_without_improvement += 1
        return False

    @property
    def should_stop(self) -> bool:
        """Whether patience has run out."""
        return self.patience is not None and self.evaluations_without_improvement >= self.patience

    def state_dict(self) -> dict:
        """Everything needed to continue selecting after a resume."""
        return asdict(self)

    def load_state_dict(self, state: Mapping) -> None:
        """Restore a saved selection state."""
        for key, value in state.items():
            setattr(self, key, value)
