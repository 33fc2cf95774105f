"""NER alone, SST-2 alone, and NER + SST-2 jointly, at the same number of optimizer steps.

    HF_HUB_OFFLINE=1 python benchmarks/joint_vs_single.py --data-dir ../shared/data --steps 1000

Each run is recipes/local_files.yaml (packaged MiniLM, learning rate 1e-4, batch 32 per task, proportional sampling,
CoNLL-2003 train and the first 20,000 rows of SST-2 train) keeping one task or both, trained with mtl_nlp.train in
a fresh process, so that its peak resident memory (the kernel's high-water mark, getrusage) is its own. Wall time is
that of train(): reading the tokenized data from the datasets cache, training, scoring the full dev sets, and
writing the model and reports. An untimed two-step joint run goes first, filling the datasets cache and bringing
the libraries' code into the OS file cache. Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from measure import REPOSITORY, markdown_table, peak_rss_mib, run_in_fresh_process

from mtl_nlp import RecipeConfig, train
from mtl_nlp.config import apply_overrides, recipe_from_dict

RECIPE = REPOSITORY / "recipes" / "local_files.yaml"
CONTENDERS = {"ner": ["ner"], "sentiment": ["sentiment"], "joint": ["ner", "sentiment"]}


def build_recipe(args: argparse.Namespace, contender: str, steps: int, run_name: str) -> RecipeConfig:
    """local_files.yaml with only the contender's tasks, ``steps`` steps, the seed and sizes of the command line."""
    raw = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    raw["tasks"] = {name: raw["tasks"][name] for name in CONTENDERS[contender]}
    overrides = [
        f"output_dir={Path(args.output_dir) / run_name}",
        f"training.max_steps={steps}",
        f"training.seed={args.seed}",
        "training.save_every_steps=0",
    ]
    sizes = {"ner": args.ner_train_size, "sentiment": args.sst2_train_size}
    for task in raw["tasks"]:
        if sizes[task] is not None:
            overrides.append(f"tasks.{task}.data.max_train_examples={sizes[task]}")
        if args.dev_size is not None:
            overrides.append(f"tasks.{task}.data.max_eval_examples={args.dev_size}")
    return recipe_from_dict(apply_overrides(raw, overrides))


def run_contender(args: argparse.Namespace, contender: str) -> dict:
    """Train one contender in this process; its figures."""
    recipe = build_recipe(args, contender, args.steps, contender)
    start = time.perf_counter()
    result = train(recipe)
    seconds = time.perf_counter() - start
    scores = {e.task: e.headline_value for e in result.evaluations if e.split == "validation"}
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "ner_dev_f1": round(scores["ner"], 4) if "ner" in scores else None,
        "sentiment_dev_accuracy": round(scores["sentiment"], 4) if "sentiment" in scores else None,
    }


def warm_up(args: argparse.Namespace) -> dict:
    """Two steps of the joint run: the datasets cache then holds both tasks' tokenized data and the OS file cache
    the libraries' code, so that no timed run pays for either."""
    train(build_recipe(args, "joint", 2, "warm_up"))
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--steps", type=int, default=1000, help="Optimizer steps of every run.")
    parser.add_argument("--ner-train-size", type=int, default=None, help="First N CoNLL-2003 sentences (all).")
    parser.add_argument("--sst2-train-size", type=int, default=None, help="First N SST-2 rows (the recipe's 20,000).")
    parser.add_argument("--dev-size", type=int, default=None, help="First N sentences of each dev set (all).")
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="runs/benchmarks/joint_vs_single")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # a contender or "warm_up"; prints JSON
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())
    if args.worker is not None:
        figures = warm_up(args) if args.worker == "warm_up" else run_contender(args, args.worker)
        print(json.dumps(figures))
        return

    shared = ["--data-dir", args.data_dir, "--steps", str(args.steps), "--seed", str(args.seed)]
    shared += ["--output-dir", args.output_dir]
    for flag, value in [
        ("--ner-train-size", args.ner_train_size),
        ("--sst2-train-size", args.sst2_train_size),
        ("--dev-size", args.dev_size),
    ]:
        if value is not None:
            shared += [flag, str(value)]
    run_in_fresh_process(__file__, [*shared, "--worker", "warm_up"])
    results = {name: run_in_fresh_process(__file__, [*shared, "--worker", name]) for name in args.contenders}

    print(f"\n{args.steps} steps per run, batch 32 per task, MiniLM, seed {args.seed}\n")
    columns = ["run", "wall s", "peak RSS MiB", "NER dev F1", "SST-2 dev accuracy"]
    rows = [
        [
            name,
            f"{row['seconds']:.0f}",
            f"{row['peak_rss_mib']:.0f}",
            None if row["ner_dev_f1"] is None else f"{row['ner_dev_f1']:.4f}",
            None if row["sentiment_dev_accuracy"] is None else f"{row['sentiment_dev_accuracy']:.4f}",
        ]
        for name, row in results.items()
    ]
    print(markdown_table(columns, rows))
    print(json.dumps({"benchmark": "joint_vs_single", "steps": args.steps, "seed": args.seed, "results": results}))


if __name__ == "__main__":
    main()
