"""SQuAD exact match and F1, checked on hand-computed examples (official normalisation, v1.1 and v2.0 rules)."""

from __future__ import annotations

import pytest

from mtl_nlp.evaluation.squad import exact_match, normalize_answer, score_squad, squad_report, token_f1


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The  Quick, brown fox!", "quick brown fox"),
        ("An apple a day", "apple day"),
        ("Theatre (the play)", "theatre play"),  # articles only as whole words
        ("  U.S.A.  ", "usa"),
        ("", ""),
    ],
)
def test_normalisation_lowercases_and_drops_punctuation_articles_and_extra_spaces(text, normalised):
    assert normalize_answer(text) == normalised


def test_exact_match_after_normalisation():
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert exact_match("Eiffel Tower in Paris", "Eiffel Tower") == 0.0


def test_f1_is_the_overlap_of_normalised_tokens():
    # predicted: eiffel tower in paris; gold: eiffel tower → precision 2/4, recall 2/2.
    assert token_f1("Eiffel Tower in Paris", "the Eiffel Tower") == pytest.approx(2 / 3)
    # Repeated tokens count as often as both sides have them: cat cat vs cat → precision 1/2, recall 1.
    assert token_f1("the cat, the cat", "a cat") == pytest.approx(2 / 3)
    assert token_f1("London", "Paris") == 0.0


def test_empty_answers_follow_the_version_rules():
    assert token_f1("", "", version_2=True) == 1.0
    assert token_f1("", "Paris", version_2=True) == 0.0
    assert token_f1("", "") == 0.0  # v1.1: no common token, no credit


def test_best_reference_counts_for_each_score():
    scores = score_squad([["Paris", "in Paris, France"]], ["Paris France"])
    # exact: no reference equals "paris france"; F1: 2/3 against "paris", 0.8 against "in paris france".
    assert scores == {"exact": 0.0, "f1": pytest.approx(0.8), "total": 1}
    scores = score_squad([["Paris", "Rome"], ["the Nile"]], ["rome", "Nile river"])
    assert scores["exact"] == 0.5 and scores["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert "HasAns_total" not in scores


def test_v2_scores_answerable_and_unanswerable_questions_apart():
    references = [["Paris"], [], ["the Nile"], []]
    scores = score_squad(references, ["Paris", "", "", "London"], version_2=True)
    assert scores["exact"] == scores["f1"] == 0.5 and scores["total"] == 4
    assert (scores["HasAns_exact"], scores["HasAns_total"]) == (0.5, 2)
    assert (scores["NoAns_exact"], scores["NoAns_f1"], scores["NoAns_total"]) == (0.5, 0.5, 2)


def test_v2_reference_that_normalises_to_nothing_is_the_empty_answer():
    # "The" normalises to "", so the official script scores the question against the empty answer.
    scores = score_squad([["The"]], [""], version_2=True)
    assert scores["exact"] == 1.0 and scores["HasAns_total"] == 1 and "NoAns_total" not in scores


def test_groups_without_questions_are_left_out_and_counts_must_match():
    assert "NoAns_exact" not in score_squad([["a b"]], ["a b"], version_2=True)
    with pytest.raises(ValueError, match="2 questions but 1 predictions"):
        score_squad([["a"], ["b"]], ["a"])


def test_report_table_lists_each_group():
    scores = score_squad([["Paris"], []], ["Paris", "Rome"], version_2=True)
    lines = squad_report(scores, "qa / dev").splitlines()
    assert lines[0] == "qa / dev"
    assert [line.split() for line in lines[3:]] == [
        ["all", "0.5000", "0.5000", "2"],
        ["HasAns", "1.0000", "1.0000", "1"],
        ["NoAns", "0.0000", "0.0000", "1"],
    ]
