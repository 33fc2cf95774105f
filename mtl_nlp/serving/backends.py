"""Which runtime runs a saved model's heads: PyTorch (the saved weights) or ONNX Runtime (an ONNX export)."""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerBase

from ..errors import ModelLoadError
from ..modeling.saved import load_saved_model
from ..pipeline import HeadRunner
from .onnx_backend import ONNX_INFO, load_onnx_model

BACKENDS = ("torch", "onnx")


def load_runner(model_dir: str | Path, backend: str = "torch") -> tuple[HeadRunner, PreTrainedTokenizerBase]:
    """The heads of the model in ``model_dir`` on ``backend`` (``torch``: a saved multi-task model; ``onnx``: a
    directory written by ``mtl-nlp export-onnx``) and its tokenizer."""
    if backend not in BACKENDS:
        raise ModelLoadError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if backend == "onnx":
        return load_onnx_model(model_dir)
    if (Path(model_dir) / ONNX_INFO).is_file():
        raise ModelLoadError(f"{model_dir} holds an ONNX export ({ONNX_INFO}); run it with --backend onnx.")
    return load_saved_model(model_dir)
