"""The run's Accelerator: which distributed backend the launched processes join, and how DDP is wrapped."""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, get_cpu_distributed_information

from ..config import TrainingConfig
from ..errors import TrainingError


def build_accelerator(training: TrainingConfig) -> Accelerator:
    """An Accelerator for a multi-task run: one task's head is idle at each step, so DDP must expect unused
    parameters."""
    # Accelerate forms a multi-process CPU group (gloo) only when told to use the CPU; otherwise every process
    # that torchrun or mpirun starts on a machine without an accelerator trains alone, as a one-process run.
    launched_processes = get_cpu_distributed_information().world_size
    accelerator = Accelerator(
        cpu=launched_processes > 1 and not torch.accelerator.is_available(),
        mixed_precision=training.mixed_precision,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    if launched_processes > 1 and accelerator.num_processes == 1:
        raise TrainingError(
            f"{launched_processes} processes were launched, but Accelerate has no multi-process backend for "
            f"{accelerator.device.type}, so each would train alone and overwrite the others' output. Launch "
            "with `accelerate launch` on GPUs, or set ACCELERATE_USE_CPU=1 to train on the CPU."
        )
    return accelerator
