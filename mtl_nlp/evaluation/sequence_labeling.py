"""Entity-level scores for tag sequences, computed by ``seqeval`` in its conlleval-compatible default or strict mode."""

from __future__ import annotations

import math
import warnings
from typing import Any

from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import BILOU, IOB2, IOBES, Entities, Token

from .schemes import SCHEMES, to_scoring_tags

CONLLEVAL_MODE = "conlleval"
STRICT_MODE = "strict"
MODES = (CONLLEVAL_MODE, STRICT_MODE)

# seqeval's scheme class for strict mode; IOB1 is converted to IOB2 first, BILOU is read as it is.
STRICT_SCHEME_CLASSES: dict[str, type[Token]] = {"iob2": IOB2, "iob1": IOB2, "iobes": IOBES, "bilou": BILOU}


def _seqeval_options(mode: str, scheme: str) -> dict[str, Any]:
    """seqeval's keyword arguments for a mode: none for its conlleval-equal default, else strict with a scheme class."""
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; expected one of {', '.join(MODES)}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if mode == CONLLEVAL_MODE:
        return {}
    return {"mode": "strict", "scheme": STRICT_SCHEME_CLASSES[scheme]}


def _scoring_tags(sentences: list[list[str]], mode: str, scheme: str) -> list[list[str]]:
    """The sentences in the scheme seqeval reads for this mode (strict BILOU is read natively by seqeval's class)."""
    if mode == STRICT_MODE and scheme == "bilou":
        return sentences
    return [to_scoring_tags(tags, scheme) for tags in sentences]


def _prepare(
    gold: list[list[str]], predicted: list[list[str]], mode: str, scheme: str
) -> tuple[list[list[str]], list[list[str]], dict[str, Any]]:
    """Gold and predicted tags as seqeval should read them, and seqeval's keyword arguments for the mode."""
    options = _seqeval_options(mode, scheme)
    return _scoring_tags(gold, mode, scheme), _scoring_tags(predicted, mode, scheme), options


def entity_spans(tags: list[str], *, mode: str = CONLLEVAL_MODE, scheme: str = "iob2") -> list[tuple[str, int, int]]:
    """The entities of one sentence's tags as ``(type, first word, last word + 1)``, read by the same seqeval
    functions, scheme conversion and mode that :func:`score_entities` counts with."""
    [scoring_tags] = _scoring_tags([tags], mode, scheme)
    options = _seqeval_options(mode, scheme)
    if mode == CONLLEVAL_MODE:
        return [(kind, start, end + 1) for kind, start, end in get_entities(scoring_tags)]
    return [
        (entity.tag, entity.start, entity.end) for entity in Entities([scoring_tags], options["scheme"]).entities[0]
    ]


def _figure(value: Any) -> float:
    """A seqeval figure as a float; its macro average over no entity types is NaN, reported as 0 like zero_division."""
    number = float(value)
    return 0.0 if math.isnan(number) else number


def _token_accuracy(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """The share of tokens whose predicted tag equals the gold tag; 0 without tokens, where seqeval divides by zero."""
    if not any(gold):
        return 0.0
    return float(accuracy_score(gold, predicted))


def _per_type_report(gold: list[list[str]], predicted: list[list[str]], options: dict[str, Any]) -> dict[str, Any]:
    """seqeval's per-type and averaged figures, silencing numpy's empty-mean warning when there are no entities."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return classification_report(gold, predicted, output_dict=True, zero_division=0, **options)


def score_entities(
    gold: list[list[str]], predicted: list[list[str]], *, mode: str = CONLLEVAL_MODE, scheme: str = "iob2"
) -> dict[str, Any]:
    """Precision, recall and F1 over entities, overall and per type, in ``conlleval``'s or seqeval's strict reading.

    In mode ``conlleval`` seqeval's default mode reads chunks the way the ``conlleval`` script does (an ``I-`` tag
    after ``O`` or after another type starts an entity), so these figures equal ``conlleval``'s. In mode ``strict``
    only entities well formed in ``scheme`` count. Token accuracy compares the tags as given.
    """
    gold_tags, predicted_tags, options = _prepare(gold, predicted, mode, scheme)
    per_type = _per_type_report(gold_tags, predicted_tags, options)
    return {
        "mode": mode,
        "scheme": scheme,
        "precision": precision_score(gold_tags, predicted_tags, zero_division=0, **options),
        "recall": recall_score(gold_tags, predicted_tags, zero_division=0, **options),
        "f1": f1_score(gold_tags, predicted_tags, zero_division=0, **options),
        "accuracy": _token_accuracy(gold, predicted),
        "per_type": {
            name: {key: _figure(value) for key, value in figures.items()}
            for name, figures in per_type.items()
            if not name.endswith(" avg")
        },
        "averages": {
            name: {key: _figure(value) for key, value in figures.items()}
            for name, figures in per_type.items()
            if name.endswith(" avg")
        },
    }


def _mode_description(mode: str, scheme: str) -> str:
    """How a mode reads entities, for the report's headline."""
    if mode == CONLLEVAL_MODE:
        return "mode conlleval (seqeval default, equal to conlleval)"
    return f"mode strict (seqeval strict with scheme class {STRICT_SCHEME_CLASSES[scheme].__name__})"


def entity_report(
    gold: list[list[str]],
    predicted: list[list[str]],
    task: str,
    split: str,
    *,
    mode: str = CONLLEVAL_MODE,
    scheme: str = "iob2",
) -> str:
    """The CoNLL-style text report: a headline with the mode and scheme, then seqeval's per-type table."""
    gold_tags, predicted_tags, options = _prepare(gold, predicted, mode, scheme)
    if any(not name.endswith(" avg") for name in _per_type_report(gold_tags, predicted_tags, options)):
        table = classification_report(gold_tags, predicted_tags, digits=4, zero_division=0, **options)
    else:  # seqeval's text table fails on max() of no entity types
        table = "No entities in the gold or the predicted tags.\n"
    tokens = sum(len(sentence) for sentence in gold)
    return (
        f"{task} / {split}: entity-level scores, {_mode_description(mode, scheme)}, scheme {scheme}\n"
        f"{len(gold)} sentences, {tokens} tokens; token accuracy {_token_accuracy(gold, predicted):.4f}\n\n"
        f"{table}"
    )
