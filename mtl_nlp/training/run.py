"""``train(recipe)``: the whole run, top to bottom — data, model, training, evaluation, reports, saved model."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from accelerate.utils import set_seed

from ..config import RecipeConfig
from ..errors import TrainingError
from ..evaluation.reports import summary_table, write_eval_results, write_summary, write_task_report
from ..modeling import MultiTaskModel
from ..tasks import Task, TaskEvaluation, build_task
from ..tokenization import load_tokenizer
from .accelerator import build_accelerator
from .callbacks import TrainerCallback
from .checkpoint import CheckpointDirectory
from .tracking import check_trackers
from .trainer import MultiTaskTrainer

logger = logging.getLogger(__name__)

RECIPE_FILE = "recipe.yaml"


@dataclass
class TrainingResult:
    """What a run produced: where the model and reports are, and the final evaluations."""

    model_dir: Path
    report_dir: Path
    evaluations: list[TaskEvaluation]


def prepare_tasks(recipe: RecipeConfig, tokenizer) -> dict[str, Task]:
    """Build, load, check and encode every task of the recipe; bad data fails here, before any training."""
    tasks = {name: build_task(name, config, tokenizer) for name, config in recipe.tasks.items()}
    for name, task in tasks.items():
        task.prepare()
        sizes = ", ".join(f"{split} {len(dataset)}" for split, dataset in task.raw.items())
        logger.info("Task %s (%s): %s; %d labels", name, task.type_name, sizes, len(task.labels or []))
    return tasks


def find_checkpoint(recipe: RecipeConfig, resume: str | Path | bool) -> Path | None:
    """The checkpoint to resume from: ``True`` means the latest under the run's ``output_dir/checkpoints``."""
    if resume is False or resume is None:
        return None
    if resume is True:
        root = Path(recipe.output_dir) / "checkpoints"
        latest = CheckpointDirectory(root, keep=1).latest()
        if latest is None:
            raise TrainingError(f"{root}: no finished checkpoint to resume from; start without --resume.")
        return latest
    path = Path(resume)
    if not path.is_dir():
        raise TrainingError(f"{path}: checkpoint directory not found (give a step-* directory of a run).")
    return path


def train(
    recipe: RecipeConfig, resume: str | Path | bool = False, callbacks: Sequence[TrainerCallback] = ()
) -> TrainingResult:
    """Train the recipe's tasks jointly, then write the model, the reports and a summary to ``output_dir``.

    ``resume``: ``True`` continues from the latest checkpoint in ``output_dir``, a path from that checkpoint.
    ``callbacks`` join the trainer's own (:mod:`mtl_nlp.training.callbacks`).
    """
    checkpoint = find_checkpoint(recipe, resume)
    check_trackers(recipe.training.report_to)  # before any data is read
    accelerator = build_accelerator(recipe.training)
    set_seed(recipe.training.seed)  # before the new heads are initialised, so that runs repeat
    output_dir = Path(recipe.output_dir)
    tokenizer = load_tokenizer(recipe.model.name_or_path, recipe.model.revision, recipe.model.trust_remote_code)
    with accelerator.main_process_first():
        tasks = prepare_tasks(recipe, tokenizer)
    model = MultiTaskModel.from_backbone(
        recipe.model.name_or_path,
        {name: task.description() for name, task in tasks.items()},
        sharing=dataclasses.asdict(recipe.model.sharing),
        revision=recipe.model.revision,
        trust_remote_code=recipe.model.trust_remote_code,
    )
    if recipe.model.freeze_encoder:
        model.freeze_encoder()
    trainable, total = model.parameter_counts()
    logger.info("Parameters: %d trainable of %d (%.2f %%)", trainable, total, 100 * trainable / total)
    trainer = MultiTaskTrainer(model, tasks, recipe, accelerator, callbacks)
    evaluations = trainer.train(resume_from=checkpoint)

    model_dir, report_dir = output_dir / "model", output_dir / "reports"
    trainer.save_model(model_dir)
    if accelerator.is_main_process:
        recipe_text = yaml.safe_dump(trainer.recipe_as_run(), sort_keys=False)
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
    return TrainingResult(model_dir, report_dir, evaluations)
