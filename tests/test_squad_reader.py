"""The SQuAD-layout reader: flat rows, layout detection, structural errors, caching."""

from __future__ import annotations

import json

import pytest
from conftest import write_squad

from mtl_nlp.config import DataConfig
from mtl_nlp.data.loading import file_format, read_file
from mtl_nlp.data.squad import looks_like_squad, read_squad
from mtl_nlp.errors import DataError

CONTEXT = "Le café de Zürich ouvre à 8 heures."


def write_v2(path):
    return write_squad(
        path,
        [
            (
                CONTEXT,
                [
                    {"id": "a", "question": "Quoi ?", "answers": [("café", 3), ("Le café", 0)]},
                    {"id": "b", "question": "Qui ?", "answers": [], "plausible_answers": [], "is_impossible": True},
                ],
            )
        ],
        version="v2.0",
    )


def test_questions_become_flat_rows_with_hub_style_answers(tmp_path):
    dataset = read_squad(write_v2(tmp_path / "dev.json"))
    assert dataset.column_names == ["id", "title", "context", "question", "answers"]
    assert dataset[0] == {
        "id": "a",
        "title": "Test",
        "context": CONTEXT,
        "question": "Quoi ?",
        "answers": {"text": ["café", "Le café"], "answer_start": [3, 0]},
    }
    assert dataset[1]["answers"] == {"text": [], "answer_start": []}


def test_layout_is_detected_from_the_content_not_the_extension(tmp_path):
    squad = write_v2(tmp_path / "dev.json")
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"context": 'the "paragraphs": [1] text', "question": "q", "answers": []}) + "\n")
    assert looks_like_squad(squad) and not looks_like_squad(flat)
    assert file_format(str(squad), "auto") == "squad" and file_format(str(flat), "auto") == "json"
    renamed = squad.rename(tmp_path / "dev.data")
    assert read_file(str(renamed), DataConfig(format="squad"))["id"] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"data": [}', r"bad.json:1: not valid JSON \(Expecting value, column 11\)"),
        ('{"version": "1.1", "articles": []}', r"bad.json: not in the SQuAD layout .* set data.format: json"),
        ('{"data": [{"title": "T", "paragraphs": {}}]}', r"article 0 \('T'\): 'paragraphs' should be a list"),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q", "answers": []}]}]}]}',
            r"article 0 \(''\), paragraph 0: a question without an 'id'",
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "q"}]}]}]}',
            r"question id 'x': no 'answers' list \(and not marked is_impossible\)",
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "answers": [{"text": "c"}]}]}]}]}',
            r"question id 'x': answer 0 should be an object with a string 'text' and an integer 'answer_start'",
        ),
        ('{"data": [{"paragraphs": [{"context": "c", "qas": []}]}]}', r"bad.json: the file has no questions"),
    ],
)
def test_structural_errors_name_the_file_and_the_place(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_squad(path)


def test_edited_file_is_read_again(tmp_path):
    path = write_v2(tmp_path / "dev.json")
    assert len(read_squad(path)) == 2
    write_squad(path, [(CONTEXT, [{"id": "c", "question": "Où ?", "answers": [("Zürich", 11)]}])])
    assert read_squad(path)["id"] == ["c"]
