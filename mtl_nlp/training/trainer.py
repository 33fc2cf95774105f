"""``MultiTaskTrainer``: the Accelerate training loop over a multi-task batch stream."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import (
    DistributedDataParallelKwargs,
    get_cpu_distributed_information,
    send_to_device,
)
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from transformers import PretrainedConfig, get_scheduler

from ..config import RecipeConfig, TrainingConfig
from ..data.sampling import MultiTaskBatchSampler
from ..errors import RecipeError, TrainingError
from ..evaluation.evaluator import evaluate_task
from ..modeling import MultiTaskModel
from ..tasks import Task, TaskEvaluation
from .checkpoint import CheckpointDirectory, atomic_directory
from .gradients import build_aggregator, combined_backward
from .history import TrainingHistory
from .selection import ModelSelection, aggregate_score
from .weighting import build_weighting

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
    # Accelerate forms a multi-process CPU group (gloo) only when told to use the CPU; otherwise every process
    # that torchrun or mpirun starts on a machine without an accelerator trains alone, as a one-process run.
    launched_processes = get_cpu_distributed_information().world_size
    accelerator = Accelerator(
        cpu=launched_processes > 1 and not torch.accelerator.is_available(),
        mixed_precision=training.mixed_precision,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    if launched_processes > 1 and accelerator.num_processes == 1:
        raise TrainingError(
            f"{launched_processes} processes were launched, but Accelerate has no multi-process backend for "
            f"{accelerator.device.type}, so each would train alone and overwrite the others' output. Launch "
            "with `accelerate launch` on GPUs, or set ACCELERATE_USE_CPU=1 to train on the CPU."
        )
    return accelerator


# (smallest hidden size, peak learning rate): narrower encoders take larger steps. The values for 768 and 1024
# are BERT's published fine-tuning choices; those below come from benchmarks/learning_rates.py on MiniLM.
AUTO_LEARNING_RATES = ((1024, 2e-5), (768, 5e-5), (512, 1e-4), (0, 2e-4))


def auto_learning_rate(encoder_config: PretrainedConfig) -> float:
    """The peak learning rate ``learning_rate: auto`` picks for an encoder (by its hidden size)."""
    return next(rate for smallest, rate in AUTO_LEARNING_RATES if encoder_config.hidden_size >= smallest)


# Devices with a fused AdamW kernel (one pass over each parameter instead of several): on CPU the step of a
# MiniLM-size model is over 4× faster than the per-tensor loop, which took 18 % of a training step.
FUSED_ADAMW_DEVICES = ("cpu", "cuda", "mps", "xpu")


def build_optimizer(
    model: torch.nn.Module,
    training: TrainingConfig,
    learning_rate: float,
    device: torch.device,
    extra_parameters: list[torch.nn.Parameter] = (),
) -> torch.optim.AdamW:
    """AdamW at peak ``learning_rate`` with weight decay on weight matrices only (not on biases, norm weights or
    ``extra_parameters``, such as a loss weighting's); fused on ``device`` where PyTorch has the kernel."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": training.weight_decay},
        {"params": [p for p in parameters if p.ndim < 2] + list(extra_parameters), "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, fused=device.type in FUSED_ADAMW_DEVICES or None)


class MultiTaskTrainer:
    """Trains a :class:`MultiTaskModel` on several tasks with one optimizer.

    Works unchanged on one CPU, one GPU or many processes (``accelerate launch``/``torchrun``): the batch
    sampler shards each task's batches across ranks and every rank trains the same task at the same step.
    Checkpoints (every ``training.save_every_steps``) hold everything needed to continue exactly:
    model, optimizer, gradient scaler and RNG states through Accelerate, plus the scheduler, sampler
    position, loss weighting, model selection, counters and the history's length.

    The caller seeds the random state (``accelerate.utils.set_seed``) before building the model, so that the
    new heads and the run repeat; :func:`mtl_nlp.train` does.
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
        self.task_names = list(tasks)
        self.accelerator = accelerator or build_accelerator(self.training)
        self.output_dir = Path(recipe.output_dir)
        self.sampler = MultiTaskBatchSampler(
            {name: task.lengths("train") for name, task in tasks.items()},
            {name: task.config.batch_size for name, task in tasks.items()},
            recipe.sampling,
            seed=self.training.seed,
            num_epochs=math.ceil(self.training.epochs),
            num_replicas=self.accelerator.num_processes,
            rank=self.accelerator.process_index,
        )
        accumulation = self.training.gradient_accumulation_steps
        self.steps_per_epoch = math.ceil(self.sampler.steps_per_epoch / accumulation)
        self.total_steps = self.training.max_steps or math.ceil(
            self.training.epochs * self.sampler.steps_per_epoch / accumulation
        )
        device = self.accelerator.device
        self.weighting = build_weighting(
            recipe.weighting, {name: task.config.loss_weight for name, task in tasks.items()}
        ).to(device)
        self.aggregator = self._gradient_aggregator()
        self.learning_rate = self.training.learning_rate
        if self.learning_rate == "auto":
            self.learning_rate = auto_learning_rate(model.encoder.config)
            logger.info("Learning rate %g (auto, hidden size %d)", self.learning_rate, model.encoder.config.hidden_size)
        optimizer = build_optimizer(
            model, self.training, self.learning_rate, device, extra_parameters=list(self.weighting.parameters())
        )
        self.scheduler = get_scheduler(
            self.training.lr_scheduler,
            optimizer,
            num_warmup_steps=math.ceil(self.training.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        if self.training.torch_compile:
            model.compile_encoder_blocks()
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.history = TrainingHistory(self.output_dir / "metrics.jsonl", enabled=self.accelerator.is_main_process)
        self.selection = ModelSelection(patience=self.training.early_stopping_patience)
        self.checkpoints = CheckpointDirectory(self.output_dir / "checkpoints", keep=self.training.save_total_limit)
        self.step = 0
        self.batches_consumed = 0
        self.skipped_steps = 0
        self.consecutive_skipped = 0
        # Per-task loss sums since the last log stay on the device (reading them waits for it); counts on the host.
        self.loss_sums = torch.zeros(len(tasks), dtype=torch.float64, device=device)
        self.loss_counts = dict.fromkeys(tasks, 0)
        # Index of the first task with a non-finite loss in the accumulation window (-1: none), on the device.
        self.window_nonfinite = torch.tensor(-1, device=device)

    def _gradient_aggregator(self) -> torch.nn.Module | None:
        method = self.recipe.weighting.gradient_method
        if method is None:
            return None
        if self.accelerator.num_processes > 1 or self.training.mixed_precision == "fp16":
            raise RecipeError(
                f"weighting.gradient_method: {method} runs in one process without fp16 (gradients are combined "
                "outside DDP and the fp16 loss scaler); use bf16, or a loss weighting method for DDP."
            )
        return build_aggregator(method)

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
            # Its own generator, so that starting the loader draws nothing from the global RNG and a resumed
            # run's dropout masks equal an uninterrupted run's.
            generator=torch.Generator(),
        )
        for task, batch in loader:
            self.batches_consumed += 1
            yield task, send_to_device(batch, self.accelerator.device, non_blocking=on_gpu)

    def train(self, resume_from: str | Path | None = None) -> list[TaskEvaluation]:
        """Train for the configured steps (continuing from checkpoint ``resume_from``), evaluating and
        checkpointing on schedule; return the final validation evaluations."""
        accelerator, training = self.accelerator, self.training
        if resume_from is None:
            self.history.restart(keep=0)
        else:
            self.load_checkpoint(resume_from)
        self.sampler.load_state_dict({"position": self.batches_consumed, "seed": self.sampler.seed})
        logger.info(
            "Training %d steps (%d per epoch) on %s, %d process(es), from step %d",
            self.total_steps,
            self.steps_per_epoch,
            ", ".join(self.tasks),
            accelerator.num_processes,
            self.step,
        )
        self.model.train()
        progress = tqdm(
            total=self.total_steps, initial=self.step, desc="Training", disable=not accelerator.is_main_process
        )
        batches = self._batches()
        window = self.recipe.weighting.window_steps or self.steps_per_epoch
        while self.step < self.total_steps:
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
            self.consecutive_skipped = 0
            if accelerator.optimizer_step_was_skipped:
                self.skipped_steps += 1
                logger.warning("Step %d: fp16 overflow, the gradient scaler skipped the update", self.step + 1)
            else:
                self.scheduler.step()
            self.step += 1
            progress.update(1)
            if self.step % window == 0:
                self.weighting.end_window(lambda tensor: accelerator.reduce(tensor, reduction="mean"))
            if self.step % training.log_every_steps == 0 or self.step == self.total_steps:
                progress.set_postfix(self._log_losses())
            evaluate_now = training.eval_every_steps and self.step % training.eval_every_steps == 0
            if evaluate_now and self.step < self.total_steps:
                self.validate()
            if training.save_every_steps and self.step % training.save_every_steps == 0:
                self.save_checkpoint()
            if self.selection.should_stop:
                logger.info(
                    "Early stopping at step %d: no better aggregate score in %d evaluations",
                    self.step,
                    self.selection.patience,
                )
                break
        progress.close()
        if self.checkpoints.latest() != self.checkpoints.final_path(self.step):
            self.save_checkpoint()
        final = self.validate()
        best = self.selection.best_step
        if not (training.load_best_at_end and best is not None and best != self.step):
            return final
        logger.info("Loading the best model (step %d, aggregate %.4f)", best, self.selection.best_score)
        # Read as any saved model is (one file or shards), into the trained instance.
        best_weights = MultiTaskModel.from_pretrained(self.best_model_dir).state_dict()
        self.accelerator.unwrap_model(self.model).load_state_dict(best_weights)
        return self.evaluate("validation")

    def _forward_backward(self, batches: Iterator[tuple[str, dict[str, torch.Tensor]]]) -> None:
        """Run one micro-step (a batch, or one batch per task in all_tasks mode) forward and backward.

        Records the losses and the window's first non-finite one on the device, without waiting for it.
        """
        losses = {}
        for _ in range(self.sampler.batches_per_step):
            task, batch = next(batches)
            loss = self.model(task=task, **batch).loss
            index = self.task_names.index(task)
            seen = self.window_nonfinite >= 0
            self.window_nonfinite = torch.where(seen | torch.isfinite(loss.detach()), self.window_nonfinite, index)
            self.loss_sums[index] += loss.detach().double()
            self.loss_counts[task] += 1
            if self.aggregator is None:
                # Each task's term is back-propagated at once: the weightings are sums of per-task terms.
                self.accelerator.backward(self.weighting({task: loss}))
            else:
                losses[task] = loss
        if self.aggregator is not None:
            scale = 1.0 / self.training.gradient_accumulation_steps
            weighted = [self.weighting({task: loss}) * scale for task, loss in losses.items()]
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
        self.skipped_steps += 1
        self.consecutive_skipped += 1
        logger.warning("Step %d: non-finite loss (%s); the update is skipped", self.step + 1, where)
        if self.consecutive_skipped >= self.training.max_nonfinite_steps:
            raise TrainingError(
                f"{self.consecutive_skipped} consecutive steps had a non-finite loss, the last at step "
                f"{self.step + 1} ({where}). Lower training.learning_rate, check the task's data and labels, or "
                "use bf16 instead of fp16."
            )

    def _sync_weighting_gradients(self) -> None:
        """Average the loss weighting's gradients over ranks (it lives outside the DDP-wrapped model)."""
        if self.accelerator.num_processes == 1:
            return
        for parameter in self.weighting.parameters():
            if parameter.grad is not None:
                parameter.grad = self.accelerator.reduce(parameter.grad, reduction="mean")

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

    def _log_losses(self) -> dict[str, str]:
        """Record the mean loss per task since the last log (averaged over ranks), the weights, and reset."""
        counts = [self.loss_counts[task] for task in self.task_names]
        counts_tensor = torch.tensor(counts, dtype=torch.float64, device=self.accelerator.device)
        all_means = self.accelerator.reduce(self.loss_sums / counts_tensor.clamp(min=1), reduction="mean").tolist()
        means = {task: mean for task, mean, count in zip(self.task_names, all_means, counts) if count}
        self.loss_sums.zero_()
        self.loss_counts = dict.fromkeys(self.tasks, 0)
        record = {
            "step": self.step,
            "epoch": round(self.batches_consumed / self.sampler.epoch_length, 4),
            "learning_rate": self.scheduler.get_last_lr()[0],
            "loss": means,
            "loss_weights": self.weighting.weights(),
            "skipped_steps": self.skipped_steps,
        }
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

    def save_checkpoint(self) -> Path:
        """Write a resumable checkpoint of the current step atomically (all processes take part)."""
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
        return final

    def _write_process_state(self, directory: Path) -> None:
        """This process's own state: counters, scheduler, sampler, selection, loss windows and weighting."""
        rank = self.accelerator.process_index
        state = {
            "step": self.step,
            "batches_consumed": self.batches_consumed,
            "num_processes": self.accelerator.num_processes,
            "skipped_steps": self.skipped_steps,
            "consecutive_skipped": self.consecutive_skipped,
            "history_records": len(self.history.records),
            "scheduler": self.scheduler.state_dict(),
            "selection": self.selection.state_dict(),
            "loss_sums": dict(zip(self.task_names, self.loss_sums.tolist())),
            "loss_counts": self.loss_counts,
        }
        (directory / f"trainer_state_{rank}.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        save_file(
            {name: tensor.contiguous() for name, tensor in self.weighting.state_dict().items()},
            directory / f"weighting_{rank}.safetensors",
        )

    def load_checkpoint(self, directory: str | Path) -> None:
        """Restore everything a checkpoint holds; training then continues exactly where it stopped."""
        directory = Path(directory)
        rank = self.accelerator.process_index
        state_file = directory / f"trainer_state_{rank}.json"
        if not state_file.is_file():
            raise TrainingError(
                f"{directory}: not a complete checkpoint of this run for process {rank} ({state_file.name} is "
                "missing). Resume from a step-* directory under the run's checkpoints/ with the same number of "
                "processes."
            )
        state = json.loads(state_file.read_text(encoding="utf-8"))
        self.accelerator.load_state(str(directory))
        self.weighting.load_state_dict(load_file(directory / f"weighting_{rank}.safetensors"))
        self.scheduler.load_state_dict(state["scheduler"])
        self.selection.load_state_dict(state["selection"])
        self.history.restart(keep=state["history_records"])
        self.step = state["step"]
        self.batches_consumed = state["batches_consumed"]
        self.skipped_steps = state["skipped_steps"]
        self.consecutive_skipped = state["consecutive_skipped"]
        self.loss_sums.copy_(torch.tensor([state["loss_sums"][task] for task in self.task_names], dtype=torch.float64))
        self.loss_counts = state["loss_counts"]
        logger.info("Resumed from %s (step %d)", directory, self.step)
