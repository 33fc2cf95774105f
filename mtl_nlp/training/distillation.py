"""Multi-task knowledge distillation (Liu et al. 2019, MT-DNN-KD): tasks learn from teachers as well as from labels.

A task's teachers are saved mtl-nlp models or stock ``AutoModelFor…`` checkpoints that read the student's tokens.
Their probabilities at temperature T (an ensemble's mean) are computed once, before training, over the task's
encoded training split and kept as its :data:`~mtl_nlp.tasks.base.TEACHER_COLUMN` through the ``datasets``
cache. A distilled task's loss per batch is ``(1 − a) · gold loss + a · T² · KL(teacher ‖ student)``, the KL
averaged over the units that carry a target (:meth:`mtl_nlp.tasks.Task.distillation_units`). The task types say
what a unit is; nothing here knows one. docs/distillation.md describes it all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import List, Value
from transformers import AutoConfig, PretrainedConfig, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from ..config import DistillationConfig, RecipeConfig
from ..data.cached import code_fingerprint, map_cached
from ..errors import ModelLoadError, RecipeError
from ..modeling.config import MultiTaskConfig
from ..modeling.heads import STOCK_KIND, stock_auto_class
from ..modeling.saved import load_saved_model
from ..paths import load_pretrained, resolve_package_path
from ..tasks import Task, build_task
from ..tasks.base import TEACHER_COLUMN
from ..tokenization import load_tokenizer, tokenizer_differences

logger = logging.getLogger(__name__)

TeacherModel = Callable[[dict[str, torch.Tensor]], ModelOutput]


@dataclass(frozen=True)
class Teacher:
    """One teacher of a task: a saved mtl-nlp model and its task ``teacher_task``, or (``teacher_task`` None) a stock
    ``AutoModelFor…`` checkpoint; ``head`` is its head description (:mod:`mtl_nlp.modeling.heads`)."""

    task: str
    index: int
    path: str
    directory: Path
    config: PretrainedConfig
    teacher_task: str | None
    head: dict[str, Any]

    @property
    def where(self) -> str:
        """The teacher's recipe key and path, for error messages."""
        return _recipe_key(self.task, self.index, self.path)

    def labels(self) -> list[str]:
        """The names of its outputs, in order."""
        if self.teacher_task is not None:
            return list(self.config.tasks[self.teacher_task]["labels"])
        return [self.config.id2label[i] for i in range(self.config.num_labels)]

    def stamp(self) -> list[tuple[str, int, int]]:
        """Name, size and modification time of each file in its directory: what changes when it is saved again."""
        entries = [entry for entry in os.scandir(self.directory) if entry.is_file()]
        return sorted((entry.name, entry.stat().st_size, entry.stat().st_mtime_ns) for entry in entries)

    def load(self, device: torch.device) -> TeacherModel:
        """The teacher on ``device``, for inference: encoder inputs → its head's output."""
        if self.teacher_task is None:
            auto_class = stock_auto_class(self.head["auto_class"])
            stock = load_pretrained(auto_class.from_pretrained, str(self.directory), "teacher").to(device).eval()
            return lambda inputs: stock(**inputs)
        model = load_saved_model(self.directory)[0].to(device).eval()
        return lambda inputs: model(task=self.teacher_task, **inputs)


def _recipe_key(task: str, index: int, path: str) -> str:
    return f"distillation.teachers.{task}[{index}] ({path})"


def check_teachers(recipe: RecipeConfig, tokenizer: PreTrainedTokenizerBase) -> dict[str, list[Teacher]]:
    """The recipe's teachers per task, checked before any data is read: the task can learn from soft targets, and
    each teacher is a model of the task's kind that reads the student's tokenizer ``tokenizer``."""
    if recipe.distillation is None:
        return {}
    teachers = {}
    for name, paths in recipe.distillation.teachers.items():
        task = build_task(name, recipe.tasks[name], tokenizer)
        refusal = task.distillation_refusal()
        if refusal:
            raise RecipeError(
                f"distillation.teachers.{name}: task {name!r} cannot learn from a teacher: {refusal}. Remove its "
                "teachers to train it on gold labels only."
            )
        teachers[name] = [_checked_teacher(task, index, path, tokenizer) for index, path in enumerate(paths)]
    return teachers


