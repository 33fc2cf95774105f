"""How tasks share the encoder, from hard to soft: per-task top layers, cross-stitch units, layer attention.

``task_layers: K`` cuts the encoder's layer stack: the bottom N − K layers stay shared and run once per batch;
each task gets its own copy of the top K layers, initialised from the pretrained ones. Each copy is the
encoder's own layer-stack module (e.g. ``BertEncoder``) holding one layer, called with exactly the arguments the
encoder gave its shared stack (attention mask and the rest, recorded by a forward pre-hook), so the computation
is the stock one: the shared bottom followed by a task's tower equals the stock encoder with those layers.

``cross_stitch`` (Misra et al. 2016) mixes the tasks' hidden states after each task-specific layer with a learned
task × task matrix per layer; so every task's input runs through every tower. ``layer_attention`` (a scalar mix,
Peters et al. 2018) gives each task a softmax-weighted sum of the embeddings and every layer's output, times a
learned scale, instead of the last layer alone.

Tasks with an ``adapter`` (per-task LoRA, :mod:`mtl_nlp.modeling.adapters`) run the encoder with their own adapter
switched on: one encoder pass per adapter (tasks without one share a pass), unless the adapters are merged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from ..errors import ModelBuildError
from .adapters import activate, adapter_layers, add_adapters

CROSS_STITCH_SELF = 0.9
"""Cross-stitch matrices start at this weight on a task's own stream and share the rest equally among the other
tasks (Misra et al. initialise two tasks at 0.9/0.1): each row sums to 1, so the start is close to separate towers."""

SHARING_KEYS = ("task_layers", "cross_stitch", "layer_attention")


def layer_stack(encoder: PreTrainedModel, *, cuttable: bool = True) -> tuple[str, nn.Module, str]:
    """The encoder's layer stack: the module path, the module, and the name of its list of layers.

    It is the module holding a ``ModuleList`` of ``num_hidden_layers`` layers (``BertEncoder.layer`` …). With
    ``cuttable``, a stack with weights of its own besides the layers (DeBERTa's relative embeddings) is refused: it
    cannot be cut into towers.
    """
    count = encoder.config.num_hidden_layers
    for path, module in encoder.named_modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == count:
                own = sum(p.numel() for p in module.parameters()) - sum(p.numel() for p in child.parameters())
                if own and cuttable:
                    break
                return path, module, name
    raise ModelBuildError(
        f"model.sharing.task_layers: the {encoder.config.model_type!r} encoder has no plain stack of its "
        f"{count} layers to give each task its own top layers; use task_layers: 0 with this backbone."
    )


def _single_layer_stack(stack: nn.Module, attribute: str, layer: nn.Module) -> nn.Module:
    """A copy of the layer-stack module holding (a copy of) one layer."""
    layers = getattr(stack, attribute)
    setattr(stack, attribute, nn.ModuleList())
    try:
        copied = copy.deepcopy(stack)
    finally:
        setattr(stack, attribute, layers)
    setattr(copied, attribute, nn.ModuleList([copy.deepcopy(layer)]))
    return copied


class ScalarMix(nn.Module):
    """A softmax-weighted sum of layers' hidden states times a learned scale; starts as their plain mean."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(layers))
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        weights = self.weights.softmax(dim=0)
        return self.scale * sum(weight * state for weight, state in zip(weights, states))


class EncoderSharing(nn.Module):
    """Turns the shared encoder's pass into each task's view of it (see the module's documentation).

    With no option set it adds nothing: every task reads the encoder's own output, as in hard sharing.
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        tasks: list[str],
        settings: dict[str, Any],
        adapters: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        unknown = set(settings) - set(SHARING_KEYS)
        if unknown:
            raise ModelBuildError(f"model.sharing: unknown settings {sorted(unknown)}; known: {list(SHARING_KEYS)}.")
        self.task_layers = int(settings.get("task_layers") or 0)
        self.layer_attention = bool(settings.get("layer_attention"))
        count = encoder.config.num_hidden_layers
        if not 0 <= self.task_layers < count:
            raise ModelBuildError(
                f"model.sharing.task_layers: {self.task_layers} must be from 0 to {count - 1}: the encoder has "
                f"{count} layers and at least one stays shared."
            )
        if settings.get("cross_stitch") and (self.task_layers < 1 or len(tasks) < 2):
            raise ModelBuildError("model.sharing.cross_stitch: needs task_layers ≥ 1 and at least two tasks.")
        self.tasks = list(tasks)
        self.towers = nn.ModuleDict()
        self.shared_layers = count - self.task_layers
        self.stack_path = self.stack_attribute = None
        self._call: tuple[tuple, dict] | None = None
        if self.task_layers:
            self.stack_path, stack, attribute = layer_stack(encoder)
            self.stack_attribute = attribute
            layers = getattr(stack, attribute)
            top = layers[count - self.task_layers :]
            self.towers.update(
                {task: nn.ModuleList(_single_layer_stack(stack, attribute, layer) for layer in top) for task in tasks}
            )
            setattr(stack, attribute, nn.ModuleList(layers[: count - self.task_layers]))
            stack.register_forward_pre_hook(self._record_call, with_kwargs=True)
        self.stitch = None
        if settings.get("cross_stitch"):
            size = len(tasks)
            other = (1 - CROSS_STITCH_SELF) / (size - 1)
            start = torch.full((size, size), other).fill_diagonal_(CROSS_STITCH_SELF)
            self.stitch = nn.Parameter(start.repeat(self.task_layers, 1, 1))
        self.mixes = nn.ModuleDict({task: ScalarMix(count + 1) for task in tasks} if self.layer_attention else {})
        adapters = adapters or {}
        if adapters and self.stitch is not None:
            raise ModelBuildError(
                "model.sharing.cross_stitch: cross-stitch mixes task layers that run on one shared pass, which "
                f"per-task adapters ({', '.join(adapters)}) split into one pass per adapter; use one or the other."
            )
        add_adapters(encoder, adapters)
        self.adapter_tasks = set(adapters)
        self._adapter_layers = adapter_layers(encoder)  # a plain list: the encoder registers these modules

    def tower_state_dict(self, task: str) -> dict[str, torch.Tensor]:
        """The task's top layers under the encoder's own names (``encoder.layer.4.…``), as a stock encoder with all
        its layers holds them."""
        prefix = f"{self.stack_path}.{self.stack_attribute}".lstrip(".")
        state = {}
        for depth, stack in enumerate(self.towers[task] if self.task_layers else []):
            for key, value in getattr(stack, self.stack_attribute)[0].state_dict().items():
                state[f"{prefix}.{self.shared_layers + depth}.{key}"] = value
        return state

    def last_shared_layer(self, encoder: PreTrainedModel) -> nn.Module:
        """The top layer every task's input runs through (below the task-specific layers, when there are any)."""
        if self.task_layers:
            layers = getattr(encoder.get_submodule(self.stack_path), self.stack_attribute)
        else:
            _, stack, attribute = layer_stack(encoder, cuttable=False)
            layers = getattr(stack, attribute)
        return layers[-1]

    @property
    def hard(self) -> bool:
        """Whether every task reads the encoder's own output."""
        return not self.task_layers and not self.layer_attention

    def passes(self, tasks: list[str]) -> list[tuple[str | None, list[str]]]:
        """The encoder passes ``tasks`` need: one per adapter (tasks without adapter share one, ``None``)."""
        groups: dict[str | None, list[str]] = {}
        for task in tasks:
            groups.setdefault(task if task in self.adapter_tasks else None, []).append(task)
        return list(groups.items())

    def _record_call(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self._call = (args[1:], kwargs)

    def forward(
        self, encoder: PreTrainedModel, encoder_inputs: dict[str, torch.Tensor], tasks: list[str]
    ) -> dict[str, ModelOutput]:
        """Run the shared encoder once (once per adapter) and each task's own part; per task, the output its head
        reads."""
        outputs = {}
        for adapter, group in self.passes(tasks):
            activate(encoder, adapter, self._adapter_layers)
            outputs.update(self._encode(encoder, encoder_inputs, group))
        return outputs

    def _encode(
        self, encoder: PreTrainedModel, encoder_inputs: dict[str, torch.Tensor], tasks: list[str]
    ) -> dict[str, ModelOutput]:
        if self.hard:
            encoded = encoder(**encoder_inputs)
            return dict.fromkeys(tasks, encoded)
        encoded = encoder(**encoder_inputs, output_hidden_states=self.layer_attention)
        shared_states = list(encoded.hidden_states or ())
        bottom = encoded.last_hidden_state
        streams = {task: [] for task in tasks}
        if self.task_layers:
            args, kwargs = self._call
            self._call = None
            running = self.tasks if self.stitch is not None else tasks
            hidden = dict.fromkeys(running, bottom)
            for depth in range(self.task_layers):
                hidden = {
                    task: self.towers[task][depth](hidden[task], *args, **kwargs).last_hidden_state for task in running
                }
                if self.stitch is not None:
                    stacked = torch.stack([hidden[task] for task in running])
                    mixed = torch.einsum("ts,s...->t...", self.stitch[depth], stacked)
                    hidden = dict(zip(running, mixed.unbind(0)))
                for task in tasks:
                    streams[task].append(hidden[task])
        # A stock head may read the pooled output (BERT's sequence head): pool each task's own last state.
        pooler = getattr(encoder, "pooler", None)
        outputs = {}
        for task in tasks:
            states = shared_states + streams[task] if self.layer_attention else streams[task] or [bottom]
            last = self.mixes[task](states) if self.layer_attention else states[-1]
            pooled = pooler(last) if pooler is not None else None
            outputs[task] = BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=pooled)
        return outputs
