"""Score a saved multi-task model on any file, without training: the same reports as a training run."""

from __future__ import annotations

from pathlib import Path

from accelerate import Accelerator

from ..errors import RecipeError
from ..modeling import MultiTaskModel
from ..paths import load_pretrained
from ..tasks import Task, TaskEvaluation, task_from_spec
from ..tokenization import load_tokenizer
from .evaluator import evaluate_task
from .reports import write_task_report

SPLIT = "test"


def saved_task(model: MultiTaskModel, model_dir: str | Path, name: str, file: str) -> Task:
    """Rebuild task ``name`` from the model's saved config, with its saved labels, reading ``file``."""
    if name not in model.config.tasks:
        raise RecipeError(f"--task {name}: the model has no such task; it has {', '.join(model.config.tasks)}.")
    return task_from_spec(name, model.config.tasks[name], load_tokenizer(str(model_dir)), test_file=file)


def evaluate_file(
    model_dir: str | Path, task_name: str, file: str, output_dir: str | Path, batch_size: int = 64
) -> TaskEvaluation:
    """Score task ``task_name`` of the model in ``model_dir`` on ``file``; write its reports to ``output_dir``."""
    model = load_pretrained(MultiTaskModel.from_pretrained, str(model_dir), "saved model")
    task = saved_task(model, model_dir, task_name, file)
    task.prepare()
    accelerator = Accelerator()
    evaluation = evaluate_task(accelerator.prepare(model), task, SPLIT, accelerator, batch_size)
    if accelerator.is_main_process:
        write_task_report(output_dir, evaluation)
        task.plot(evaluation, Path(output_dir))
    return evaluation
