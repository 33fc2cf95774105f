"""Configuration of a multi-task model: the encoder's own config plus a versioned description of each task.

A task description says what inference needs, not how the model was trained::

    {"format": 2, "type": "token_classification", "labels": ["O", "B-PER", …],
     "head": {"kind": "stock", "auto_class": "AutoModelForTokenClassification", "problem_type": null},
     "settings": {"tag_scheme": "iob2", "evaluation_mode": "conlleval", "max_length": null, …}}

``type`` names the task type that decodes it (``mtl_nlp.tasks``), ``head`` is the head description that
``mtl_nlp.modeling.heads`` builds, ``settings`` are the task type's decoding and reading settings, and an optional
``adapter`` (``{type, r, alpha, dropout, target_modules}``) is the task's LoRA adapter on the shared encoder.
Models saved in format 1 (``id2label`` and the task's whole recipe settings as ``task_config``) are read into
format 2 on load.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig

TASK_FORMAT = 2

# How format 1 built each task type's head: the stock class of the type, always.
FORMAT_1_HEADS = {
    "token_classification": "AutoModelForTokenClassification",
    "sequence_classification": "AutoModelForSequenceClassification",
    "question_answering": "AutoModelForQuestionAnswering",
}

# Recipe settings that say where training data came from, not how to read or decode it: never saved.
DATA_LOCATION_KEYS = (
    "train",
    "validation",
    "test",
    "hub_dataset",
    "hub_config",
    "hub_splits",
    "max_train_examples",
    "max_eval_examples",
)


def saved_settings(task_settings: dict[str, Any]) -> dict[str, Any]:
    """A task's recipe settings (as plain data) without its labels, type, adapter (saved beside them) and data
    locations: what is saved."""
    settings = {key: value for key, value in task_settings.items() if key not in ("type", "labels", "adapter")}
    if "data" in settings:
        settings["data"] = {key: value for key, value in settings["data"].items() if key not in DATA_LOCATION_KEYS}
    return settings


def task_description(spec: dict[str, Any]) -> dict[str, Any]:
    """A task description in the current format, from a saved one of any format."""
    if spec.get("format") == TASK_FORMAT:
        return spec
    if "format" in spec:
        raise ValueError(
            f"task description format {spec['format']} is newer than this mtl-nlp reads ({TASK_FORMAT}); upgrade "
            "mtl-nlp to load this model."
        )
    upgraded = {  # format 1
        "format": TASK_FORMAT,
        "type": spec["type"],
        "labels": list(spec.get("id2label") or []),
        "head": {
            "kind": "stock",
            "auto_class": FORMAT_1_HEADS[spec["type"]],
            "problem_type": spec.get("problem_type"),
        },
        "settings": saved_settings(spec.get("task_config") or {}),
    }
    if spec.get("adapter"):  # never saved in format 1, but a short description written by hand may name one
        upgraded["adapter"] = spec["adapter"]
    return upgraded


class MultiTaskConfig(PretrainedConfig):
    """Saved as ``config.json`` next to the weights; enough to rebuild the model without the recipe.

    Args:
        encoder: the backbone's config as a dict (``PretrainedConfig.to_dict()``).
        tasks: task name → task description (see the module's documentation); older formats are upgraded.
        sharing: how the tasks share the encoder (``task_layers``, ``cross_stitch``, ``layer_attention``; see
            :mod:`mtl_nlp.modeling.sharing`); empty: hard sharing.
    """

    model_type = "mtl_nlp"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        tasks: dict[str, dict] | None = None,
        sharing: dict[str, Any] | None = None,
        **kwargs,
    ):
        self.encoder = encoder or {}
        self.tasks = {name: task_description(spec) for name, spec in (tasks or {}).items()}
        self.sharing = dict(sharing or {})
        super().__init__(**kwargs)

    def encoder_config(self) -> PretrainedConfig:
        """The backbone's ``PretrainedConfig``, rebuilt from the stored dict."""
        if "model_type" not in self.encoder:
            # What a plain backbone's config.json gives when it is read as a multi-task config.
            raise ValueError("its config.json has no 'encoder' entry, so it is not a multi-task model saved by mtl-nlp")
        return AutoConfig.for_model(**self.encoder)


AutoConfig.register(MultiTaskConfig.model_type, MultiTaskConfig)
