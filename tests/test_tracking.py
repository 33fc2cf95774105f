"""Experiment trackers: what a run reports to them, read back with the trackers' own readers, and the refusals."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import accelerate.utils
import pytest
import yaml
from accelerate.tracking import LOGGER_TYPE_TO_CLASS
from conftest import toy_recipe

from mtl_nlp import recipe_from_dict, train
from mtl_nlp.config import TrainingConfig
from mtl_nlp.errors import RecipeError
from mtl_nlp.training.history import read_history
from mtl_nlp.training.tracking import record_scalars

STEPS = 20


def tracked_recipe(directory: Path, model_dir: Path, report_to: list[str]):
    training = {
        "max_steps": STEPS,
        "log_every_steps": 5,
        "eval_every_steps": 10,
        "save_every_steps": 0,
        "learning_rate": 1e-3,
        "report_to": report_to,
        "run_name": "tracked",
    }
    return recipe_from_dict(toy_recipe(directory, model_dir, train_rows=32, eval_rows=8, training=training))


def expected_series(history: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """What the trackers must hold: every number of every metrics.jsonl record, at the record's step."""
    series: dict[str, list[tuple[int, float]]] = {}
    for record in history:
        for name, value in record_scalars(record).items():
            series.setdefault(name, []).append((record["step"], value))
    return series


def test_a_run_reports_losses_and_evaluations_to_tensorboard_at_their_steps(tmp_path, tiny_model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = tracked_recipe(tmp_path, tiny_model_dir, ["tensorboard"])
    train(recipe)
    run_dir = Path(recipe.output_dir) / "logs" / "tracked"
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    logged = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}

    history = read_history(Path(recipe.output_dir) / "metrics.jsonl")
    expected = expected_series(history)
    assert logged.keys() == expected.keys()
    for tag, points in expected.items():
        assert [step for step, _ in logged[tag]] == [step for step, _ in points], tag
        assert [value for _, value in logged[tag]] == pytest.approx([value for _, value in points], rel=1e-6), tag
    # The names and steps the trackers show, spelled out.
    assert [step for step, _ in logged["train/loss/ner"]] == [5, 10, 15, 20]
    assert {"train/learning_rate", "train/loss_weights/sentiment", "train/skipped_steps"} <= logged.keys()
    assert [step for step, _ in logged["validation/aggregate"]] == [10, 20]
    assert logged["validation/ner/f1"][0][0] == 10 and logged["validation/sentiment/accuracy"][-1][0] == STEPS

    # The recipe as hyper-parameters: dotted keys, `auto` resolved, lists as JSON text.
    (hparams_file,) = run_dir.glob("*/hparams.yml")
    hparams = yaml.safe_load(hparams_file.read_text())
    assert hparams["training.learning_rate"] == 1e-3
    assert hparams["tasks.ner.batch_size"] == 16
    assert json.loads(hparams["training.report_to"]) == ["tensorboard"]


def test_a_run_reports_to_trackio_in_a_local_folder(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    trackio = pytest.importorskip("trackio")
    from trackio.sqlite_storage import SQLiteStorage

    recipe = tracked_recipe(tmp_path, tiny_model_dir, ["trackio"])
    train(recipe)
    history = read_history(Path(recipe.output_dir) / "metrics.jsonl")
    (run,) = trackio.Api().runs("tracked")
    logged: dict[str, list[tuple[int, float]]] = {}
    for row in SQLiteStorage.get_logs("tracked", run=run.name):
        for tag, value in row.items():
            logged.setdefault(tag, []).append((row["step"], value))
    for tag, points in expected_series(history).items():
        assert logged[tag] == [(step, pytest.approx(value)) for step, value in points], tag
    assert run.config["training.learning_rate"] == 1e-3


def test_the_recipe_names_every_tracker_accelerate_supports():
    (names,) = typing.get_args(typing.get_type_hints(TrainingConfig)["report_to"])
    assert set(typing.get_args(names)) - {"none"} == set(LOGGER_TYPE_TO_CLASS)


def test_an_unknown_tracker_is_refused_listing_the_known_ones(tmp_path, tiny_model_dir):
    with pytest.raises(RecipeError, match=r"training\.report_to\[1\]: 'tensorbord' is not allowed.*'tensorboard'"):
        tracked_recipe(tmp_path, tiny_model_dir, ["wandb", "tensorbord"])
    with pytest.raises(RecipeError, match=r"training\.report_to: 'none' cannot be combined"):
        tracked_recipe(tmp_path, tiny_model_dir, ["none", "wandb"])


def test_a_missing_tracker_package_names_its_extra_before_any_data_is_read(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(accelerate.utils, "is_comet_ml_available", lambda: False)
    recipe = tracked_recipe(tmp_path, tiny_model_dir, ["comet_ml"])
    with pytest.raises(RecipeError, match=r"report_to: comet_ml needs its package.*pip install 'mtl-nlp\[comet-ml\]'"):
        train(recipe)
    assert not Path(recipe.output_dir).exists()
