"""The training loop's state: saved and read back whole, in the current format and in the first one."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from mtl_nlp.config import SamplingConfig, TrainingConfig, WeightingConfig
from mtl_nlp.data.sampling import MultiTaskBatchSampler
from mtl_nlp.errors import TrainingError
from mtl_nlp.training.optimization import build_scheduler
from mtl_nlp.training.selection import ModelSelection
from mtl_nlp.training.state import TrainingState
from mtl_nlp.training.weighting import build_weighting

TASKS = ["ner", "sentiment"]


def new_state() -> TrainingState:
    weighting = build_weighting(WeightingConfig(method="dwa"), {"ner": 1.0, "sentiment": 2.0})
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    scheduler = build_scheduler(TrainingConfig(), optimizer, total_steps=10)
    lengths = {task: list(range(1, 9)) for task in TASKS}
    sampler = MultiTaskBatchSampler(lengths, dict.fromkeys(TASKS, 2), SamplingConfig(), seed=3, num_epochs=2)
    return TrainingState(TASKS, scheduler, sampler, ModelSelection(patience=3), weighting, torch.device("cpu"))


def trained_state() -> TrainingState:
    """A state seven steps into a run, every part of it away from its starting value."""
    state = new_state()
    for _ in range(7):
        state.scheduler.optimizer.step()
        state.scheduler.step()
    state.step, state.batches_consumed, state.skipped_steps, state.consecutive_skipped = 7, 9, 2, 1
    state.history_records = 5
    state.loss_sums.copy_(torch.tensor([1.5, 2.0 / 3.0], dtype=torch.float64))
    state.loss_counts = {"ner": 2, "sentiment": 1}
    state.selection.update(4, 0.25)
    state.selection.update(6, 0.125)
    for ner, sentiment in ((0.75, 1.25), (0.5, 1.0)):  # two windows: DWA's weights move off 1
        state.weighting({"ner": torch.tensor(ner), "sentiment": torch.tensor(sentiment)})
        state.weighting.end_window(lambda tensor: tensor)
    return state


def assert_same(loaded: TrainingState, saved: TrainingState) -> None:
    for name in ("step", "batches_consumed", "skipped_steps", "consecutive_skipped", "history_records", "loss_counts"):
        assert getattr(loaded, name) == getattr(saved, name), name
    assert torch.equal(loaded.loss_sums, saved.loss_sums)
    assert loaded.scheduler.state_dict() == saved.scheduler.state_dict()
    assert loaded.selection.state_dict() == saved.selection.state_dict()
    assert loaded.sampler.position == saved.batches_consumed
    expected = saved.weighting.state_dict()
    for name, tensor in loaded.weighting.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=0, equal_nan=True, msg=name)


def test_the_state_reads_back_as_it_was_saved(tmp_path):
    saved = trained_state()
    saved.save(tmp_path, rank=0, num_processes=1)
    loaded = new_state()
    loaded.load(tmp_path, rank=0, num_processes=1)
    assert_same(loaded, saved)
    assert loaded.weighting.lambdas.tolist() != [1.0, 1.0]  # the weighting's windows came back too


def test_a_checkpoint_of_the_first_format_reads_as_the_current_one(tmp_path):
    saved = trained_state()
    # The first format: counters, scheduler, selection and loss sums in the JSON; the weighting in its own file.
    record = {
        "step": saved.step,
        "batches_consumed": saved.batches_consumed,
        "num_processes": 1,
        "skipped_steps": saved.skipped_steps,
        "consecutive_skipped": saved.consecutive_skipped,
        "history_records": saved.history_records,
        "scheduler": saved.scheduler.state_dict(),
        "selection": saved.selection.state_dict(),
        "loss_sums": dict(zip(TASKS, saved.loss_sums.tolist())),
        "loss_counts": saved.loss_counts,
    }
    (tmp_path / "trainer_state_0.json").write_text(json.dumps(record), encoding="utf-8")
    save_file(
        {name: t.contiguous() for name, t in saved.weighting.state_dict().items()}, tmp_path / "weighting_0.safetensors"
    )
    loaded = new_state()
    loaded.load(tmp_path, rank=0, num_processes=1)
    assert_same(loaded, saved)


def test_a_checkpoint_resumed_with_another_number_of_processes_is_refused(tmp_path):
    trained_state().save(tmp_path, rank=0, num_processes=1)
    with pytest.raises(TrainingError, match=r"written by 1 process\(es\), resumed with 2"):
        new_state().load(tmp_path, rank=0, num_processes=2)
    with pytest.raises(TrainingError, match=r"trainer_state_1.json is missing"):
        new_state().load(tmp_path, rank=1, num_processes=2)
