"""The multi-task batch sampler: frequencies, determinism, resume, sharding, length grouping."""

from __future__ import annotations

from collections import Counter
from itertools import islice

import numpy as np

from mtl_nlp.data.sampling import MultiTaskBatchSampler, length_grouped_batches

LENGTHS = {
    "big": np.random.default_rng(0).integers(5, 60, 3000),
    "small": np.random.default_rng(1).integers(5, 60, 500),
}
BATCH_SIZES = {"big": 10, "small": 10}


def draw(sampler, count):
    return list(islice(iter(sampler), count))


def test_proportional_frequencies_follow_batch_counts():
    sampler = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=3)
    counts = Counter(task for task, _ in draw(sampler, 7000))
    # p(big) = 300 / 350; with 7,000 draws the standard error is 0.0042: allow four of them.
    assert abs(counts["big"] / 7000 - 300 / 350) < 0.017
    assert sampler.steps_per_epoch == 350


def test_same_seed_same_stream_and_other_seed_differs():
    first = draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=5), 50)
    assert first == draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=5), 50)
    assert first != draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=6), 50)


def test_resume_continues_the_exact_stream():
    uninterrupted = draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=7), 400)
    interrupted = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=7)
    draw(interrupted, 330)
    fresh = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=7)
    fresh.load_state_dict(interrupted.state_dict())
    assert draw(fresh, 70) == uninterrupted[330:]


def test_ranks_train_the_same_task_on_disjoint_shards():
    ranks = [MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    for (task0, shard0), (task1, shard1) in zip(draw(ranks[0], 200), draw(ranks[1], 200)):
        assert task0 == task1
        assert not set(shard0) & set(shard1)
        assert len(shard0) == len(shard1) == 10


def test_every_example_is_seen_once_per_pass():
    sampler = MultiTaskBatchSampler({"only": LENGTHS["small"]}, {"only": 10}, seed=2)
    seen = [i for _, batch in draw(sampler, 50) for i in batch]
    assert sorted(seen) == list(range(500))


def test_length_grouping_cuts_padding_but_still_shuffles():
    lengths = LENGTHS["big"]
    grouped = length_grouped_batches(lengths, 32, np.random.default_rng(0))
    efficiency = sum(lengths[b].sum() for b in grouped) / sum(lengths[b].max() * len(b) for b in grouped)
    random_order = np.random.default_rng(0).permutation(len(lengths))
    plain = [random_order[i : i + 32] for i in range(0, len(lengths), 32)]
    plain_efficiency = sum(lengths[b].sum() for b in plain) / sum(lengths[b].max() * len(b) for b in plain)
    assert efficiency > 0.95 > plain_efficiency
    again = length_grouped_batches(lengths, 32, np.random.default_rng(1))
    assert [b.tolist() for b in grouped] != [b.tolist() for b in again]