def _checked_teacher(task: Task, index: int, path: str, tokenizer: PreTrainedTokenizerBase) -> Teacher:
    where = _recipe_key(task.name, index, path)
    directory = Path(resolve_package_path(path)).expanduser()
    if not (directory / "config.json").is_file():
        found = "the directory has no config.json" if directory.is_dir() else "no such directory"
        raise ModelLoadError(
            f"{where}: {found}. Give the directory of a trained teacher: the model/ directory of an mtl-nlp run, "
            "or a stock checkpoint such as mtl-nlp export writes."
        )
    config = load_pretrained(AutoConfig.from_pretrained, str(directory), "teacher")
    student = task.head_description()
    if isinstance(config, MultiTaskConfig):
        teacher_task = _teacher_task(task, config, where)
        teacher_type, head = config.tasks[teacher_task]["type"], config.tasks[teacher_task]["head"]
        kind = f"its task {teacher_task!r} is {teacher_type} with a {head['kind']} head"
    else:
        teacher_task, teacher_type = None, task.type_name  # a stock checkpoint's type is its auto class
        head = {
            "kind": STOCK_KIND,
            "auto_class": _stock_auto_class(config, student),
            "problem_type": config.problem_type,
        }
        kind = f"it is {', '.join(config.architectures or []) or 'a model whose config.json names no architecture'}"
    same_head = all(head.get(key) == student.get(key) for key in ("kind", "auto_class"))
    # A stock checkpoint often states no problem type: its head then reads as the task's.
    if (
        teacher_type != task.type_name
        or not same_head
        or head.get("problem_type") not in (None, student.get("problem_type"))
    ):
        wanted = ", ".join(filter(None, [task.type_name, student.get("problem_type")]))
        stock = f" or a stock {student['auto_class']} checkpoint" if student.get("auto_class") else ""
        raise ModelLoadError(
            f"{where}: {kind}{' for ' + head['problem_type'] if head.get('problem_type') else ''}, which cannot "
            f"teach task {task.name!r} ({wanted}). Give an mtl-nlp model with a {task.type_name} task{stock}."
        )
    differences = tokenizer_differences(tokenizer, load_tokenizer(str(directory)))
    if differences:
        raise ModelLoadError(
            f"{where}: the teacher's tokenizer differs from the student's ({'; '.join(differences)}), so it would "
            "read other tokens than the task's encoding holds. Give a teacher trained with the tokenizer of "
            "model.name_or_path."
        )
    return Teacher(task.name, index, path, directory, config, teacher_task, head)


def _teacher_task(task: Task, config: MultiTaskConfig, where: str) -> str:
    """The task of an mtl-nlp teacher that teaches ``task``: the one of the same name, else its only task."""
    if task.name in config.tasks:
        return task.name
    if len(config.tasks) == 1:
        return next(iter(config.tasks))
    raise ModelLoadError(
        f"{where}: the teacher has no task {task.name!r} and several others ({', '.join(config.tasks)}), so which "
        f"one teaches it is not clear. Give a teacher with a task named {task.name!r}, or with one task."
    )


def _stock_auto_class(config: PretrainedConfig, student: dict[str, Any]) -> str | None:
    """The student's stock ``AutoModelFor…`` class when the checkpoint's architecture is that class's model for
    its backbone; None otherwise."""
    name = student.get("auto_class")
    if student.get("kind") != STOCK_KIND or not name:
        return None
    try:
        # Built on the meta device: only the class the auto class picks for this backbone matters.
        with torch.device("meta"):
            expected = type(stock_auto_class(name).from_config(config)).__name__
    except ValueError:  # the auto class has no model for this backbone
        return None
    return name if expected in (config.architectures or []) else None


def _check_labels(task: Task, teacher: Teacher) -> None:
    """A teacher's outputs must be the task's labels, in the same order."""
    expected = task.teacher_labels()
    labels = teacher.labels()
    if expected is None or labels == expected:
        return
    differ = [
        f"position {position}: {mine!r} here, {theirs!r} in the teacher"
        for position, (mine, theirs) in enumerate(zip_longest(expected, labels))
        if mine != theirs
    ]
    raise ModelLoadError(
        f"{teacher.where}: its labels differ from those of task {task.name!r} ({'; '.join(differ[:3])}"
        f"{'; …' if len(differ) > 3 else ''}). Train the teacher on the task's labels in the task's order (list them "
        f"as tasks.{task.name}.labels in both recipes), or remove it."
    )


