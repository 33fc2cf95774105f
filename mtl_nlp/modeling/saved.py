"""Load a saved multi-task model and its tokenizer: the one way every command reads a model directory."""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerBase

from ..errors import ModelLoadError
from ..paths import load_pretrained
from ..tokenization import load_tokenizer
from .config import MultiTaskConfig
from .model import MultiTaskModel


def load_saved_config(model_dir: str | Path) -> MultiTaskConfig:
    """The config of a saved multi-task model, with a clear error when ``model_dir`` holds something else."""
    try:
        config = load_pretrained(MultiTaskConfig.from_pretrained, str(model_dir), "saved model")
    except ModelLoadError as error:
        raise ModelLoadError(f"{error} Give the 'model' directory of a training run.") from None
    if not config.tasks:  # another model's config.json loads too, with no tasks
        raise ModelLoadError(
            f"{model_dir}/config.json: not an mtl-nlp multi-task model (it names no tasks). Give the 'model' "
            "directory of a training run."
        )
    return config


def load_saved_model(model_dir: str | Path) -> tuple[MultiTaskModel, PreTrainedTokenizerBase]:
    """The multi-task model saved in ``model_dir`` (safetensors, possibly sharded) and its fast tokenizer."""
    config = load_saved_config(model_dir)
    model = load_pretrained(MultiTaskModel.from_pretrained, str(model_dir), "saved model", config=config)
    return model, load_tokenizer(str(model_dir))
