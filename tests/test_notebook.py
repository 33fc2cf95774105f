"""The quickstart notebook runs from top to bottom (on the tiny model, a few steps), so it cannot rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tiny_model_dir, tmp_path, monkeypatch):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit no outputs"
    monkeypatch.setenv("MTL_NLP_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("MTL_NLP_STEPS", "20")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(NOTEBOOK.parents[1]), os.environ.get("PYTHONPATH", "")]))
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    text = "".join(output.get("text", "") for output in outputs)
    assert "ner / validation" in text
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 3
    assert (tmp_path / "runs" / "notebook-ner" / "config.json").exists()
    assert "| joint | fine-tuned | difference |" in text  # the fine-tuning stage's summary
    assert (tmp_path / "runs" / "notebook" / "finetuned" / "ner" / "model" / "model.safetensors").exists()
