"""Per-task LoRA adapters on the shared encoder, through ``peft``.

Each task with an ``adapter`` gets its own LoRA weights (``inject_adapter_in_model``, one adapter per task name)
on the encoder's modules named in ``target_modules``. Before the encoder runs for a task, its adapter is made
the active one — or, for a task without one, all adapters are switched off. peft's switching also toggles
``requires_grad`` (only the active adapter trains); here every adapter weight keeps ``requires_grad=True`` at all
times instead, so that the set of trainable parameters never changes between steps (which DDP and the optimizer
both assume): an inactive adapter simply gets no gradient at that step. The pretrained weights keep training
too, unless the recipe freezes the encoder.

peft's layer-switching function (``peft.tuners.tuners_utils.set_adapter``) is the one piece of peft used below its
top-level API: :func:`activate` is its only caller, and tests/test_adapters.py holds it to its contract.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer, set_adapter
from torch import nn

from ..errors import ModelBuildError

ADAPTER_MARKER = "lora_"


def _linear_names(encoder: nn.Module) -> list[str]:
    names = {name.rsplit(".", 1)[-1] for name, module in encoder.named_modules() if isinstance(module, nn.Linear)}
    return sorted(names)


def add_adapters(encoder: nn.Module, adapters: dict[str, dict[str, Any]]) -> None:
    """Give each task of ``adapters`` (task → ``{type, r, alpha, dropout, target_modules}``) its LoRA adapter."""
    trainable = {name for name, parameter in encoder.named_parameters() if parameter.requires_grad}
    for task, settings in adapters.items():
        config = LoraConfig(
            r=settings["r"],
            lora_alpha=settings["alpha"],
            lora_dropout=settings["dropout"],
            target_modules=list(settings["target_modules"]),
        )
        try:
            with warnings.catch_warnings():  # one adapter per task on one encoder is the point, not an accident
                warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
                inject_adapter_in_model(config, encoder, adapter_name=task)
        except ValueError as error:
            raise ModelBuildError(
                f"tasks.{task}.adapter.target_modules: {settings['target_modules']} cannot be adapted on the "
                f"{getattr(encoder.config, 'model_type', type(encoder).__name__)!r} encoder "
                f"({' '.join(str(error).split())[:200]}). Its linear layers are named: "
                f"{', '.join(_linear_names(encoder))}."
            ) from None
    for name, parameter in encoder.named_parameters():  # peft freezes the base weights: the recipe decides that
        base = name.replace(".base_layer", "")
        parameter.requires_grad_(ADAPTER_MARKER in name or base in trainable or name in trainable)


def adapter_layers(encoder: nn.Module) -> list[BaseTunerLayer]:
    """The encoder's modules that hold adapters."""
    return [module for module in encoder.modules() if isinstance(module, BaseTunerLayer)]


def activate(encoder: nn.Module, task: str | None, layers: list[BaseTunerLayer]) -> None:
    """Make ``task``'s adapter the one the encoder runs with (None, or a task without adapter: none at all),
    keeping every adapter weight trainable."""
    if not layers:
        return
    available = set(layers[0].lora_A)
    if task in available:
        for layer in layers:
            layer.enable_adapters(True)
        set_adapter(encoder, task)
    else:
        for layer in layers:
            layer.enable_adapters(False)
    for layer in layers:
        for parameter in [*layer.lora_A.parameters(), *layer.lora_B.parameters()]:
            parameter.requires_grad_(True)


def merged_state_dict(encoder: nn.Module, task: str | None) -> dict[str, torch.Tensor]:
    """The encoder's weights with ``task``'s adapter merged in, under the plain encoder's names (what a stock
    model of this task holds); the encoder itself is left as it is."""
    copied = copy.deepcopy(encoder)
    layers = adapter_layers(copied)
    if layers and task in layers[0].lora_A:
        for layer in layers:
            layer.merge(adapter_names=[task])
    return {
        key.replace(".base_layer", ""): value for key, value in copied.state_dict().items() if ADAPTER_MARKER not in key
    }


def is_adapter_parameter(name: str) -> bool:
    """Whether a parameter (by its name) belongs to an adapter."""
    return ADAPTER_MARKER in name
