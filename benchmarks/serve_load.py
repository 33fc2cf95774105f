"""Load test of ``mtl-nlp serve``: texts per second, latency percentiles, errors and peak memory under 1 to 64
concurrent clients, for PyTorch, ONNX Runtime fp32 and int8, against the app users write today.

    python benchmarks/serve_load.py --model-dir runs/local_files/model --data-dir ../shared/data

The model is a trained NER + sentiment model (``recipes/local_files.yaml``: MiniLM on CoNLL-2003 + SST-2). Server
and client run on this machine, over loopback. Contenders, each a fresh server process:
- ``torch``: ``mtl-nlp serve`` (dynamic batching, PyTorch);
- ``onnx``: ``mtl-nlp serve --backend onnx`` on ``mtl-nlp export-onnx``'s graph;
- ``onnx-int8``: the same with ``--quantize int8``;
- ``stock``: what users write today: the same FastAPI and uvicorn, calling the two tasks exported as stock
  checkpoints (``mtl-nlp export``) through ``transformers.pipeline`` on every request (a plain ``def`` route, run
  in FastAPI's thread pool).
The client (httpx, asyncio) sends one text per request from a fixed list (CoNLL-2003 dev sentences interleaved
with SST-2 dev sentences) with a bounded number of requests in flight. All servers start first; then, in each of
``--rounds`` rounds, every concurrency level runs on every contender in turn (``--warmup`` unmeasured requests,
then ``--requests`` measured ones), so that a change in the machine's load touches all contenders alike. A
contender's texts/s is its median over the rounds; its latency percentiles pool the requests of all rounds.
Peak RSS is each server process's high-water mark (VmHWM) at the end.

Then ``MultiTaskPipeline.predict`` runs the same texts in batches of 32 in this process, without HTTP, on each
runtime in turn (``--rounds`` times; the median counts). ONNX Runtime's logits are compared with PyTorch's on
the same texts (largest difference, share of equal predicted labels, tokens and texts alike), and ``mtl-nlp
evaluate`` scores each backend on the full CoNLL-2003 dev set and SST-2 dev (timed in-process, after one run that
fills the datasets cache), so that int8's score change is measured on the same model.
Prints tables and ends with one JSON line of every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

CONTENDERS = ("torch", "onnx", "onnx-int8", "stock")


def sentences(data_dir: Path, count: int) -> list[str]:
    """``count`` real sentences: CoNLL-2003 dev sentences (tokens joined) alternating with SST-2 dev sentences."""
    conll, words = [], []
    for line in (data_dir / "conll2003" / "dev.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                conll.append(" ".join(words))
            words = []
        else:
            words.append(line.split()[0])
    sst2 = [line.split("\t")[0].strip() for line in (data_dir / "sst2" / "dev.tsv").read_text().splitlines()[1:]]
    mixed = [text for pair in zip(conll, sst2) for text in pair]
    return mixed[:count]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def server(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not ready: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


async def load(url: str, texts: list[str], concurrency: int, requests: int, warmup: int) -> dict:
    """Send ``requests`` one-text requests with ``concurrency`` in flight; latency of each, errors, throughput."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker(numbers: range, measured: bool) -> None:
            for number in numbers:
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/predict", json={"texts": [texts[number % len(texts)]]})
                    status = str(response.status_code)
                except httpx.HTTPError as error:
                    status = type(error).__name__
                if measured:
                    if status == "200":
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors[status] = errors.get(status, 0) + 1

        async def run(total: int, measured: bool) -> float:
            started = time.perf_counter()
            await asyncio.gather(*(worker(range(i, total, concurrency), measured) for i in range(concurrency)))
            return time.perf_counter() - started

        await run(warmup, False)
        seconds = await run(requests, True)
    milliseconds = np.array(latencies) * 1000
    return {
        "texts_per_s": len(latencies) / seconds,
        "p50_ms": float(np.percentile(milliseconds, 50)) if latencies else float("nan"),
        "latencies_ms": milliseconds,
        "errors": errors,
    }


STOCK_APP = """
import sys
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline
import uvicorn

ner = pipeline("token-classification", model=sys.argv[1], aggregation_strategy="simple", device="cpu")
sentiment = pipeline("text-classification", model=sys.argv[2], device="cpu")
app = FastAPI()

class Request(BaseModel):
    texts: list[str]

@app.get("/ready")
def ready():
    return {"status": "ready"}

@app.post("/v1/predict")
def predict(request: Request):
    entities, labels = ner(request.texts), sentiment(request.texts)
    return {"results": [
        {"text": text, "ner": [{**e, "score": float(e["score"]), "start": int(e["start"]), "end": int(e["end"])}
                               for e in found], "sentiment": label}
        for text, found, label in zip(request.texts, entities, labels)
    ]}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning")
"""


