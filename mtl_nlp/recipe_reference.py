"""The recipe reference (docs/recipes.md), generated from the recipe dataclasses so it cannot drift."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from .config import (
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


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args if arg is not type(None)) + " or null"
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
    else:
        return "required"
    return "null" if value is None else f"`{value}`"


def section_table(cls: type, prefix: str, skip: tuple[str, ...] = ()) -> str:
    """A Markdown table of one dataclass's keys: name, type, default, range of its numbers and help."""
    hints = typing.get_type_hints(cls)
    rows = ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.init:
            continue
        help_text = field.metadata.get("help", "").replace("|", "\\|")
        bounds = field.metadata.get("range", "")
        rows.append(
            f"| `{prefix}{field.name}` | {_type_name(hints[field.name])} | {_default(field)} | {bounds} | {help_text} |"
        )
    return "\n".join(rows)


def recipe_reference() -> str:
    """The whole reference as Markdown: every section and the keys of every task type mtl-nlp ships."""
    from .tasks import BUILT_IN_TASK_TYPES

    parts = [
        "# Recipe reference",
        "",
        "Generated from the recipe classes by `python scripts/make_recipe_reference.py`; every key, its type, "
        "default, range (checked when the recipe loads; a range applies to every number of a list or mapping) "
        "and meaning. Keys can be overridden on the command line: `mtl-nlp train RECIPE "
        "training.learning_rate=3e-5 tasks.ner.batch_size=16`. Text values may use `${VAR}` or "
        "`${VAR:-default}` to read environment variables; only the run uses their values, and the files it saves "
        "(`recipe.yaml`, the model card) keep the references as written.",
        "",
        "## Top level",
        "",
        section_table(RecipeConfig, ""),
    ]
    for title, cls, prefix in (
        ("model", ModelConfig, "model."),
        ("model.sharing", SharingConfig, "model.sharing."),
        ("training", TrainingConfig, "training."),
        ("sampling", SamplingConfig, "sampling."),
        ("weighting", WeightingConfig, "weighting."),
        ("finetune", FinetuneConfig, "finetune."),
        ("distillation", DistillationConfig, "distillation."),
        ("tasks.NAME.data", DataConfig, "tasks.NAME.data."),
        ("tasks.NAME.adapter", AdapterConfig, "tasks.NAME.adapter."),
    ):
        parts += ["", f"## `{title}`", "", (cls.__doc__ or "").strip(), "", section_table(cls, prefix)]
    for task_class in BUILT_IN_TASK_TYPES:
        parts += [
            "",
            f"## Task type `{task_class.type_name}`",
            "",
            (task_class.config_class.__doc__ or "").strip(),
            "",
            section_table(task_class.config_class, "tasks.NAME.", skip=("data",)),
        ]
    return "\n".join(parts) + "\n"
