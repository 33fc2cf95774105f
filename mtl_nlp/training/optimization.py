"""The optimisation policy: the peak learning rate (``auto`` by the encoder's width), AdamW and its schedule."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler
from transformers import PretrainedConfig, get_scheduler

from ..config import TrainingConfig

logger = logging.getLogger(__name__)

# (smallest hidden size, peak learning rate): narrower encoders take larger steps. The values for 768 and 1024
# are BERT's published fine-tuning choices; those below come from benchmarks/learning_rates.py on MiniLM.
AUTO_LEARNING_RATES = ((1024, 2e-5), (768, 5e-5), (512, 1e-4), (0, 2e-4))


def auto_learning_rate(encoder_config: PretrainedConfig) -> float:
    """The peak learning rate ``learning_rate: auto`` picks for an encoder (by its hidden size)."""
    return next(rate for smallest, rate in AUTO_LEARNING_RATES if encoder_config.hidden_size >= smallest)


def resolve_learning_rate(training: TrainingConfig, encoder_config: PretrainedConfig) -> float:
    """The recipe's peak learning rate, with ``auto`` replaced by the encoder's (and logged)."""
    if training.learning_rate != "auto":
        return training.learning_rate
    rate = auto_learning_rate(encoder_config)
    logger.info("Learning rate %g (auto, hidden size %d)", rate, encoder_config.hidden_size)
    return rate


# Devices with a fused AdamW kernel (one pass over each parameter instead of several): on CPU the step of a
# MiniLM-size model is over 4× faster than the per-tensor loop, which took 18 % of a training step.
FUSED_ADAMW_DEVICES = ("cpu", "cuda", "mps", "xpu")


def build_optimizer(
    model: torch.nn.Module,
    training: TrainingConfig,
    learning_rate: float,
    device: torch.device,
    extra_parameters: Iterable[torch.nn.Parameter] = (),
) -> torch.optim.AdamW:
    """AdamW at peak ``learning_rate`` with weight decay on weight matrices only (not on biases, norm weights or
    ``extra_parameters``, such as a loss weighting's); fused on ``device`` where PyTorch has the kernel."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": training.weight_decay},
        {"params": [p for p in parameters if p.ndim < 2] + list(extra_parameters), "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, fused=device.type in FUSED_ADAMW_DEVICES or None)


def build_scheduler(training: TrainingConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
    """The recipe's schedule: warm-up over the first ``warmup_ratio`` of ``total_steps``, then ``lr_scheduler``."""
    return get_scheduler(
        training.lr_scheduler,
        optimizer,
        num_warmup_steps=math.ceil(training.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