def prepare(model_dir: Path, work: Path) -> dict[str, Path]:
    """The ONNX exports and the stock exports of the model (written once, reused)."""
    paths = {"onnx": work / "onnx", "onnx-int8": work / "onnx-int8", "ner": work / "stock-ner"}
    paths["sentiment"] = work / "stock-sentiment"
    commands = {
        "onnx": ["export-onnx", str(model_dir), str(paths["onnx"])],
        "onnx-int8": ["export-onnx", str(model_dir), str(paths["onnx-int8"]), "--quantize", "int8"],
        "ner": ["export", str(model_dir), "--task", "ner", str(paths["ner"])],
        "sentiment": ["export", str(model_dir), "--task", "sentiment", str(paths["sentiment"])],
    }
    for name, command in commands.items():
        if not paths[name].exists():
            subprocess.run([sys.executable, "-m", "mtl_nlp", *command], check=True)
    (work / "stock_app.py").write_text(STOCK_APP, encoding="utf-8")
    return paths


def server_command(contender: str, model_dir: Path, paths: dict[str, Path], work: Path, port: int) -> list[str]:
    if contender == "stock":
        return [sys.executable, str(work / "stock_app.py"), str(paths["ner"]), str(paths["sentiment"]), str(port)]
    directory, backend = (model_dir, "torch") if contender == "torch" else (paths[contender], "onnx")
    command = [sys.executable, "-m", "mtl_nlp", "serve", str(directory), "--backend", backend, "--port", str(port)]
    return [*command, "--max-batch-size", "32", "--max-wait-ms", "5", "--max-queue", "1024"]


def agreement(model_dir: Path, paths: dict[str, Path], texts: list[str]) -> list[dict]:
    """How close ONNX Runtime's logits are to PyTorch's on ``texts`` (batches of 32): the largest absolute
    difference over every real token's or text's logits, and how often the predicted label (argmax) agrees."""
    import torch

    from mtl_nlp.serving.backends import load_runner

    model, tokenizer = load_runner(model_dir, "torch")
    rows = []
    for contender in ("onnx", "onnx-int8"):
        heads, _ = load_runner(paths[contender], "onnx")
        worst: dict[str, float] = {}
        same: dict[str, list[bool]] = {}
        for start in range(0, len(texts), 32):
            batch = dict(tokenizer(texts[start : start + 32], padding=True, truncation=True, return_tensors="pt"))
            with torch.inference_mode():
                expected = model.forward_heads(None, **batch)
            actual = heads.forward_heads(None, **batch)
            real = batch["attention_mask"].bool()
            for task, output in expected.items():
                want, got = output.logits, actual[task].logits
                if want.dim() == 3:  # token logits: only the real tokens count
                    want, got = want[real], got[real]
                worst[task] = max(worst.get(task, 0.0), float((want - got).abs().max()))
                same.setdefault(task, []).extend((want.argmax(-1) == got.argmax(-1)).tolist())
        for task in worst:
            rows.append(
                {
                    "contender": contender,
                    "task": task,
                    "max_abs_logit_difference": worst[task],
                    "same_argmax": float(np.mean(same[task])),
                }
            )
    return rows


def pipeline_speed(model_dir: Path, paths: dict[str, Path], texts: list[str], rounds: int) -> list[dict]:
    """``MultiTaskPipeline.predict`` on batches of 32 of the texts, in this process, without HTTP: the runtimes
    in turn in each round; texts/s is the median over the rounds."""
    from mtl_nlp.pipeline import MultiTaskPipeline
    from mtl_nlp.serving.backends import load_runner
    from mtl_nlp.tasks import InferenceInput

    inputs = [InferenceInput(text) for text in texts]
    sources = {
        "torch": (model_dir, "torch"),
        "onnx": (paths["onnx"], "onnx"),
        "onnx-int8": (paths["onnx-int8"], "onnx"),
    }
    pipelines = {name: MultiTaskPipeline(*load_runner(*source), device="cpu") for name, source in sources.items()}
    speeds: dict[str, list[float]] = {name: [] for name in pipelines}
    for pipeline in pipelines.values():
        pipeline.predict(inputs[:64])
    for _ in range(rounds):
        for name, pipeline in pipelines.items():
            started = time.perf_counter()
            for start in range(0, len(inputs), 32):
                pipeline.predict(inputs[start : start + 32])
            speeds[name].append(len(inputs) / (time.perf_counter() - started))
    return [
        {"contender": name, "texts_per_s": float(np.median(runs)), "runs": [round(run, 1) for run in runs]}
        for name, runs in speeds.items()
    ]


