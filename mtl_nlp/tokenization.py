"""Load the shared tokenizer: a fast tokenizer, since word alignment and offsets need one."""

from __future__ import annotations

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import ModelLoadError
from .paths import resolve_model_location


def load_tokenizer(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """The backbone's fast tokenizer, from a Hub id, a local directory or ``pkg:<package>/<dir>``."""
    location = resolve_model_location(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise ModelLoadError(
            f"tokenizer of {name_or_path!r} could not be loaded ({error}). Give a local model directory, or a "
            "Hub id with network access (offline, set HF_HUB_OFFLINE=1 to fail fast)."
        ) from None
    if not tokenizer.is_fast:
        raise ModelLoadError(
            f"{name_or_path!r} has no fast tokenizer; word alignment and answer offsets need one "
            "(a tokenizer.json, or a tokenizer class from the `tokenizers` library)."
        )
    return tokenizer
