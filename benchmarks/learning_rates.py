"""Dev scores against the peak learning rate, for one epoch on a small training set (CoNLL-2003 NER, SST-2).

    HF_HUB_OFFLINE=1 python benchmarks/learning_rates.py --data-dir ../shared/data --learning-rates 5e-5 1e-4 auto

Each run is recipes/local_files.yaml keeping one task, on the first N training rows (default 4,000), one epoch,
with every other training setting at mtl-nlp's default (warm-up 10 %, linear decay, weight decay 0.01, batch 32),
the packaged MiniLM and the same seed. ``auto`` is the learning rate mtl-nlp picks for the backbone when the recipe
sets none. Scores: entity F1 on the full CoNLL-2003 dev set, accuracy on the SST-2 dev set. Prints a table and
ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from measure import BACKBONE, REPOSITORY, markdown_table
from transformers import AutoConfig

from mtl_nlp import train
from mtl_nlp.config import apply_overrides, recipe_from_dict
from mtl_nlp.paths import resolve_model_location
from mtl_nlp.training.optimization import auto_learning_rate

RECIPE = REPOSITORY / "recipes" / "local_files.yaml"


def run(task: str, learning_rate: str, args: argparse.Namespace) -> dict:
    """Train ``task`` alone for one epoch at ``learning_rate``; its dev score and the learning rate used."""
    raw = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    raw["tasks"] = {task: raw["tasks"][task]}
    raw["training"] = {"epochs": 1, "seed": args.seed, "save_every_steps": 0, "learning_rate": learning_rate}
    overrides = [
        f"output_dir={Path(args.output_dir) / task / learning_rate}",
        f"tasks.{task}.data.max_train_examples={args.train_size}",
    ]
    result_start = time.perf_counter()
    result = train(recipe_from_dict(apply_overrides(raw, overrides)))
    seconds = time.perf_counter() - result_start
    evaluation = next(e for e in result.evaluations if e.split == "validation")
    return {
        "task": task,
        "learning_rate": learning_rate,
        "learning_rate_used": auto_learning_rate(AutoConfig.from_pretrained(resolve_model_location(BACKBONE)))
        if learning_rate == "auto"
        else float(learning_rate),
        "dev_score": round(evaluation.headline_value, 4),
        "metric": evaluation.headline,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--learning-rates", nargs="+", default=["5e-5", "1e-4", "2e-4", "4e-4", "auto"])
    parser.add_argument("--tasks", nargs="+", choices=["ner", "sentiment"], default=["ner", "sentiment"])
    parser.add_argument("--train-size", type=int, default=4000, help="First N training rows of each task.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="runs/benchmarks/learning_rates")
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())

    rows = [run(task, learning_rate, args) for task in args.tasks for learning_rate in args.learning_rates]
    print(f"\nOne epoch on the first {args.train_size} training rows, MiniLM, mtl-nlp defaults, seed {args.seed}\n")
    table = [
        [row["task"], row["learning_rate"], f"{row['learning_rate_used']:.0e}", row["metric"], row["dev_score"]]
        for row in rows
    ]
    print(markdown_table(["task", "learning rate", "used", "metric", "dev score"], table))
    print(json.dumps({"benchmark": "learning_rates", "train_size": args.train_size, "results": rows}))


if __name__ == "__main__":
    main()
