"""Score a saved multi-task model on any file, without training: the same reports as a training run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from ..errors import RecipeError
from ..modeling.saved import load_saved_model
from ..tasks import TaskEvaluation, task_from_description
from .evaluator import evaluate_task
from .reports import write_task_report

SPLIT = "test"


def evaluate_file(
    model_dir: str | Path,
    task_name: str,
    file: str,
    output_dir: str | Path,
    batch_size: int = 64,
    load: Callable[[str | Path], tuple[Any, PreTrainedTokenizerBase]] = load_saved_model,
) -> TaskEvaluation:
    """Score task ``task_name`` of the model in ``model_dir`` on ``file``; write its reports to ``output_dir``.

    ``load`` reads the directory: the saved PyTorch model by default, or another runner of its heads (e.g.
    ``mtl_nlp.serving.onnx_backend.load_onnx_model`` for an ONNX export), which is scored without a loss.
    """
    model, tokenizer = load(model_dir)
    if task_name not in model.config.tasks:
        raise RecipeError(f"--task {task_name}: the model has no such task; it has {', '.join(model.config.tasks)}.")
    task = task_from_description(task_name, model.config.tasks[task_name], tokenizer, test_file=file)
    task.prepare()
    accelerator = Accelerator()
    if isinstance(model, torch.nn.Module):
        model = accelerator.prepare(model)
    evaluation = evaluate_task(model, task, SPLIT, accelerator, batch_size)
    if accelerator.is_main_process:
        write_task_report(output_dir, evaluation)
        task.plot(evaluation, Path(output_dir))
    return evaluation
