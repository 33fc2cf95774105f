"""Entity scores against hand counts and a port of conlleval's counting; strict mode; tag-scheme conversions."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_nlp.evaluation.schemes import bilou_to_iobes, iob1_to_iob2, iob2_to_iob1, to_scoring_tags
from mtl_nlp.evaluation.sequence_labeling import entity_report, entity_spans, score_entities

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
TYPES = ["PER", "LOC", "MISC"]


def overall(metrics: dict) -> tuple[float, float, float]:
    return metrics["precision"], metrics["recall"], metrics["f1"]


# (a) Hand-made cases: (gold, predicted, expected precision, recall, F1), all in IOB2 and the default mode.
HAND_CASES = {
    # gold {PER 0-1, LOC 3}, predicted the same: correct 2 of 2 found, 2 of 2 gold -> P = R = F = 1.
    "exact match": ([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]], 1.0, 1.0, 1.0),
    # gold {PER 0-1, LOC 3}, predicted {PER 0-2, LOC 3}: PER is one token too long, so correct 1;
    # P = 1/2, R = 1/2, F = 2 * 1/2 * 1/2 / (1/2 + 1/2) = 1/2.
    "one token too long": (
        [["B-PER", "I-PER", "O", "B-LOC"]],
        [["B-PER", "I-PER", "I-PER", "B-LOC"]],
        0.5,
        0.5,
        0.5,
    ),
    # gold {PER 0}, {MISC 0-2}; predicted {PER 0}, {MISC 0-1, LOC 3}: MISC one token too short, LOC spurious;
    # correct 1 (PER), found 3, gold 2 -> P = 1/3, R = 1/2, F = 2 * 1/6 / (5/6) = 2/5.
    "one token too short": (
        [["B-PER", "O"], ["B-MISC", "I-MISC", "I-MISC", "O"]],
        [["B-PER", "O"], ["B-MISC", "I-MISC", "O", "B-LOC"]],
        1 / 3,
        1 / 2,
        2 / 5,
    ),
    # gold {PER 0-1, LOC 3}; predicted B-PER I-LOC reads as two entities {PER 0, LOC 1} plus {LOC 3}:
    # correct 1 (LOC 3), found 3, gold 2 -> P = 1/3, R = 1/2, F = 2/5.
    "type change mid-entity": (
        [["B-PER", "I-PER", "O", "B-LOC"]],
        [["B-PER", "I-LOC", "O", "B-LOC"]],
        1 / 3,
        1 / 2,
        2 / 5,
    ),
    # gold {LOC 1-2}, {PER 0}; predicted I-LOC after O starts {LOC 1-2}, I-PER opening a sentence starts {PER 0}:
    # correct 2 of 2 found, 2 gold -> P = R = F = 1.
    "I- after O starts an entity": (
        [["O", "B-LOC", "I-LOC", "O"], ["B-PER"]],
        [["O", "I-LOC", "I-LOC", "O"], ["I-PER"]],
        1.0,
        1.0,
        1.0,
    ),
}


@pytest.mark.parametrize("case", list(HAND_CASES), ids=list(HAND_CASES))
def test_hand_counted_scores(case):
    gold, predicted, precision, recall, f1 = HAND_CASES[case]
    assert overall(score_entities(gold, predicted)) == pytest.approx((precision, recall, f1), abs=1e-12)


def test_per_type_scores_by_hand():
    # gold {PER 0-1, LOC 3}; predicted {PER 0, LOC 1, LOC 3} (B-PER I-LOC splits into two entities).
    # PER: correct 0, found 1, gold 1 -> P = 0, R = 0, F = 0, support 1.
    # LOC: correct 1, found 2, gold 1 -> P = 1/2, R = 1, F = 2 * 1/2 / (3/2) = 2/3, support 1.
    metrics = score_entities([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-LOC", "O", "B-LOC"]])
    assert metrics["per_type"] == {
        "PER": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 1.0},
        "LOC": pytest.approx({"precision": 0.5, "recall": 1.0, "f1-score": 2 / 3, "support": 1.0}),
    }
    assert metrics["mode"] == "conlleval" and metrics["scheme"] == "iob2"


def test_iob1_input_scores_like_the_same_sentences_in_iob2():
    # IOB1: I- opens an entity, B- only separates two adjacent entities of one type.
    gold_iob1 = [["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]
    predicted_iob1 = [["I-PER", "I-PER", "O", "I-LOC", "O"]]
    gold_iob2 = [["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]]
    predicted_iob2 = [["B-PER", "I-PER", "O", "B-LOC", "O"]]
    assert [iob1_to_iob2(tags) for tags in gold_iob1 + predicted_iob1] == gold_iob2 + predicted_iob2
    # gold {PER 0-1, LOC 3, LOC 4}, predicted {PER 0-1, LOC 3}: correct 2, found 2, gold 3
    # -> P = 1, R = 2/3, F = 2 * 2/3 / (5/3) = 4/5.
    expected = pytest.approx((1.0, 2 / 3, 4 / 5), abs=1e-12)
    assert overall(score_entities(gold_iob2, predicted_iob2)) == expected
    assert overall(score_entities(gold_iob1, predicted_iob1, scheme="iob1")) == expected
    assert overall(score_entities(gold_iob1, predicted_iob1, mode="strict", scheme="iob1")) == expected
    # conlleval itself reads IOB1 unconverted, and so does seqeval's default mode.
    assert overall(score_entities(gold_iob1, predicted_iob1)) == expected


def test_no_entities_scores_zero_without_failing():
    # An empty sentence and an all-O sentence: no gold and no predicted entities, so 0/0 everywhere -> 0.
    gold, predicted = [[], ["O", "O"]], [[], ["O", "O"]]
    metrics = score_entities(gold, predicted)
    assert overall(metrics) == (0.0, 0.0, 0.0)
    assert metrics["per_type"] == {}
    assert all(figure == 0.0 for figures in metrics["averages"].values() for figure in figures.values())
    assert "No entities" in entity_report(gold, predicted, "ner", "validation")
    # One spurious predicted entity: P = 0/1, R = 0/0 -> 0, F = 0.
    assert overall(score_entities(gold, [[], ["B-PER", "O"]])) == (0.0, 0.0, 0.0)
    # No tokens at all: token accuracy 0/0 -> 0 as well.
    assert score_entities([[]], [[]])["accuracy"] == 0.0
    assert "0 tokens; token accuracy 0.0000" in entity_report([[]], [[]], "ner", "validation")


# (b) conlleval's counting, ported from the Perl script (only its B/I/O rules; E, S, [ and ] never occur here).


def split_tag(tag: str) -> tuple[str, str]:
    """conlleval's /^([^-]*)-(.*)$/: "B-PER" -> ("B", "PER"); a tag without "-" has the empty type."""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def end_of_chunk(previous_tag: str, tag: str, previous_type: str, kind: str) -> bool:
    """conlleval's endOfChunk: a chunk ended between the previous token and this one."""
    return (previous_tag in {"B", "I"} and tag in {"B", "O"}) or (
        previous_tag not in {"O", "."} and previous_type != kind
    )


