"""Load the shared tokenizer: a fast tokenizer, since word alignment and offsets need one."""

from __future__ import annotations

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import ModelLoadError
from .paths import load_pretrained


def load_tokenizer(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """The backbone's fast tokenizer, from a Hub id, a local directory or ``pkg:<package>/<dir>``."""
    tokenizer = load_pretrained(
        AutoTokenizer.from_pretrained,
        name_or_path,
        "tokenizer",
        revision=revision,
        trust_remote_code=trust_remote_code,
    )
    if not tokenizer.is_fast:
        raise ModelLoadError(
            f"{name_or_path!r} has no fast tokenizer; word alignment and answer offsets need one "
            "(a tokenizer.json, or a tokenizer class from the `tokenizers` library)."
        )
    return tokenizer
