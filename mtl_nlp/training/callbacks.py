"""Events of the training loop, and what plugs into them: the history file, the progress bar, experiment trackers,
a search's pruning and the benchmarks' timers are all callbacks.

A callback subclasses :class:`TrainerCallback` and overrides the events it needs; every event receives the
trainer, whose ``state`` (:class:`~mtl_nlp.training.state.TrainingState`) holds the step and the counters. A
callback that wants training to end early calls ``trainer.stop(reason)``: the loop finishes its step (and the
checkpoint due at it), then validates and ends as it would at the last step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from accelerate import Accelerator
from tqdm.auto import tqdm

from ..tasks import TaskEvaluation
from .state import TrainingState


class TrainerView(Protocol):
    """What callbacks see of the trainer (:class:`~mtl_nlp.training.trainer.MultiTaskTrainer`)."""

    accelerator: Accelerator
    state: TrainingState
    output_dir: Path
    total_steps: int

    @property
    def step(self) -> int:
        """Optimizer steps taken so far."""

    def recipe_as_run(self) -> dict[str, Any]:
        """The recipe as plain data, with ``learning_rate: auto`` replaced by the rate it stood for."""

    def stop(self, reason: str) -> None:
        """End training after the current step."""


class TrainerCallback:
    """Does nothing at every event; subclasses override the events they need. Events run on every process."""

    def on_train_begin(self, trainer: TrainerView) -> None:
        """Training starts (after a checkpoint was loaded, when resuming)."""

    def on_step_end(self, trainer: TrainerView) -> None:
        """An optimizer step was counted (``trainer.step`` is its number); not called for skipped non-finite
        steps, which do not count."""

    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        """A record of the run's history: the training losses of a logging window (``loss``, ``learning_rate``,
        ``loss_weights``, ``skipped_steps``), an evaluation (``split``, ``eval``: task → metrics) or a validation's
        ``aggregate`` score; each has its ``step``. These are the lines of ``metrics.jsonl``."""

    def on_evaluate_begin(self, trainer: TrainerView, split: str) -> None:
        """The tasks that have ``split`` are about to be scored."""

    def on_evaluate(self, trainer: TrainerView, split: str, evaluations: list[TaskEvaluation]) -> None:
        """The tasks were scored on ``split`` (an empty list when no task has it)."""

    def on_validate_begin(self, trainer: TrainerView) -> None:
        """A validation starts: scoring the validation splits, model selection, keeping the best model."""

    def on_validate(self, trainer: TrainerView, evaluations: list[TaskEvaluation], score: float | None) -> None:
        """A validation ended with its aggregate ``score`` (None without validation data); the best model so
        far is on disk."""

    def on_save_begin(self, trainer: TrainerView) -> None:
        """A checkpoint of the current step is about to be written."""

    def on_save(self, trainer: TrainerView, checkpoint: Path) -> None:
        """The checkpoint ``checkpoint`` is complete."""

    def on_train_end(self, trainer: TrainerView) -> None:
        """Training ended, normally or by an exception: release what the callback holds."""


class CallbackList:
    """The trainer's callbacks, called in order at each event."""

    def __init__(self, callbacks: Sequence[TrainerCallback]) -> None:
        self.callbacks = list(callbacks)

    def fire(self, event: str, trainer: TrainerView, **details: Any) -> None:
        """Call ``event`` (e.g. ``"on_log"``) on every callback."""
        for callback in self.callbacks:
            getattr(callback, event)(trainer, **details)


class ProgressBar(TrainerCallback):
    """A tqdm bar of the optimizer steps on the main process, showing the last logged loss of each task."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_begin(self, trainer: TrainerView) -> None:
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.step,
            desc="Training",
            disable=not trainer.accelerator.is_main_process,
        )

    def on_step_end(self, trainer: TrainerView) -> None:
        self.bar.update(1)

    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        if "loss" in record:
            self.bar.set_postfix({task: f"{value:.3f}" for task, value in record["loss"].items()})

    def on_train_end(self, trainer: TrainerView) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
