"""Are mtl-nlp's training defaults at least as good as the transformers ``run_ner.py`` script's, at the same epochs?

    HF_HUB_OFFLINE=1 python benchmarks/defaults.py --data-dir ../shared/data --seeds 42 1 2

CoNLL-2003 NER on the packaged MiniLM, batch 32, scored by entity F1 (conlleval) on the CoNLL-2003 dev set, at
two budgets: ``subset`` (the first 3,000 training sentences, 5 epochs) and ``full`` (all 14,041, 1 epoch).
Contenders, each a recipe that changes only what it names:

- ``defaults``: mtl-nlp's defaults as this study found them (``learning_rate: auto`` = 2e-4 for MiniLM, 10 %
  warm-up, linear decay, weight decay 0.01 on weight matrices, batches grouped by length). The study turned
  length grouping off by default: the defaults as they ship now are the ``no_length_grouping`` contender;
- ``run_ner``: what ``run_ner.py`` does through the ``Trainer``'s defaults — learning rate 5e-5, no warm-up,
  linear decay, no weight decay, batches in random order (``group_by_length`` off);
- one change from the defaults each: ``lr_5e-5``, ``no_warmup``, ``no_weight_decay``, ``no_length_grouping``.

Dropout, head initialisation, clipping (1.0) and AdamW's betas and epsilon are the same in every contender: the
head is the stock ``AutoModelForTokenClassification`` head, initialised by its ``_init_weights``, and the dropout
is the backbone's. Every contender runs with every seed; results go to ``OUTPUT_DIR/results.jsonl`` as each run
ends, and a run already there is not repeated, so an interrupted benchmark continues. Prints one table per
budget: mean ± sample standard deviation over seeds, and the paired difference to ``defaults`` (same seed).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from measure import BACKBONE, ResultLog, conll_files, markdown_table, mean_and_spread

from mtl_nlp import train
from mtl_nlp.config import recipe_from_dict

BUDGETS = {"subset": {"train_size": 3000, "epochs": 5}, "full": {"train_size": None, "epochs": 1}}
RUN_NER = {"learning_rate": 5e-5, "warmup_ratio": 0.0, "weight_decay": 0.0, "group_by_length": False}
CONTENDERS = {
    "defaults": {},
    "run_ner": RUN_NER,
    "lr_5e-5": {"learning_rate": 5e-5},
    "no_warmup": {"warmup_ratio": 0.0},
    "no_weight_decay": {"weight_decay": 0.0},
    "no_length_grouping": {"group_by_length": False},
}


def build_recipe(args: argparse.Namespace, budget: str, contender: str, seed: int) -> dict:
    """The recipe of one run, as plain data."""
    files = conll_files(args.data_dir)
    sizes = BUDGETS[budget]
    changes = dict(CONTENDERS[contender])
    sampling = {"group_by_length": changes.pop("group_by_length", True)}
    data = {"train": files["train"], "validation": files["validation"], "max_train_examples": sizes["train_size"]}
    return {
        "model": {"name_or_path": BACKBONE},
        "output_dir": str(Path(args.output_dir) / budget / contender / str(seed)),
        "training": {
            "epochs": sizes["epochs"],
            "seed": seed,
            "save_every_steps": 0,
            "eval_batch_size": 128,
            **changes,
        },
        "sampling": sampling,
        "tasks": {"ner": {"type": "token_classification", "data": data, "tags_column": "ner", "batch_size": 32}},
    }


def run(args: argparse.Namespace, budget: str, contender: str, seed: int) -> dict:
    recipe = recipe_from_dict(build_recipe(args, budget, contender, seed))
    start = time.perf_counter()
    result = train(recipe)
    seconds = time.perf_counter() - start
    (evaluation,) = [e for e in result.evaluations if e.split == "validation"]
    return {
        "budget": budget,
        "contender": contender,
        "seed": seed,
        "dev_f1": round(evaluation.headline_value, 4),
        "seconds": round(seconds, 1),
    }


def report(log: ResultLog, budgets: list[str], contenders: list[str]) -> str:
    """One table per budget: mean ± spread, and the paired difference to the defaults."""
    parts = []
    for budget in budgets:
        records = [r for r in log.records if r["budget"] == budget]
        baseline = {r["seed"]: r["dev_f1"] for r in records if r["contender"] == "defaults"}
        rows = []
        for contender in contenders:
            own = [r for r in records if r["contender"] == contender]
            if not own:
                continue
            differences = [r["dev_f1"] - baseline[r["seed"]] for r in own if r["seed"] in baseline]
            paired = None
            if differences and contender != "defaults":
                paired = f"{mean_and_spread(differences)}, min {min(differences):+.4f}, max {max(differences):+.4f}"
            seconds = sum(r["seconds"] for r in own) / len(own)
            rows.append([contender, mean_and_spread([r["dev_f1"] for r in own]), paired, f"{seconds:.0f}"])
        sizes = BUDGETS[budget]
        title = f"{budget}: {sizes['train_size'] or 'all'} training sentences, {sizes['epochs']} epoch(s)"
        columns = ["contender", "dev F1 (mean ± sd, n)", "paired − defaults", "wall s / run"]
        parts.append(f"{title}\n\n{markdown_table(columns, rows)}")
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/.")
    parser.add_argument("--budgets", nargs="+", choices=list(BUDGETS), default=list(BUDGETS))
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    parser.add_argument("--output-dir", default="runs/benchmarks/defaults")
    parser.add_argument("--report-only", action="store_true", help="Print the tables of the runs done so far.")
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())
    log = ResultLog(Path(args.output_dir) / "results.jsonl")
    if not args.report_only:
        # Seeds outermost: an interrupted benchmark has compared every contender on the seeds it finished.
        for budget in args.budgets:
            for seed in args.seeds:
                for contender in args.contenders:
                    if log.find(budget=budget, contender=contender, seed=seed) is None:
                        log.add(run(args, budget, contender, seed))
    print(report(log, args.budgets, args.contenders))


if __name__ == "__main__":
    main()