def start_of_chunk(previous_tag: str, tag: str, previous_type: str, kind: str) -> bool:
    """conlleval's startOfChunk: a chunk starts at this token."""
    return (
        (previous_tag in {"B", "I", "O"} and tag == "B")
        or (previous_tag == "O" and tag == "I")
        or (tag not in {"O", "."} and previous_type != kind)
    )


def conlleval_counts(gold: list[list[str]], predicted: list[list[str]]) -> tuple[Counter, Counter, Counter]:
    """conlleval's correctChunk, foundCorrect and foundGuessed per type; a sentence break reads as an O/O line."""
    correct, found_gold, found_predicted = Counter(), Counter(), Counter()
    in_correct = False
    last_gold, last_gold_type, last_predicted, last_predicted_type = "O", "", "O", ""
    for gold_tags, predicted_tags in zip(gold, predicted):
        for gold_tag, predicted_tag in zip([*gold_tags, "O"], [*predicted_tags, "O"]):
            tag_gold, type_gold = split_tag(gold_tag)
            tag_predicted, type_predicted = split_tag(predicted_tag)
            gold_ends = end_of_chunk(last_gold, tag_gold, last_gold_type, type_gold)
            predicted_ends = end_of_chunk(last_predicted, tag_predicted, last_predicted_type, type_predicted)
            if in_correct:
                if gold_ends and predicted_ends and last_predicted_type == last_gold_type:
                    in_correct = False
                    correct[last_gold_type] += 1
                elif gold_ends != predicted_ends or type_predicted != type_gold:
                    in_correct = False
            gold_starts = start_of_chunk(last_gold, tag_gold, last_gold_type, type_gold)
            predicted_starts = start_of_chunk(last_predicted, tag_predicted, last_predicted_type, type_predicted)
            if gold_starts and predicted_starts and type_predicted == type_gold:
                in_correct = True
            found_gold[type_gold] += gold_starts
            found_predicted[type_predicted] += predicted_starts
            last_gold, last_gold_type, last_predicted, last_predicted_type = (
                tag_gold,
                type_gold,
                tag_predicted,
                type_predicted,
            )
    if in_correct:
        correct[last_gold_type] += 1
    return +correct, +found_gold, +found_predicted


