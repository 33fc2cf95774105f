"""``MultiTaskTrainer``: the Accelerate training loop over a multi-task batch stream, with events for callbacks."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from torch.utils.data import DataLoader, Dataset

from ..config import RecipeConfig
from ..data.sampling import MultiTaskBatchSampler
from ..errors import TrainingError
from ..evaluation.evaluator import evaluate_task
from ..modeling import MultiTaskModel
from ..tasks import Task, TaskEvaluation
from .accelerator import build_accelerator
from .callbacks import CallbackList, ProgressBar, TrainerCallback
from .checkpoint import CheckpointDirectory, atomic_directory
from .distillation import StudentLoss
from .gradients import combined_backward, gradient_aggregator
from .history import TrainingHistory
from .optimization import build_optimizer, build_scheduler, resolve_learning_rate
from .selection import ModelSelection, aggregate_score
from .state import TrainingState
from .tracking import TrackingCallback
from .weighting import build_weighting

logger = logging.getLogger(__name__)


class MultiTaskBatches(Dataset):
    """Maps a sampler key ``(task, example_indices)`` to that task's padded batch, in one Arrow read."""

    def __init__(self, tasks: dict[str, Task], pad_to_multiple_of: int | None = None) -> None:
        self.columns = {
            name: task.encoded["train"].select_columns(task.training_columns()) for name, task in tasks.items()
        }
        self.collators = {name: task.collator(pad_to_multiple_of) for name, task in tasks.items()}

    def __getitem__(self, key: tuple[str, list[int]]) -> tuple[str, dict[str, torch.Tensor]]:
        task, indices = key
        return task, self.collators[task](self.columns[task][indices])


