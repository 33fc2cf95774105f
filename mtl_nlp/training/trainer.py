"""``MultiTaskTrainer``: the Accelerate training loop over a multi-task batch stream."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, send_to_device, set_seed
from safetensors.torch import load_model
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..config import RecipeConfig, TrainingConfig
from ..data.sampling import MultiTaskBatchSampler
from ..evaluation.evaluator import evaluate_task
from ..modeling import MultiTaskModel
from ..tasks import Task, TaskEvaluation
from .checkpoint import atomic_directory
from .history import TrainingHistory
from .selection import ModelSelection, aggregate_score

logger = logging.getLogger(__name__)


class MultiTaskBatches(Dataset):
    """Maps a sampler key ``(task, example_indices)`` to that task's padded batch, in one Arrow read."""

    def __init__(self, tasks: dict[str, Task], pad_to_multiple_of: int | None = None) -> None:
        self.columns = {
            name: task.encoded["train"].select_columns(task.model_columns()) for name, task in tasks.items()
        }
        self.collators = {name: task.collator(pad_to_multiple_of) for name, task in tasks.items()}

    def __getitem__(self, key: tuple[str, list[int]]) -> tuple[str, dict[str, torch.Tensor]]:
        task, indices = key
        return task, self.collators[task](self.columns[task][indices])


