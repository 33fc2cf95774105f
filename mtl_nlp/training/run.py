"""``train(recipe)``: the whole run, top to bottom — data, model, training, evaluation, reports, saved model, and
the fine-tuning stage when the recipe has one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from accelerate.utils import set_seed

from ..config import RecipeConfig
from ..errors import TrainingError
from ..modeling import MultiTaskModel
from ..tokenization import load_tokenizer
from .accelerator import build_accelerator
from .callbacks import TrainerCallback
from .checkpoint import CheckpointDirectory
from .distillation import add_teacher_probabilities, check_teachers
from .finetune import finetune
from .stage import TrainingResult, prepare_tasks, train_stage
from .tracking import check_trackers


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
    """Train the recipe's tasks jointly, then write the model, the reports and a summary to ``output_dir``; with a
    ``finetune`` section, then fine-tune its tasks each alone (:func:`mtl_nlp.training.finetune.finetune`).

    ``resume``: ``True`` continues from the latest checkpoint in ``output_dir``, a path from that checkpoint.
    ``callbacks`` join the joint run's trainer (:mod:`mtl_nlp.training.callbacks`).
    """
    checkpoint = find_checkpoint(recipe, resume)
    check_trackers(recipe.training.report_to)  # before any data is read
    accelerator = build_accelerator(recipe.training)
    set_seed(recipe.training.seed)  # before the new heads are initialised, so that runs repeat
    tokenizer = load_tokenizer(recipe.model.name_or_path, recipe.model.revision, recipe.model.trust_remote_code)
    teachers = check_teachers(recipe, tokenizer)  # before any data is read
    with accelerator.main_process_first():
        tasks = prepare_tasks(recipe, tokenizer)
        batch_size = recipe.training.eval_batch_size
        add_teacher_probabilities(tasks, teachers, recipe.distillation, accelerator.device, batch_size)
    model = MultiTaskModel.from_backbone(
        recipe.model.name_or_path,
        {name: task.description() for name, task in tasks.items()},
        sharing=dataclasses.asdict(recipe.model.sharing),
        revision=recipe.model.revision,
        trust_remote_code=recipe.model.trust_remote_code,
    )
    result = train_stage(model, tasks, recipe, accelerator, checkpoint, callbacks)
    if recipe.finetune is not None:
        del model  # the joint weights are on disk; the stage reads them from there
        result.finetuned = finetune(recipe)
    return result
