"""Building a multi-task model on a BERT-base-size backbone: wall time and peak memory, against another checkout.

    python benchmarks/model_build.py --repeats 3 [--baseline PATH_OF_ANOTHER_CHECKOUT]

A random BERT-base config (12 layers, hidden 768, vocabulary 30,522; built locally, nothing downloaded) is saved
once to a scratch directory; each measurement is a fresh Python process that imports mtl_nlp from a source tree and
times ``MultiTaskModel.from_backbone(directory, three tasks)`` (token classification, sequence classification,
question answering), reporting the wall time of that call and the process's peak resident memory before and after
it (``VmHWM`` of /proc/self/status; Linux). With ``--baseline``, the same is measured for the mtl_nlp package of
that checkout (e.g. a ``git worktree`` of an earlier commit), alternating which goes first. Prints a table and one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import REPOSITORY, child_environment, markdown_table

TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]},
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
    "qa": {"type": "question_answering", "id2label": ["start", "end"]},
}
CHILD = """
import json, sys, time
sys.path.insert(0, {source!r})

def peak_mib():  # VmHWM: this process's own peak (ru_maxrss may keep the forking parent's)
    line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

import mtl_nlp
from mtl_nlp.modeling import MultiTaskModel
before = peak_mib()
start = time.perf_counter()
model = MultiTaskModel.from_backbone({backbone!r}, {tasks!r})
seconds = time.perf_counter() - start
after = peak_mib()
print(json.dumps({{"seconds": seconds, "peak_rss_mib": after, "rss_before_mib": before, "file": mtl_nlp.__file__}}))
"""


def save_backbone(directory: Path) -> Path:
    """A random BERT-base-size encoder saved with save_pretrained (safetensors)."""
    from transformers import BertConfig, BertModel

    BertModel(BertConfig()).save_pretrained(directory)
    return directory


def measure(source: Path, backbone: Path) -> dict:
    code = CHILD.format(source=str(source), backbone=str(backbone), tasks=TASKS)
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=child_environment()
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if not result["file"].startswith(str(source)):
        raise RuntimeError(f"imported {result['file']}, not the package under {source}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="Another checkout whose mtl_nlp is measured too.")
    args = parser.parse_args()
    contenders = {"this checkout": REPOSITORY}
    if args.baseline:
        contenders["baseline"] = args.baseline.resolve()
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory(prefix="mtl-nlp-bert-base-") as scratch:
        backbone = save_backbone(Path(scratch))
        for repeat in range(args.repeats):
            order = list(contenders) if repeat % 2 == 0 else list(reversed(contenders))
            for name in order:
                runs[name].append(measure(contenders[name], backbone))
    rows = []
    for name, results in runs.items():
        seconds = [r["seconds"] for r in results]
        rows.append(
            [
                name,
                f"{statistics.median(seconds):.2f} ({', '.join(f'{s:.2f}' for s in seconds)})",
                f"{statistics.median(r['peak_rss_mib'] for r in results):.0f}",
                f"{statistics.median(r['peak_rss_mib'] - r['rss_before_mib'] for r in results):.0f}",
            ]
        )
    print(markdown_table(["code", "from_backbone s (runs)", "peak RSS MiB", "peak RSS added by the build MiB"], rows))
    print(json.dumps({name: results for name, results in runs.items()}))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
