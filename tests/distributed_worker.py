"""Trains a recipe with ``mtl_nlp.train`` and writes what this process did to ``<record_dir>/rank-<rank>.json``.

Used by tests/test_distributed.py, under torchrun for two processes or called in-process for one:

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py RECIPE RECORD_DIR 2

The record holds the world this process saw, every training batch the trainer read (task and example
indices), what each evaluation sent to and received from the other ranks, the distillation teachers this
process loaded and the soft targets it trained on, and a SHA-256 digest of every tensor of the
trained (unwrapped) model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from mtl_nlp import load_recipe, train
from mtl_nlp.evaluation import evaluator
from mtl_nlp.tasks.base import TEACHER_COLUMN
from mtl_nlp.training import distillation
from mtl_nlp.training.trainer import MultiTaskBatches, MultiTaskTrainer


def tensor_digests(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """A SHA-256 of each tensor's dtype, shape and bytes, by name."""
    digests = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        digests[name] = digest.hexdigest()
    return digests


@contextmanager
def recording(record: dict[str, Any]) -> Iterator[None]:
    """Record the training batches the trainer reads, what each evaluation sends to and receives from the
    other ranks, the teachers loaded, and the trainer itself."""
    read_batch = MultiTaskBatches.__getitem__
    load_teacher = distillation.Teacher.load
    predict = evaluator.predict_split
    gather = evaluator.gather_object
    run_training = MultiTaskTrainer.train

    def recorded_read(self, key):
        task, indices = key
        record["batches"].append([task, [int(index) for index in indices]])
        return read_batch(self, key)

    def recorded_predict(model, task, split, *args, **kwargs):
        record["evaluations"].append({"task": task.name, "split": split})
        return predict(model, task, split, *args, **kwargs)

    def recorded_gather(objects):
        gathered = gather(objects)
        evaluation = record["evaluations"][-1]
        # The evaluator gathers (example index, prediction) pairs, then the per-batch losses.
        if "sent" not in evaluation:
            evaluation["sent"] = [int(index) for index, _ in objects]
            evaluation["received"] = [[int(index), prediction.tolist()] for index, prediction in gathered]
        else:
            evaluation["losses_sent"], evaluation["losses_received"] = len(objects), len(gathered)
        return gathered

    def recorded_load_teacher(self, device):
        record["teacher_loads"].append(str(self.path))
        return load_teacher(self, device)

    def recorded_train(self, *args, **kwargs):
        record["trainer"] = self
        return run_training(self, *args, **kwargs)

    with (
        mock.patch.object(MultiTaskBatches, "__getitem__", recorded_read),
        mock.patch.object(evaluator, "predict_split", recorded_predict),
        mock.patch.object(evaluator, "gather_object", recorded_gather),
        mock.patch.object(MultiTaskTrainer, "train", recorded_train),
        mock.patch.object(distillation.Teacher, "load", recorded_load_teacher),
    ):
        yield


def run(recipe_path: str | Path, record_dir: str | Path, world_size: int) -> dict[str, Any]:
    """Train the recipe in this process (one rank of ``world_size``) and write this rank's record."""
    record: dict[str, Any] = {"batches": [], "evaluations": [], "teacher_loads": []}
    with recording(record):
        result = train(load_recipe(recipe_path))
    trainer = record.pop("trainer")
    accelerator = trainer.accelerator
    # A launch that silently trains in fewer processes must fail here, not pass as a one-process run.
    if accelerator.num_processes != world_size:
        raise SystemExit(f"expected {world_size} processes, Accelerate saw {accelerator.num_processes}")
    record.update(
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        distributed_type=accelerator.distributed_type.value,
        model_dir=str(result.model_dir),
        digests=tensor_digests(accelerator.unwrap_model(trainer.model).state_dict()),
        soft_targets={
            name: task.encoded["train"][TEACHER_COLUMN][:]
            for name, task in trainer.tasks.items()
            if TEACHER_COLUMN in task.encoded["train"].column_names
        },
    )
    record_dir = Path(record_dir)
    record_dir.mkdir(parents=True, exist_ok=True)
    (record_dir / f"rank-{accelerator.process_index}.json").write_text(json.dumps(record), encoding="utf-8")
    return record


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(sys.argv[1], sys.argv[2], int(sys.argv[3]))
