"""Entity-level scores for tag sequences, computed by ``seqeval`` in its conlleval-compatible default mode."""

from __future__ import annotations

from typing import Any

from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

CONLLEVAL_MODE = "conlleval"


def score_entities(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Precision, recall and F1 over entities, overall and per type, as the ``conlleval`` script counts them.

    seqeval's default mode reads chunks the way ``conlleval`` does (an ``I-`` tag after ``O`` or after another
    type starts an entity; IOB1 and IOB2 both work), so these figures equal ``conlleval``'s.
    """
    per_type = classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        "mode": CONLLEVAL_MODE,
        "precision": precision_score(gold, predicted, zero_division=0),
        "recall": recall_score(gold, predicted, zero_division=0),
        "f1": f1_score(gold, predicted, zero_division=0),
        "accuracy": accuracy_score(gold, predicted),
        "per_type": {
            name: {key: float(value) for key, value in figures.items()}
            for name, figures in per_type.items()
            if not name.endswith(" avg")
        },
        "averages": {
            name: {key: float(value) for key, value in figures.items()}
            for name, figures in per_type.items()
            if name.endswith(" avg")
        },
    }


def entity_report(gold: list[list[str]], predicted: list[list[str]], task: str, split: str) -> str:
    """The CoNLL-style text report: a headline with the mode, then seqeval's per-type table."""
    table = classification_report(gold, predicted, digits=4, zero_division=0)
    tokens = sum(len(sentence) for sentence in gold)
    return (
        f"{task} / {split}: entity-level scores, mode {CONLLEVAL_MODE} (seqeval default, equal to conlleval)\n"
        f"{len(gold)} sentences, {tokens} tokens; token accuracy {accuracy_score(gold, predicted):.4f}\n\n"
        f"{table}"
    )