def dev_scores(model_dir: Path, paths: dict[str, Path], data_dir: Path, work: Path) -> list[dict]:
    """Each backend's dev scores and evaluation time (``mtl-nlp evaluate``'s code, in this process: loading the
    model, reading and encoding the file, scoring, writing the reports; the best of two runs after a first one)."""
    from mtl_nlp.evaluation.saved_model import evaluate_file
    from mtl_nlp.serving.backends import load_runner

    files = {"ner": data_dir / "conll2003" / "dev.txt", "sentiment": data_dir / "sst2" / "dev.tsv"}
    rows = []
    for contender, directory in (("torch", model_dir), ("onnx", paths["onnx"]), ("onnx-int8", paths["onnx-int8"])):
        loader = functools.partial(load_runner, backend="torch" if contender == "torch" else "onnx")
        for task, file in files.items():
            out = work / "eval" / contender / task
            evaluate_file(directory, task, str(file), out, 64, load=loader)  # fills the datasets cache
            seconds = []
            for _ in range(2):
                started = time.perf_counter()
                evaluation = evaluate_file(directory, task, str(file), out, 64, load=loader)
                seconds.append(time.perf_counter() - started)
            rows.append({"contender": contender, "task": task, evaluation.headline: evaluation.headline_value})
            rows[-1]["seconds"] = min(seconds)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="A trained NER + sentiment model (recipes/local_files).")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--work-dir", default="/tmp/mtl-nlp-serve-load", help="Exports, logs and reports go here.")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32, 64])
    parser.add_argument("--texts", type=int, default=1000, help="Size of the fixed list of sentences.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds over every level and contender.")
    parser.add_argument("--requests", type=int, default=320, help="Measured requests per level, contender and round.")
    parser.add_argument("--warmup", type=int, default=64, help="Unmeasured requests before each level.")
    parser.add_argument("--skip-eval", action="store_true", help="Skip the dev-set scoring.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    model_dir, data_dir, work = Path(args.model_dir), Path(args.data_dir), Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    texts = sentences(data_dir, args.texts)
    paths = prepare(model_dir, work)
    runs: dict[tuple[str, int], list[dict]] = {}
    with contextlib.ExitStack() as stack:
        urls, processes = {}, {}
        for contender in args.contenders:
            port = free_port()
            command = server_command(contender, model_dir, paths, work, port)
            processes[contender] = stack.enter_context(server(command, port, work / f"{contender}.log"))
            urls[contender] = f"http://127.0.0.1:{port}"
        for round_number in range(args.rounds):
            for concurrency in args.concurrency:
                for contender in args.contenders:
                    run = asyncio.run(load(urls[contender], texts, concurrency, args.requests, args.warmup))
                    runs.setdefault((contender, concurrency), []).append(run)
                    brief = {key: run[key] for key in ("texts_per_s", "p50_ms", "errors")}
                    line = {"round": round_number, "contender": contender, "clients": concurrency, **brief}
                    print(json.dumps(line), flush=True)
        peaks = {contender: peak_rss_mb(process.pid) for contender, process in processes.items()}
    rows = []
    for (contender, concurrency), measured in runs.items():
        latencies = np.concatenate([run.pop("latencies_ms") for run in measured])
        errors: dict[str, int] = {}
        for run in measured:
            for status, count in run["errors"].items():
                errors[status] = errors.get(status, 0) + count
        rows.append(
            {
                "contender": contender,
                "concurrency": concurrency,
                "texts_per_s": float(np.median([run["texts_per_s"] for run in measured])),
                "texts_per_s_runs": [round(run["texts_per_s"], 1) for run in measured],
                "p50_ms": float(np.percentile(latencies, 50)),
                "p95_ms": float(np.percentile(latencies, 95)),
                "p99_ms": float(np.percentile(latencies, 99)),
                "errors": errors,
                "peak_rss_mb": peaks[contender],
            }
        )
    rows.sort(key=lambda row: (args.contenders.index(row["contender"]), row["concurrency"]))
    print("\n| contender | clients | texts/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        errors = sum(row["errors"].values())
        print(
            f"| {row['contender']} | {row['concurrency']} | {row['texts_per_s']:.1f} | {row['p50_ms']:.1f} | "
            f"{row['p95_ms']:.1f} | {row['p99_ms']:.1f} | {errors} | {row['peak_rss_mb']:.0f} |"
        )
    in_process = pipeline_speed(model_dir, paths, texts, args.rounds)
    print("\n| runtime | in-process texts/s (runs) |")
    print("|---|---|")
    for row in in_process:
        print(f"| {row['contender']} | {row['texts_per_s']:.1f} ({', '.join(map(str, row['runs']))}) |")
    agreements = agreement(model_dir, paths, texts)
    print("\n| backend | task | max abs logit difference to PyTorch | same predicted label |")
    print("|---|---|---|---|")
    for row in agreements:
        print(
            f"| {row['contender']} | {row['task']} | {row['max_abs_logit_difference']:.2e} | "
            f"{100 * row['same_argmax']:.2f}% |"
        )
    scores = [] if args.skip_eval else dev_scores(model_dir, paths, data_dir, work)
    if scores:
        print("\n| backend | task | dev score | evaluate s |")
        print("|---|---|---|---|")
        for row in scores:
            metric = next(key for key in row if key not in ("contender", "task", "seconds"))
            print(f"| {row['contender']} | {row['task']} | {metric} {row[metric]:.4f} | {row['seconds']:.1f} |")
    print(json.dumps({"load": rows, "in_process": in_process, "agreement": agreements, "dev": scores}))


if __name__ == "__main__":
    main()
