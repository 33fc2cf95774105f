"""The training loop's own state — everything a resumed run needs besides what Accelerate saves (model, optimizer,
gradient scaler, RNG) — in one object, written per process as JSON and safetensors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch.optim.lr_scheduler import LRScheduler

from ..data.sampling import MultiTaskBatchSampler
from ..errors import TrainingError
from .selection import ModelSelection
from .weighting import LossWeighting

STATE_FORMAT = 2  # 1: trainer_state_<rank>.json + weighting_<rank>.safetensors, loss sums in the JSON
WEIGHTING_PREFIX = "weighting."


class TrainingState:
    """Counters, learning-rate schedule, sampler position, model selection, the losses of the logging window not
    yet logged and the loss weighting, of one process.

    ``save`` writes ``trainer_state_<rank>.json`` (numbers and the small states) and
    ``trainer_state_<rank>.safetensors`` (the tensors, bit for bit); ``load`` also reads checkpoints of the first
    format, whose tensors were in ``weighting_<rank>.safetensors`` and the JSON.
    """

    def __init__(
        self,
        task_names: Sequence[str],
        scheduler: LRScheduler,
        sampler: MultiTaskBatchSampler,
        selection: ModelSelection,
        weighting: LossWeighting,
        device: torch.device,
    ) -> None:
        self.task_names = list(task_names)
        self.scheduler = scheduler
        self.sampler = sampler
        self.selection = selection
        self.weighting = weighting
        self.step = 0
        # Batches the loop has taken from the stream: the sampler's own position runs ahead by what the data
        # loader prefetched, so the resume point is counted here.
        self.batches_consumed = 0
        self.skipped_steps = 0
        self.consecutive_skipped = 0
        self.history_records = 0
        # Per-task loss sums since the last log stay on the device (reading them waits for it); counts on the host.
        self.loss_sums = torch.zeros(len(self.task_names), dtype=torch.float64, device=device)
        self.loss_counts = dict.fromkeys(self.task_names, 0)

    def reset_losses(self) -> None:
        """Open a new logging window."""
        self.loss_sums.zero_()
        self.loss_counts = dict.fromkeys(self.task_names, 0)

    def save(self, directory: str | Path, rank: int, num_processes: int) -> None:
        """Write this process's state into checkpoint ``directory``."""
        directory = Path(directory)
        record = {
            "format": STATE_FORMAT,
            "num_processes": num_processes,
            "step": self.step,
            "batches_consumed": self.batches_consumed,
            "skipped_steps": self.skipped_steps,
            "consecutive_skipped": self.consecutive_skipped,
            "history_records": self.history_records,
            "scheduler": self.scheduler.state_dict(),
            "sampler": {"position": self.batches_consumed, "seed": self.sampler.seed},
            "selection": self.selection.state_dict(),
            "loss_counts": self.loss_counts,
        }
        tensors = {f"{WEIGHTING_PREFIX}{name}": tensor for name, tensor in self.weighting.state_dict().items()}
        tensors["loss_sums"] = self.loss_sums
        (directory / f"trainer_state_{rank}.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
        save_file(
            {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()},
            directory / f"trainer_state_{rank}.safetensors",
        )

    def load(self, directory: str | Path, rank: int, num_processes: int) -> None:
        """Restore this process's state from checkpoint ``directory`` (either format)."""
        directory = Path(directory)
        state_file = directory / f"trainer_state_{rank}.json"
        if not state_file.is_file():
            raise TrainingError(
                f"{directory}: not a complete checkpoint of this run for process {rank} ({state_file.name} is "
                "missing). Resume from a step-* directory under the run's checkpoints/ with the same number of "
                "processes."
            )
        record = json.loads(state_file.read_text(encoding="utf-8"))
        if record["num_processes"] != num_processes:
            raise TrainingError(
                f"{directory}: written by {record['num_processes']} process(es), resumed with {num_processes}. "
                "Resume with the number of processes that wrote the checkpoint."
            )
        if record.get("format", 1) == 1:
            record, tensors = self._first_format(directory, rank, record)
        else:
            tensors = load_file(directory / f"trainer_state_{rank}.safetensors")
        self.weighting.load_state_dict(
            {name.removeprefix(WEIGHTING_PREFIX): t for name, t in tensors.items() if name.startswith(WEIGHTING_PREFIX)}
        )
        self.loss_sums.copy_(tensors["loss_sums"])
        self.scheduler.load_state_dict(record["scheduler"])
        self.sampler.load_state_dict(record["sampler"])
        self.selection.load_state_dict(record["selection"])
        self.step = record["step"]
        self.batches_consumed = record["batches_consumed"]
        self.skipped_steps = record["skipped_steps"]
        self.consecutive_skipped = record["consecutive_skipped"]
        self.history_records = record["history_records"]
        self.loss_counts = record["loss_counts"]

    def _first_format(self, directory: Path, rank: int, record: dict[str, Any]) -> tuple[dict, dict[str, torch.Tensor]]:
        """A first-format checkpoint's record and tensors, as the current format holds them."""
        weighting = load_file(directory / f"weighting_{rank}.safetensors")
        tensors = {f"{WEIGHTING_PREFIX}{name}": tensor for name, tensor in weighting.items()}
        sums = [record["loss_sums"][task] for task in self.task_names]
        tensors["loss_sums"] = torch.tensor(sums, dtype=torch.float64)
        sampler = {"position": record["batches_consumed"], "seed": self.sampler.seed}
        return {**record, "sampler": sampler}, tensors
