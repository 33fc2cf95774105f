"""Recipe validation: unknown keys with suggestions, types, ranges of numbers, task types, overrides."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from mtl_nlp.config import apply_overrides, build_dataclass, load_recipe, option, recipe_from_dict
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


def test_the_recipe_as_data_keeps_environment_references_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_SECRET", "hunter2")
    path = tmp_path / "r.yaml"
    path.write_text(
        "tasks:\n  ner:\n    type: token_classification\n    data: {train: '${MTL_SECRET}/a.conll'}\n"
        "    labels: [O, '${MTL_SECRET:-B-PER}']\n",
        encoding="utf-8",
    )
    recipe = load_recipe(path, ["output_dir=runs/${MTL_SECRET}", "training.seed=7"])
    assert (recipe.output_dir, recipe.tasks["ner"].labels) == ("runs/hunter2", ["O", "hunter2"])
    record = recipe.to_dict()
    assert record["output_dir"] == "runs/${MTL_SECRET}"
    assert record["tasks"]["ner"]["data"]["train"] == "${MTL_SECRET}/a.conll"
    assert record["tasks"]["ner"]["labels"] == ["O", "${MTL_SECRET:-B-PER}"]
    assert record["training"]["seed"] == 7 and record["training"]["warmup_ratio"] == 0.1  # defaults filled in
    assert "hunter2" not in yaml.safe_dump(record) and "written" not in record


# Every numeric key's range, as the recipe reference states it; a value past the range fails on loading.
RANGES = [
    ("training.epochs", 0, "greater than 0"),
    ("training.max_steps", 0, "at least 1 or null"),
    ("training.learning_rate", -1e-5, "greater than 0 or 'auto'"),
    ("training.weight_decay", -0.01, "at least 0"),
    ("training.warmup_ratio", 1.5, "from 0 to 1"),
    ("training.warmup_ratio", -0.1, "from 0 to 1"),
    ("training.gradient_accumulation_steps", 0, "at least 1"),
    ("training.max_grad_norm", 0, "greater than 0 or null"),
    ("training.seed", -1, "from 0 to 4294967295"),
    ("training.eval_every_steps", -1, "at least 0"),
    ("training.eval_batch_size", 0, "at least 1"),
    ("training.log_every_steps", 0, "at least 1"),
    ("training.early_stopping_patience", 0, "at least 1 or null"),
    ("training.dataloader_workers", -1, "at least 0"),
    ("training.save_every_steps", -1, "at least 0"),
    ("training.save_total_limit", 0, "at least 1"),
    ("training.max_nonfinite_steps", 0, "at least 1"),
    ("sampling.temperature", 0, "greater than 0"),
    ("sampling.example_cap", 0, "at least 1 or null"),
    ("weighting.dwa_temperature", 0, "greater than 0"),
    ("weighting.window_steps", 0, "at least 1 or null"),
    ("tasks.ner.batch_size", 0, "at least 1"),
    ("tasks.ner.max_length", 0, "at least 1 or null"),
    ("tasks.ner.loss_weight", -1, "at least 0"),
    ("tasks.ner.selection_weight", -0.5, "at least 0"),
    ("tasks.ner.data.max_train_examples", 0, "at least 1 or null"),
    ("tasks.ner.data.max_eval_examples", 0, "at least 1 or null"),
]


@pytest.mark.parametrize(("key", "value", "allowed"), RANGES, ids=[f"{key}={value}" for key, value, _ in RANGES])
def test_numbers_outside_their_range_are_refused_naming_key_and_range(key, value, allowed):
    raw = apply_overrides(minimal(), [f"{key}={value}"])
    expected = rf"^{re.escape(key)}: must be {re.escape(allowed)}, got {float(value):g}\S*\. Set it in that range"
    with pytest.raises(RecipeError, match=expected):
        recipe_from_dict(raw)


def test_numbers_of_a_mapping_are_checked_one_by_one():
    raw = {**minimal(), "sampling": {"strategy": "fixed", "probabilities": {"ner": -0.5}}}
    with pytest.raises(RecipeError, match=r"^sampling\.probabilities\.ner: must be at least 0, got -0\.5\."):
        recipe_from_dict(raw)


def test_range_boundaries_and_non_numbers_are_accepted():
    edges = {
        "training": {
            "warmup_ratio": 1,
            "eval_every_steps": 0,
            "save_every_steps": 0,
            "seed": 2**32 - 1,
            "max_steps": None,
            "learning_rate": "auto",
            "weight_decay": 0,
        },
        "sampling": {"strategy": "fixed", "probabilities": {"ner": 0.0, "pos": 1.0}},
    }
    tasks = {name: minimal(loss_weight=0, selection_weight=0)["tasks"]["ner"] for name in ("ner", "pos")}
    recipe = recipe_from_dict({**edges, "tasks": tasks})
    assert recipe.training.warmup_ratio == 1 and recipe.training.seed == 2**32 - 1
    assert recipe.tasks["ner"].loss_weight == 0


def test_not_a_finite_number_is_out_of_every_range():
    with pytest.raises(RecipeError, match=r"^training\.epochs: must be greater than 0, got nan\."):
        recipe_from_dict({**minimal(), "training": {"epochs": float("nan")}})
    with pytest.raises(RecipeError, match=r"^training\.weight_decay: must be at least 0, got inf\."):
        recipe_from_dict({**minimal(), "training": {"weight_decay": float("inf")}})


@dataclasses.dataclass
class Bounded:
    """A section of a task type's own, declaring ranges the way task types do."""

    ratio: float = option("A ratio.", default=0.5, minimum=0, maximum=1)
    scores: list[float] = option("Scores.", default_factory=list, minimum=0, exclusive_minimum=True)


def test_any_option_declares_its_range_and_loading_checks_it():
    assert build_dataclass(Bounded, {"ratio": 0, "scores": [0.1]}, "tasks.x") == Bounded(0, [0.1])
    with pytest.raises(RecipeError, match=r"^tasks\.x\.ratio: must be from 0 to 1, got 2\.0\."):
        build_dataclass(Bounded, {"ratio": 2}, "tasks.x")
    with pytest.raises(RecipeError, match=r"^tasks\.x\.scores\[1\]: must be greater than 0, got 0\.0\."):
        build_dataclass(Bounded, {"scores": [1, 0]}, "tasks.x")


# Keys of the task types, whose options (in mtl_nlp/tasks/) declare their ranges with option(minimum=…, maximum=…).
TASK_TYPE_RANGES = [
    ("sequence_classification", "threshold", 1.5, "from 0 to 1"),
    ("sequence_classification", "threshold", [0.5, -0.1], "from 0 to 1"),
    ("question_answering", "max_length", 0, "at least 1 or null"),
    ("question_answering", "doc_stride", -1, "at least 0"),
    ("question_answering", "max_answer_length", 0, "at least 1"),
    ("question_answering", "n_best", 0, "at least 1"),
]


@pytest.mark.parametrize(
    ("task_type", "key", "value", "allowed"), TASK_TYPE_RANGES, ids=[f"{t[1]}={t[2]}" for t in TASK_TYPE_RANGES]
)
def test_task_type_numbers_outside_their_range_are_refused(task_type, key, value, allowed):
    raw = {"tasks": {"t": {"type": task_type, "data": {"train": "a.json"}, key: value}}}
    with pytest.raises(RecipeError, match=rf"^tasks\.t\.{key}(\[\d\])?: must be {re.escape(allowed)}, got .*\. Set it"):
        recipe_from_dict(raw)