def ratios(correct: int, found_predicted: int, found_gold: int) -> tuple[float, float, float]:
    """conlleval's precision, recall and FB1 (as fractions, 0 where undefined)."""
    precision = correct / found_predicted if found_predicted else 0.0
    recall = correct / found_gold if found_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@st.composite
def gold_and_predicted(draw: st.DrawFn) -> tuple[list[list[str]], list[list[str]]]:
    """Random corpora of any IOB tags (I- after O, type switches); predictions often copy the gold tag."""
    gold, predicted = [], []
    for rows in draw(
        st.lists(
            st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from(TAGS), st.booleans()), max_size=10),
            min_size=1,
            max_size=6,
        )
    ):
        gold.append([gold_tag for gold_tag, _, _ in rows])
        predicted.append([gold_tag if copy else other for gold_tag, other, copy in rows])
    return gold, predicted


@settings(max_examples=200, deadline=None)
@given(gold_and_predicted())
def test_default_mode_equals_conlleval_counting(corpus):
    gold, predicted = corpus
    correct, found_gold, found_predicted = conlleval_counts(gold, predicted)
    metrics = score_entities(gold, predicted)
    expected = ratios(sum(correct.values()), sum(found_predicted.values()), sum(found_gold.values()))
    assert overall(metrics) == pytest.approx(expected, abs=1e-9)
    assert set(metrics["per_type"]) == set(found_gold) | set(found_predicted)
    for kind, figures in metrics["per_type"].items():
        precision, recall, f1 = ratios(correct[kind], found_predicted[kind], found_gold[kind])
        assert (figures["precision"], figures["recall"], figures["f1-score"]) == pytest.approx(
            (precision, recall, f1), abs=1e-9
        )
        assert figures["support"] == found_gold[kind]
    # seqeval's support counts gold entities; with the roles swapped it counts the predicted ones.
    swapped = score_entities(predicted, gold)["per_type"]
    assert {kind: figures["support"] for kind, figures in swapped.items()} == {
        kind: float(found_predicted[kind]) for kind in swapped
    }


@settings(max_examples=200, deadline=None)
@given(gold_and_predicted(), st.sampled_from(["conlleval", "strict"]))
def test_the_entities_decoders_return_are_the_entities_the_report_counts(corpus, mode):
    # What the pipeline returns (entity_spans) must be what the scores count: rebuild the scores from the spans.
    gold, predicted = corpus
    spans = [
        {(i, *span) for i, tags in enumerate(sentences) for span in entity_spans(tags, mode=mode)}
        for sentences in (gold, predicted)
    ]
    correct = len(spans[0] & spans[1])
    metrics = score_entities(gold, predicted, mode=mode)
    assert overall(metrics) == pytest.approx(ratios(correct, len(spans[1]), len(spans[0])), abs=1e-9)
    if mode == "conlleval":
        assert sum(conlleval_counts(gold, predicted)[2].values()) == len(spans[1])


# (c) Strict mode.


