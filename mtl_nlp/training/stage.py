"""One training stage: a model trained on its prepared tasks, then the model, the recipe as run and the reports
written to the recipe's ``output_dir``. The joint run (:func:`mtl_nlp.train`) is a stage, and so is each task's
fine-tuning run (:mod:`mtl_nlp.training.finetune`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from accelerate import Accelerator

from ..config import RecipeConfig
from ..evaluation.reports import summary_table, write_eval_results, write_summary, write_task_report
from ..modeling import MultiTaskModel
from ..tasks import Task, TaskEvaluation, build_task
from .callbacks import TrainerCallback
from .trainer import MultiTaskTrainer

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.yaml"


@dataclass
class TrainingResult:
    """What a run produced: where the model and reports are, the final evaluations and, when the recipe has a
    ``finetune`` section, each fine-tuned task's own run."""

    model_dir: Path
    report_dir: Path
    evaluations: list[TaskEvaluation]
    finetuned: dict[str, TrainingResult] = field(default_factory=dict)


def prepare_tasks(recipe: RecipeConfig, tokenizer) -> dict[str, Task]:
    """Build, load, check and encode every task of the recipe; bad data fails here, before any training."""
    tasks = {name: build_task(name, config, tokenizer) for name, config in recipe.tasks.items()}
    for name, task in tasks.items():
        task.prepare()
        sizes = ", ".join(f"{split} {len(dataset)}" for split, dataset in task.raw.items())
        logger.info("Task %s (%s): %s; %d labels", name, task.type_name, sizes, len(task.labels or []))
    return tasks


def train_stage(
    model: MultiTaskModel,
    tasks: dict[str, Task],
    recipe: RecipeConfig,
    accelerator: Accelerator,
    resume_from: Path | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    recipe_header: str = "",
) -> TrainingResult:
    """Train ``model`` on ``tasks`` as ``recipe`` says, then write to its ``output_dir``: ``model/`` (with the
    recipe as run and the final scores), ``reports/`` and ``recipe.yaml`` (after ``recipe_header``, YAML comment
    lines). The model and optimizer leave ``accelerator`` at the end, so that it can serve another stage."""
    if recipe.model.freeze_encoder:
        model.freeze_encoder()
    trainable, total = model.parameter_counts()
    logger.info("Parameters: %d trainable of %d (%.2f %%)", trainable, total, 100 * trainable / total)
    trainer = MultiTaskTrainer(model, tasks, recipe, accelerator, callbacks)
    evaluations = trainer.train(resume_from=resume_from)

    output_dir = Path(recipe.output_dir)
    model_dir, report_dir = output_dir / "model", output_dir / "reports"
    trainer.save_model(model_dir)
    if accelerator.is_main_process:
        recipe_text = recipe_header + yaml.safe_dump(trainer.recipe_as_run(), sort_keys=False)
        # The model directory keeps its recipe and final scores too, so that it can be published on its own.
        for directory in (output_dir, model_dir):
            (directory / RECIPE_FILE).write_text(recipe_text, encoding="utf-8")
        write_eval_results(model_dir, evaluations)
        for evaluation in evaluations:
            write_task_report(report_dir, evaluation)
            tasks[evaluation.task].plot(evaluation, report_dir)
        write_summary(report_dir, evaluations)
        headlines = {e.task: e.headline for e in evaluations}
        from ..evaluation.plots import plot_training_curves  # on use: see mtl_nlp.evaluation

        plot_training_curves(trainer.history.records, headlines, report_dir / "training_curves.png")
        print(f"\n{summary_table(evaluations)}\nModel: {model_dir}\nReports: {report_dir}")
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return TrainingResult(model_dir, report_dir, evaluations)
