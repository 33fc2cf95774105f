"""Multi-task batch sampling: which task trains at each step, and which of its examples form the batch.

Strategies (``SamplingConfig.strategy``): proportional, temperature, uniform, round_robin, fixed and
annealed; in ``all_tasks`` mode every optimizer step sees one batch of every task instead. Every rank of a
data-parallel run builds the same sampler from the same seed, so all ranks train the same task at the same
step (DDP would otherwise wait forever on the other heads' gradients); each rank then takes a disjoint,
interleaved shard of that task's global batch. The stream is a pure function of the seed and the position,
so ``state_dict``/``load_state_dict`` resume it exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..config import SamplingConfig

MEGABATCH_BATCHES = 50


def length_grouped_batches(
    lengths: Sequence[int],
    batch_size: int,
    rng: np.random.Generator,
    megabatch_batches: int = MEGABATCH_BATCHES,
) -> list[np.ndarray]:
    """Shuffle examples, sort them by length inside mega-batches of ``megabatch_batches`` batches, cut the
    mega-batches into batches and shuffle the batch order.

    Batches hold examples of similar length (little padding) yet differ from pass to pass.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    megabatch = batch_size * megabatch_batches
    megabatch_id = np.arange(len(order)) // megabatch
    # Sort by (mega-batch, descending length) in one stable pass.
    order = order[np.lexsort((-lengths[order], megabatch_id))]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def shuffled_batches(size: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Plain shuffled batches, for when length grouping is off."""
    order = rng.permutation(size)
    return [order[start : start + batch_size] for start in range(0, size, batch_size)]


def annealing_exponent(epoch: int, num_epochs: int) -> float:
    """α of annealed sampling in epoch ``epoch`` (0-based) of ``num_epochs``: 1 − 0.8·(e−1)/(E−1), e 1-based."""
    if num_epochs <= 1:
        return 1.0
    return 1.0 - 0.8 * min(epoch, num_epochs - 1) / (num_epochs - 1)


def task_probabilities(
    config: SamplingConfig, tasks: Sequence[str], sizes: np.ndarray, epoch: int = 0, num_epochs: int = 1
) -> np.ndarray:
    """Each task's probability of training the next batch under ``config.strategy``.

    ``sizes`` are the tasks' sizes in batches (examples ÷ batch size, after ``example_cap``), so that
    proportional sampling consumes every task's examples at the same rate even with different batch sizes.
    """
    if config.strategy == "fixed":
        weights = np.array([config.probabilities[task] for task in tasks], dtype=float)
    elif config.strategy in ("uniform", "round_robin"):
        weights = np.ones(len(tasks))
    else:
        exponent = {
            "proportional": 1.0,
            "temperature": 1.0 / config.temperature,
            "annealed": annealing_exponent(epoch, num_epochs),
        }[config.strategy]
        weights = sizes.astype(float) ** exponent
    return weights / weights.sum()


class MultiTaskBatchSampler:
    """An endless, seeded stream of ``(task, example_indices)`` for this rank.

    The stream is cut into epochs. In ``one_task`` mode an epoch has as many batches as one pass over every
    task's training data takes (the sum of the tasks' batch counts), and the strategy decides which task
    fills each of them; in ``all_tasks`` mode an epoch is one pass over the largest task, each step yielding
    one batch of every task in turn. Within a task, batches walk through shuffled passes over its data, so
    every example is seen once per pass.

    Args:
        lengths: per task, the length of every training example (in tokens).
        batch_sizes: per task, the batch size on one device; the global batch is this × ``num_replicas``.
        config: the recipe's sampling settings.
        seed: the stream's seed; equal seeds give equal streams on every rank.
        num_epochs: the planned number of epochs (the annealed strategy's schedule).
        num_replicas, rank: data-parallel world size and this process's rank.
    """

    def __init__(
        self,
        lengths: Mapping[str, Sequence[int]],
        batch_sizes: Mapping[str, int],
        config: SamplingConfig | None = None,
        *,
        seed: int = 0,
        num_epochs: int = 1,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        self.config = config or SamplingConfig()
        self.tasks = list(lengths)
        self.lengths = {task: np.asarray(lengths[task]) for task in self.tasks}
        self.global_batch_sizes = {task: batch_sizes[task] * num_replicas for task in self.tasks}
        self.seed = seed
        self.num_epochs = num_epochs
        self.num_replicas = num_replicas
        self.rank = rank
        self.position = 0
        self.batches_per_pass = np.array(
            [math.ceil(len(self.lengths[task]) / self.global_batch_sizes[task]) for task in self.tasks]
        )
        cap = self.config.example_cap
        self.sizes = np.array(
            [
                min(len(self.lengths[task]), cap or len(self.lengths[task])) / self.global_batch_sizes[task]
                for task in self.tasks
            ]
        )
        if self.config.mode == "all_tasks":
            self.epoch_length = int(self.batches_per_pass.max()) * len(self.tasks)
        else:
            self.epoch_length = int(self.batches_per_pass.sum())

    @property
    def batches_per_step(self) -> int:
        """Batches that make one optimizer step (before gradient accumulation): one, or one per task."""
        return len(self.tasks) if self.config.mode == "all_tasks" else 1

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps (before gradient accumulation) in one epoch."""
        return self.epoch_length // self.batches_per_step

    def probabilities(self, epoch: int = 0) -> np.ndarray:
        """The tasks' sampling probabilities in ``epoch`` (0-based)."""
        return task_probabilities(self.config, self.tasks, self.sizes, epoch, self.num_epochs)

    def state_dict(self) -> dict[str, int]:
        """The stream's position (batches yielded so far) and seed."""
        return {"position": self.position, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue the stream at a saved position; the seed must match the one it was saved with."""
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this sampler has {self.seed}.")
        self.position = int(state["position"])

    def epoch_schedule(self, epoch: int) -> np.ndarray:
        """The task number of every batch of ``epoch``: a pure function of the seed and the epoch."""
        task_count = len(self.tasks)
        if self.config.mode == "all_tasks" or self.config.strategy == "round_robin":
            return np.arange(epoch * self.epoch_length, (epoch + 1) * self.epoch_length) % task_count
        rng = np.random.default_rng([self.seed, 0, epoch])
        return rng.choice(task_count, size=self.epoch_length, p=self.probabilities(epoch))

    def _task_batches(self, task_number: int, start: int) -> Iterator[np.ndarray]:
        """Task ``task_number``'s global batches from its ``start``-th on; pass ``p`` is shuffled by seed and p."""
        task = self.tasks[task_number]
        first_pass, skip = divmod(start, int(self.batches_per_pass[task_number]))
        for pass_number in itertools.count(first_pass):
            rng = np.random.default_rng([self.seed, task_number + 1, pass_number])
            if self.config.group_by_length:
                batches = length_grouped_batches(self.lengths[task], self.global_batch_sizes[task], rng)
            else:
                batches = shuffled_batches(len(self.lengths[task]), self.global_batch_sizes[task], rng)
            yield from batches[skip:]
            skip = 0

    def __iter__(self) -> Iterator[tuple[str, list[int]]]:
        epoch, offset = divmod(self.position, self.epoch_length)
        consumed = sum(
            (np.bincount(self.epoch_schedule(e), minlength=len(self.tasks)) for e in range(epoch)),
            np.zeros(len(self.tasks), dtype=int),
        )
        schedule = self.epoch_schedule(epoch)
        consumed += np.bincount(schedule[:offset], minlength=len(self.tasks))
        streams = [self._task_batches(number, int(consumed[number])) for number in range(len(self.tasks))]
        while True:
            for task_number in schedule[offset:]:
                global_batch = next(streams[task_number])
                self.position += 1
                shard = global_batch[self.rank :: self.num_replicas]
                if len(shard) == 0:
                    # A last batch smaller than the world: this rank repeats an example rather than stall.
                    shard = global_batch[:1]
                yield self.tasks[task_number], shard.tolist()
            epoch, offset = epoch + 1, 0
            schedule = self.epoch_schedule(epoch)
