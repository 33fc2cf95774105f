"""The model card of a published multi-task model: Hub metadata and a README with each task's labels, scores,
the training recipe and usage snippets.

The metadata (``library_name``, tags, ``base_model``, ``datasets`` and a ``model-index`` with one entry per
task, split and metric of the run's final evaluation) is built with ``huggingface_hub``'s ``ModelCardData`` and
``EvalResult``, so the Hub reads it as it reads any card.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.pipelines import SUPPORTED_TASKS

from .modeling import MultiTaskConfig
from .paths import looks_local
from .tasks import TASK_TYPES

LIBRARY_NAME = "mtl-nlp"
TAGS = ["mtl-nlp", "multi-task"]
PROJECT_URL = "https://pypi.org/project/mtl-nlp/"
EXAMPLE_TEXT = "Angela Merkel met officials of Siemens in Munich on Tuesday."
EXPORTS_FOLDER = "tasks"


def hub_base_model(config: MultiTaskConfig) -> str | None:
    """The Hub id the encoder was loaded from, or None when it came from a local directory or a package."""
    name = config.encoder.get("_name_or_path") or ""
    if not name or looks_local(name) or os.path.exists(name):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def hub_task(config: MultiTaskConfig, task: str) -> str | None:
    """The Hub task id of a task (its type's ``hub_pipeline_tag``), None for a type this process does not know."""
    task_class = TASK_TYPES.get(config.tasks[task]["type"])
    return task_class.hub_pipeline_tag if task_class else None


def recipe_data(recipe: str | None) -> dict[str, dict[str, Any]]:
    """Task name → the ``data`` settings of the saved recipe (where each task's examples came from), as written."""
    tasks = (yaml.safe_load(recipe) or {}).get("tasks") if recipe else None
    return {name: (settings or {}).get("data") or {} for name, settings in (tasks or {}).items()}


def _dataset(data: dict[str, Any], task: str, split: str) -> dict[str, str | None]:
    """The ``model-index`` dataset of a task's split: the Hub dataset, else the task name and the file's name."""
    if data.get("hub_dataset"):
        name = data["hub_dataset"] + (f" ({data['hub_config']})" if data.get("hub_config") else "")
        return {"dataset_type": data["hub_dataset"], "dataset_name": name, "dataset_config": data.get("hub_config")}
    source = data.get(split)
    name = f"{task} ({os.path.basename(source)})" if source else task
    return {"dataset_type": task, "dataset_name": name, "dataset_config": None}


def scalar_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """The numeric top-level metrics of one saved evaluation, headline first (nested per-class tables left out)."""
    metrics = evaluation["metrics"]
    numeric = {
        name: float(value)
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    headline = evaluation["headline"]
    return {headline: numeric.pop(headline), **numeric} if headline in numeric else numeric


def eval_results(
    config: MultiTaskConfig, evaluations: list[dict[str, Any]], data: dict[str, dict[str, Any]]
) -> list[EvalResult]:
    """One ``EvalResult`` per task, split and numeric metric; ``metric_name`` names the task, so results stay
    apart when two tasks share a Hub dataset."""
    results = []
    for evaluation in evaluations:
        task, split = evaluation["task"], evaluation["split"]
        task_type = hub_task(config, task)
        if task_type is None:
            continue
        for metric, value in scalar_metrics(evaluation).items():
            results.append(
                EvalResult(
                    task_type=task_type,
                    task_name=task_type.replace("-", " ").capitalize(),
                    **_dataset(data.get(task, {}), task, split),
                    dataset_split=split,
                    metric_type=metric,
                    metric_name=f"{task} {metric}",
                    metric_value=value,
                )
            )
    return results


def card_data(
    config: MultiTaskConfig, repo_id: str, evaluations: list[dict[str, Any]] | None, recipe: str | None
) -> ModelCardData:
    """The card's YAML metadata."""
    data = recipe_data(recipe)
    hub_tasks = [hub_task(config, task) for task in config.tasks]
    datasets = [data.get(task, {}).get("hub_dataset") for task in config.tasks]
    return ModelCardData(
        library_name=LIBRARY_NAME,
        tags=[tag for tag in (*TAGS, config.encoder.get("model_type"), *hub_tasks) if tag],
        base_model=hub_base_model(config),
        datasets=sorted({name for name in datasets if name}) or None,
        # model_name only names the model-index; without results it would be a stray key.
        model_name=repo_id.split("/")[-1] if evaluations else None,
        eval_results=eval_results(config, evaluations, data) if evaluations else None,
    )


def _tasks_section(config: MultiTaskConfig) -> list[str]:
    lines = ["## Tasks", "", "| task | type | labels |", "|---|---|---|"]
    for name, spec in config.tasks.items():
        labels = ", ".join(f"`{label}`" for label in spec["labels"]) or "—"
        lines.append(f"| {name} | {spec['type'].replace('_', ' ')} | {labels} |")
    return lines


def _evaluation_section(evaluations: list[dict[str, Any]] | None) -> list[str]:
    lines = ["## Evaluation", ""]
    if not evaluations:
        return [*lines, "No evaluation results were saved with this model."]
    lines += [
        "Scores of the training run's final evaluation; each task's first metric is its headline metric, the "
        "one that model selection weighs.",
        "",
        "| task | split | metric | value |",
        "|---|---|---|---|",
    ]
    for evaluation in evaluations:
        for metric, value in scalar_metrics(evaluation).items():
            lines.append(f"| {evaluation['task']} | {evaluation['split']} | {metric} | {value:.4f} |")
    return lines


def _mtl_usage(config: MultiTaskConfig, repo_id: str) -> list[str]:
    return [
        "### With mtl-nlp",
        "",
        "```python",
        "from mtl_nlp import MultiTaskPipeline",
        "",
        f'predict = MultiTaskPipeline("{repo_id}")',
        "# The encoder runs once per batch, then every task's head, decoded as the evaluation scored it.",
        f'print(predict("{EXAMPLE_TEXT}"))',
        "```",
    ]


def _stock_usage(config: MultiTaskConfig, repo_id: str, exported_tasks: list[str]) -> list[str]:
    if not exported_tasks:
        return [
            "### With transformers alone",
            "",
            "Any task can be exported as a stock transformers model with "
            "`mtl-nlp export MODEL_DIR --task NAME OUT_DIR`.",
        ]
    lines = [
        "### With transformers alone",
        "",
        f"Each task is also a stock transformers model in `{EXPORTS_FOLDER}/<task>/`, with the same outputs as "
        "the multi-task model; it needs no mtl-nlp.",
    ]
    for task in exported_tasks:
        auto_class = config.tasks[task]["head"]["auto_class"]
        pipeline_task = hub_task(config, task)
        folder = f"{EXPORTS_FOLDER}/{task}"
        has_pipeline = pipeline_task in SUPPORTED_TASKS
        code = [
            "",
            "```python",
            f"from transformers import {auto_class}, AutoTokenizer" + (", pipeline" if has_pipeline else ""),
            "",
            f'model = {auto_class}.from_pretrained("{repo_id}", subfolder="{folder}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}", subfolder="{folder}")',
        ]
        if has_pipeline:
            code += [
                f'predict = pipeline("{pipeline_task}", model=model, tokenizer=tokenizer)',
                f'print(predict("{EXAMPLE_TEXT}"))',
            ]
        else:
            code.append(f'print(model(**tokenizer("{EXAMPLE_TEXT}", return_tensors="pt")))')
        lines += [*code, "```"]
    return lines


def build_model_card(
    config: MultiTaskConfig,
    repo_id: str,
    evaluations: list[dict[str, Any]] | None,
    recipe: str | None,
    exported_tasks: list[str],
) -> ModelCard:
    """The card of the multi-task model ``config`` published as ``repo_id``.

    ``evaluations`` are the run's saved final evaluations (``eval_results.json``), ``recipe`` the recipe's YAML
    text, ``exported_tasks`` the tasks uploaded as stock models under ``tasks/<task>/``.
    """
    name = repo_id.split("/")[-1]
    base = hub_base_model(config)
    encoder = f"[{base}](https://huggingface.co/{base})" if base else f"`{config.encoder.get('model_type')}`"
    lines = [
        f"# {name}",
        "",
        f"A multi-task model made with [mtl-nlp]({PROJECT_URL}): one shared {encoder} encoder and one stock "
        f"transformers head per task ({', '.join(config.tasks)}), trained jointly.",
        "",
        *_tasks_section(config),
        "",
        *_evaluation_section(evaluations),
        "",
        "## Usage",
        "",
        *_mtl_usage(config, repo_id),
        "",
        *_stock_usage(config, repo_id, exported_tasks),
        "",
        "## Training recipe",
        "",
    ]
    lines += ["```yaml", recipe.rstrip(), "```"] if recipe else ["The recipe was not saved with this model."]
    metadata = card_data(config, repo_id, evaluations, recipe).to_yaml()
    return ModelCard(f"---\n{metadata}\n---\n\n" + "\n".join(lines) + "\n", ignore_metadata_errors=False)
