"""How NER training time and memory grow with the data: one epoch on 1×, 2× and 4× a base number of sentences.

    HF_HUB_OFFLINE=1 python benchmarks/scaling.py --data-dir ../shared/data --base-size 3500

Each size trains mtl-nlp on the first N CoNLL-2003 training sentences with the packaged MiniLM, as
train_speed.py's mtl row does (batch 32, max length 128, learning rate 5e-5, one epoch, no dev set), in a fresh
process, so that its peak resident memory (the kernel's high-water mark, getrusage) is its own. After a few
untimed steps of a bare loop on a throwaway model, the training loop is timed apart from the checkpoint written at
its end; time per real token divides it by the tokens of the batches fed, padding excluded. Prints a table and
ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from measure import (
    build_trainer,
    fed_tokens,
    markdown_table,
    ner_recipe,
    peak_rss_mib,
    prepare,
    run_in_fresh_process,
    training_batches,
    warm_up,
)


def train_one_size(args: argparse.Namespace, size: int) -> dict:
    """One epoch on the first ``size`` sentences, in this process; its figures."""
    recipe = ner_recipe(args.data_dir, size, None, Path(args.output_dir) / str(size), args.seed, validate=False)
    tasks = prepare(recipe)
    warm_up(tasks["ner"], args.warmup_batches, args.seed)
    trainer = build_trainer(recipe, tasks)
    real, total = fed_tokens(trainer.sampler, training_batches(trainer))
    _, seconds = trainer.timed_train()
    return {
        "sentences": len(trainer.tasks["ner"].encoded["train"]),
        "steps": trainer.step,
        "seconds": round(seconds["loop"], 2),
        "real_tokens": real,
        "total_tokens": total,
        "microseconds_per_real_token": round(seconds["loop"] / real * 1e6, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/.")
    parser.add_argument("--base-size", type=int, default=3500, help="Sentences at 1× (CoNLL-2003 train has 14,041).")
    parser.add_argument("--multiples", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warmup-batches", type=int, default=5, help="Untimed bare steps first.")
    parser.add_argument("--output-dir", default="runs/benchmarks/scaling")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # train one size, print JSON
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(train_one_size(args, args.worker)))
        return

    shared = ["--data-dir", args.data_dir, "--seed", str(args.seed), "--warmup-batches", str(args.warmup_batches)]
    shared += ["--output-dir", args.output_dir]
    results = []
    for multiple in args.multiples:
        figures = run_in_fresh_process(__file__, [*shared, "--worker", str(multiple * args.base_size)])
        results.append({"multiple": multiple, **figures})

    base = results[0]
    print(f"\nNER on CoNLL-2003, one epoch, MiniLM, seed {args.seed}, base size {args.base_size} sentences\n")
    rows = [
        [
            f"{row['multiple']}×",
            row["sentences"],
            row["steps"],
            f"{row['seconds']:.1f}",
            f"{row['microseconds_per_real_token']:.1f}",
            f"{row['microseconds_per_real_token'] / base['microseconds_per_real_token']:.2f}",
            f"{row['peak_rss_mib']:.0f}",
        ]
        for row in results
    ]
    columns = ["size", "sentences", "steps", "loop s", "µs / real token", f"vs {base['multiple']}×", "peak RSS MiB"]
    print(markdown_table(columns, rows))
    print(json.dumps({"benchmark": "scaling", "base_size": args.base_size, "seed": args.seed, "results": results}))


if __name__ == "__main__":
    main()
