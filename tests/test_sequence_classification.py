"""Sequence classification data checks and encoding."""

from __future__ import annotations

import pytest

from mtl_nlp.config import recipe_from_dict
from mtl_nlp.errors import DataError
from mtl_nlp.tasks import build_task


def make_task(tokenizer, train, validation=None, **settings):
    data = {"train": str(train), **({"validation": str(validation)} if validation else {})}
    recipe = recipe_from_dict({"tasks": {"sst": {"type": "sequence_classification", "data": data, **settings}}})
    task = build_task("sst", recipe.tasks["sst"], tokenizer)
    task.prepare()
    return task


def test_integer_labels_index_the_label_names(tiny_tokenizer, tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('sentence\tlabel\nthe film was wonderful "truly" \t1\nthe service was slow \t0\n')
    task = make_task(tiny_tokenizer, path, text_column="sentence", labels=["negative", "positive"])
    assert task.encoded["train"]["labels"] == [1, 0]
    assert task.raw["train"]["sentence"][0].startswith('the film was wonderful "truly"')


def test_labels_read_from_data_when_not_given(tiny_tokenizer, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "great", "label": "pos"}\n{"text": "awful", "label": "neg"}\n')
    task = make_task(tiny_tokenizer, path)
    assert task.labels == ["neg", "pos"]
    assert task.encoded["train"]["labels"] == [1, 0]


def test_missing_label_column_names_file_and_columns(tiny_tokenizer, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,sentiment\ngreat,1\n")
    with pytest.raises(DataError, match=r"t.csv: no column 'label' \(columns: text, sentiment\)"):
        make_task(tiny_tokenizer, path)


def test_unknown_dev_label_names_the_row(tiny_tokenizer, tmp_path):
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_text("text,label\ngreat,pos\nawful,neg\n")
    dev.write_text("text,label\nfine,pos\nmeh,neutral\n")
    with pytest.raises(DataError, match=r"dev.csv:3: label 'neutral' is not one of \['neg', 'pos'\]"):
        make_task(tiny_tokenizer, train, dev)


def test_empty_split_is_an_error(tiny_tokenizer, tmp_path):
    train, dev = tmp_path / "train.csv", tmp_path / "dev.csv"
    train.write_text("text,label\ngreat,pos\n")
    dev.write_text("text,label\n")
    with pytest.raises(DataError, match=r"dev.csv: the file has no examples"):
        make_task(tiny_tokenizer, train, dev)


def test_text_pairs_are_encoded_together(tiny_tokenizer, tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"premise": "the hotel was friendly", "hypothesis": "staff were nice", "label": "yes"}\n')
    task = make_task(tiny_tokenizer, path, text_column="premise", text_pair_column="hypothesis")
    assert 1 in task.encoded["train"]["token_type_ids"][0]
