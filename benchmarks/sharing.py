"""Sharing options and the CRF on real data, at the same number of optimizer steps per task for every contender.

    HF_HUB_OFFLINE=1 python benchmarks/sharing.py --data-dir ../shared/data --steps-per-task 250 --seeds 42 1

Every run is recipes/local_files.yaml (packaged MiniLM, learning rate auto = 2e-4, batch 32 per task, CoNLL-2003
train and the first 20,000 rows of SST-2 train, the dev sets or their first ``--dev-size`` examples) trained
with mtl_nlp.train in a fresh process (its own peak memory). Single-task runs take ``S`` steps; joint runs take
2·S steps with round-robin sampling, so each task gets S steps in every contender. Contenders: NER alone, SST-2
alone, hard sharing, task_layers 1 and 2, cross-stitch (task_layers 1), layer attention, LoRA r 8 on both tasks
(encoder trained, and frozen); and NER alone with a CRF. Per run: each task's dev score, wall time of train(),
peak RSS, trainable parameters, and (joint runs) texts per second of MultiTaskPipeline over the first 512
CoNLL-2003 dev sentences (batch 32, after a warm-up); for NER, the dev sentences whose predicted tags hold a
transition IOB2 forbids (I-X not after B-X/I-X). Prints a table of means ± spreads over the seeds, the paired
differences against hard sharing, and one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path

import yaml
from measure import REPOSITORY, markdown_table, peak_rss_mib, run_in_fresh_process

from mtl_nlp import MultiTaskModel, MultiTaskPipeline, RecipeConfig, train
from mtl_nlp.config import apply_overrides, recipe_from_dict
from mtl_nlp.data.conll import iter_conll_sentences
from mtl_nlp.modeling.crf import allowed_transitions

RECIPE = REPOSITORY / "recipes" / "local_files.yaml"
LORA = "{r: 8, alpha: 16, dropout: 0.1, target_modules: [query, value]}"
CONTENDERS: dict[str, tuple[list[str], list[str]]] = {
    "NER alone": (["ner"], []),
    "SST-2 alone": (["sentiment"], []),
    "NER alone, CRF": (["ner"], ["tasks.ner.crf=true"]),
    "hard sharing": (["ner", "sentiment"], []),
    "task_layers 1": (["ner", "sentiment"], ["model.sharing.task_layers=1"]),
    "task_layers 2": (["ner", "sentiment"], ["model.sharing.task_layers=2"]),
    "cross-stitch (task_layers 1)": (
        ["ner", "sentiment"],
        ["model.sharing.task_layers=1", "model.sharing.cross_stitch=true"],
    ),
    "layer attention": (["ner", "sentiment"], ["model.sharing.layer_attention=true"]),
    "LoRA r8": (["ner", "sentiment"], [f"tasks.ner.adapter={LORA}", f"tasks.sentiment.adapter={LORA}"]),
    "LoRA r8, frozen encoder": (
        ["ner", "sentiment"],
        [f"tasks.ner.adapter={LORA}", f"tasks.sentiment.adapter={LORA}", "model.freeze_encoder=true"],
    ),
}
TEXTS = 512


def build_recipe(args: argparse.Namespace, contender: str, seed: int, run_name: str) -> RecipeConfig:
    tasks, settings = CONTENDERS[contender]
    raw = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    raw["tasks"] = {name: raw["tasks"][name] for name in tasks}
    overrides = [
        f"output_dir={Path(args.output_dir) / run_name}",
        f"training.max_steps={args.steps_per_task * len(tasks)}",
        f"training.seed={seed}",
        "training.save_every_steps=0",
        "sampling.strategy=round_robin",
        *settings,
    ]
    if args.dev_size is not None:
        overrides += [f"tasks.{task}.data.max_eval_examples={args.dev_size}" for task in tasks]
    return recipe_from_dict(apply_overrides(raw, overrides))


def invalid_sentences(predictions: Path) -> int:
    """Dev sentences whose predicted tags hold a move IOB2 forbids."""
    sentences = list(iter_conll_sentences(predictions, ["tokens", "gold", "predicted"]))
    labels = sorted({tag for sentence in sentences for tag in sentence["predicted"] + sentence["gold"]})
    start, follow, _ = allowed_transitions(labels, "iob2")
    index = {label: i for i, label in enumerate(labels)}
    bad = 0
    for sentence in sentences:
        tags = [index[tag] for tag in sentence["predicted"]]
        bad += not (start[tags[0]] and all(follow[a, b] for a, b in itertools.pairwise(tags)))
    return bad


def run_contender(args: argparse.Namespace, contender: str, seed: int) -> dict:
    recipe = build_recipe(args, contender, seed, f"{contender.replace(' ', '_')}-{seed}")
    start = time.perf_counter()
    result = train(recipe)
    seconds = time.perf_counter() - start
    scores = {e.task: e.headline_value for e in result.evaluations if e.split == "validation"}
    model = MultiTaskModel.from_pretrained(result.model_dir)
    if recipe.model.freeze_encoder:
        model.freeze_encoder()
    trainable, total = model.parameter_counts()
    figures = {
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "ner": scores.get("ner"),
        "sentiment": scores.get("sentiment"),
        "trainable": trainable,
        "parameters": total,
    }
    if "ner" in scores:
        figures["invalid_sentences"] = invalid_sentences(result.report_dir / "ner.validation.predictions.conll")
    if len(scores) > 1:
        sentences = iter_conll_sentences(
            Path(args.data_dir) / "conll2003" / "dev.txt", ["tokens", "pos", "chunk", "ner"]
        )
        texts = [" ".join(sentence["tokens"]) for _, sentence in zip(range(TEXTS), sentences)]
        runner = MultiTaskPipeline(result.model_dir, device="cpu", batch_size=32)
        runner(texts[:64])
        start = time.perf_counter()
        runner(texts)
        figures["texts_per_s"] = round(len(texts) / (time.perf_counter() - start), 1)
    return figures


def spread(values: list[float]) -> str:
    mean = statistics.mean(values)
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{mean:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--steps-per-task", type=int, default=250)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--dev-size", type=int, default=None, help="First N examples of each dev set (all).")
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--output-dir", default="runs/benchmarks/sharing")
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)  # contender, seed; prints JSON
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())
    if args.worker is not None:
        print(json.dumps(run_contender(args, args.worker[0], int(args.worker[1]))))
        return
    shared = ["--data-dir", args.data_dir, "--steps-per-task", str(args.steps_per_task)]
    shared += ["--output-dir", args.output_dir]
    if args.dev_size is not None:
        shared += ["--dev-size", str(args.dev_size)]
    results: dict[str, dict[int, dict]] = {name: {} for name in args.contenders}
    for seed in args.seeds:
        for name in args.contenders:
            results[name][seed] = run_in_fresh_process(__file__, [*shared, "--worker", name, str(seed)])
            print(name, seed, results[name][seed], flush=True)

    def column(name: str, key: str) -> list[float]:
        return [results[name][seed][key] for seed in args.seeds if results[name][seed].get(key) is not None]

    rows = []
    for name in args.contenders:
        ner, sentiment = column(name, "ner"), column(name, "sentiment")
        first = results[name][args.seeds[0]]
        rows.append(
            [
                name,
                spread(ner) if ner else None,
                spread(sentiment) if sentiment else None,
                f"{statistics.mean(column(name, 'seconds')):.0f}",
                f"{statistics.mean(column(name, 'peak_rss_mib')):.0f}",
                f"{first['trainable'] / 1e6:.2f} M ({100 * first['trainable'] / first['parameters']:.1f} %)",
                first.get("texts_per_s"),
                "/".join(str(v) for v in column(name, "invalid_sentences")) or None,
            ]
        )
    columns = ["contender", "NER dev F1", "SST-2 dev acc", "wall s", "peak RSS MiB", "trainable", "texts/s", "invalid"]
    print(f"\n{args.steps_per_task} steps per task, seeds {args.seeds}\n")
    print(markdown_table(columns, rows))
    if "hard sharing" in results:
        print("\nPaired differences against hard sharing (per seed):")
        for name in args.contenders:
            if name == "hard sharing" or not column(name, "sentiment") or not column(name, "ner"):
                continue
            ner = [results[name][s]["ner"] - results["hard sharing"][s]["ner"] for s in args.seeds]
            sst = [results[name][s]["sentiment"] - results["hard sharing"][s]["sentiment"] for s in args.seeds]
            print(f"- {name}: NER {', '.join(f'{d:+.4f}' for d in ner)}; SST-2 {', '.join(f'{d:+.4f}' for d in sst)}")
    print(json.dumps({"benchmark": "sharing", "steps_per_task": args.steps_per_task, "results": results}))


if __name__ == "__main__":
    main()
