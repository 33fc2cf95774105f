"""Loading local files: formats, missing values, example limits."""

from __future__ import annotations

import logging

from mtl_nlp.config import DataConfig
from mtl_nlp.data.loading import load_splits, read_file


def test_only_empty_cells_are_missing_values(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("text\tlabel\nNA\tNone\nnull\tN/A\nnan\t\n", encoding="utf-8")
    dataset = read_file(str(path), DataConfig(train=str(path)))
    assert dataset["text"] == ["NA", "null", "nan"]
    assert dataset["label"] == ["None", "N/A", None]


def test_example_limits_are_logged(tmp_path, caplog):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"text {i},a\n" for i in range(5)), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="mtl_nlp"):
        splits = load_splits(DataConfig(train=str(path), validation=str(path), max_train_examples=2))
    assert (len(splits["train"]), len(splits["validation"])) == (2, 5)
    assert f"{path}: using the first 2 of 5 examples (data.max_train_examples)" in caplog.text
    assert "max_eval_examples" not in caplog.text
