"""What one GradNorm step costs against a plain step: NER + SST-2, one batch of each task per step.

    HF_HUB_OFFLINE=1 python benchmarks/gradnorm_cost.py --data-dir ../shared/data --steps 40 --rounds 3

Both contenders train the packaged MiniLM on the first 2,000 CoNLL-2003 and SST-2 training rows with
``sampling.mode: all_tasks`` (batch 32 per task), from the same seed, for ``--steps`` optimizer steps: ``static``
sums the two losses, ``gradnorm`` adds GradNorm's per-task gradient at the last shared layer and its weight update.
The seconds are the training loop's (no scoring, no checkpoints), and the contenders alternate for ``--rounds``
rounds in one process, so that a change in the machine's load falls on both; the figure is the ratio of their
median loop times. Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics

from measure import BACKBONE, build_trainer, conll_files, markdown_table, prepare

from mtl_nlp.config import recipe_from_dict


def recipe(args: argparse.Namespace, method: str):
    files = conll_files(args.data_dir)
    sst2 = f"{args.data_dir}/sst2/train.tsv"
    return recipe_from_dict(
        {
            "model": {"name_or_path": BACKBONE},
            "output_dir": f"{args.output_dir}/{method}",
            "training": {"max_steps": args.steps, "seed": 42, "save_every_steps": 0, "log_every_steps": 1000},
            "sampling": {"mode": "all_tasks"},
            "weighting": {"method": method},
            "tasks": {
                "ner": {
                    "type": "token_classification",
                    "data": {"train": files["train"], "max_train_examples": 2000},
                    "tags_column": "ner",
                    "batch_size": 32,
                },
                "sentiment": {
                    "type": "sequence_classification",
                    "data": {"train": sst2, "max_train_examples": 2000},
                    "text_column": "sentence",
                    "labels": ["negative", "positive"],
                    "batch_size": 32,
                },
            },
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output-dir", default="runs/benchmarks/gradnorm_cost")
    args = parser.parse_args()
    methods = ("static", "gradnorm")
    tasks = prepare(recipe(args, "static"))
    build_trainer(recipe(args, "static"), tasks).timed_train()  # untimed: the process's one-off costs
    seconds: dict[str, list[float]] = {method: [] for method in methods}
    for _ in range(args.rounds):
        for method in methods:
            _, phases = build_trainer(recipe(args, method), tasks).timed_train()
            seconds[method].append(phases["loop"] / args.steps)
    medians = {method: statistics.median(values) for method, values in seconds.items()}
    ratio = medians["gradnorm"] / medians["static"]
    rows = [[method, f"{medians[method]:.3f}", ", ".join(f"{v:.3f}" for v in seconds[method])] for method in methods]
    print(f"\n{args.steps} steps × {args.rounds} rounds, NER + SST-2 in every step, MiniLM\n")
    print(markdown_table(["weighting", "median s / step", "each round"], rows))
    print(f"\nGradNorm step / plain step: {ratio:.3f}")
    print(json.dumps({"benchmark": "gradnorm_cost", "seconds_per_step": seconds, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
