"""Start-up time of `mtl-nlp train`: from the command to its first training step, with a cold and a warm cache.

    HF_HUB_OFFLINE=1 python benchmarks/startup.py --data-dir ../shared/data --repeats 3

Each run starts `mtl-nlp train recipes/local_files.yaml` (CoNLL-2003 train and the first 20,000 rows of SST-2
train, MiniLM) with training.log_every_steps=1 and a new output directory, and watches <output_dir>/metrics.jsonl:
the trainer empties it as its loop begins and appends the first record once step 1 is done. That splits start-up
into "to the loop" (imports, reading and tokenizing the data, loading the model, building the trainer) and "to the
first step"; the process is then stopped. A cold run gets a new, empty HF_DATASETS_CACHE, so every file is read and
tokenized; the warm run after it reuses that cache. One untimed run goes first, so that every timed run finds the
libraries' code in the OS file cache. `python -c "import torch, transformers"` is timed for reference. Prints a
table and ends with one JSON line of the figures (seconds, every repeat).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import REPOSITORY, child_environment, markdown_table

RECIPE = REPOSITORY / "recipes" / "local_files.yaml"
POLL_SECONDS = 0.01


def mtl_nlp_command() -> list[str]:
    """The `mtl-nlp` console script of this interpreter's environment, else `python -m mtl_nlp`."""
    script = Path(sys.executable).with_name("mtl-nlp")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mtl_nlp"]


def import_seconds() -> float:
    """Wall time of `python -c "import torch, transformers"`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, transformers"], check=True, env=child_environment())
    return time.perf_counter() - start


def time_to_first_step(overrides: list[str], datasets_cache: Path, run_dir: Path, timeout: float) -> dict[str, float]:
    """Start `mtl-nlp train`, return the seconds until its training loop began and until step 1 was logged."""
    metrics = run_dir / "output" / "metrics.jsonl"
    command = [*mtl_nlp_command(), "train", str(RECIPE), f"output_dir={metrics.parent}", *overrides]
    environment = child_environment() | {"HF_DATASETS_CACHE": str(datasets_cache)}
    log_path = run_dir / "train.log"
    times: dict[str, float] = {}
    with log_path.open("wb") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        try:
            while "to_first_step" not in times:
                now = time.perf_counter() - start
                if "to_loop" not in times and metrics.exists():
                    times["to_loop"] = now
                if "to_loop" in times and metrics.stat().st_size > 0:
                    times["to_first_step"] = now
                elif process.poll() is not None or now > timeout:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    sys.exit(f"{' '.join(command)} ended or timed out before its first step:\n{tail}")
                time.sleep(POLL_SECONDS)
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/ and sst2/.")
    parser.add_argument("--ner-train-size", type=int, default=None, help="First N CoNLL-2003 sentences (all).")
    parser.add_argument("--sst2-train-size", type=int, default=None, help="First N SST-2 rows (the recipe's 20,000).")
    parser.add_argument("--repeats", type=int, default=3, help="Cold + warm pairs (and import timings).")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds a run may take to its first step.")
    parser.add_argument(
        "--scratch-dir", default=None, help="Where the fresh caches and outputs go (default: the system's temp dir)."
    )
    args = parser.parse_args()
    os.environ["MTL_NLP_DATA"] = str(Path(args.data_dir).resolve())
    overrides = ["training.log_every_steps=1", "training.save_every_steps=0"]
    if args.ner_train_size is not None:
        overrides.append(f"tasks.ner.data.max_train_examples={args.ner_train_size}")
    if args.sst2_train_size is not None:
        overrides.append(f"tasks.sentiment.data.max_train_examples={args.sst2_train_size}")

    with tempfile.TemporaryDirectory(prefix="mtl-nlp-startup-", dir=args.scratch_dir) as scratch:
        time_to_first_step(overrides, Path(scratch) / "datasets-cache", Path(scratch), args.timeout)
    runs: dict[str, list] = {"import": [], "cold": [], "warm": []}
    for _ in range(args.repeats):
        runs["import"].append(round(import_seconds(), 3))
        with tempfile.TemporaryDirectory(prefix="mtl-nlp-startup-", dir=args.scratch_dir) as scratch:
            cache = Path(scratch) / "datasets-cache"
            for case in ("cold", "warm"):
                run_dir = Path(scratch) / case
                run_dir.mkdir()
                times = time_to_first_step(overrides, cache, run_dir, args.timeout)
                runs[case].append({key: round(value, 3) for key, value in times.items()})

    def median(case: str, key: str) -> str:
        return f"{statistics.median(run[key] for run in runs[case]):.2f}"

    print(f"\nmtl-nlp train {RECIPE.relative_to(REPOSITORY)}, median of {args.repeats} run(s), seconds\n")
    rows = [[case, median(case, "to_loop"), median(case, "to_first_step")] for case in ("cold", "warm")]
    print(markdown_table(["datasets cache", "to training loop", "to first step"], rows))
    print(f'\npython -c "import torch, transformers": {statistics.median(runs["import"]):.2f}')
    print(json.dumps({"benchmark": "startup", "repeats": args.repeats, "overrides": overrides, "seconds": runs}))


if __name__ == "__main__":
    main()