class MultiTaskTrainer:
    """Trains a :class:`MultiTaskModel` on several tasks with one optimizer.

    Works unchanged on one CPU, one GPU or many processes (``accelerate launch``/``torchrun``): the batch
    sampler shards each task's batches across ranks and every rank trains the same task at the same step.
    Checkpoints (every ``training.save_every_steps``) hold everything needed to continue exactly: model,
    optimizer, gradient scaler and RNG states through Accelerate, and the loop's :class:`TrainingState`.

    The loop announces its events to callbacks (:mod:`mtl_nlp.training.callbacks`): the history file, the
    progress bar and the recipe's trackers are built in; ``callbacks`` adds more.

    The caller seeds the random state (``accelerate.utils.set_seed``) before building the model, so that the
    new heads and the run repeat; :func:`mtl_nlp.train` does.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        tasks: dict[str, Task],
        recipe: RecipeConfig,
        accelerator: Accelerator | None = None,
        callbacks: Sequence[TrainerCallback] = (),
    ) -> None:
        self.recipe = recipe
        self.training = training = recipe.training
        self.tasks = tasks
        self.task_names = list(tasks)
        self.accelerator = accelerator or build_accelerator(training)
        self.output_dir = Path(recipe.output_dir)
        self.sampler = MultiTaskBatchSampler(
            {name: task.lengths("train") for name, task in tasks.items()},
            {name: task.config.batch_size for name, task in tasks.items()},
            recipe.sampling,
            seed=training.seed,
            num_epochs=math.ceil(training.epochs),
            num_replicas=self.accelerator.num_processes,
            rank=self.accelerator.process_index,
        )
        accumulation = training.gradient_accumulation_steps
        self.steps_per_epoch = math.ceil(self.sampler.steps_per_epoch / accumulation)
        self.total_steps = training.max_steps or math.ceil(
            training.epochs * self.sampler.steps_per_epoch / accumulation
        )
        device = self.accelerator.device
        weighting = build_weighting(
            recipe.weighting, {name: task.config.loss_weight for name, task in tasks.items()}
        ).to(device)
        if weighting.needs_shared_gradients:
            shared = model.last_shared_parameters()
            if not shared:
                raise TrainingError(
                    f"weighting.method: {recipe.weighting.method} balances the tasks' gradients at the last shared "
                    "encoder layer, which does not train here (model.freeze_encoder); unfreeze the encoder or use "
                    "another weighting method."
                )
            weighting.watch(shared)
        self.aggregator = gradient_aggregator(
            recipe.weighting, self.accelerator.num_processes, training.mixed_precision
        )
        self.student_loss = StudentLoss(recipe.distillation, tasks, self.total_steps)
        self.learning_rate = resolve_learning_rate(training, model.encoder.config)
        optimizer = build_optimizer(model, training, self.learning_rate, device, weighting.parameters())
        scheduler = build_scheduler(training, optimizer, self.total_steps)
        if training.torch_compile:
            model.compile_encoder_blocks()
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        selection = ModelSelection(patience=training.early_stopping_patience)
        self.state = TrainingState(self.task_names, scheduler, self.sampler, selection, weighting, device)
        self.checkpoints = CheckpointDirectory(self.output_dir / "checkpoints", keep=training.save_total_limit)
        self.history = TrainingHistory(self.output_dir / "metrics.jsonl", enabled=self.accelerator.is_main_process)
        trackers = TrackingCallback(training.report_to, training.run_name or self.output_dir.name)
        self.callbacks = CallbackList([self.history, ProgressBar(), trackers, *callbacks])
        self.stop_reason: str | None = None
        # Index of the first task with a non-finite loss in the accumulation window (-1: none), on the device.
        self.window_nonfinite = torch.tensor(-1, device=device)

    @property
    def step(self) -> int:
        """Optimizer steps taken so far."""
        return self.state.step

    @property
    def best_model_dir(self) -> Path:
        """Where the model of the best evaluation so far is kept."""
        return self.output_dir / "best"

    def recipe_as_run(self) -> dict[str, Any]:
        """The recipe as plain data, with ``learning_rate: auto`` replaced by the rate it stood for."""
        record = self.recipe.to_dict()
        record["training"]["learning_rate"] = self.learning_rate
        return record

    def stop(self, reason: str) -> None:
        """End training after the current step (and its checkpoint, when one is due); callbacks call this."""
        self.stop_reason = reason
        logger.info("Stopping at step %d: %s", self.step, reason)

    def save_model(self, directory: str | Path) -> None:
        """Write the unwrapped model and the tokenizer to ``directory`` atomically (main process only)."""
        if self.accelerator.is_main_process:
            with atomic_directory(directory) as staging:
                self.accelerator.unwrap_model(self.model).save_pretrained(staging)
                next(iter(self.tasks.values())).tokenizer.save_pretrained(staging)
        self.accelerator.wait_for_everyone()

    def _fire(self, event: str, **details: Any) -> None:
        self.callbacks.fire(event, self, **details)

    def _log(self, record: dict[str, Any]) -> None:
        """Add a record to the run's history (the callbacks write it: file, trackers, progress bar)."""
        self.state.history_records += 1
        self._fire("on_log", record=record)

    def _batches(self) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
        on_gpu = self.accelerator.device.type == "cuda"
        pad_multiple = 8 if on_gpu and self.training.mixed_precision != "no" else None
        loader = DataLoader(
            MultiTaskBatches(self.tasks, pad_multiple),
            sampler=self.sampler,
            batch_size=None,
            num_workers=self.training.dataloader_workers,
            pin_memory=on_gpu,
            # Its own generator, so that starting the loader draws nothing from the global RNG and a resumed
            # run's dropout masks equal an uninterrupted run's.
            generator=torch.Generator(),
        )
        for task, batch in loader:
            self.state.batches_consumed += 1
            yield task, send_to_device(batch, self.accelerator.device, non_blocking=on_gpu)

    def train(self, resume_from: str | Path | None = None) -> list[TaskEvaluation]:
        """Train for the configured steps (continuing from checkpoint ``resume_from``), evaluating and
        checkpointing on schedule; return the final evaluations: validation (of the best model with
        ``load_best_at_end``), then test."""
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        logger.info(
            "Training %d steps (%d per epoch) on %s, %d process(es), from step %d",
            self.total_steps,
            self.steps_per_epoch,
            ", ".join(self.tasks),
            self.accelerator.num_processes,
            self.step,
        )
        self._fire("on_train_begin")
        try:
            self._loop()
            if self.checkpoints.latest() != self.checkpoints.final_path(self.step):
                self.save_checkpoint()
            return self._final_validation() + self.evaluate("test")
        finally:
            self._fire("on_train_end")

    def _loop(self) -> None:
        """Optimizer steps until the last, or until a callback or early stopping asks to stop."""
        accelerator, training, state = self.accelerator, self.training, self.state
        self.model.train()
        batches = self._batches()
        window = self.recipe.weighting.window_steps or self.steps_per_epoch
        while state.step < self.total_steps and self.stop_reason is None:
            with accelerator.accumulate(self.model):
                self._forward_backward(batches)
                if not accelerator.sync_gradients:
                    continue
                nonfinite = self._take_nonfinite()
                if nonfinite is not None:
                    self.optimizer.zero_grad(set_to_none=True)
                    self._skip_step(nonfinite)
                    continue
                self._sync_weighting_gradients()
                if training.max_grad_norm:
                    accelerator.clip_grad_norm_(self.model.parameters(), training.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                state.weighting.end_step(lambda tensor: accelerator.reduce(tensor, reduction="mean"))
            state.consecutive_skipped = 0
            if accelerator.optimizer_step_was_skipped:
                state.skipped_steps += 1
                logger.warning("Step %d: fp16 overflow, the gradient scaler skipped the update", state.step + 1)
            else:
                state.scheduler.step()
            state.step += 1
            self._fire("on_step_end")
            if state.step % window == 0:
                state.weighting.end_window(lambda tensor: accelerator.reduce(tensor, reduction="mean"))
            if state.step % training.log_every_steps == 0 or state.step == self.total_steps:
                self._log_losses()
            evaluate_now = training.eval_every_steps and state.step % training.eval_every_steps == 0
            if evaluate_now and state.step < self.total_steps:
                self.validate()
            if training.save_every_steps and state.step % training.save_every_steps == 0:
                self.save_checkpoint()
            if state.selection.should_stop:
                self.stop(f"early stopping, no better aggregate score in {state.selection.patience} evaluations")

    def _final_validation(self) -> list[TaskEvaluation]:
        """Validate the last step's model; with ``load_best_at_end``, load the best one and score it instead."""
        final = self.validate()
        best = self.state.selection.best_step
        if not (self.training.load_best_at_end and best is not None and best != self.step):
            return final
        logger.info("Loading the best model (step %d, aggregate %.4f)", best, self.state.selection.best_score)
        # Read as any saved model is (one file or shards), into the trained instance.
        best_weights = MultiTaskModel.from_pretrained(self.best_model_dir).state_dict()
        self.accelerator.unwrap_model(self.model).load_state_dict(best_weights)
        return self.evaluate("validation")

    def _forward_backward(self, batches: Iterator[tuple[str, dict[str, torch.Tensor]]]) -> None:
        """Run one micro-step (a batch, or one batch per task in all_tasks mode) forward and backward.

        Records the losses and the window's first non-finite one on the device, without waiting for it.
        """
        state = self.state
        losses = {}
        for _ in range(self.sampler.batches_per_step):
            task, batch = next(batches)
            loss = self.student_loss(self.model, task, batch, state.step)
            index = self.task_names.index(task)
            seen = self.window_nonfinite >= 0
            self.window_nonfinite = torch.where(seen | torch.isfinite(loss.detach()), self.window_nonfinite, index)
            state.loss_sums[index] += loss.detach().double()
            state.loss_counts[task] += 1
            if self.aggregator is None:
                # Each task's term is back-propagated at once: the weightings are sums of per-task terms.
                self.accelerator.backward(state.weighting({task: loss}))
            else:
                losses[task] = loss
        if self.aggregator is not None:
            scale = 1.0 / self.training.gradient_accumulation_steps
            weighted = [state.weighting({task: loss}) * scale for task, loss in losses.items()]
            combined_backward(weighted, [p for p in self.model.parameters() if p.requires_grad], self.aggregator)

    def _take_nonfinite(self) -> str | None:
        """Where a loss of the accumulation window just closed was not finite (``"task ner"``, or ``"another
        process"``: all ranks skip the same steps), or None when all were finite; then opens the next window.

        The optimizer step's one wait for the device: the host must know whether to update.
        """
        first = self.window_nonfinite
        self.window_nonfinite = torch.full_like(first, -1)
        anywhere = (first >= 0).long()
        if self.accelerator.num_processes > 1:
            anywhere = self.accelerator.reduce(anywhere, reduction="sum")
        first, anywhere = torch.stack([first, anywhere]).tolist()
        if not anywhere:
            return None
        return f"task {self.task_names[first]}" if first >= 0 else "another process"

    def _skip_step(self, where: str) -> None:
        state = self.state
        state.weighting.discard_step()
        state.skipped_steps += 1
        state.consecutive_skipped += 1
        logger.warning("Step %d: non-finite loss (%s); the update is skipped", state.step + 1, where)
        if state.consecutive_skipped >= self.training.max_nonfinite_steps:
            raise TrainingError(
                f"{state.consecutive_skipped} consecutive steps had a non-finite loss, the last at step "
                f"{state.step + 1} ({where}). Lower training.learning_rate, check the task's data and labels, or "
                "use bf16 instead of fp16."
            )

    def _sync_weighting_gradients(self) -> None:
        """Average the loss weighting's gradients over ranks (it lives outside the DDP-wrapped model)."""
        if self.accelerator.num_processes == 1:
            return
        for parameter in self.state.weighting.parameters():
            if parameter.grad is not None:
                parameter.grad = self.accelerator.reduce(parameter.grad, reduction="mean")

    def validate(self) -> list[TaskEvaluation]:
        """Evaluate on the validation splits, update model selection and keep the best model on disk."""
        self._fire("on_validate_begin")
        evaluations = self.evaluate("validation")
        score = None
        if evaluations:
            weights = {name: task.config.selection_weight for name, task in self.tasks.items()}
            score = aggregate_score(evaluations, weights)
            selection = self.state.selection
            improved = selection.update(self.step, score)
            self._log({"step": self.step, "aggregate": score, "best_step": selection.best_step})
            if improved:
                self.save_model(self.best_model_dir)
        self._fire("on_validate", evaluations=evaluations, score=score)
        return evaluations

    def _log_losses(self) -> None:
        """Record the mean loss per task since the last log (averaged over ranks), the weights, and reset."""
        state = self.state
        counts = [state.loss_counts[task] for task in self.task_names]
        counts_tensor = torch.tensor(counts, dtype=torch.float64, device=self.accelerator.device)
        all_means = self.accelerator.reduce(state.loss_sums / counts_tensor.clamp(min=1), reduction="mean").tolist()
        means = {task: mean for task, mean, count in zip(self.task_names, all_means, counts) if count}
        state.reset_losses()
        self._log(
            {
                "step": state.step,
                "epoch": round(state.batches_consumed / self.sampler.epoch_length, 4),
                "learning_rate": state.scheduler.get_last_lr()[0],
                "loss": means,
                "loss_weights": state.weighting.weights(),
                "skipped_steps": state.skipped_steps,
            }
        )

    def evaluate(self, split: str = "validation") -> list[TaskEvaluation]:
        """Score every task that has ``split``; record the metrics in the history and log a summary."""
        self._fire("on_evaluate_begin", split=split)
        evaluations = [
            evaluate_task(self.model, task, split, self.accelerator, self.training.eval_batch_size)
            for task in self.tasks.values()
            if split in task.encoded
        ]
        if evaluations:
            self._log({"step": self.step, "split": split, "eval": {e.task: e.metrics for e in evaluations}})
            scores = ", ".join(f"{e.task} {e.headline} {e.headline_value:.4f}" for e in evaluations)
            logger.info("Step %d, %s: %s", self.step, split, scores)
        self._fire("on_evaluate", split=split, evaluations=evaluations)
        return evaluations

    def save_checkpoint(self) -> Path:
        """Write a resumable checkpoint of the current step atomically (all processes take part)."""
        self._fire("on_save_begin")
        accelerator = self.accelerator
        staging = self.checkpoints.partial_path(self.step)
        if accelerator.is_main_process:
            self.checkpoints.begin(self.step)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(staging))
        self._write_process_state(staging)
        accelerator.wait_for_everyone()
        final = self.checkpoints.final_path(self.step)
        if accelerator.is_main_process:
            self.checkpoints.commit(self.step)
            logger.info("Checkpoint: %s", final)
        accelerator.wait_for_everyone()
        self._fire("on_save", checkpoint=final)
        return final

    def _write_process_state(self, directory: Path) -> None:
        """This process's :class:`TrainingState`, beside Accelerate's in the staged checkpoint."""
        self.state.save(directory, self.accelerator.process_index, self.accelerator.num_processes)

    def load_checkpoint(self, directory: str | Path) -> None:
        """Restore everything a checkpoint holds; training then continues exactly where it stopped."""
        self.state.load(directory, self.accelerator.process_index, self.accelerator.num_processes)
        self.accelerator.load_state(str(directory))
        logger.info("Resumed from %s (step %d)", directory, self.step)
