"""``MultiTaskModel``: one pretrained encoder shared by a head per task."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from ..errors import ModelBuildError
from ..paths import load_pretrained
from .adapters import is_adapter_parameter, merged_state_dict
from .config import MultiTaskConfig
from .heads import StockHead, build_head
from .sharing import EncoderSharing

ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class MultiTaskModel(PreTrainedModel):
    """A shared ``AutoModel`` encoder and one head per task (``config.tasks``).

    ``model(task="ner", input_ids=…, attention_mask=…, labels=…)`` runs the encoder and that task's head and
    returns the head's output (``TokenClassifierOutput``, ``SequenceClassifierOutput``, …), with the loss when
    targets are given. :meth:`forward_heads` runs the encoder once for several heads. Saved and loaded with
    ``save_pretrained`` / ``from_pretrained`` (safetensors weights, ``config.json``).
    """

    config_class = MultiTaskConfig
    base_model_prefix = "encoder"

    def __init__(self, config: MultiTaskConfig, encoder: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        encoder_config = config.encoder_config()
        self.encoder = encoder if encoder is not None else AutoModel.from_config(encoder_config)
        adapters = {name: task["adapter"] for name, task in config.tasks.items() if task.get("adapter")}
        self.sharing = EncoderSharing(self.encoder, list(config.tasks), config.sharing, adapters)
        self.heads = nn.ModuleDict(
            {name: build_head(encoder_config, task["head"], task["labels"]) for name, task in config.tasks.items()}
        )
        self.post_init()

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str,
        tasks: dict[str, dict[str, Any]],
        *,
        sharing: dict[str, Any] | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> MultiTaskModel:
        """A new multi-task model: pretrained encoder weights from ``name_or_path``, new heads for ``tasks`` (task
        descriptions, see :mod:`mtl_nlp.modeling.config`), the encoder shared as ``sharing`` says (see
        :mod:`mtl_nlp.modeling.sharing`; task-specific layers start from the pretrained ones). The encoder is
        built once, by loading it.

        ``name_or_path`` is a Hub id, a local directory or ``pkg:<package>/<dir>``.
        """
        encoder = load_pretrained(
            AutoModel.from_pretrained, name_or_path, "backbone", revision=revision, trust_remote_code=trust_remote_code
        )
        config = MultiTaskConfig(encoder=encoder.config.to_dict(), tasks=tasks, sharing=sharing)
        return cls(config, encoder=encoder)

    @property
    def task_names(self) -> list[str]:
        """The tasks this model has a head for."""
        return list(self.heads)

    def task_model(self, task: str) -> PreTrainedModel:
        """Task ``task`` as its stock ``AutoModelFor…`` model, sharing this model's encoder and head modules.

        Nothing is copied: it is a view for stock tools (``transformers.pipeline``) on the live weights. Only heads
        of the stock kind have one.
        """
        head = self.heads[task]
        if not isinstance(head, StockHead):
            raise TypeError(f"task {task!r} has a {type(head).__name__} head, not a stock transformers head.")
        with torch.device("meta"):
            view = type(head.shell)(head.config)
        for name, module in head.shell.named_children():
            setattr(view, name, self.encoder if name == view.base_model_prefix else module)
        return view.train(self.training)

    def single_task(self, task: str) -> MultiTaskModel:
        """A new model of ``task`` alone: the encoder, the task's head, and its own top layers, layer mix and
        adapter where it has them, holding copies of this model's weights, so it gives the same outputs for the
        task. The start of a fine-tuning run on one task; this model is left as it is.

        A model with cross-stitch units cannot be split: each task's layers read every task's.
        """
        if self.sharing.stitch is not None:
            raise ModelBuildError(
                "model.sharing.cross_stitch: each task's layers mix in every other task's, so a task cannot be "
                "taken out of this model alone."
            )
        self._check_tasks([task])
        config = copy.deepcopy(self.config)
        config.tasks = {task: config.tasks[task]}
        model = type(self)(config)
        weights = self.state_dict()
        if self.sharing.adapter_tasks and task not in self.sharing.adapter_tasks:
            # The task ran with every adapter switched off: the plain encoder holds its weights.
            weights |= {f"encoder.{key}": value for key, value in merged_state_dict(self.encoder, None).items()}
        model.load_state_dict({name: weights[name] for name in model.state_dict()})
        return model.to(self.device)

    def freeze_encoder(self) -> None:
        """Keep the pretrained encoder's weights as they are (the shared layers and the task-specific copies of
        its layers); heads, mixing weights and adapters still train."""
        for name, parameter in [*self.encoder.named_parameters(), *self.sharing.towers.named_parameters()]:
            if not is_adapter_parameter(name):
                parameter.requires_grad_(False)

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of the top layer all tasks share, without per-task adapter weights (GradNorm
        balances the tasks' gradients there)."""
        layer = self.sharing.last_shared_layer(self.encoder)
        return [p for name, p in layer.named_parameters() if p.requires_grad and not is_adapter_parameter(name)]

    def parameter_counts(self) -> tuple[int, int]:
        """How many parameters train, and how many there are."""
        parameters = list(self.parameters())
        return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)

    def compile_encoder_blocks(self) -> int:
        """Compile each of the encoder's repeated blocks (its ``_no_split_modules``: embeddings, layers) in place
        with ``torch.compile`` (dynamic shapes), so that one compiled graph serves every layer and batch length;
        weights and state-dict keys stay as they are. Returns how many modules were compiled."""
        block_classes = set(self.encoder._no_split_modules or [])
        modules = [*self.encoder.modules(), *self.sharing.modules()]
        blocks = [module for module in modules if type(module).__name__ in block_classes]
        for module in blocks or [self.encoder]:
            module.compile(dynamic=True)
        return len(blocks) or 1

    def forward(self, task: str, **inputs: torch.Tensor) -> ModelOutput:
        """Run the encoder and the head of ``task``; ``inputs`` hold the encoder inputs and the head's targets."""
        encoder_inputs = {name: inputs.pop(name) for name in ENCODER_INPUTS if inputs.get(name) is not None}
        self._check_tasks([task])
        encoded = self.sharing(self.encoder, encoder_inputs, [task])[task]
        return self.heads[task](encoded, encoder_inputs, **inputs)

    def forward_heads(self, tasks: list[str] | None = None, **encoder_inputs: torch.Tensor) -> dict[str, ModelOutput]:
        """Run the shared encoder once and every head in ``tasks`` (default: all) on its output (through each
        task's own layers, where the model has them)."""
        tasks = list(tasks or self.task_names)
        self._check_tasks(tasks)
        encoded = self.sharing(self.encoder, encoder_inputs, tasks)
        return {task: self.heads[task](encoded[task], encoder_inputs) for task in tasks}

    def _check_tasks(self, tasks: list[str]) -> None:
        unknown = [task for task in tasks if task not in self.heads]
        if unknown:
            raise KeyError(f"no head for task {unknown[0]!r}; this model has {', '.join(self.heads)}.")
