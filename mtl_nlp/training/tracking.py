"""Experiment trackers (``training.report_to``): Accelerate's trackers — TensorBoard, W&B, MLflow, trackio, … —
receive the run's history records and its recipe, from the main process only."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import accelerate.utils
from accelerate.tracking import LOGGER_TYPE_TO_CLASS, GeneralTracker

from ..errors import RecipeError
from .callbacks import TrainerCallback, TrainerView

NO_TRACKER = "none"
LOGGING_FOLDER = "logs"  # under output_dir, for the trackers that write files there (TensorBoard, Aim)


def check_trackers(names: Sequence[str]) -> None:
    """Refuse a tracker whose package is not installed, naming the extra that installs it (Accelerate itself
    would silently leave it out)."""
    for name in names:
        if name != NO_TRACKER and not getattr(accelerate.utils, f"is_{name}_available")():
            raise RecipeError(
                f"training.report_to: {name} needs its package, which is not installed. Install it with "
                f"pip install 'mtl-nlp[{name.replace('_', '-')}]'."
            )


def flatten(mapping: Mapping[str, Any], separator: str, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of ``outer<separator>inner`` keys; lists become JSON text, since trackers
    take only numbers, text, booleans and None."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{separator}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat |= flatten(value, separator, name)
        else:
            flat[name] = json.dumps(value) if isinstance(value, (list, tuple)) else value
    return flat


def record_scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a history record under tracker names: ``train/loss/<task>``, ``train/learning_rate``,
    ``train/loss_weights/<task>``, ``train/skipped_steps``, ``<split>/<task>/<metric>`` and
    ``validation/aggregate``."""
    if "eval" in record:
        values = flatten(record["eval"], "/", record["split"])
    elif "aggregate" in record:
        values = {"validation/aggregate": record["aggregate"]}
    else:
        values = flatten({key: value for key, value in record.items() if key != "step"}, "/", "train")
    return {
        name: value for name, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class TrackingCallback(TrainerCallback):
    """Sends every history record to the recipe's trackers, and the recipe as hyper-parameters (its keys
    flattened to ``training.learning_rate`` and so on, with ``auto`` replaced by the rate used)."""

    def __init__(self, names: Sequence[str], run_name: str) -> None:
        check_trackers(names)
        self.names = [name for name in names if name != NO_TRACKER]
        self.run_name = run_name
        self.trackers: list[GeneralTracker] = []

    def on_train_begin(self, trainer: TrainerView) -> None:
        if not self.names or not trainer.accelerator.is_main_process:
            return
        hyperparameters = flatten(trainer.recipe_as_run(), ".")
        for name in self.names:
            tracker_class = LOGGER_TYPE_TO_CLASS[name]
            if tracker_class.requires_logging_directory:
                tracker = tracker_class(self.run_name, trainer.output_dir / LOGGING_FOLDER)
            else:
                tracker = tracker_class(self.run_name)
            tracker.start()
            tracker.store_init_configuration(hyperparameters)
            self.trackers.append(tracker)

    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        values = record_scalars(record)
        for tracker in self.trackers:
            tracker.log(values, step=record["step"])

    def on_train_end(self, trainer: TrainerView) -> None:
        for tracker in self.trackers:
            tracker.finish()
        self.trackers = []
