"""Configuration of a multi-task model: the encoder's own config plus one head description per task."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig


class MultiTaskConfig(PretrainedConfig):
    """Saved as ``config.json`` next to the weights; enough to rebuild the model without the recipe.

    Args:
        encoder: the backbone's config as a dict (``PretrainedConfig.to_dict()``).
        tasks: task name → head description: ``type`` (a head type of ``mtl_nlp.modeling.heads``),
            ``id2label`` (label names in order) and ``problem_type`` where the head needs it, plus
            ``task_config`` (the task's recipe settings, so evaluation and export can rebuild the task).
    """

    model_type = "mtl_nlp"

    def __init__(self, encoder: dict[str, Any] | None = None, tasks: dict[str, dict] | None = None, **kwargs):
        self.encoder = encoder or {}
        self.tasks = tasks or {}
        super().__init__(**kwargs)

    def encoder_config(self) -> PretrainedConfig:
        """The backbone's ``PretrainedConfig``, rebuilt from the stored dict."""
        if "model_type" not in self.encoder:
            # What a plain backbone's config.json gives when it is read as a multi-task config.
            raise ValueError("its config.json has no 'encoder' entry, so it is not a multi-task model saved by mtl-nlp")
        return AutoConfig.for_model(**self.encoder)


AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig)