def _scaled_logits(logits: torch.Tensor, valid: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / T`` in float32, with the classes outside ``valid`` at the lowest finite value: they get no
    probability, and a unit with no class at all (padding) stays finite, so no NaN reaches a gradient."""
    return (logits.float() / temperature).masked_fill(~valid, torch.finfo(torch.float32).min)


class TeacherEnsemble:
    """A task's teachers, loaded on first use, and the mean of their probabilities at ``temperature``."""

    def __init__(self, task: Task, teachers: list[Teacher], temperature: float, device: torch.device) -> None:
        self.task = task
        self.teachers = teachers
        self.temperature = temperature
        self.device = device
        self.collate = task.collator()
        self.models: list[TeacherModel] | None = None

    def cache_key(self) -> list[Any]:
        """What decides the probabilities besides the encoded split: the task type's units, the temperature and
        each teacher's files (names, sizes, modification times)."""
        files = [(str(t.directory.resolve()), t.teacher_task, t.stamp()) for t in self.teachers]
        return [code_fingerprint(type(self.task).distillation_units), self.temperature, files]

    @torch.inference_mode()
    def __call__(self, columns: dict[str, list]) -> list[np.ndarray]:
        """Per example of a batch of encoded columns: the teachers' mean probabilities of its units, flattened
        (unit by unit, over each unit's classes)."""
        if self.models is None:
            logger.info("Task %s: running %d teacher(s) over the training split", self.task.name, len(self.teachers))
            self.models = [teacher.load(self.device) for teacher in self.teachers]
        model_columns = {name: columns[name] for name in self.task.model_columns()}
        batch = {name: tensor.to(self.device) for name, tensor in self.collate(model_columns).items()}
        inputs = {name: batch[name] for name in self.task.tokenizer.model_input_names if name in batch}
        total = 0
        for model in self.models:
            logits, valid = self.task.distillation_units(model(inputs), batch)
            total = total + _scaled_logits(logits, valid, self.temperature).softmax(dim=-1)
        mean, valid = (total / len(self.models)).cpu(), valid.cpu()
        return [mean[row][valid[row]].numpy() for row in range(len(mean))]


def _with_teacher_probabilities(batch: dict[str, list], ensemble: TeacherEnsemble) -> dict[str, list]:
    return {TEACHER_COLUMN: ensemble(batch)}


def add_teacher_probabilities(
    tasks: dict[str, Task],
    teachers: dict[str, list[Teacher]],
    config: DistillationConfig | None,
    device: torch.device,
    batch_size: int,
) -> None:
    """Check that each teacher's outputs are its task's labels, then add the teachers' probabilities to the task's
    encoded training split (float32). They are computed once and read back from the ``datasets`` cache while the
    encoded split, the teachers' files and the temperature stay the same.

    The teachers read the split longest first, in batches of ``batch_size`` examples of like lengths (little
    padding, as in evaluation); the split keeps its order."""
    for name, task_teachers in teachers.items():
        task = tasks[name]
        for teacher in task_teachers:
            _check_labels(task, teacher)
        ensemble = TeacherEnsemble(task, task_teachers, config.temperature, device)
        order = np.argsort(-task.lengths("train"), kind="stable")
        by_length = task.encoded["train"].select(order)
        features = by_length.features.copy()
        features[TEACHER_COLUMN] = List(Value("float32"))
        taught = map_cached(
            by_length,
            _with_teacher_probabilities,
            cache_key=ensemble.cache_key(),
            batched=True,
            batch_size=batch_size,
            features=features,
            fn_kwargs={"ensemble": ensemble},
            desc=f"Teachers of {name}",
        )
        # Back in the split's order, stored contiguously: Task.lengths reads the Arrow table without an index map.
        task.encoded["train"] = taught.select(np.argsort(order)).flatten_indices()


def distillation_kl(
    logits: torch.Tensor, valid: torch.Tensor, targets: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher ‖ student) at temperature T, averaged over the batch's units.

    ``logits`` and ``valid`` are the student's units (:meth:`mtl_nlp.tasks.Task.distillation_units`); ``targets``
    holds each example's teacher probabilities as stored (flattened units, right-padded by the collator).
    """
    student = _scaled_logits(logits, valid, temperature).log_softmax(dim=-1)[valid]
    counts = valid.flatten(1).sum(dim=1)
    positions = torch.arange(targets.shape[1], device=targets.device)
    teacher = targets[positions < counts.unsqueeze(1)]
    units = valid.any(dim=-1).sum().clamp(min=1)
    return (torch.xlogy(teacher, teacher) - teacher * student).sum() / units


class StudentLoss:
    """A training batch's loss: the head's loss on the gold labels and, for a batch that carries its teachers'
    probabilities, the distillation term: ``(1 − a) · gold + a · T² · KL(teacher ‖ student)``."""

    def __init__(self, config: DistillationConfig | None, tasks: dict[str, Task], total_steps: int) -> None:
        self.config = config
        self.tasks = tasks
        self.total_steps = total_steps

    def teacher_share(self, step: int) -> float:
        """a at optimizer step ``step`` (0-based): ``alpha``; with ``anneal``, 1 at the first step to 0 at the last."""
        if self.config.anneal:
            return 1.0 - step / max(self.total_steps - 1, 1)
        return self.config.alpha

    def __call__(
        self, model: Callable[..., ModelOutput], task: str, batch: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        """The loss of ``model`` on one batch of ``task`` at optimizer step ``step``."""
        targets = batch.pop(TEACHER_COLUMN, None)
        output = model(task=task, **batch)
        if targets is None:
            return output.loss
        share, temperature = self.teacher_share(step), self.config.temperature
        logits, valid = self.tasks[task].distillation_units(output, batch)
        kl = distillation_kl(logits, valid, targets, temperature)
        return (1 - share) * output.loss + share * temperature**2 * kl
