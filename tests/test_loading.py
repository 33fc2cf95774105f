"""Loading: local files (formats, missing values, example limits) and dataset repositories read like Hub datasets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import token_predictions

from mtl_nlp.config import DataConfig, recipe_from_dict
from mtl_nlp.data.loading import load_splits, read_file
from mtl_nlp.errors import DataError
from mtl_nlp.tasks import build_task


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


# A dataset repository as the Hub holds one: data files per split, and a README.md dataset card whose YAML front
# matter declares the configuration (which file is which split) and the features, ClassLabel names included.
# datasets.load_dataset reads such a folder through the same code path as a Hub id.

NER_TAGS = ["O", "B-PER", "I-PER", "B-LOC"]
NER_SPLITS = {
    "train": [
        {"tokens": ["Angela", "Merkel", "met", "officials"], "ner_tags": [1, 2, 0, 0]},
        {"tokens": ["Munich", "on", "Tuesday"], "ner_tags": [3, 0, 0]},
        {"tokens": ["Serena", "Williams", "won"], "ner_tags": [1, 2, 0]},
    ],
    "validation": [{"tokens": ["Merkel", "met", "Munich"], "ner_tags": [1, 0, 3]}],
    "test": [{"tokens": ["hidden"], "ner_tags": [0]}],
}
SENTIMENT_LABELS = ["negative", "positive"]
SENTIMENT_SPLITS = {
    "train": [
        {"sentence": "the film was wonderful", "label": 1},
        {"sentence": "the food arrived cold", "label": 0},
        {"sentence": "a dull , predictable plot", "label": 0},
    ],
    "validation": [{"sentence": "funny and moving", "label": 1}, {"sentence": "slow and dull", "label": 0}],
}


def class_label(names: list[str]) -> dict:
    return {"class_label": {"names": {str(i): name for i, name in enumerate(names)}}}


def dataset_repository(directory: Path, features: list[dict], splits: dict[str, list[dict]]) -> Path:
    """Write a dataset repository: ``data/<split>.jsonl`` files and a card naming them and the features."""
    (directory / "data").mkdir(parents=True)
    for split, rows in splits.items():
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        (directory / "data" / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    files = [{"split": split, "path": f"data/{split}.jsonl"} for split in splits]
    card = {"configs": [{"config_name": "default", "data_files": files}], "dataset_info": {"features": features}}
    (directory / "README.md").write_text(f"---\n{yaml.safe_dump(card)}---\n# A dataset\n", encoding="utf-8")
    return directory


NER_FEATURES = [{"name": "tokens", "sequence": "string"}, {"name": "ner_tags", "sequence": class_label(NER_TAGS)}]


@pytest.fixture
def ner_repository(tmp_path) -> Path:
    return dataset_repository(tmp_path / "toy-ner", NER_FEATURES, NER_SPLITS)


@pytest.fixture
def sentiment_repository(tmp_path) -> Path:
    features = [{"name": "sentence", "dtype": "string"}, {"name": "label", **class_label(SENTIMENT_LABELS)}]
    return dataset_repository(tmp_path / "toy-sentiment", features, SENTIMENT_SPLITS)


def prepared(name: str, settings: dict, tokenizer):
    task = build_task(name, recipe_from_dict({"tasks": {name: settings}}).tasks[name], tokenizer)
    task.prepare()
    return task


def test_token_classification_from_a_dataset_repository(ner_repository, tiny_tokenizer):
    data = {"hub_dataset": str(ner_repository), "hub_splits": ["train", "validation"]}
    task = prepared("ner", {"type": "token_classification", "data": data, "tags_column": "ner_tags"}, tiny_tokenizer)
    assert list(task.raw) == ["train", "validation"]  # 'test' is left out as hub_splits says
    assert task.labels == NER_TAGS  # the ClassLabel's names, in its order
    assert task.raw["train"]["ner_tags"][0] == ["B-PER", "I-PER", "O", "O"]
    assert task.split_source("validation") == f"{ner_repository}[validation]"
    perfect = [token_predictions(np.array(row["labels"]).clip(min=0)) for row in task.encoded["validation"]]
    evaluation = task.evaluate("validation", perfect)
    assert evaluation.metrics["f1"] == 1.0
    assert evaluation.predictions.split() == ["Merkel", "B-PER", "B-PER", "met", "O", "O", "Munich", "B-LOC", "B-LOC"]


def test_sequence_classification_from_a_dataset_repository(sentiment_repository, tiny_tokenizer):
    data = {"hub_dataset": str(sentiment_repository), "max_train_examples": 2}
    settings = {"type": "sequence_classification", "data": data, "text_column": "sentence"}
    task = prepared("sentiment", settings, tiny_tokenizer)
    assert list(task.raw) == ["train", "validation"]  # the repository has no 'test' split
    assert len(task.raw["train"]) == 2
    assert task.labels == SENTIMENT_LABELS
    assert task.encoded["validation"]["labels"] == [1, 0]
    evaluation = task.evaluate("validation", [np.array([0.1, 0.9]), np.array([0.8, 0.2])])
    assert evaluation.metrics["accuracy"] == 1.0
    assert "positive" in evaluation.predictions and "negative" in evaluation.predictions


def test_a_dataset_repository_without_the_training_split_is_refused(tmp_path):
    splits = {split: rows for split, rows in NER_SPLITS.items() if split != "train"}
    repository = dataset_repository(tmp_path / "no-train", NER_FEATURES, splits)
    with pytest.raises(DataError, match=r"no-train: the dataset has no 'train' split \(it has test, validation\)\."):
        load_splits(DataConfig(hub_dataset=str(repository)))
    assert list(load_splits(DataConfig(hub_dataset=str(repository), hub_splits=["validation"]))) == ["validation"]


def test_a_dataset_that_cannot_be_loaded_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"no-such-dataset: could not be loaded as a dataset \(.*\)\. Check data\."):
        load_splits(DataConfig(hub_dataset=str(tmp_path / "no-such-dataset")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: could not be loaded as a dataset"):
        load_splits(DataConfig(hub_dataset=str(tmp_path / "empty")))
