"""Load the shared tokenizer: a fast tokenizer, since word alignment and offsets need one, set so that pre-split
words read as the words of a running text."""

from __future__ import annotations

import inspect
import json

from datasets.fingerprint import Hasher
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import ModelLoadError
from .paths import load_pretrained


def load_tokenizer(
    name_or_path: str, revision: str | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """The backbone's fast tokenizer, from a Hub id, a local directory or ``pkg:<package>/<dir>``.

    A byte-level BPE tokenizer (RoBERTa, DeBERTa, GPT-2, BART …) is loaded with a prefix space:
    pre-split words (``is_split_into_words``) are encoded one by one, and without it each would be encoded as the
    first word of a text ("Merkel" as ``M er kel``, not ``ĠMer kel`` as inside a sentence).
    """

    def load(**options: bool) -> PreTrainedTokenizerBase:
        return load_pretrained(
            AutoTokenizer.from_pretrained,
            name_or_path,
            "tokenizer",
            revision=revision,
            trust_remote_code=trust_remote_code,
            **options,
        )

    tokenizer = load()
    if not tokenizer.is_fast:
        raise ModelLoadError(
            f"{name_or_path!r} has no fast tokenizer; word alignment and answer offsets need one "
            "(a tokenizer.json, or a tokenizer class from the `tokenizers` library)."
        )
    byte_level = tokenizer.backend_tokenizer.pre_tokenizer
    if not isinstance(byte_level, pre_tokenizers.ByteLevel) or byte_level.add_prefix_space:
        return tokenizer
    if "add_prefix_space" in inspect.signature(type(tokenizer).__init__).parameters:
        # The class rebuilds its pre-tokenizer and its offset post-processor with the option, and saves it.
        return load(add_prefix_space=True)
    # A generic tokenizer (tokenizer.json only) takes the option without applying it: set it on its pre-tokenizer.
    byte_level.add_prefix_space = True
    return tokenizer


ENCODING_PARTS = {"normalizer": "normalizer", "pre_tokenizer": "pre-tokenizer", "post_processor": "special tokens"}


def tokenizer_differences(tokenizer: PreTrainedTokenizerBase, other: PreTrainedTokenizerBase) -> list[str]:
    """What would make ``other`` encode a text differently from ``tokenizer`` (fast tokenizers both): its class,
    its vocabulary, or its normalizer, pre-tokenizer, special-token template or sub-word model; empty when none."""
    differences = []
    if type(tokenizer) is not type(other):
        differences.append(f"class {type(other).__name__}, not {type(tokenizer).__name__}")
    vocabulary, other_vocabulary = tokenizer.get_vocab(), other.get_vocab()
    if vocabulary != other_vocabulary:
        changed = sorted({token for token, _ in vocabulary.items() ^ other_vocabulary.items()})
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        differences.append(
            f"vocabulary of {len(other_vocabulary)} tokens, not {len(vocabulary)} (differing: {changed[0]!r}{more})"
        )
    parts, other_parts = (json.loads(t.backend_tokenizer.to_str()) for t in (tokenizer, other))
    differences += [name for key, name in ENCODING_PARTS.items() if parts[key] != other_parts[key]]
    if vocabulary == other_vocabulary and parts["model"] != other_parts["model"]:
        differences.append("sub-word model")
    return differences


def encoding_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of everything that decides how ``tokenizer`` encodes a text: its class, its ``tokenizers`` pipeline
    (vocabulary, added tokens, normalizer, pre-tokenizer, model, template), its special tokens, the sides it
    truncates and pads on and the inputs it returns. Not where it was loaded from: the same tokenizer saved with a
    model and loaded from there has the same fingerprint, so data it encoded is found in the ``datasets`` cache."""
    pipeline = json.loads(tokenizer.backend_tokenizer.to_str())
    # Truncation and padding are left there by the last call (each call sets its own): not part of the pipeline.
    pipeline.pop("truncation", None)
    pipeline.pop("padding", None)
    return Hasher.hash(
        [
            type(tokenizer).__qualname__,
            pipeline,
            tokenizer.special_tokens_map,
            tokenizer.truncation_side,
            tokenizer.padding_side,
            tokenizer.model_input_names,
        ]
    )
