"""The run's figures: each function writes a PNG of the expected size that shows its data, and only its data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtl_nlp.evaluation.plots import DPI, plot_confusion_matrix, plot_entity_f1, plot_training_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADLINES = {"ner": "f1", "sentiment": "accuracy"}
CURVES_SIZE = (12 * DPI, round(4.5 * DPI))
# Data (lines, markers, bars, matrix cells) is drawn in colour; axes, text, grid lines and the note of an empty
# panel are black, grey or white. A pixel whose strongest and weakest channels differ by more is coloured.
GREY_SPREAD = 60


def drawn_pixels(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Check that the file is a PNG of ``size`` (width, height) pixels; return where it is coloured (rows, columns)."""
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(path) as image:
        assert image.size == size
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return rgb.max(axis=-1) - rgb.min(axis=-1) > GREY_SPREAD


def panels(drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training curves' two side-by-side panels: training loss, validation metric."""
    return tuple(np.array_split(drawn, 2, axis=1))


def runs(flags: np.ndarray) -> int:
    """How many separate runs of True ``flags`` holds."""
    return int(np.count_nonzero(np.diff(flags.astype(int), prepend=0) == 1))


def training_records() -> list[dict]:
    """Two training windows and two validation evaluations of two tasks, plus a test evaluation to ignore."""
    return [
        {"step": 10, "learning_rate": 0.001, "loss": {"ner": 1.5, "sentiment": 0.7}},
        {"step": 10, "split": "validation", "eval": {"ner": {"f1": 0.2, "loss": 1.2}, "sentiment": {"accuracy": 0.6}}},
        {"step": 20, "learning_rate": 0.0005, "loss": {"ner": 0.9, "sentiment": 0.5}},
        {"step": 20, "split": "validation", "eval": {"ner": {"f1": 0.5, "loss": 0.8}, "sentiment": {"accuracy": 0.8}}},
        {"step": 20, "split": "test", "eval": {"ner": {"f1": 0.4}, "sentiment": {"accuracy": 0.7}}},
    ]


def test_training_curves(tmp_path: Path) -> None:
    path = plot_training_curves(training_records(), HEADLINES, tmp_path / "plots" / "curves.png")
    assert path == tmp_path / "plots" / "curves.png"
    loss, validation = panels(drawn_pixels(path, CURVES_SIZE))
    assert loss.any() and validation.any()


def test_training_curves_with_missing_tasks_and_no_evaluations(tmp_path: Path) -> None:
    records = [
        {"step": 10, "learning_rate": 0.001, "loss": {"ner": 1.5}},
        {"step": 20, "learning_rate": 0.001, "loss": {"sentiment": 0.7}},
        {"step": 30, "learning_rate": 0.001, "loss": {"ner": 1.1, "sentiment": 0.6}},
    ]
    path = plot_training_curves(records, HEADLINES, tmp_path / "curves.png")
    loss, validation = panels(drawn_pixels(path, CURVES_SIZE))
    assert loss.any() and not validation.any()


def test_training_curves_without_records_draw_no_data(tmp_path: Path) -> None:
    assert not drawn_pixels(plot_training_curves([], HEADLINES, tmp_path / "curves.png"), CURVES_SIZE).any()


def test_entity_f1(tmp_path: Path) -> None:
    per_type = {
        "LOC": {"precision": 0.9, "recall": 0.8, "f1-score": 0.847, "support": 1668.0},
        "MISC": {"precision": 0.7, "recall": 0.6, "f1-score": 0.646, "support": 702.0},
        "ORG": {"precision": 0.8, "recall": 0.7, "f1-score": 0.747, "support": 1661.0},
        "PER": {"precision": 0.95, "recall": 0.9, "f1-score": 0.924, "support": 1617.0},
    }
    path = plot_entity_f1(per_type, tmp_path / "ner" / "entity_f1.png", "NER test: F1 per entity type")
    drawn = drawn_pixels(path, (7 * DPI, round((0.45 * 4 + 1.3) * DPI)))
    assert runs(drawn.any(axis=1)) == 4  # one bar per entity type


def test_confusion_matrix(tmp_path: Path) -> None:
    gold = np.array([0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0, 2])
    path = plot_confusion_matrix(gold, predicted, ["negative", "neutral", "positive"], tmp_path / "cm.png", "Test")
    width = round(5.3 * DPI)
    drawn = drawn_pixels(path, (width, round(4.3 * DPI)))
    assert drawn[:, : width * 3 // 4].any()  # the matrix's cells, left of the colour bar


def test_confusion_matrix_rejects_mismatched_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="differ in length: 3 gold vs 2 predicted"):
        plot_confusion_matrix(np.array([0, 1, 1]), np.array([0, 1]), ["a", "b"], tmp_path / "cm.png", "Test")
    assert not (tmp_path / "cm.png").exists()
