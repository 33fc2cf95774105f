"""Prediction input/output helpers: format detection and entity groups mapped back to word tags."""

from __future__ import annotations

from pathlib import Path

from mtl_nlp.prediction import input_format, word_tags


def test_entity_groups_become_iob2_word_tags():
    tokens = ["Peter", "Blackburn", "visited", "New", "York", "and", "Bonn"]
    # "Peter Blackburn visited New York and Bonn": character offsets of the entity groups.
    entities = [
        {"entity_group": "PER", "start": 0, "end": 15},
        {"entity_group": "LOC", "start": 24, "end": 32},
        {"entity_group": "LOC", "start": 37, "end": 41},
    ]
    assert word_tags(tokens, entities) == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-LOC"]


def test_adjacent_entities_of_the_same_type_stay_apart():
    tokens = ["Paris", "London"]
    entities = [{"entity_group": "LOC", "start": 0, "end": 5}, {"entity_group": "LOC", "start": 6, "end": 12}]
    assert word_tags(tokens, entities) == ["B-LOC", "B-LOC"]


def test_input_format_follows_the_extension_unless_declared():
    assert input_format(Path("a.jsonl")) == "jsonl"
    assert input_format(Path("a.conll")) == "conll"
    assert input_format(Path("a.txt")) == "text"
    assert input_format(Path("a.txt"), "conll") == "conll"
