"""Export one task of a multi-task model as a stock transformers checkpoint.

The task's head is the backbone's own ``AutoModelFor…`` class, so the export is that class with the shared
encoder's weights put back under its ``base_model_prefix``: the result loads with the stock ``AutoModelFor…``
and ``AutoTokenizer`` and runs in ``transformers.pipeline``, with no import of mtl_nlp. Before anything is
written, the stock model is run next to the multi-task model on a sample input and must give the same outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from .errors import ExportError
from .modeling import MultiTaskModel
from .modeling.adapters import merged_state_dict
from .modeling.heads import STOCK_KIND, stock_auto_class, stock_config
from .modeling.saved import load_saved_model
from .training.checkpoint import atomic_directory

logger = logging.getLogger(__name__)

CHECK_TEXTS = ("mtl-nlp checks that the exported model", "gives the same outputs.")


def task_description(model: MultiTaskModel, task: str) -> dict:
    """The saved description of ``task``; a clear error for a task the model does not have or whose head has no
    stock transformers class."""
    if task not in model.config.tasks:
        raise ExportError(f"task {task!r}: the model has no such task; it has {', '.join(model.config.tasks)}.")
    description = model.config.tasks[task]
    soft = [key for key in ("cross_stitch", "layer_attention") if model.config.sharing.get(key)]
    if soft:
        raise ExportError(
            f"task {task!r}: the model's sharing uses model.sharing.{soft[0]}, which no stock transformers class "
            "has, so the task cannot be exported as a stock model."
        )
    if description["head"]["kind"] != STOCK_KIND:
        raise ExportError(
            f"task {task!r}: its head is of kind {description['head']['kind']!r}, which has no stock transformers "
            "class to export to."
        )
    return description


def stock_state_dict(model: MultiTaskModel, task: str, stock: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The multi-task weights of ``task`` under the stock model's parameter names.

    The encoder's weights go under ``stock.base_model_prefix`` — with the task's adapter merged in, and with
    ``task_layers`` the shared bottom layers and this task's own top layers, which together are the stock
    encoder — and the head's keep their names. The
    stock model must get every one of its weights this way; encoder weights it has no place for (such as a pooler
    that a token head lacks) are left out, and only those.
    """
    encoder_state = merged_state_dict(model.encoder, task) | model.sharing.tower_state_dict(task)
    encoder = {f"{stock.base_model_prefix}.{key}": value for key, value in encoder_state.items()}
    head = model.heads[task].state_dict()
    expected = set(stock.state_dict())
    missing = sorted(expected - encoder.keys() - head.keys())
    foreign = sorted((head.keys() - expected) | (head.keys() & encoder.keys()))
    if missing or foreign:
        raise ExportError(
            f"task {task!r}: the shared encoder and head do not lay out as a stock {type(stock).__name__} "
            f"(weights it lacks: {', '.join(missing) or 'none'}; head weights it has no place for: "
            f"{', '.join(foreign) or 'none'}), so this architecture cannot be exported as a stock model."
        )
    unused = sorted(encoder.keys() - expected)
    if unused:
        logger.info("Task %s: %s has no %s; left out of the export.", task, type(stock).__name__, ", ".join(unused))
    return {key: value for key, value in (encoder | head).items() if key in expected}


def to_stock_model(model: MultiTaskModel, task: str) -> PreTrainedModel:
    """``task`` as one stock ``AutoModelFor…`` instance holding the shared encoder's and the head's weights.

    The config is built from the task's description (labels, ``problem_type``), as the multi-task model built the
    head.
    """
    description = task_description(model, task)
    head = description["head"]
    config = stock_config(model.config.encoder_config(), description["labels"], head.get("problem_type"))
    stock = stock_auto_class(head["auto_class"]).from_config(config)
    stock.load_state_dict(stock_state_dict(model, task, stock), strict=True)
    return stock.to(device=model.device, dtype=model.encoder.dtype).eval()


def _tensors(output: ModelOutput) -> dict[str, torch.Tensor]:
    return {name: value for name, value in output.items() if isinstance(value, torch.Tensor)}


def check_same_outputs(
    model: MultiTaskModel, task: str, stock: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Run both models on a sample text pair; raise :class:`ExportError` unless every output tensor agrees.

    Both run the same modules on the same weights, so the outputs agree up to the last bits (vector kernels may
    round differently for weights at other addresses); the check uses ``torch.testing.assert_close``'s default
    tolerances for the dtype (float32: rtol 1.3e-6, atol 1e-5). A wrong or missing weight moves them far more.
    """
    inputs = tokenizer(*CHECK_TEXTS, return_tensors="pt").to(model.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected, exported = _tensors(model(task=task, **inputs)), _tensors(stock(**inputs))
    finally:
        model.train(was_training)
    for name, value in expected.items():
        try:
            torch.testing.assert_close(exported[name], value)
        except AssertionError as error:
            raise ExportError(
                f"task {task!r}: the stock {type(stock).__name__} does not reproduce the multi-task model's {name} "
                f"({' '.join(str(error).split())}); this architecture cannot be exported as a stock model."
            ) from None


def require_new_directory(path: str | Path) -> Path:
    """``path`` as a ``Path``, if it does not exist or is an empty directory: exports never overwrite files."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{path}: already exists and is not an empty directory; give a new directory.")
    return path


def export_task(model: MultiTaskModel, task: str, out_dir: str | Path, tokenizer: PreTrainedTokenizerBase) -> Path:
    """Write ``task`` to ``out_dir`` as a stock checkpoint: safetensors weights, ``config.json``, tokenizer.

    ``out_dir`` must be new or empty. The directory loads with ``AutoModelFor…`` / ``AutoTokenizer`` and runs in
    ``transformers.pipeline`` with the task type's ``hub_pipeline_tag``.
    """
    out_dir = require_new_directory(out_dir)
    stock = to_stock_model(model, task)
    check_same_outputs(model, task, stock, tokenizer)
    with atomic_directory(out_dir) as staging:
        stock.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return out_dir


def export_saved_task(model_dir: str | Path, task: str, out_dir: str | Path) -> Path:
    """Export ``task`` of the multi-task model saved in ``model_dir`` (with its tokenizer) to ``out_dir``."""
    model, tokenizer = load_saved_model(model_dir)
    return export_task(model, task, out_dir, tokenizer)
