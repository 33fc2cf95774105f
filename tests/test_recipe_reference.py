"""The recipe reference in docs/ is the one the recipe classes generate, and every key documents itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mtl_nlp.cli import build_parser
from mtl_nlp.config import (
    AdapterConfig,
    DataConfig,
    DistillationConfig,
    FinetuneConfig,
    ModelConfig,
    RecipeConfig,
    SamplingConfig,
    SharingConfig,
    TrainingConfig,
    WeightingConfig,
)
from mtl_nlp.recipe_reference import recipe_reference
from mtl_nlp.tasks import BUILT_IN_TASK_TYPES

DOCS = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


def test_docs_recipe_reference_is_up_to_date():
    assert DOCS.read_text(encoding="utf-8") == recipe_reference(), "run: python scripts/make_recipe_reference.py"


@pytest.mark.parametrize(
    "cls",
    [
        RecipeConfig,
        ModelConfig,
        SharingConfig,
        TrainingConfig,
        SamplingConfig,
        WeightingConfig,
        FinetuneConfig,
        DistillationConfig,
        DataConfig,
        AdapterConfig,
    ]
    + [task.config_class for task in BUILT_IN_TASK_TYPES],
)
def test_every_recipe_key_has_help_text(cls):
    missing = [field.name for field in dataclasses.fields(cls) if not field.metadata.get("help")]
    assert not missing


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        text = command.format_help()
        assert command.description or name in parser.format_help()
        assert all(action.help for action in command._actions if action.dest != "help"), name
        assert "usage:" in text
