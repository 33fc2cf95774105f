"""Gradient combination through ``torchjd``: one gradient from the tasks' Jacobian instead of a summed loss.

Used in ``all_tasks`` sampling mode, where each step has every task's loss. ``torchjd`` computes the Jacobian
of the per-task losses with respect to the parameters and an aggregator (UPGrad, PCGrad, IMTL-G, MGDA, …)
turns it into the update direction, resolving conflicts between tasks' gradients.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from ..config import WeightingConfig
from ..errors import RecipeError

AGGREGATORS = {
    "upgrad": "UPGrad",
    "dualproj": "DualProj",
    "pcgrad": "PCGrad",
    "imtl_g": "IMTLG",
    "mgda": "MGDA",
    "aligned_mtl": "AlignedMTL",
    "gradvac": "GradVac",
    "cagrad": "CAGrad",
}
# Required settings, at the values their papers recommend.
AGGREGATOR_ARGUMENTS = {"cagrad": {"c": 0.5}}


def build_aggregator(method: str) -> nn.Module:
    """The torchjd aggregator for ``method``, or an error that says which extra to install."""
    aggregation = importlib.import_module("torchjd.aggregation")
    try:
        return getattr(aggregation, AGGREGATORS[method])(**AGGREGATOR_ARGUMENTS.get(method, {}))
    except ImportError as error:
        raise RecipeError(
            f"weighting.gradient_method: {method} needs an optional dependency ({error}). Install it with "
            "pip install 'mtl-nlp[upgrad]' for upgrad/dualproj, or 'torchjd[cagrad]' for cagrad."
        ) from None


def gradient_aggregator(config: WeightingConfig, num_processes: int, mixed_precision: str) -> nn.Module | None:
    """The aggregator the recipe's ``gradient_method`` asks for (None: losses are summed), refused where gradients
    cannot be combined: under DDP or the fp16 loss scaler."""
    method = config.gradient_method
    if method is None:
        return None
    if num_processes > 1 or mixed_precision == "fp16":
        raise RecipeError(
            f"weighting.gradient_method: {method} runs in one process without fp16 (gradients are combined "
            "outside DDP and the fp16 loss scaler); use bf16, or a loss weighting method for DDP."
        )
    return build_aggregator(method)


def combined_backward(losses: list[torch.Tensor], parameters: list[nn.Parameter], aggregator: nn.Module) -> None:
    """Accumulate into ``.grad`` the aggregation of the Jacobian of ``losses`` w.r.t. ``parameters``."""
    from torchjd.autojac import backward, jac_to_grad

    backward(losses, inputs=parameters)
    jac_to_grad(parameters, aggregator)
