"""Does joint training lose to single-task training? NER (CoNLL-2003) and sentiment (SST-2), at equal steps per task.

    HF_HUB_OFFLINE=1 python benchmarks/joint_vs_single.py --data-dir ../shared/data --steps-per-task 400 --seeds 42 1 2

Every run is recipes/ner_sentiment_recommended.yaml (packaged MiniLM, ``learning_rate: auto``, batch 32 per task,
CoNLL-2003 train and the first 20,000 rows of SST-2 train) keeping what the contender needs, with the seed of the
command line; it is scored on the full dev sets (entity F1, accuracy). Contenders:

- ``single``: each task alone for S steps (``--steps-per-task``);
- ``joint``: both tasks for 2·S steps with ``round_robin`` sampling, so each task gets exactly the S steps its
  single run had (the honest protocol: equal steps per task);
- ``finetune``: the recipe's fine-tuning stage after ``joint`` (``mtl-nlp finetune`` on the joint run): each task
  alone for F more steps (``--finetune-steps``) from the joint weights, with a fresh AdamW, warm-up and the
  ``finetune`` section's learning rate;
- ``distilled``: the ``joint`` recipe whose tasks also learn from teachers — each task's single-task models of the
  first two seeds, averaged — with the ``distillation`` section's defaults (T = 2, alpha 0.5); compared with the mean
  of its teachers' scores as well;
- ``total_steps``: both tasks for S steps in all, sampled in proportion to their sizes, so each task gets only its
  share of a single run's steps (the equal-total-steps comparison, reported apart);
- ``all_tasks``: both tasks at every step (``sampling.mode: all_tasks``, the sum of their losses) for S steps, so
  each task again gets S batches;
- ``gradnorm``: ``all_tasks`` with GradNorm's learned loss weights (``weighting.method: gradnorm``) at
  ``gradnorm_alpha: 1.5``, the paper's value; reported apart, with its paired difference to ``all_tasks``;
- ``gradnorm_equal_norms``: ``gradnorm`` with ``gradnorm_alpha: 0`` (the default), which asks for equal gradient
  norms whatever the tasks' training rates.

(``finetune_2e-4``, when the results hold it, is the stage at the joint run's own rate, 2e-4.)

Runs go seed by seed (``single``, ``joint`` and ``finetune`` first, then the students, whose teachers must exist,
then ``total_steps``); each one's figures are appended to ``OUTPUT_DIR/results.jsonl`` as it ends and a run already
there is not repeated, so an interrupted benchmark continues. Prints the tables: mean ± sample standard deviation
over seeds, and the paired difference joint − single (same seed), whose spread says whether it exceeds the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml
from measure import REPOSITORY, ResultLog, markdown_table, mean_and_spread

from mtl_nlp import train
from mtl_nlp.config import apply_overrides, recipe_from_dict
from mtl_nlp.training.finetune import finetune, load_run_recipe

RECIPE = REPOSITORY / "recipes" / "ner_sentiment_recommended.yaml"
TASKS = {"ner": "NER dev F1", "sentiment": "SST-2 dev accuracy"}
# Contenders in the order they run: a phase for every seed before the next phase.
PHASES = (
    ("single", "joint", "finetune"),
    ("distilled",),
    ("total_steps",),
    ("all_tasks", "gradnorm", "gradnorm_equal_norms"),
)
CONTENDERS = [contender for phase in PHASES for contender in phase]
TEACHER_SEEDS = 2


def build_recipe(args: argparse.Namespace, tasks: list[str], steps: int, run_dir: Path, extra: list[str]):
    """The recommended recipe keeping ``tasks``, for ``steps`` optimizer steps, writing to ``run_dir``."""
    raw = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    raw["tasks"] = {name: raw["tasks"][name] for name in tasks}
    del raw["finetune"]  # the fine-tuning stage is a contender of its own
    overrides = [
        f"output_dir={run_dir}",
        f"training.max_steps={steps}",
        f"training.seed={args.seed}",
        "training.save_every_steps=0",
        "training.eval_every_steps=0",
        *extra,
    ]
    if args.group_by_length is not None:
        overrides.append(f"sampling.group_by_length={args.group_by_length}")
    sizes = {"ner": args.ner_train_size, "sentiment": args.sst2_train_size}
    for task in tasks:
        if sizes[task] is not None:
            overrides.append(f"tasks.{task}.data.max_train_examples={sizes[task]}")
        if args.dev_size is not None:
            overrides.append(f"tasks.{task}.data.max_eval_examples={args.dev_size}")
    return recipe_from_dict(apply_overrides(raw, overrides))


def timed_train(recipe) -> tuple[dict[str, float], float]:
    """Train ``recipe``; the dev score per task and the seconds ``train()`` took."""
    start = time.perf_counter()
    result = train(recipe)
    seconds = time.perf_counter() - start
    return {e.task: round(e.headline_value, 4) for e in result.evaluations if e.split == "validation"}, seconds


def teacher_seeds(args: argparse.Namespace) -> list[int]:
    return args.seeds[:TEACHER_SEEDS]


def run_contender(args: argparse.Namespace, contender: str, log: ResultLog) -> None:
    """Train one contender at ``args.seed``, recording each of its runs."""
    steps, root = args.steps_per_task, Path(args.output_dir) / str(args.seed)
    if contender == "finetune":
        if log.find(run="finetune", seed=args.seed) is None:
            start = time.perf_counter()
            stage = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))["finetune"] | {"max_steps": args.finetune_steps}
            results = finetune(load_run_recipe(root / "joint", [f"finetune={json.dumps(stage)}"]))
            scores = {
                task: round(e.headline_value, 4)
                for task, result in results.items()
                for e in result.evaluations
                if e.split == "validation"
            }
            seconds = round(time.perf_counter() - start, 1)
            log.add(
                {
                    "run": "finetune",
                    "seed": args.seed,
                    "steps": args.finetune_steps,
                    "scores": scores,
                    "seconds": seconds,
                }
            )
        return
    if contender == "single":
        runs = [(f"single_{task}", [task], steps, ["sampling.strategy=round_robin"]) for task in TASKS]
    elif contender == "joint":
        runs = [("joint", list(TASKS), steps * len(TASKS), ["sampling.strategy=round_robin"])]
    elif contender == "distilled":
        teachers = {
            task: [str(Path(args.output_dir) / str(seed) / f"single_{task}" / "model") for seed in teacher_seeds(args)]
            for task in TASKS
        }
        extra = ["sampling.strategy=round_robin", f"distillation={json.dumps({'teachers': teachers})}"]
        runs = [("distilled", list(TASKS), steps * len(TASKS), extra)]
    elif contender == "total_steps":
        runs = [("total_steps", list(TASKS), steps, ["sampling.strategy=proportional"])]
    else:
        weighting = {
            "all_tasks": [],
            "gradnorm": ["weighting.method=gradnorm", "weighting.gradnorm_alpha=1.5"],
            "gradnorm_equal_norms": ["weighting.method=gradnorm", "weighting.gradnorm_alpha=0"],
        }
        runs = [(contender, list(TASKS), steps, ["sampling.mode=all_tasks", *weighting[contender]])]
    for name, tasks, run_steps, extra in runs:
        if log.find(run=name, seed=args.seed) is not None:
            continue
        scores, seconds = timed_train(build_recipe(args, tasks, run_steps, root / name, extra))
        log.add({"run": name, "seed": args.seed, "steps": run_steps, "scores": scores, "seconds": round(seconds, 1)})


def scores_by_seed(log: ResultLog, run: str, task: str) -> dict[int, float]:
    return {r["seed"]: r["scores"][task] for r in log.records if r["run"] == run and task in r["scores"]}


def comparison_table(log: ResultLog, runs: list[str]) -> str:
    """Per run: each task's dev score (mean ± sd) and the paired difference to the single-task runs."""
    rows = []
    for run in runs:
        if run != "single" and log.find(run=run) is None:
            continue
        row = [run]
        per_seed: dict[int, float] = {}
        for r in log.records:
            if r["run"] == run or (run == "single" and r["run"].startswith("single_")):
                per_seed[r["seed"]] = per_seed.get(r["seed"], 0.0) + r["seconds"]
        seconds = list(per_seed.values())
        for task in TASKS:
            single = scores_by_seed(log, f"single_{task}", task)
            own = scores_by_seed(log, run if run != "single" else f"single_{task}", task)
            differences = [score - single[seed] for seed, score in own.items() if seed in single]
            row.append(mean_and_spread(list(own.values())))
            row.append(mean_and_spread(differences) if run != "single" else None)
        row.append(f"{sum(seconds) / len(seconds):.0f}" if seconds else None)
        rows.append(row)
    columns = ["run"]
    for title in TASKS.values():
        columns += [title, "paired − single"]
    return markdown_table([*columns, "wall s per seed (single: both runs)"], rows)


