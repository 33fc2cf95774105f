"""``mtl-nlp predict``: input formats, their detection and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtl_nlp.errors import DataError
from mtl_nlp.prediction import input_format, read_inputs


def test_input_format_follows_the_extension_unless_declared():
    assert input_format(Path("a.jsonl")) == "jsonl"
    assert input_format(Path("a.JSON")) == "jsonl"
    assert input_format(Path("a.conll")) == "conll"
    assert input_format(Path("a.txt"), "conll") == "conll"
    assert input_format(Path("a.txt"), "text") == "text"


def test_an_extension_that_does_not_say_the_format_asks_for_it():
    # .txt is CoNLL columns in training recipes and plain text elsewhere: predict does not guess.
    with pytest.raises(DataError, match=r"a\.txt: cannot tell the format .*--format text"):
        input_format(Path("a.txt"))


def test_text_inputs_skip_blank_lines_and_conll_inputs_keep_their_words(tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("first text\n\n  \nsecond text\n")
    assert [given.text for given in read_inputs(text, "text", ["tokens"])] == ["first text", "second text"]
    conll = tmp_path / "in.conll"
    conll.write_text("U.S. NNP\nOpen NNP\n\nHi UH\n")
    inputs = read_inputs(conll, "conll", ["tokens", "pos"])
    assert [given.words for given in inputs] == [["U.S.", "Open"], ["Hi"]]
    assert inputs[0].text == "U.S. Open"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"in\.jsonl:2: not valid JSON"),
        ('{"question": "who?"}', r'in\.jsonl:2: each line needs an object with a non-empty "text"'),
        ('{"text": "   "}', r'in\.jsonl:2: each line needs an object with a non-empty "text"'),
        ('{"text": "a", "question": 3}', r'in\.jsonl:2: "question" must be a string'),
    ],
)
def test_malformed_json_lines_are_named_by_file_and_line(tmp_path, line, message):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        read_inputs(path, "jsonl", ["tokens"])


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="no input to predict on"):
        read_inputs(path, "text", ["tokens"])
