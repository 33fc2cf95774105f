"""SQuAD scores, offline: exact match and token F1 after the official normalisation, best over the references.

Follows the official evaluation scripts of SQuAD v1.1 and v2.0 (``evaluate.load("squad")`` needs the Hub):
answers are lower-cased, stripped of punctuation, of the articles a/an/the and of extra whitespace; F1 is the
overlap of the remaining tokens. In v2.0 an unanswerable question's reference is the empty answer, and scores
are also given for the answerable (``HasAns_``) and unanswerable (``NoAns_``) questions apart. Scores here are
fractions in [0, 1], like every other metric of mtl-nlp; the official scripts print them × 100.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, and collapse whitespace (the official rules)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str, *, version_2: bool = False) -> float:
    """F1 of the normalised answers' tokens (bag of words). In v2.0, where the empty answer means "no answer",
    two empty answers agree fully and an empty answer against a non-empty one scores 0."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if version_2 and (not predicted or not gold):
        return float(predicted == gold)
    same = sum((Counter(predicted) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _references(answers: Sequence[str], version_2: bool) -> list[str]:
    """The answers scored against: in v2.0 those that survive normalisation, or the empty answer if none do."""
    if not version_2:
        return list(answers)
    return [answer for answer in answers if normalize_answer(answer)] or [""]


def _group(exact: list[float], f1: list[float], prefix: str = "") -> dict[str, Any]:
    return {
        f"{prefix}exact": sum(exact) / len(exact) if exact else 0.0,
        f"{prefix}f1": sum(f1) / len(f1) if f1 else 0.0,
        f"{prefix}total": len(exact),
    }


def score_squad(
    references: Sequence[Sequence[str]], predictions: Sequence[str], *, version_2: bool = False
) -> dict[str, Any]:
    """Mean exact match and F1 over questions, each the best over that question's reference answers.

    ``references[i]`` holds question i's answer texts (empty for an unanswerable question), ``predictions[i]``
    the predicted text ("" for "no answer"). With ``version_2`` the v2.0 rules apply and ``HasAns_…`` /
    ``NoAns_…`` scores are added for each group that has questions, as the official script does.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} questions but {len(predictions)} predictions.")
    exact, f1 = [], []
    for answers, prediction in zip(references, predictions):
        gold = _references(answers, version_2)
        exact.append(max((exact_match(prediction, a) for a in gold), default=0.0))
        f1.append(max((token_f1(prediction, a, version_2=version_2) for a in gold), default=0.0))
    scores = _group(exact, f1)
    if version_2:
        has_answer = [bool(answers) for answers in references]
        for prefix, wanted in (("HasAns_", True), ("NoAns_", False)):
            chosen = [i for i, has in enumerate(has_answer) if has == wanted]
            if chosen:
                scores |= _group([exact[i] for i in chosen], [f1[i] for i in chosen], prefix)
    return scores


def squad_report(scores: dict[str, Any], title: str) -> str:
    """The scores as a small table: all questions, then the answerable and unanswerable ones (v2.0)."""
    lines = [title, "", f"{'questions':<10} {'exact':>8} {'f1':>8} {'total':>8}"]
    for prefix, name in (("", "all"), ("HasAns_", "HasAns"), ("NoAns_", "NoAns")):
        if f"{prefix}total" in scores:
            exact, f1, total = (scores[f"{prefix}{key}"] for key in ("exact", "f1", "total"))
            lines.append(f"{name:<10} {exact:>8.4f} {f1:>8.4f} {total:>8d}")
    return "\n".join(lines) + "\n"
