"""Compare task-sampling strategies at the same number of steps on real data (CoNLL-2003 NER + SST-2).

    python benchmarks/sampling_strategies.py --data-dir ../shared/data --steps 1000

Each strategy trains the packaged MiniLM from the same seed on CoNLL-2003 train (14,041 sentences) and the
whole of SST-2 train (67,349 rows), so the tasks' sizes differ almost five-fold; all runs score the full dev
sets. Prints a table and ends with one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mtl_nlp import load_recipe, train

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "local_files.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--steps", type=int, default=1000, help="Optimizer steps per strategy.")
    parser.add_argument("--strategies", nargs="+", default=["proportional", "temperature", "uniform"])
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", default="runs/benchmarks/sampling")
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())

    rows = []
    for strategy in args.strategies:
        recipe = load_recipe(
            RECIPE,
            [
                f"output_dir={args.output_dir}/{strategy}",
                f"training.max_steps={args.steps}",
                f"training.seed={args.seed}",
                "training.save_every_steps=0",
                "training.log_every_steps=100",
                "tasks.sentiment.data.max_train_examples=null",
                f"sampling.strategy={strategy}",
                f"sampling.temperature={args.temperature}",
            ],
        )
        start = time.perf_counter()
        result = train(recipe)
        seconds = time.perf_counter() - start
        metrics = {e.task: e.headline_value for e in result.evaluations if e.split == "validation"}
        history = [json.loads(line) for line in Path(recipe.output_dir, "metrics.jsonl").read_text().splitlines()]
        epochs = max(record.get("epoch", 0) for record in history)
        rows.append(
            {
                "strategy": strategy if strategy != "temperature" else f"temperature T={args.temperature:g}",
                "ner_dev_f1": round(metrics["ner"], 4),
                "sentiment_dev_accuracy": round(metrics["sentiment"], 4),
                "mean": round((metrics["ner"] + metrics["sentiment"]) / 2, 4),
                "epochs_of_batches": epochs,
                "seconds": round(seconds, 1),
            }
        )

    print(f"\n{args.steps} steps per strategy, batch 32 per task, MiniLM, seed {args.seed}\n")
    print("| strategy | NER dev F1 | SST-2 dev accuracy | mean | seconds |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['strategy']} | {row['ner_dev_f1']:.4f} | {row['sentiment_dev_accuracy']:.4f} | "
            f"{row['mean']:.4f} | {row['seconds']:.0f} |"
        )
    print(json.dumps({"benchmark": "sampling_strategies", "steps": args.steps, "results": rows}))


if __name__ == "__main__":
    main()
