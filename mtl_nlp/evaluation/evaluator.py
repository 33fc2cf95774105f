"""Run a model over a task's split and score it: length-grouped batches, inference mode, all ranks gathered.

The model is a :class:`MultiTaskModel`, or another runner of its heads with the same ``forward_heads`` (ONNX
Runtime, ``mtl_nlp.serving.onnx_backend.OnnxHeads``); such a runner computes no loss, so its scores have none.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from tqdm.auto import tqdm
from transformers.utils import ModelOutput

from ..modeling import MultiTaskModel
from ..modeling.model import ENCODER_INPUTS
from ..tasks import Task, TaskEvaluation


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of examples of similar length, longest first (little padding, early out-of-memory)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _scored_output(model: Any, task: str, batch: dict[str, torch.Tensor]) -> ModelOutput:
    """The head's output for a batch: with its loss from a PyTorch model, without one from another runner."""
    if isinstance(model, torch.nn.Module):
        return model(task=task, **batch)
    return model.forward_heads([task], **{name: batch[name] for name in ENCODER_INPUTS if name in batch})[task]


@torch.inference_mode()
def predict_split(
    model: MultiTaskModel | Any, task: Task, split: str, accelerator: Accelerator, batch_size: int
) -> tuple[list[np.ndarray], float]:
    """Per-example predictions of ``task`` on ``split`` (in dataset order) and the mean loss per batch (NaN from a
    runner that computes no loss).

    Each rank scores every ``num_processes``-th batch; the predictions are gathered once at the end, so no
    example is scored twice or dropped. The unwrapped model runs, since ranks may score different numbers
    of batches and a DDP forward would wait for the others.
    """
    is_module = isinstance(model, torch.nn.Module)
    if is_module:
        model = accelerator.unwrap_model(model)
    dataset = task.encoded[split].select_columns(task.model_columns())
    collate = task.collator()
    batches = eval_batches(task.lengths(split), batch_size)[accelerator.process_index :: accelerator.num_processes]
    was_training = is_module and model.training
    if is_module:
        model.eval()
    scored, losses = [], []
    progress = tqdm(
        batches, desc=f"Evaluating {task.name}/{split}", disable=not accelerator.is_main_process, leave=False
    )
    for indices in progress:
        batch = {name: tensor.to(accelerator.device) for name, tensor in collate(dataset[indices]).items()}
        with accelerator.autocast():
            output = _scored_output(model, task.name, batch)
        if output.get("loss") is not None:
            losses.append(float(output.loss))
        scored.extend(zip(indices.tolist(), task.batch_predictions(output, batch)))
    if is_module:
        model.train(was_training)
    if accelerator.num_processes > 1:
        scored = gather_object(scored)
        losses = gather_object(losses)
    predictions: list[np.ndarray] = [None] * len(dataset)  # type: ignore[list-item]
    for index, prediction in scored:
        predictions[index] = prediction
    return predictions, float(np.mean(losses)) if losses else float("nan")


def evaluate_task(
    model: MultiTaskModel | Any, task: Task, split: str, accelerator: Accelerator, batch_size: int
) -> TaskEvaluation:
    """Score one task on one split; the loss (from a PyTorch model) joins the task's own metrics."""
    predictions, loss = predict_split(model, task, split, accelerator, batch_size)
    evaluation = task.evaluate(split, predictions)
    if isinstance(model, torch.nn.Module):
        evaluation.metrics["loss"] = loss
    return evaluation
