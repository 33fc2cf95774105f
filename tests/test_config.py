"""Recipe validation: unknown keys with suggestions, types, task types, overrides."""

from __future__ import annotations

import pytest

from mtl_nlp.config import apply_overrides, load_recipe, recipe_from_dict
from mtl_nlp.errors import RecipeError
from mtl_nlp.tasks import SequenceClassificationConfig, TokenClassificationConfig


def minimal(**task_overrides):
    task = {"type": "token_classification", "data": {"train": "train.conll"}, **task_overrides}
    return {"tasks": {"ner": task}}


def test_minimal_recipe_builds_typed_task_configs():
    recipe = recipe_from_dict(
        {
            "training": {"learning_rate": "3e-5", "max_steps": 10},
            "tasks": {
                "ner": {"type": "token_classification", "data": {"train": "a.conll"}, "tags_column": 3},
                "sst": {
                    "type": "sequence_classification",
                    "data": {"train": "a.tsv"},
                    "text_column": "sentence",
                },
            },
        }
    )
    assert recipe.training.learning_rate == pytest.approx(3e-5)
    assert isinstance(recipe.tasks["ner"], TokenClassificationConfig)
    assert recipe.tasks["ner"].tags_column == 3
    assert isinstance(recipe.tasks["sst"], SequenceClassificationConfig)
    assert recipe.tasks["sst"].text_column == "sentence"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**minimal(), "trainig": {}}, r"trainig: unknown key\. Did you mean 'training'\?"),
        (minimal(batch_sise=8), r"tasks\.ner\.batch_sise: unknown key\. Did you mean 'batch_size'\?"),
        (minimal(type="token_clasification"), r"tasks\.ner\.type: .* Did you mean 'token_classification'\?"),
        (minimal(batch_size="big"), r"tasks\.ner\.batch_size: expected a number"),
        (minimal(batch_size=0), r"tasks\.ner\.batch_size: must be at least 1"),
        (minimal(data={}), r"tasks\.ner\.data\.train: give either 'train'"),
        ({"tasks": {}}, r"at least one task"),
        (
            {**minimal(), "training": {"mixed_precision": "fp8"}},
            r"training\.mixed_precision: 'fp8' is not allowed",
        ),
    ],
)
def test_bad_recipes_name_the_key(raw, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict(raw)


def test_overrides_use_dotted_keys_and_are_type_checked(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("tasks:\n  ner:\n    type: token_classification\n    data: {train: a.conll}\n")
    recipe = load_recipe(path, ["training.learning_rate=1e-4", "tasks.ner.batch_size=16"])
    assert recipe.training.learning_rate == pytest.approx(1e-4)
    assert recipe.tasks["ner"].batch_size == 16
    with pytest.raises(RecipeError, match=r"r.yaml: tasks\.ner\.batchsize: unknown key"):
        load_recipe(path, ["tasks.ner.batchsize=16"])
    with pytest.raises(RecipeError, match=r"dotted\.key=value"):
        apply_overrides({}, ["training.seed"])


def test_environment_references_expand(monkeypatch):
    monkeypatch.setenv("MTL_DATA", "/data")
    recipe = recipe_from_dict(minimal(data={"train": "${MTL_DATA}/train.conll", "validation": "${NOPE:-x}/d.conll"}))
    assert recipe.tasks["ner"].data.train == "/data/train.conll"
    assert recipe.tasks["ner"].data.validation == "x/d.conll"
