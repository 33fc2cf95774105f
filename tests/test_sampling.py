"""The multi-task batch sampler: frequencies, determinism, resume, sharding, length grouping."""

from __future__ import annotations

from collections import Counter
from itertools import islice

import numpy as np
import pytest

from mtl_nlp.config import SamplingConfig
from mtl_nlp.data.sampling import MultiTaskBatchSampler, annealing_exponent, length_grouped_batches

LENGTHS = {
    "big": np.random.default_rng(0).integers(5, 60, 3000),
    "small": np.random.default_rng(1).integers(5, 60, 500),
}
BATCH_SIZES = {"big": 10, "small": 10}


def draw(sampler, count):
    return list(islice(iter(sampler), count))


def test_an_epoch_is_one_pass_over_every_task():
    sampler = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=3)
    assert sampler.steps_per_epoch == sampler.epoch_length == 350


def test_same_seed_same_stream_and_other_seed_differs():
    first = draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=5), 50)
    assert first == draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=5), 50)
    assert first != draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=6), 50)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (SamplingConfig(strategy="proportional"), [300, 50]),
        (SamplingConfig(strategy="temperature", temperature=2.0), [300**0.5, 50**0.5]),
        (SamplingConfig(strategy="temperature", temperature=3.0, example_cap=1000), [100 ** (1 / 3), 50 ** (1 / 3)]),
        (SamplingConfig(strategy="uniform"), [1, 1]),
        (SamplingConfig(strategy="fixed", probabilities={"big": 0.2, "small": 0.6}), [0.2, 0.6]),
    ],
    ids=["proportional", "temperature", "temperature-capped", "uniform", "fixed"],
)
def test_task_frequencies_follow_the_strategy_formula(config, expected):
    sampler = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, config, seed=11)
    expected = np.array(expected) / sum(expected)
    np.testing.assert_allclose(sampler.probabilities(), expected, rtol=1e-12)
    draws = 7000
    counts = Counter(task for task, _ in draw(sampler, draws))
    # Binomial standard error of a frequency is at most 0.5 / sqrt(draws) = 0.006: allow four of them.
    assert abs(counts["big"] / draws - expected[0]) < 4 * 0.5 / draws**0.5


def test_sizes_are_counted_in_batches_so_tasks_are_consumed_at_the_same_rate():
    sampler = MultiTaskBatchSampler(LENGTHS, {"big": 30, "small": 5}, seed=0)
    np.testing.assert_allclose(sampler.probabilities(), [100 / 200, 100 / 200])


def test_round_robin_cycles_through_the_tasks():
    tasks = [
        task for task, _ in draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, SamplingConfig(strategy="round_robin")), 9)
    ]
    assert tasks == ["big", "small"] * 4 + ["big"]


def test_annealed_sampling_moves_from_proportional_towards_uniform():
    assert [annealing_exponent(e, 5) for e in range(5)] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert annealing_exponent(9, 5) == pytest.approx(0.2)
    sampler = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, SamplingConfig(strategy="annealed"), seed=4, num_epochs=5)
    np.testing.assert_allclose(sampler.probabilities(0), [300 / 350, 50 / 350])
    last = np.array([300**0.2, 50**0.2])
    np.testing.assert_allclose(sampler.probabilities(4), last / last.sum())
    stream = [task for task, _ in draw(sampler, 5 * sampler.epoch_length)]
    last_epoch = stream[-sampler.epoch_length :]
    # 350 draws: standard error below 0.027, allow four.
    assert abs(last_epoch.count("big") / len(last_epoch) - last[0] / last.sum()) < 0.11
    first_epoch = stream[: sampler.epoch_length]
    assert first_epoch.count("big") > last_epoch.count("big")


def test_all_tasks_mode_gives_every_task_one_batch_per_step():
    sampler = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, SamplingConfig(mode="all_tasks"), seed=0)
    assert sampler.batches_per_step == 2
    assert sampler.steps_per_epoch == 300
    stream = draw(sampler, 2 * 400)
    assert [task for task, _ in stream] == ["big", "small"] * 400
    small = [i for task, batch in stream[: 2 * 50] if task == "small" for i in batch]
    assert sorted(small) == list(range(500))


@pytest.mark.parametrize(
    "config",
    [SamplingConfig(), SamplingConfig(strategy="annealed"), SamplingConfig(mode="all_tasks")],
    ids=["proportional", "annealed", "all_tasks"],
)
def test_resume_continues_the_exact_stream(config):
    # 930 batches cross two epoch boundaries (350 batches each; 600 in all_tasks mode).
    uninterrupted = draw(MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, config, seed=7, num_epochs=3), 1000)
    interrupted = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, config, seed=7, num_epochs=3)
    draw(interrupted, 930)
    fresh = MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, config, seed=7, num_epochs=3)
    fresh.load_state_dict(interrupted.state_dict())
    assert draw(fresh, 70) == uninterrupted[930:]


def test_ranks_train_the_same_task_on_disjoint_shards():
    ranks = [MultiTaskBatchSampler(LENGTHS, BATCH_SIZES, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    for (task0, shard0), (task1, shard1) in zip(draw(ranks[0], 200), draw(ranks[1], 200)):
        assert task0 == task1
        assert not set(shard0) & set(shard1)
        assert len(shard0) == len(shard1) == 10


def test_every_example_is_seen_once_per_pass():
    config = SamplingConfig(group_by_length=False)
    sampler = MultiTaskBatchSampler({"only": LENGTHS["small"]}, {"only": 10}, config, seed=2)
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
