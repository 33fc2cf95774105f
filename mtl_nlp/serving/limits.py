"""The server's settings: batching, queue and request limits, each with its default, range and ``--help`` text."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError


def setting(default: Any, help: str, minimum: int = 1) -> Any:
    """A settings field whose metadata holds its ``--help`` text and its smallest allowed value."""
    return field(default=default, metadata={"help": help, "minimum": minimum})


@dataclass(frozen=True)
class ServeLimits:
    """How the server batches and what it accepts; ``mtl-nlp serve`` has one flag per field."""

    max_batch_size: int = setting(32, "Most texts run together in one batch (one encoder pass per task group).")
    max_wait_ms: int = setting(
        5, "Longest a text waits for others to join its batch, in milliseconds (0: run at once).", minimum=0
    )
    max_queue: int = setting(
        256, "Most texts waiting for a batch; beyond it requests get 503 with Retry-After instead of queueing."
    )
    max_texts: int = setting(64, "Most texts in one request (413 beyond).")
    max_text_chars: int = setting(10_000, "Most characters in one text or question (413 beyond).")
    max_body_bytes: int = setting(1_048_576, "Largest request body in bytes (413 beyond).")

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < spec.metadata["minimum"]:
                flag = "--" + spec.name.replace("_", "-")
                raise InputError(f"{flag} {value!r}: give a whole number of at least {spec.metadata['minimum']}.")
        if self.max_queue < self.max_texts:
            raise InputError(
                f"--max-queue {self.max_queue} is below --max-texts {self.max_texts}: a full request could never "
                "be queued; raise --max-queue or lower --max-texts."
            )
