"""Training speed of one NER epoch: mtl-nlp against a bare PyTorch loop and the transformers Trainer.

    HF_HUB_OFFLINE=1 python benchmarks/train_speed.py --data-dir ../shared/data --train-size 4000

Every contender runs in this one process on the first N CoNLL-2003 training sentences with the packaged MiniLM:
batch 32, max length 128, learning rate 5e-5, one epoch, linear decay without warm-up or weight decay, gradient
clipping at 1.0 (the Trainer's defaults), the same seed.

  mtl           mtl-nlp's MultiTaskTrainer (length-grouped batches, dynamic padding). Its training loop is timed as
                train() minus validate() and save_checkpoint(), which run once, after the last step.
  bare          a plain PyTorch loop over the very same batches (mtl-nlp's sampler and encoded dataset) with
                AutoModelForTokenClassification: forward, backward, clipping, fused AdamW, scheduler; nothing else.
  trainer       transformers' Trainer at its defaults (random batches, DataCollatorForTokenClassification, its
                fused AdamW), labels on the first sub-token of each word as in run_ner.py.
  mtl_defaults  mtl-nlp with its default hyper-parameters, only epochs=1.

Dev F1 is entity F1 on words, seqeval default mode (= conlleval), over the CoNLL-2003 dev set: mtl-nlp's evaluator
(eval batch 64, length-grouped) for the mtl rows; Trainer.predict at its default eval batch 8 for the trainer row.
Padding efficiency is real ÷ total tokens in the batches fed to the model. A few untimed steps of the bare loop on
a throwaway model warm the process up first. The mtl and bare loops run --repeats times each, alternating which
goes first, each on a fresh model; their row is the run of median time (all times are in the JSON). Prints a
table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from measure import (
    BACKBONE,
    BATCH_SIZE,
    LEARNING_RATE,
    MAX_LENGTH,
    TimedTrainer,
    bare_loop_seconds,
    build_trainer,
    conll_files,
    fed_tokens,
    markdown_table,
    ner_recipe,
    prepare,
    sampler_batches,
    training_batches,
    warm_up,
)
from seqeval.metrics import f1_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
    set_seed,
)

from mtl_nlp.data.conll import read_conll
from mtl_nlp.paths import resolve_model_location

CONTENDERS = ("mtl", "bare", "trainer", "mtl_defaults")
CONLL_COLUMNS = ["tokens", "pos", "chunk", "ner"]


def speed_figures(seconds: float, real: int, total: int) -> dict[str, Any]:
    """Seconds per epoch, tokens fed and what they make per second."""
    return {
        "seconds_per_epoch": round(seconds, 2),
        "real_tokens": real,
        "total_tokens": total,
        "real_tokens_per_second": round(real / seconds, 1),
        "padding_efficiency": round(real / total, 4),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median seconds per epoch (the upper median for an even count)."""
    return sorted(runs, key=lambda run: run["seconds_per_epoch"])[len(runs) // 2]


def run_mtl(trainer: TimedTrainer) -> dict[str, Any]:
    """Train with mtl-nlp; the loop's seconds exclude the final scoring and saving."""
    real, total = fed_tokens(trainer.sampler, training_batches(trainer))
    evaluations, seconds = trainer.timed_train()
    figures = speed_figures(seconds["loop"], real, total)
    figures |= {"steps": trainer.step, "seconds_scoring_and_saving": round(seconds["outside_loop"], 2)}
    if evaluations:
        figures |= {
            "dev_f1": round(evaluations[0].headline_value, 4),
            "dev_eval_seconds": round(seconds["evaluate"], 2),
            "eval_batch_size": trainer.training.eval_batch_size,
        }
    return figures


def run_bare(trainer: TimedTrainer) -> dict[str, Any]:
    """A plain PyTorch loop over the batches ``trainer`` draws in a run."""
    batches = training_batches(trainer)
    real, total = fed_tokens(trainer.sampler, batches)
    keys = sampler_batches(trainer.sampler, batches)
    seconds = bare_loop_seconds(trainer.tasks["ner"], keys, trainer.training.seed)
    return {**speed_figures(seconds, real, total), "steps": batches}


def encode_like_run_ner(dataset: Dataset, tokenizer: Any, label2id: dict[str, int]) -> Dataset:
    """Tokenize words, truncated at 128 sub-tokens; the first sub-token of a word carries its tag, the others and
    the special tokens -100. Keeps each sub-token's word index (-1: none) for scoring on words."""

    def encode(batch: dict[str, list]) -> dict[str, list]:
        encoding = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=MAX_LENGTH)
        labels, word_ids = [], []
        for row, tags in enumerate(batch["ner"]):
            previous, row_labels = None, []
            for word in encoding.word_ids(row):
                row_labels.append(-100 if word is None or word == previous else label2id[tags[word]])
                previous = word
            labels.append(row_labels)
            word_ids.append([-1 if word is None else word for word in encoding.word_ids(row)])
        return {**encoding, "labels": labels, "word_ids": word_ids}

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names)


