"""Multi-task batch sampling: which task trains at each step, and which of its examples form the batch.

Every rank of a data-parallel run builds the same sampler from the same seed, so all ranks train the same task
at the same step (DDP would otherwise wait forever on the other heads' gradients); each rank then takes a
disjoint, interleaved shard of that task's global batch. The stream is a pure function of the seed and the
position, so ``state_dict``/``load_state_dict`` resume it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

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


class MultiTaskBatchSampler:
    """An endless, seeded stream of ``(task, example_indices)`` for this rank.

    Args:
        lengths: per task, the length of every training example (in tokens).
        batch_sizes: per task, the batch size on one device; the global batch is this × ``num_replicas``.
        seed: the stream's seed; equal seeds give equal streams on every rank.
        num_replicas, rank: data-parallel world size and this process's rank.
        group_by_length: build batches of similar lengths (see :func:`length_grouped_batches`).
    """

    def __init__(
        self,
        lengths: Mapping[str, Sequence[int]],
        batch_sizes: Mapping[str, int],
        *,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        group_by_length: bool = True,
    ) -> None:
        self.tasks = list(lengths)
        self.lengths = {task: np.asarray(lengths[task]) for task in self.tasks}
        self.global_batch_sizes = {task: batch_sizes[task] * num_replicas for task in self.tasks}
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.group_by_length = group_by_length
        self.position = 0
        self.batches_per_pass = {
            task: math.ceil(len(self.lengths[task]) / self.global_batch_sizes[task]) for task in self.tasks
        }
        counts = np.array([self.batches_per_pass[task] for task in self.tasks], dtype=float)
        self.probabilities = counts / counts.sum()

    @property
    def steps_per_epoch(self) -> int:
        """Batches in one epoch: enough to draw every task's batches once (in expectation)."""
        return sum(self.batches_per_pass.values())

    def state_dict(self) -> dict[str, int]:
        """The stream's position (batches yielded so far) and seed."""
        return {"position": self.position, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continue the stream at a saved position; the seed must match the one it was saved with."""
        if state["seed"] != self.seed:
            raise ValueError(f"sampler state was saved with seed {state['seed']}, this sampler has {self.seed}.")
        self.position = int(state["position"])

    def _task_passes(self, task_number: int) -> Iterator[np.ndarray]:
        task = self.tasks[task_number]
        for pass_number in range(2**62):
            rng = np.random.default_rng([self.seed, task_number + 1, pass_number])
            size, batch_size = len(self.lengths[task]), self.global_batch_sizes[task]
            if self.group_by_length:
                yield from length_grouped_batches(self.lengths[task], batch_size, rng)
            else:
                yield from shuffled_batches(size, batch_size, rng)

    def __iter__(self) -> Iterator[tuple[str, list[int]]]:
        task_rng = np.random.default_rng([self.seed, 0])
        streams = [self._task_passes(number) for number in range(len(self.tasks))]
        drawn = 0
        while True:
            task_number = int(task_rng.choice(len(self.tasks), p=self.probabilities))
            global_batch = next(streams[task_number])
            drawn += 1
            if drawn <= self.position:
                continue
            self.position = drawn
            shard = global_batch[self.rank :: self.num_replicas]
            if len(shard) == 0:
                # A last batch smaller than the world: this rank repeats an example rather than stall the others.
                shard = global_batch[:1]
            yield self.tasks[task_number], shard.tolist()
