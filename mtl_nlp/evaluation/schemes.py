"""Conversions between entity tag schemes, so that every scheme can be scored in a form ``seqeval`` reads.

Each function takes the tags of one sentence (``"O"`` or ``"<prefix>-<type>"``) and returns a new list.
"""

from __future__ import annotations

from collections.abc import Callable

PREFIXES = {"iob2": "BI", "iob1": "BI", "iobes": "BIES", "bilou": "BILU"}
"""The prefixes each scheme's entity tags may carry (besides the tag ``O``)."""
SCHEMES = tuple(PREFIXES)


def _entity_type(tag: str) -> str | None:
    """The entity type of a tag (``"B-PER"`` -> ``"PER"``), or None for a tag outside entities."""
    prefix, dash, kind = tag.partition("-")
    return kind if dash and prefix != "O" else None


def _retag_entity_starts(tags: list[str], old: str, new: str) -> list[str]:
    """Replace prefix ``old`` by ``new`` on tags that do not continue an entity of their type."""
    converted = []
    previous_type = None
    for tag in tags:
        kind = _entity_type(tag)
        if tag.startswith(f"{old}-") and kind != previous_type:
            tag = f"{new}-{kind}"
        converted.append(tag)
        previous_type = kind
    return converted


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 to IOB2: an ``I-X`` that does not continue an entity of type X starts one, so it becomes ``B-X``."""
    return _retag_entity_starts(tags, "I", "B")


def iob2_to_iob1(tags: list[str]) -> list[str]:
    """IOB2 to IOB1: ``B-X`` is kept only where it separates two adjacent entities of type X, else it is ``I-X``."""
    return _retag_entity_starts(tags, "B", "I")


def bilou_to_iobes(tags: list[str]) -> list[str]:
    """BILOU to IOBES: the same scheme under other letters, ``L-`` (last) is ``E-`` and ``U-`` (unit) is ``S-``."""
    renamed = {"L": "E", "U": "S"}
    converted = []
    for tag in tags:
        prefix, dash, kind = tag.partition("-")
        converted.append(f"{renamed.get(prefix, prefix)}{dash}{kind}")
    return converted


_TO_SCORING: dict[str, Callable[[list[str]], list[str]]] = {
    "iob2": list,
    "iob1": iob1_to_iob2,
    "iobes": list,
    "bilou": bilou_to_iobes,
}


def to_scoring_tags(tags: list[str], scheme: str) -> list[str]:
    """One sentence's tags in a scheme seqeval scores: IOB1 as IOB2, BILOU as IOBES, IOB2 and IOBES unchanged."""
    if scheme not in _TO_SCORING:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    return _TO_SCORING[scheme](tags)
