"""Run a model over a task's split and score it: length-grouped batches, inference mode, all ranks gathered."""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm

from ..modeling import MultiTaskModel
from ..tasks import Task, TaskEvaluation


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of examples of similar length, longest first (little padding, early out-of-memory)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@torch.inference_mode()
def predict_split(
    model: MultiTaskModel, task: Task, split: str, accelerator: Accelerator, batch_size: int
) -> tuple[list[np.ndarray], float]:
    """Per-example predictions of ``task`` on ``split`` (in dataset order) and the mean loss per batch.

    Each rank scores every ``num_processes``-th batch; the predictions are gathered once at the end, so no
    example is scored twice or dropped. The unwrapped model runs, since ranks may score different numbers
    of batches and a DDP forward would wait for the others.
    """
    model = accelerator.unwrap_model(model)
    dataset = task.encoded[split].select_columns(task.model_columns())
    collate = task.collator()
    batches = eval_batches(task.lengths(split), batch_size)[accelerator.process_index :: accelerator.num_processes]
    was_training = model.training
    model.eval()
    scored, losses = [], []
    progress = tqdm(
        batches, desc=f"Evaluating {task.name}/{split}", disable=not accelerator.is_main_process, leave=False
    )
    for indices in progress:
        batch = {name: tensor.to(accelerator.device) for name, tensor in collate(dataset[indices]).items()}
        with accelerator.autocast():
            output = model(task=task.name, **batch)
        losses.append(float(output.loss))
        scored.extend(zip(indices.tolist(), task.batch_predictions(output, batch)))
    model.train(was_training)
    if accelerator.num_processes > 1:
        scored = gather_object(scored)
        losses = gather_object(losses)
    predictions: list[np.ndarray] = [None] * len(dataset)  # type: ignore[list-item]
    for index, prediction in scored:
        predictions[index] = prediction
    return predictions, float(np.mean(losses)) if losses else float("nan")


def evaluate_task(
    model: MultiTaskModel, task: Task, split: str, accelerator: Accelerator, batch_size: int
) -> TaskEvaluation:
    """Score one task on one split; the loss joins the task's own metrics."""
    predictions, loss = predict_split(model, task, split, accelerator, batch_size)
    evaluation = task.evaluate(split, predictions)
    evaluation.metrics["loss"] = loss
    return evaluation
