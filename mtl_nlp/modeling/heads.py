"""Task heads on the shared encoder, built from serialisable head descriptions.

A head description is a small JSON mapping saved in the model's config, e.g.
``{"kind": "stock", "auto_class": "AutoModelForTokenClassification", "problem_type": null}``. Its ``kind`` names a
builder registered here (:func:`register_head_kind`); the built head is a module whose ``forward(encoded, inputs,
**targets)`` reads the shared encoder's output as it needs and returns a ``ModelOutput`` (logits, and the loss
when targets are given). Task types (``mtl_nlp.tasks``) write the descriptions; nothing here knows a task type.

The ``stock`` kind is the backbone's own ``AutoModelFor…`` head: its non-encoder modules (classifier, pooler,
dropout), with exactly the stock parameters, initialisation and loss, so that exporting a task to a stock
checkpoint is a re-keying of the state dict. It is built on the meta device without an encoder of its own.
The ``crf`` kind puts a linear-chain CRF on a stock token head's word-level emissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling, TokenClassifierOutput
from transformers.utils import ModelOutput

from ..errors import ModelBuildError
from .crf import LinearChainCRF

HeadBuilder = Callable[[PretrainedConfig, dict[str, Any], list[str]], nn.Module]
HEAD_KINDS: dict[str, HeadBuilder] = {}
STOCK_KIND = "stock"
CRF_KIND = "crf"


def register_head_kind(kind: str, builder: HeadBuilder) -> None:
    """Make head descriptions of ``kind`` buildable: ``builder(encoder_config, description, labels)`` returns a
    module with ``forward(encoded, inputs, **targets) -> ModelOutput``. Its parameters are saved with the model,
    so a saved model reloads wherever the same kind is registered."""
    HEAD_KINDS[kind] = builder


def build_head(encoder_config: PretrainedConfig, description: dict[str, Any], labels: list[str]) -> nn.Module:
    """The head for a head description, with ``labels`` (its outputs, in order)."""
    kind = description.get("kind")
    if kind not in HEAD_KINDS:
        raise ModelBuildError(
            f"unknown head kind {kind!r}; known: {', '.join(HEAD_KINDS)}. A custom kind must be registered with "
            "mtl_nlp.modeling.register_head_kind before the model is built or loaded."
        )
    return HEAD_KINDS[kind](encoder_config, description, labels)


class SharedEncoderOutput(nn.Module):
    """Stands in for a stock head's encoder: returns the shared encoder's output for the current batch.

    A stock head that calls its encoder with inputs of its own making (Longformer's sequence head adds global
    attention, BigBird's QA head token types) would silently train as something else on a shared encoder; such a
    call raises :class:`ModelBuildError` instead.
    """

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner
        self.output: ModelOutput | None = None
        self.inputs: dict[str, torch.Tensor] = {}

    def forward(self, *args: Any, **kwargs: Any) -> ModelOutput:
        if self.output is None:
            raise RuntimeError("the shared encoder's output was not set before calling the head.")
        given = dict(zip(("input_ids",), args)) | kwargs
        for name, value in given.items():
            if isinstance(value, torch.Tensor) and self.inputs.get(name) is not value:
                raise ModelBuildError(
                    f"{self.owner} passes its own {name!r} to its encoder, so on a shared encoder it would train and "
                    "predict differently from the stock model; mtl-nlp cannot serve this head on this backbone. "
                    "Choose another backbone for this task."
                )
        return self.output


def stock_auto_class(name: str) -> type:
    """The transformers ``AutoModelFor…`` class a stock head description names."""
    auto_class = getattr(transformers, name, None) if name.startswith("AutoModelFor") else None
    if auto_class is None:
        raise ModelBuildError(f"head auto_class {name!r} is not an AutoModelFor… class of transformers.")
    return auto_class


def stock_config(encoder_config: PretrainedConfig, labels: list[str], problem_type: str | None) -> PretrainedConfig:
    """The stock config of a head: the encoder's config plus the head's labels (none: the stock class's own
    number of outputs) and problem type."""
    config = encoder_config.__class__.from_dict(encoder_config.to_dict())
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = problem_type
    return config


def _encoder_side_refusal(shell: PreTrainedModel, hidden_size: int) -> None:
    """Run the head once on meta tensors (no memory, no arithmetic) to find a head that makes its own encoder
    inputs; :class:`SharedEncoderOutput` raises for those. Other failures on meta tensors say nothing and pass."""
    slot = getattr(shell, shell.base_model_prefix)
    with torch.device("meta"):
        input_ids = torch.zeros(1, 8, dtype=torch.long)
        slot.inputs = {"input_ids": input_ids, "attention_mask": torch.ones(1, 8, dtype=torch.long)}
        slot.output = BaseModelOutputWithPooling(
            last_hidden_state=torch.zeros(1, 8, hidden_size), pooler_output=torch.zeros(1, hidden_size)
        )
        try:
            shell(**slot.inputs)
        except ModelBuildError:
            raise
        except Exception:
            pass
        finally:
            slot.output, slot.inputs = None, {}


class StockHead(nn.Module):
    """The backbone's stock ``AutoModelFor…`` head on the shared encoder's output.

    Its modules are the stock model's own (same names, so state-dict keys are ``classifier.weight`` …); the stock
    model itself is kept as an unregistered ``shell`` whose encoder is a :class:`SharedEncoderOutput`, and its
    ``forward`` does the pooling, dropout and loss exactly as in transformers.
    """

    def __init__(self, shell: PreTrainedModel) -> None:
        super().__init__()
        for name, module in shell.named_children():
            if name != shell.base_model_prefix:
                self.add_module(name, module)
        object.__setattr__(self, "shell", shell)  # not a sub-module: its modules are registered above

    @property
    def config(self) -> PretrainedConfig:
        """The stock config (labels, problem type) of this head."""
        return self.shell.config

    @property
    def slot(self) -> SharedEncoderOutput:
        return getattr(self.shell, self.shell.base_model_prefix)

    def forward(self, encoded: ModelOutput, inputs: dict[str, torch.Tensor], **targets: Any) -> ModelOutput:
        self.shell.training = self.training
        self.slot.output, self.slot.inputs = encoded, inputs
        try:
            return self.shell(**inputs, **targets)
        finally:
            self.slot.output, self.slot.inputs = None, {}


def build_stock_head(encoder_config: PretrainedConfig, description: dict[str, Any], labels: list[str]) -> StockHead:
    """The stock head of ``description["auto_class"]`` for this backbone, without an encoder of its own.

    It is built on the meta device (nothing allocated for the encoder it would otherwise carry), then its own
    modules are materialised on the current default device and initialised by transformers' own initialisation;
    under ``from_pretrained`` (meta device) they stay unallocated until the saved weights fill them.
    """
    auto_class = stock_auto_class(description["auto_class"])
    config = stock_config(encoder_config, labels, description.get("problem_type"))
    target = torch.get_default_device()
    with torch.device("meta"):
        try:
            shell = auto_class.from_config(config)
        except ValueError as error:
            raise ModelBuildError(
                f"{encoder_config.model_type!r} has no {auto_class.__name__.replace('AutoModelFor', '')} head in "
                f"transformers, so it cannot serve this task: {' '.join(str(error).split())}"
            ) from None
    owner = f"The {type(shell).__name__} head of the {encoder_config.model_type!r} backbone"
    setattr(shell, shell.base_model_prefix, SharedEncoderOutput(owner))
    _encoder_side_refusal(shell, encoder_config.hidden_size)
    head = StockHead(shell)
    if target.type != "meta":
        head.to_empty(device=target)
        shell.init_weights()
    return head


register_head_kind(STOCK_KIND, build_stock_head)


@dataclass
class CrfTokenClassifierOutput(TokenClassifierOutput):
    """A CRF head's output: the emission logits (and loss) of a token head, plus the constrained start, transition
    and end scores that decoding (outside the model, in the task's decoder) uses."""

    start_transitions: torch.Tensor | None = None
    transitions: torch.Tensor | None = None
    end_transitions: torch.Tensor | None = None


def pack_words(values: torch.Tensor, word_starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The values at word starts packed to the left in word order (batch, words, …), each row's word count, and
    the position each packed value came from (batch, words; past a row's count: positions of no word)."""
    lengths = word_starts.sum(dim=1)
    longest = int(lengths.max()) if lengths.numel() else 0
    order = torch.sort((~word_starts.bool()).int(), dim=1, stable=True).indices[:, :longest]
    index = order if values.dim() == 2 else order.unsqueeze(-1).expand(-1, -1, values.shape[-1])
    return values.gather(1, index), lengths, order


class CrfTokenHead(nn.Module):
    """A linear-chain CRF over the word-level emissions of the stock token head.

    Emissions are the stock head's logits at each word's first sub-token (``word_starts``), packed to the left
    with a length per sentence; the loss is the CRF's mean negative log-likelihood per sentence, on the scale of
    a token head's cross-entropy. Decoding (Viterbi, :mod:`mtl_nlp.modeling.crf`) is left to the task's decoder,
    which reads the constrained scores from the output.
    """

    def __init__(self, emissions: StockHead, labels: list[str], scheme: str) -> None:
        super().__init__()
        self.emissions = emissions
        self.crf = LinearChainCRF(labels, scheme)

    def forward(
        self,
        encoded: ModelOutput,
        inputs: dict[str, torch.Tensor],
        labels: torch.Tensor | None = None,
        word_starts: torch.Tensor | None = None,
    ) -> CrfTokenClassifierOutput:
        logits = self.emissions(encoded, inputs).logits
        loss = None
        if labels is not None:
            if word_starts is None:
                raise ValueError("a CRF head needs word_starts (each word's first sub-token) with its labels.")
            packed, lengths, _ = pack_words(logits, word_starts)
            tags, _, _ = pack_words(labels, word_starts)
            loss = self.crf.negative_log_likelihood(packed, tags, lengths)
        start, transitions, end = self.crf.scores()
        return CrfTokenClassifierOutput(
            loss=loss, logits=logits, start_transitions=start, transitions=transitions, end_transitions=end
        )


def build_crf_head(encoder_config: PretrainedConfig, description: dict[str, Any], labels: list[str]) -> CrfTokenHead:
    """A CRF head: the stock head of ``description["auto_class"]`` for the emissions, and ``description["scheme"]``'s
    allowed transitions."""
    emissions = build_stock_head(encoder_config, description, labels)
    return CrfTokenHead(emissions, labels, description.get("scheme", "none"))


register_head_kind(CRF_KIND, build_crf_head)
