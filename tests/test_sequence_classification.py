"""Sequence classification data checks and encoding."""

from __future__ import annotations

import numpy as np
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


def test_multi_label_targets_are_multi_hot_and_scored_with_thresholds(tiny_tokenizer, tmp_path):
    path = tmp_path / "topics.jsonl"
    path.write_text(
        '{"text": "shares rose", "label": ["business"]}\n'
        '{"text": "the striker scored", "label": ["sport"]}\n'
        '{"text": "club shares fell", "label": ["business", "sport"]}\n'
    )
    task = make_task(tiny_tokenizer, path, path, problem_type="multi_label_classification", threshold=[0.5, 0.9])
    assert task.labels == ["business", "sport"]
    assert task.encoded["train"]["labels"] == [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    assert task.head_description()["problem_type"] == "multi_label_classification"
    # Logits whose probabilities are 0.73 and 0.73: 'sport' stays below its 0.9 threshold.
    evaluation = task.evaluate("validation", [np.array([1.0, 1.0])] * 3)
    assert evaluation.metrics["per_class"]["business"]["recall"] == 1.0
    assert evaluation.metrics["per_class"]["sport"]["recall"] == 0.0
    assert evaluation.metrics["f1_micro"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_regression_scores_mse_and_correlations(tiny_tokenizer, tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("text,score\na cat,1.0\na dog,2.0\na car,4.0\n")
    task = make_task(tiny_tokenizer, path, path, problem_type="regression", label_column="score")
    assert task.encoded["train"]["labels"] == [1.0, 2.0, 4.0]
    evaluation = task.evaluate("validation", [np.array([x]) for x in (1.5, 2.0, 5.0)])
    assert evaluation.headline == "pearson"
    assert evaluation.metrics["mse"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert evaluation.metrics["spearman"] == pytest.approx(1.0)


def test_regression_rejects_non_numeric_labels(tiny_tokenizer, tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("text,score\na cat,1.0\na dog,high\n")
    with pytest.raises(DataError, match=r"sts.csv:3: label 'high' is not a number"):
        make_task(tiny_tokenizer, path, problem_type="regression", label_column="score")
