"""mtl-nlp: multi-task NLP on Hugging Face transformers — one shared encoder, a head per task, trained jointly."""

from .config import RecipeConfig, load_recipe, recipe_from_dict
from .modeling import MultiTaskConfig, MultiTaskModel
from .pipeline import MultiTaskPipeline
from .training.run import TrainingResult, train
from .training.trainer import MultiTaskTrainer

__version__ = "0.1.0"

__all__ = [
    "MultiTaskConfig",
    "MultiTaskModel",
    "MultiTaskPipeline",
    "MultiTaskTrainer",
    "RecipeConfig",
    "TrainingResult",
    "load_recipe",
    "recipe_from_dict",
    "train",
]