def build_accelerator(training: TrainingConfig) -> Accelerator:
    """An Accelerator for a multi-task run: one task's head is idle at each step, so DDP must expect unused
    parameters."""
    return Accelerator(
        mixed_precision=training.mixed_precision,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def build_optimizer(model: torch.nn.Module, training: TrainingConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices only (not on biases and norm weights)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": training.weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]
    fused = torch.cuda.is_available() and all(p.is_cuda for p in parameters)
    return torch.optim.AdamW(groups, lr=training.learning_rate, fused=fused or None)


class MultiTaskTrainer:
    """Trains a :class:`MultiTaskModel` on several tasks with one optimizer, one task's batch per micro-step.

    Works unchanged on one CPU, one GPU or many processes (``accelerate launch``): the batch sampler shards
    each task's batches across ranks and every rank trains the same task at the same step.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        tasks: dict[str, Task],
        recipe: RecipeConfig,
        accelerator: Accelerator | None = None,
    ) -> None:
        self.recipe = recipe
        self.training = recipe.training
        self.tasks = tasks
        self.accelerator = accelerator or build_accelerator(self.training)
        self.output_dir = Path(recipe.output_dir)
        set_seed(self.training.seed)
        self.sampler = MultiTaskBatchSampler(
            {name: task.lengths("train") for name, task in tasks.items()},
            {name: task.config.batch_size for name, task in tasks.items()},
            seed=self.training.seed,
            num_replicas=self.accelerator.num_processes,
            rank=self.accelerator.process_index,
        )
        self.total_steps = self.training.max_steps or math.ceil(
            self.training.epochs * self.sampler.steps_per_epoch / self.training.gradient_accumulation_steps
        )
        optimizer = build_optimizer(model, self.training)
        self.scheduler = get_scheduler(
            self.training.lr_scheduler,
            optimizer,
            num_warmup_steps=math.ceil(self.training.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.history = TrainingHistory(self.output_dir / "metrics.jsonl", enabled=self.accelerator.is_main_process)
        self.selection = ModelSelection(patience=self.training.early_stopping_patience)
        self.step = 0

    @property
    def best_model_dir(self) -> Path:
        """Where the model of the best evaluation so far is kept."""
        return self.output_dir / "best"

    def save_model(self, directory: str | Path) -> None:
        """Write the unwrapped model and the tokenizer to ``directory`` atomically (main process only)."""
        if self.accelerator.is_main_process:
            with atomic_directory(directory) as staging:
                self.accelerator.unwrap_model(self.model).save_pretrained(staging)
                next(iter(self.tasks.values())).tokenizer.save_pretrained(staging)
        self.accelerator.wait_for_everyone()

    def _batches(self) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
        on_gpu = self.accelerator.device.type == "cuda"
        pad_multiple = 8 if on_gpu and self.training.mixed_precision != "no" else None
        loader = DataLoader(
            MultiTaskBatches(self.tasks, pad_multiple),
            sampler=self.sampler,
            batch_size=None,
            num_workers=self.training.dataloader_workers,
            pin_memory=on_gpu,
        )
        for task, batch in loader:
            yield task, send_to_device(batch, self.accelerator.device, non_blocking=on_gpu)

    def train(self) -> list[TaskEvaluation]:
        """Train for the configured steps, evaluating on schedule; return the final validation evaluations."""
        accelerator, training = self.accelerator, self.training
        weights = {name: task.config.loss_weight for name, task in self.tasks.items()}
        loss_sums = {name: torch.zeros((), device=accelerator.device) for name in self.tasks}
        loss_counts = dict.fromkeys(self.tasks, 0)
        logger.info(
            "Training %d steps (%d batches per epoch) on %s, %d process(es)",
            self.total_steps,
            self.sampler.steps_per_epoch,
            ", ".join(self.tasks),
            accelerator.num_processes,
        )
        self.model.train()
        progress = tqdm(total=self.total_steps, desc="Training", disable=not accelerator.is_main_process)
        batches = self._batches()
        while self.step < self.total_steps:
            task, batch = next(batches)
            with accelerator.accumulate(self.model):
                loss = self.model(task=task, **batch).loss
                accelerator.backward(loss * weights[task])
                if accelerator.sync_gradients and training.max_grad_norm:
                    accelerator.clip_grad_norm_(self.model.parameters(), training.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            loss_sums[task] += loss.detach()
            loss_counts[task] += 1
            if not accelerator.sync_gradients:
                continue
            if not accelerator.optimizer_step_was_skipped:
                self.scheduler.step()
            self.step += 1
            progress.update(1)
            if self.step % training.log_every_steps == 0 or self.step == self.total_steps:
                progress.set_postfix(self._log_losses(loss_sums, loss_counts))
            if (
                training.eval_every_steps
                and self.step % training.eval_every_steps == 0
                and self.step < self.total_steps
            ):
                self.validate()
                if self.selection.should_stop:
                    logger.info(
                        "Early stopping at step %d: no better aggregate score in %d evaluations",
                        self.step,
                        self.selection.patience,
                    )
                    break
        progress.close()
        final = self.validate()
        best = self.selection.best_step
        if not (training.load_best_at_end and best is not None and best != self.step):
            return final
        logger.info("Loading the best model (step %d, aggregate %.4f)", best, self.selection.best_score)
        load_model(self.accelerator.unwrap_model(self.model), self.best_model_dir / "model.safetensors")
        return self.evaluate("validation")

    def validate(self) -> list[TaskEvaluation]:
        """Evaluate on the validation splits, update model selection and keep the best model on disk."""
        evaluations = self.evaluate("validation")
        if not evaluations:
            return evaluations
        weights = {name: task.config.selection_weight for name, task in self.tasks.items()}
        score = aggregate_score(evaluations, weights)
        improved = self.selection.update(self.step, score)
        self.history.append({"step": self.step, "aggregate": score, "best_step": self.selection.best_step})
        if improved:
            self.save_model(self.best_model_dir)
        return evaluations

    def _log_losses(self, sums: dict[str, torch.Tensor], counts: dict[str, int]) -> dict[str, str]:
        """Record the mean loss per task since the last log (averaged over ranks) and reset the window."""
        means = {}
        for task in sums:
            if counts[task]:
                means[task] = float(self.accelerator.reduce(sums[task], reduction="mean")) / counts[task]
                sums[task].zero_()
                counts[task] = 0
        record = {"step": self.step, "learning_rate": self.scheduler.get_last_lr()[0], "loss": means}
        self.history.append(record)
        return {task: f"{value:.3f}" for task, value in means.items()}

    def evaluate(self, split: str = "validation") -> list[TaskEvaluation]:
        """Score every task that has ``split``; record the metrics in the history and log a summary."""
        evaluations = [
            evaluate_task(self.model, task, split, self.accelerator, self.training.eval_batch_size)
            for task in self.tasks.values()
            if split in task.encoded
        ]
        if evaluations:
            self.history.append({"step": self.step, "split": split, "eval": {e.task: e.metrics for e in evaluations}})
            scores = ", ".join(f"{e.task} {e.headline} {e.headline_value:.4f}" for e in evaluations)
            logger.info("Step %d, %s: %s", self.step, split, scores)
        return evaluations