def test_strict_mode_ignores_entities_without_a_b_tag():
    # Predicted I-PER I-PER: the default mode (like conlleval) reads {PER 0-1}, equal to gold -> P = R = F = 1;
    # strict IOB2 needs a B- to open an entity, so nothing is predicted -> P = 0/0 -> 0, R = 0/1, F = 0.
    gold, predicted = [["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]
    assert overall(score_entities(gold, predicted)) == (1.0, 1.0, 1.0)
    strict = score_entities(gold, predicted, mode="strict")
    assert overall(strict) == (0.0, 0.0, 0.0)
    assert (strict["mode"], strict["scheme"]) == ("strict", "iob2")


def test_strict_iobes_needs_an_end_tag():
    # Predicted B-PER I-PER S-LOC against gold B-PER E-PER S-LOC. Default: B-PER I-PER closes at S- -> {PER 0-1,
    # LOC 2}, both correct -> P = R = F = 1. Strict IOBES: PER has no E- so it is dropped -> correct 1 (LOC),
    # found 1, gold 2 -> P = 1, R = 1/2, F = 2/3.
    gold, predicted = [["B-PER", "E-PER", "S-LOC"]], [["B-PER", "I-PER", "S-LOC"]]
    assert overall(score_entities(gold, predicted, scheme="iobes")) == (1.0, 1.0, 1.0)
    strict = score_entities(gold, predicted, mode="strict", scheme="iobes")
    assert overall(strict) == pytest.approx((1.0, 0.5, 2 / 3), abs=1e-12)


def test_bilou_is_scored_as_units_in_both_modes():
    # Gold U-LOC U-LOC is two one-token entities; predicted B-LOC L-LOC one two-token entity -> correct 0,
    # P = R = F = 0 in both modes (unconverted, seqeval's default mode would merge U-LOC U-LOC into one entity).
    gold, predicted = [["U-LOC", "U-LOC"]], [["B-LOC", "L-LOC"]]
    for mode in ("conlleval", "strict"):
        metrics = score_entities(gold, predicted, mode=mode, scheme="bilou")
        assert overall(metrics) == (0.0, 0.0, 0.0)
        assert metrics["per_type"]["LOC"]["support"] == 2.0


def test_report_headline_names_mode_and_scheme():
    gold, predicted = [["B-PER", "I-PER", "O"]], [["I-PER", "I-PER", "O"]]
    default = entity_report(gold, predicted, "ner", "validation").splitlines()[0]
    assert default == (
        "ner / validation: entity-level scores, mode conlleval (seqeval default, equal to conlleval), scheme iob2"
    )
    strict = entity_report(gold, predicted, "ner", "test", mode="strict", scheme="iob1").splitlines()[0]
    assert "mode strict" in strict and "IOB2" in strict and strict.endswith("scheme iob1")


def test_unknown_mode_or_scheme_is_refused():
    with pytest.raises(ValueError, match="mode"):
        score_entities([["O"]], [["O"]], mode="lenient")
    with pytest.raises(ValueError, match="scheme"):
        score_entities([["O"]], [["O"]], scheme="ioe2")


# (d) Scheme conversions.


def test_conversion_examples():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-MISC", "B-MISC", "I-MISC"]
    iob2 = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-MISC", "B-MISC", "I-MISC"]
    assert iob1_to_iob2(iob1) == iob2
    assert iob2_to_iob1(iob2) == iob1
    assert bilou_to_iobes(["B-PER", "I-PER", "L-PER", "O", "U-LOC"]) == ["B-PER", "I-PER", "E-PER", "O", "S-LOC"]
    assert to_scoring_tags(iob1, "iob1") == iob2
    assert to_scoring_tags(["U-LOC"], "bilou") == ["S-LOC"]
    assert to_scoring_tags(iob2, "iob2") == iob2
    assert to_scoring_tags(["S-LOC"], "iobes") == ["S-LOC"]


@st.composite
def valid_iob1(draw: st.DrawFn) -> list[str]:
    """A valid IOB1 sentence: O or I-X anywhere, B-X only right after a token of type X."""
    tags: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        previous_type = tags[-1][2:] if tags and tags[-1] != "O" else None
        choices = ["O", *(f"I-{kind}" for kind in TYPES), *([f"B-{previous_type}"] if previous_type else [])]
        tags.append(draw(st.sampled_from(choices)))
    return tags


@settings(max_examples=200, deadline=None)
@given(valid_iob1())
def test_iob1_round_trip_is_exact(tags):
    iob2 = iob1_to_iob2(tags)
    assert iob2_to_iob1(iob2) == tags
    # The IOB2 form opens every entity with B-.
    assert all(
        tag[2:] == previous[2:] and previous != "O" for previous, tag in zip(["O", *iob2], iob2) if tag[:2] == "I-"
    )
