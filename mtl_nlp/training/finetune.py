"""The fine-tuning stage (MT-DNN's second stage): after joint training, each chosen task continues alone from the
joint model's weights, with a fresh optimizer, warm-up and learning rate of its own.

Each task's run is an ordinary training stage (:func:`~mtl_nlp.training.stage.train_stage`) of a one-task recipe
derived from the joint one (:func:`stage_recipe`), on a copy of the joint model that keeps only the task's head and
own layers (:meth:`~mtl_nlp.modeling.MultiTaskModel.single_task`); it writes to ``output_dir/finetuned/<task>/``.
The joint model is only read. ``output_dir/reports/finetune_summary.md`` and ``.json`` set each task's scores
before and after the stage side by side.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from accelerate.utils import set_seed
from transformers import PretrainedConfig

from ..config import RecipeConfig, load_recipe, recipe_from_dict
from ..errors import TrainingError
from ..evaluation.reports import comparison_table, read_eval_results, write_table_files
from ..modeling.saved import load_saved_model
from .accelerator import build_accelerator
from .callbacks import TrainerCallback
from .optimization import resolve_learning_rate
from .stage import RECIPE_FILE, TrainingResult, prepare_tasks, train_stage
from .tracking import check_trackers

logger = logging.getLogger(__name__)

FINETUNED_FOLDER = "finetuned"
SUMMARY_NAME = "finetune_summary"


# ``finetune.learning_rate: auto`` is this fraction of the joint run's peak rate: the stage starts from weights that
# are already fine-tuned. benchmarks/joint_vs_single.py measured a quarter against the backbone's own rate.
AUTO_FRACTION_OF_JOINT_RATE = 0.25


def stage_learning_rate(recipe: RecipeConfig, encoder_config: PretrainedConfig) -> float:
    """The stage's peak learning rate: ``finetune.learning_rate``, or with ``auto`` a quarter of the joint run's."""
    if recipe.finetune.learning_rate != "auto":
        return recipe.finetune.learning_rate
    return AUTO_FRACTION_OF_JOINT_RATE * resolve_learning_rate(recipe.training, encoder_config)


def stage_recipe(recipe: RecipeConfig, task: str, learning_rate: float) -> RecipeConfig:
    """The recipe of ``task``'s fine-tuning run: the task alone (its loss and selection weights at 1), the model
    and training settings of ``recipe`` with the ``finetune`` section's schedule, peak ``learning_rate``, and
    ``output_dir/finetuned/<task>`` as its output directory. Sections that shape joint training (sampling but for
    ``group_by_length``, loss weighting, …) take their defaults."""
    stage, joint = recipe.finetune, recipe.to_dict()
    run_name = joint["training"]["run_name"] or Path(recipe.output_dir).name
    training = joint["training"] | {
        "epochs": stage.epochs,
        "max_steps": stage.max_steps,
        "learning_rate": learning_rate,
        "warmup_ratio": stage.warmup_ratio,
        "run_name": f"{run_name}-finetune-{task}",
    }
    return recipe_from_dict(
        {
            "tasks": {task: joint["tasks"][task] | {"loss_weight": 1.0, "selection_weight": 1.0}},
            "model": joint["model"],
            "output_dir": str(Path(joint["output_dir"]) / FINETUNED_FOLDER / task),
            "training": training,
            "sampling": {"group_by_length": recipe.sampling.group_by_length},
        }
    )


def finetune(recipe: RecipeConfig, callbacks: Sequence[TrainerCallback] = ()) -> dict[str, TrainingResult]:
    """Fine-tune each task of ``recipe.finetune`` (its defaults when the recipe has no such section) alone from the
    joint model in ``output_dir/model``, which is only read. Each task's run goes to ``output_dir/finetuned/<task>/``,
    replacing an earlier one; the scores before and after, to ``output_dir/reports/finetune_summary.md`` and
    ``.json``. ``callbacks`` join each task's trainer. Every task's data is checked before any training."""
    if recipe.finetune is None:
        recipe = recipe_from_dict(recipe.to_dict() | {"finetune": {}})
    output_dir = Path(recipe.output_dir)
    check_trackers(recipe.training.report_to)
    accelerator = build_accelerator(recipe.training)
    joint, tokenizer = load_saved_model(output_dir / "model")
    learning_rate = stage_learning_rate(recipe, joint.encoder.config)
    recipes = {task: stage_recipe(recipe, task, learning_rate) for task in recipe.finetune.tasks or recipe.tasks}
    with accelerator.main_process_first():
        prepared = {task: prepare_tasks(task_recipe, tokenizer) for task, task_recipe in recipes.items()}
    for task, tasks in prepared.items():
        labels, saved = tasks[task].description()["labels"], joint.config.tasks[task]["labels"]
        if labels != saved:
            raise TrainingError(
                f"tasks.{task}: the task's labels ({', '.join(labels)}) are not the joint model's "
                f"({', '.join(saved)}); its data or labels changed since the joint run. Give the data and labels "
                "the joint model was trained on."
            )
    results = {}
    for task, task_recipe in recipes.items():
        task_dir = Path(task_recipe.output_dir)
        if accelerator.is_main_process and task_dir.exists():
            logger.info("Replacing the earlier fine-tuning run in %s", task_dir)
            shutil.rmtree(task_dir)
        accelerator.wait_for_everyone()
        set_seed(recipe.training.seed)
        header = (
            f"# The fine-tuning stage of task {task}: trained alone from the joint model {output_dir / 'model'} "
            f"(recipe: {output_dir / RECIPE_FILE}),\n# with the settings below.\n"
        )
        results[task] = train_stage(
            joint.single_task(task), prepared[task], task_recipe, accelerator, callbacks=callbacks, recipe_header=header
        )
    if accelerator.is_main_process:
        rows = score_rows(read_eval_results(output_dir / "model") or [], results)
        table = comparison_table(rows, before=("joint", "joint"), after=("finetuned", "fine-tuned"))
        write_table_files(output_dir / "reports", SUMMARY_NAME, rows, table)
        print(f"\nFine-tuning stage\n{table}\nFine-tuned runs: {output_dir / FINETUNED_FOLDER}")
    accelerator.wait_for_everyone()
    return results


def load_run_recipe(run_dir: str | Path, overrides: Sequence[str] = ()) -> RecipeConfig:
    """The recipe of the finished run in ``run_dir`` (its ``recipe.yaml`` with ``overrides`` applied), writing to
    ``run_dir`` wherever the run was first written; a clear error when ``run_dir`` holds no finished run."""
    run_dir = Path(run_dir)
    missing = [name for name in ("model", RECIPE_FILE) if not (run_dir / name).exists()]
    if missing:
        raise TrainingError(
            f"{run_dir}: not the output directory of a finished training run (it has no {' and no '.join(missing)}). "
            "Give the output_dir of a run that `mtl-nlp train` completed."
        )
    # JSON text is a YAML string: the path survives the override's YAML reading whatever its characters.
    return load_recipe(run_dir / RECIPE_FILE, [f"output_dir={json.dumps(str(run_dir))}", *overrides])


def score_rows(joint: list[dict[str, Any]], finetuned: dict[str, TrainingResult]) -> list[dict[str, Any]]:
    """Per fine-tuned task and split: the headline metric, the joint model's value (from its ``eval_results.json``;
    None where it was not scored), the fine-tuned model's, and the difference."""
    before = {(record["task"], record["split"]): record["headline_value"] for record in joint}
    rows = []
    for task, result in finetuned.items():
        for evaluation in result.evaluations:
            was = before.get((task, evaluation.split))
            rows.append(
                {
                    "task": task,
                    "split": evaluation.split,
                    "metric": evaluation.headline,
                    "joint": was,
                    "finetuned": evaluation.headline_value,
                    "difference": None if was is None else evaluation.headline_value - was,
                }
            )
    return rows