def paired_table(log: ResultLog, run: str, baseline: str) -> str:
    """Per task: ``run``'s dev score against ``baseline``'s, paired by seed."""
    rows = []
    for task, title in TASKS.items():
        before, after = scores_by_seed(log, baseline, task), scores_by_seed(log, run, task)
        differences = [score - before[seed] for seed, score in after.items() if seed in before]
        if differences:
            rows.append([title, mean_and_spread(list(before.values())), mean_and_spread(list(after.values()))])
            rows[-1].append(mean_and_spread(differences))
    return markdown_table(["task", baseline, run, f"paired {run} − {baseline}"], rows)


def teacher_table(log: ResultLog, seeds: list[int]) -> str:
    """The distilled students against the mean score of their teachers."""
    rows = []
    for task, title in TASKS.items():
        single = scores_by_seed(log, f"single_{task}", task)
        teachers = [single[seed] for seed in seeds if seed in single]
        students = list(scores_by_seed(log, "distilled", task).values())
        if not teachers or not students:
            continue
        mean = sum(teachers) / len(teachers)
        difference = [score - mean for score in students]
        rows.append([title, mean_and_spread(teachers), mean_and_spread(students), mean_and_spread(difference)])
    columns = ["task", "teachers (single-task)", "distilled student", "student − teachers' mean"]
    return markdown_table(columns, rows)


