"""Dynamic padding of encoded examples: each batch is padded to its own longest sequence, nothing more."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence


class PaddingCollator:
    """Pad a batch of columns (as ``Dataset.__getitem__`` returns them for a list of indices) into tensors.

    One collator serves every task: list-valued columns are right-padded with their column's pad value
    (``input_ids`` with the tokenizer's pad id, ``labels`` with -100, …), scalar columns are stacked.
    Written here rather than taken from ``transformers`` because its collators take a list of per-example dicts
    and need a different class per kind of target (``DataCollatorWithPadding``, ``…ForTokenClassification``),
    while a batch here arrives as one mapping of columns from Arrow, whatever the task's targets.
    """

    def __init__(self, pad_values: Mapping[str, int], pad_to_multiple_of: int | None = None) -> None:
        self.pad_values = dict(pad_values)
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, torch.Tensor]:
        batch = {}
        for name, values in columns.items():
            if values and isinstance(values[0], (list, tuple)):
                batch[name] = self._pad([torch.as_tensor(v) for v in values], self.pad_values.get(name, 0))
            else:
                batch[name] = torch.as_tensor(values)
        return batch

    def _pad(self, sequences: list[torch.Tensor], value: int) -> torch.Tensor:
        padded = pad_sequence(sequences, batch_first=True, padding_value=value)
        multiple = self.pad_to_multiple_of
        if multiple and padded.shape[1] % multiple:
            extra = multiple - padded.shape[1] % multiple
            padded = torch.nn.functional.pad(padded, (0, extra), value=value)
        return padded
