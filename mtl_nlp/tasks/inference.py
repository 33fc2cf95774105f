"""What task types exchange with the pipeline, ``predict`` and the server: inputs, encoded windows, predictions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

WORD = re.compile(r"\S+")


@dataclass
class InferenceInput:
    """One input to predict on: a text, or its words (pre-split, e.g. CoNLL tokens), and an optional question for
    question answering and an optional second text for pair classification."""

    text: str
    question: str | None = None
    words: list[str] | None = None
    text_pair: str | None = None

    @classmethod
    def from_words(cls, words: list[str], **kwargs: Any) -> InferenceInput:
        """An input given as words; its text is the words joined by single spaces."""
        return cls(text=" ".join(words), words=list(words), **kwargs)

    def word_spans(self) -> tuple[list[str], list[tuple[int, int]]]:
        """The words and their character spans in :attr:`text`: the given words, else the text split on
        whitespace (the way CoNLL files hold sentences, so a text is read as training read its words)."""
        if self.words is None:
            matches = list(WORD.finditer(self.text))
            return [match.group() for match in matches], [match.span() for match in matches]
        spans, position = [], 0
        for word in self.words:
            spans.append((position, position + len(word)))
            position += len(word) + 1
        return list(self.words), spans


def check_inputs(inputs: list[InferenceInput]) -> None:
    """Refuse what no task can predict on, naming the input: an empty or blank text, an empty word, a word with
    whitespace inside."""
    for number, given in enumerate(inputs):
        if not isinstance(given.text, str) or not given.text.strip():
            raise InputError(f"input {number}: the text is empty or only whitespace; give some text to predict on.")
        if given.words is None:
            continue
        bad = next((w for w in given.words if not isinstance(w, str) or not w or WORD.fullmatch(w) is None), None)
        if bad is not None:
            raise InputError(
                f"input {number}: word {bad!r} is empty or holds whitespace; give each word as a non-empty string "
                "without spaces."
            )


@dataclass
class InferenceEncoding:
    """A task's encoded windows for a list of inputs: the encoder inputs per window, which input each window
    belongs to, per-window columns that the task's ``batch_predictions`` reads beside the model's output
    (``batch_columns``, padded like the encoder inputs), and the task's own decoding context (word ids, offsets
    …). Inputs the task does not answer (e.g. without a question) have no window."""

    model_inputs: dict[str, list[list[int]]]
    example_index: list[int]
    context: dict[str, Any] = field(default_factory=dict)
    batch_columns: dict[str, list[list[int]]] = field(default_factory=dict)

    def same_windows(self, other: InferenceEncoding) -> bool:
        """Whether ``other`` feeds the encoder exactly the same windows, so one encoder pass serves both."""
        return self.example_index == other.example_index and self.model_inputs == other.model_inputs

    def windows_of(self, count: int) -> list[list[int]]:
        """For each of ``count`` inputs, the numbers of its windows, in order."""
        windows: list[list[int]] = [[] for _ in range(count)]
        for window, example in enumerate(self.example_index):
            windows[example].append(window)
        return windows


@dataclass
class Prediction:
    """One task's prediction for one input.

    ``output`` is what the pipeline, ``predict`` and the server return (JSON-ready); ``word_tags``, for tasks that
    tag words, is one tag per word in the task's file scheme (what a CoNLL predictions column holds).
    """

    output: Any
    word_tags: list[str] | None = None