def report(log: ResultLog, args: argparse.Namespace) -> str:
    steps = args.steps_per_task
    return (
        f"Equal steps per task ({steps} per task; the joint run has {steps * len(TASKS)} in all; the fine-tuning "
        f"stage adds {args.finetune_steps} per task)\n\n"
        f"{comparison_table(log, ['single', 'joint', 'finetune', 'finetune_2e-4', 'distilled'])}\n\n"
        f"Distilled students against their teachers (seeds {', '.join(map(str, teacher_seeds(args)))})\n\n"
        f"{teacher_table(log, teacher_seeds(args))}\n\n"
        f"Equal total steps ({steps} in all; the joint run gives each task its proportional share)\n\n"
        f"{comparison_table(log, ['single', 'total_steps'])}\n\n"
        f"Both tasks at every step ({steps} steps, a batch of each task per step)\n\n"
        f"{comparison_table(log, ['single', 'all_tasks', 'gradnorm', 'gradnorm_equal_norms'])}\n\n"
        f"{paired_table(log, 'gradnorm', 'all_tasks')}\n\n"
        f"{paired_table(log, 'gradnorm_equal_norms', 'all_tasks')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--steps-per-task", type=int, default=400, help="S: optimizer steps of each single run.")
    parser.add_argument("--finetune-steps", type=int, default=100, help="F: steps of each task's fine-tuning run.")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    parser.add_argument("--ner-train-size", type=int, default=None, help="First N CoNLL-2003 sentences (all).")
    parser.add_argument("--sst2-train-size", type=int, default=None, help="First N SST-2 rows (the recipe's 20,000).")
    parser.add_argument("--dev-size", type=int, default=None, help="First N rows of each dev set (all).")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument(
        "--group-by-length",
        choices=["true", "false"],
        default=None,
        help="Override the recipe's sampling.group_by_length (true there) in every run; use another --output-dir.",
    )
    parser.add_argument("--output-dir", default="runs/benchmarks/joint_vs_single")
    parser.add_argument("--report-only", action="store_true", help="Print the tables of the runs done so far.")
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())
    log = ResultLog(Path(args.output_dir) / "results.jsonl")
    if not args.report_only:
        for phase in PHASES:
            for seed in args.seeds:
                args.seed = seed
                for contender in phase:
                    if contender in args.contenders:
                        run_contender(args, contender, log)
    print(report(log, args))


if __name__ == "__main__":
    main()
