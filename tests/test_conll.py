"""The CoNLL reader: sentences, -DOCSTART- lines, column checks, encoding errors."""

from __future__ import annotations

import pytest
from conftest import write_conll

from mtl_nlp.data.conll import iter_conll_sentences, read_conll
from mtl_nlp.errors import DataError

COLUMNS = ["tokens", "pos", "chunk", "ner"]


def test_sentences_split_on_blank_lines_and_docstart_is_skipped(tmp_path):
    path = write_conll(
        tmp_path / "a.conll",
        [
            [("EU", "NNP", "B-NP", "B-ORG"), ("rejects", "VBZ", "B-VP", "O")],
            [("Peter", "NNP", "B-NP", "B-PER"), ("Blackburn", "NNP", "I-NP", "I-PER")],
        ],
    )
    # A second document boundary between sentences, without a blank line before it.
    text = path.read_text().replace("Peter", "-DOCSTART- -X- -X- O\n\nPeter", 1)
    path.write_text(text)
    dataset = read_conll(path, COLUMNS)
    assert dataset["tokens"] == [["EU", "rejects"], ["Peter", "Blackburn"]]
    assert dataset["ner"] == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    assert dataset["chunk"][1] == ["B-NP", "I-NP"]
    assert dataset["line"] == [3, 8]


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.conll:2: expected 4 columns .* found 3"):
        read_conll(path, COLUMNS)


def test_error_late_in_file_surfaces_as_data_error(tmp_path):
    good = [[("word", "NN", "B-NP", "O")]] * 50
    path = write_conll(tmp_path / "late.conll", good)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("broken line\n")
    with pytest.raises(DataError, match=r"late.conll:\d+: expected 4 columns"):
        read_conll(path, COLUMNS)


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin1.conll"
    path.write_bytes("Zürich NNP B-NP B-LOC\n".encode() + "M\xfcnchen NNP B-NP B-LOC\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.conll:2: bytes that are not UTF-8"):
        list(iter_conll_sentences(path, COLUMNS))


def test_empty_file_gives_empty_dataset(tmp_path):
    path = tmp_path / "empty.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\n", encoding="utf-8")
    assert len(read_conll(path, COLUMNS)) == 0


def test_edited_file_is_read_again(tmp_path):
    path = write_conll(tmp_path / "edit.conll", [[("a", "DT", "B-NP", "O")]])
    assert read_conll(path, COLUMNS)["tokens"] == [["a"]]
    write_conll(path, [[("b", "DT", "B-NP", "O")], [("c", "DT", "B-NP", "O")]])
    assert read_conll(path, COLUMNS)["tokens"] == [["b"], ["c"]]
