"""The shared encoder and the task heads."""

from .config import MultiTaskConfig
from .model import MultiTaskModel

__all__ = ["MultiTaskConfig", "MultiTaskModel"]