class CountingCollator:
    """Wraps a collator and counts the real and total tokens of the batches it builds."""

    def __init__(self, collator: DataCollatorForTokenClassification) -> None:
        self.collator = collator
        self.real = self.total = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collator(features)
        self.real += int(batch["attention_mask"].sum())
        self.total += batch["input_ids"].numel()
        return batch


def word_f1(gold: list[list[str]], logits: Any, word_ids: list[list[int]], labels: list[str]) -> float:
    """Entity F1 (seqeval default mode) of each word's first-sub-token prediction; words cut by truncation
    are predicted O."""
    predicted_ids = logits.argmax(-1)
    predicted = []
    for row, (tags, row_word_ids) in enumerate(zip(gold, word_ids)):
        words = ["O"] * len(tags)
        previous = -1
        for position, word in enumerate(row_word_ids):
            if word >= 0 and word != previous:
                words[word] = labels[predicted_ids[row, position]]
            previous = word
        predicted.append(words)
    return float(f1_score(gold, predicted))


def run_trainer(data_dir: str, train_size: int, dev_size: int | None, output_dir: Path, seed: int) -> dict[str, Any]:
    """transformers' Trainer at its defaults, then Trainer.predict on the dev set, scored on words."""
    model_location = resolve_model_location(BACKBONE)
    files = conll_files(data_dir)
    train_raw = read_conll(files["train"], CONLL_COLUMNS)
    train_raw = train_raw.select(range(min(train_size, len(train_raw))))
    dev_raw = read_conll(files["validation"], CONLL_COLUMNS)
    if dev_size is not None:
        dev_raw = dev_raw.select(range(min(dev_size, len(dev_raw))))
    labels = sorted({tag for tags in train_raw["ner"] for tag in tags})
    label2id = {label: i for i, label in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_location)
    train_encoded = encode_like_run_ner(train_raw, tokenizer, label2id)
    dev_encoded = encode_like_run_ner(dev_raw, tokenizer, label2id)

    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        model_location, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    arguments = TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE,
        num_train_epochs=1,
        seed=seed,
        save_strategy="no",
        report_to="none",
    )
    collator = CountingCollator(DataCollatorForTokenClassification(tokenizer))
    trainer = Trainer(model=model, args=arguments, train_dataset=train_encoded, data_collator=collator)
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    figures = {**speed_figures(seconds, collator.real, collator.total), "steps": output.global_step}

    start = time.perf_counter()
    prediction = trainer.predict(dev_encoded)
    f1 = word_f1(dev_raw["ner"], prediction.predictions, dev_encoded["word_ids"], labels)
    return figures | {
        "dev_f1": round(f1, 4),
        "dev_eval_seconds": round(time.perf_counter() - start, 2),
        "eval_batch_size": arguments.per_device_eval_batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/.")
    parser.add_argument("--train-size", type=int, default=4000, help="First N CoNLL-2003 training sentences.")
    parser.add_argument("--dev-size", type=int, default=None, help="First N dev sentences (default: all 3,250).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warmup-batches", type=int, default=5, help="Untimed bare steps first.")
    parser.add_argument(
        "--repeats", type=int, default=3, help="Runs of the mtl and bare loops, alternating; the median counts."
    )
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--output-dir", default="runs/benchmarks/train_speed")
    args = parser.parse_args()
    output_dir = Path(args.output_dir)

    results: dict[str, Any] = {}
    recipe = ner_recipe(args.data_dir, args.train_size, args.dev_size, output_dir / "mtl", args.seed)
    tasks = prepare(recipe)
    warm_up(tasks["ner"], args.warmup_batches, args.seed)
    loops = [name for name in ("mtl", "bare") if name in args.contenders]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in loops}
    for repeat in range(args.repeats):
        # Alternate which loop goes first, so that neither always inherits the other's machine state.
        for name in loops if repeat % 2 == 0 else loops[::-1]:
            trainer = build_trainer(recipe, tasks)
            runs[name].append(run_mtl(trainer) if name == "mtl" else run_bare(trainer))
            del trainer
            gc.collect()
    for name, figures in runs.items():
        seconds = [run["seconds_per_epoch"] for run in figures]
        results[name] = median_run(figures) | {"seconds_per_epoch_runs": seconds}
    del tasks
    gc.collect()
    if "trainer" in args.contenders:
        with tempfile.TemporaryDirectory() as scratch:
            results["trainer"] = run_trainer(args.data_dir, args.train_size, args.dev_size, Path(scratch), args.seed)
        gc.collect()
    if "mtl_defaults" in args.contenders:
        recipe = ner_recipe(
            args.data_dir, args.train_size, args.dev_size, output_dir / "mtl_defaults", args.seed, defaults=True
        )
        results["mtl_defaults"] = run_mtl(build_trainer(recipe, prepare(recipe)))

    summary: dict[str, Any] = {}
    if "mtl" in results and "bare" in results:
        summary["mtl_over_bare"] = round(results["mtl"]["seconds_per_epoch"] / results["bare"]["seconds_per_epoch"], 3)
    if "mtl" in results and "trainer" in results:
        mtl_seconds, trainer_seconds = results["mtl"]["seconds_per_epoch"], results["trainer"]["seconds_per_epoch"]
        summary["mtl_over_trainer"] = round(mtl_seconds / trainer_seconds, 3)
    if "mtl_defaults" in results and "trainer" in results:
        gain = results["mtl_defaults"]["dev_f1"] - results["trainer"]["dev_f1"]
        summary["defaults_f1_minus_trainer_f1"] = round(gain, 4)
        summary["defaults_goal_met"] = gain >= 0.05

    print(
        f"\nNER, first {args.train_size} CoNLL-2003 sentences, one epoch, MiniLM, seed {args.seed}, "
        f"{torch.get_num_threads()} torch threads\n"
    )
    rows = [
        [
            name,
            f"{figures['seconds_per_epoch']:.1f}",
            f"{figures['real_tokens_per_second']:.0f}",
            f"{figures['padding_efficiency']:.3f}",
            f"{figures['dev_f1']:.4f}" if "dev_f1" in figures else None,
            f"{figures['dev_eval_seconds']:.1f} (batch {figures['eval_batch_size']})" if "dev_f1" in figures else None,
        ]
        for name, figures in results.items()
    ]
    columns = ["contender", "s / epoch", "real tokens / s", "padding efficiency", "dev F1", "dev eval s"]
    print(markdown_table(columns, rows))
    print("\n" + ", ".join(f"{key} {value}" for key, value in summary.items()))
    print(
        json.dumps(
            {
                "benchmark": "train_speed",
                "train_sentences": args.train_size,
                "dev_sentences": args.dev_size,
                "batch_size": BATCH_SIZE,
                "max_length": MAX_LENGTH,
                "learning_rate": LEARNING_RATE,
                "seed": args.seed,
                "repeats": args.repeats,
                "torch_threads": torch.get_num_threads(),
                "results": results,
                **summary,
            }
        )
    )


if __name__ == "__main__":
    main()
