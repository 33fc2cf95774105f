"""The run's history: one JSON line per logged training window or evaluation, in ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .callbacks import TrainerCallback, TrainerView


class TrainingHistory(TrainerCallback):
    """Appends the trainer's records to ``<output_dir>/metrics.jsonl`` (main process only) and keeps them in memory.

    A new run starts the file afresh and a resumed run keeps the records its checkpoint had seen
    (:meth:`restart`), so the file of a killed and resumed run equals that of an uninterrupted one.
    """

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, trainer: TrainerView) -> None:
        self.restart(keep=trainer.state.history_records)

    def on_log(self, trainer: TrainerView, record: dict[str, Any]) -> None:
        self.append(record)

    def append(self, record: dict[str, Any]) -> None:
        """Record one entry and flush it to disk at once, so a killed run keeps its history."""
        self.records.append(record)
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, sort_keys=True) + "\n")

    def restart(self, keep: int) -> None:
        """Keep only the file's first ``keep`` records (those a checkpoint had seen) and continue from there."""
        if not self.enabled:
            return
        self.records = read_history(self.path)[:keep] if keep and self.path.exists() else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in self.records)
        self.path.write_text(text, encoding="utf-8")


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
