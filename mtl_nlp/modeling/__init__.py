"""The shared encoder, the task heads and saved-model loading."""

from .config import MultiTaskConfig
from .heads import register_head_kind
from .model import MultiTaskModel

__all__ = ["MultiTaskConfig", "MultiTaskModel", "register_head_kind"]
