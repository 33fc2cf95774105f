"""The ``mtl-nlp`` command line: ``train`` a recipe, ``finetune`` its tasks alone after a joint run, ``tune`` its
hyper-parameters, ``evaluate`` or ``predict``
with a saved model, ``export`` a task as a stock transformers model, ``export-onnx`` the whole model for ONNX
Runtime, ``serve`` it over HTTP, ``push`` a model to the Hugging Face Hub (``mtl-nlp --help``)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
from collections.abc import Callable

from .errors import MtlNlpError
from .prediction import INPUT_FORMATS

BACKENDS = ("torch", "onnx")  # mtl_nlp.serving.backends.BACKENDS, named here so that --help imports nothing heavy


def _train(args: argparse.Namespace) -> int:
    from .config import load_recipe
    from .training.run import train

    train(load_recipe(args.recipe, args.overrides), resume=args.resume)
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from .training.finetune import finetune, load_run_recipe

    finetune(load_run_recipe(args.run_dir, args.overrides))
    return 0


def _tune(args: argparse.Namespace) -> int:
    from .tuning.search import tune

    report = tune(
        args.recipe,
        args.space,
        args.trials,
        storage=args.storage,
        study_name=args.study_name,
        timeout=args.timeout,
        overrides=args.overrides,
    )
    if report is not None:
        print(f"\n{report.table}")
        print(f"Best recipe: {report.best_recipe or 'none yet (no trial completed)'}")
        print("Plots: " + ", ".join(str(path) for path in report.plots))
    return 0


def _positive(kind: type) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` greater than 0."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation.saved_model import evaluate_file

    evaluation = evaluate_file(
        args.model_dir, args.task, args.file, args.output_dir, args.batch_size, load=_runner_loader(args.backend)
    )
    print(evaluation.report)
    print(f"Reports: {args.output_dir}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .prediction import predict_file

    count = predict_file(
        args.model_dir,
        args.input,
        args.output,
        declared_format=args.format,
        conll_columns=args.conll_columns,
        batch_size=args.batch_size,
        stride=args.stride,
        load=_runner_loader(args.backend),
    )
    print(f"Predicted {count} inputs: {args.output}")
    return 0


def _runner_loader(backend: str):
    """What reads a model directory for ``--backend``: the saved PyTorch model, or an ONNX export."""
    from .serving.backends import load_runner

    return functools.partial(load_runner, backend=backend)


def _export_onnx(args: argparse.Namespace) -> int:
    from .serving.onnx_backend import export_saved_onnx

    info = export_saved_onnx(args.model_dir, args.out_dir, quantize=args.quantize)
    agreement = f"fp32 outputs within {info['fp32_max_abs_difference']:.2g} of PyTorch's"
    if args.quantize:
        agreement += f"; {args.quantize} within {info['int8_max_abs_difference']:.2g}"
    print(f"ONNX graph ({args.quantize or 'fp32'}) written to {args.out_dir} ({agreement}).")
    print(f"Run it with: mtl-nlp serve {args.out_dir} --backend onnx")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serving.limits import ServeLimits
    from .serving.server import serve

    limits = ServeLimits(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(ServeLimits)})
    return serve(
        args.model_dir,
        backend=args.backend,
        host=args.host,
        port=args.port,
        limits=limits,
        api_key_env=args.api_key_env,
        cors_origins=args.cors_origin,
        access_log=args.access_log,
    )


def _add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="torch: a saved model directory; onnx: a directory written by `mtl-nlp export-onnx`, run with ONNX "
        "Runtime (default: %(default)s).",
    )


def _add_serve(commands: argparse._SubParsersAction) -> None:
    from .serving.limits import ServeLimits  # dataclasses only: its fields are the limit flags

    serve = commands.add_parser(
        "serve",
        help="Serve a saved model over HTTP: dynamic batching, a JSON API, metrics and a page to try it.",
        description="Serve every head of a saved model: POST /v1/predict, GET /v1/model, /health, /ready, "
        "/metrics, the OpenAPI docs at /docs and a page to try it at /. Concurrent requests are batched together. "
        "SIGTERM stops accepting, answers every accepted request and exits 0. See docs/serving.md.",
    )
    serve.add_argument("model_dir", help="Saved model directory (or an ONNX export with --backend onnx).")
    serve.add_argument("--host", default="127.0.0.1", help="Address to bind (default: %(default)s, this machine only).")
    serve.add_argument("--port", type=int, default=8000, help="Port to bind (default: %(default)s).")
    _add_backend(serve)
    for spec in dataclasses.fields(ServeLimits):
        serve.add_argument(
            "--" + spec.name.replace("_", "-"),
            type=int,
            default=spec.default,
            help=spec.metadata["help"].rstrip(".") + " (default: %(default)s).",
        )
    serve.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="Require the API key held in environment variable NAME on /v1/* and /metrics "
        "(Authorization: Bearer KEY or X-API-Key: KEY).",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="Allow browser pages from ORIGIN (e.g. https://example.org) to call the API; repeatable. Default: none.",
    )
    serve.add_argument("--access-log", action="store_true", help="Log every request (method, path, status).")
    serve.set_defaults(run=_serve)


def _export(args: argparse.Namespace) -> int:
    from .export import export_saved_task

    out_dir = export_saved_task(args.model_dir, args.task, args.out_dir)
    print(f"Task {args.task} exported to {out_dir}: load it with transformers' AutoModelFor… and AutoTokenizer.")
    return 0


def _push(args: argparse.Namespace) -> int:
    from .hub import prepare_upload, push_to_hub

    if args.dry_run:
        files = prepare_upload(args.model_dir, args.dry_run, args.repo_id, export_tasks=args.export_tasks)
        print(f"Dry run: nothing was sent. {args.dry_run} holds what would be uploaded to {args.repo_id}:")
        print("\n".join(f"  {name}" for name in files))
        return 0
    commit = push_to_hub(
        args.model_dir,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        export_tasks=args.export_tasks,
    )
    print(f"Uploaded to {args.repo_id}: {commit.commit_url}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command and its help text."""
    parser = argparse.ArgumentParser(
        prog="mtl-nlp",
        description="Multi-task NLP on Hugging Face transformers: one encoder, many task heads.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages too.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="Train the tasks of a YAML recipe jointly and write reports (then fine-tune tasks alone when the "
        "recipe has a finetune section).",
    )
    train.add_argument("recipe", help="Path of the recipe (YAML).")
    train.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="Override recipe keys, e.g. training.learning_rate=3e-5 tasks.ner.batch_size=16.",
    )
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="Continue from the latest checkpoint in the recipe's output_dir, or from the CHECKPOINT directory given.",
    )
    train.set_defaults(run=_train)

    finetune = commands.add_parser(
        "finetune",
        help="Fine-tune tasks each alone from a finished run's joint model (fresh optimizer and warm-up).",
        description="Continue each task of the run's finetune section (without one: every task, the defaults) "
        "alone from RUN_DIR/model, with a new optimizer, warm-up and learning rate (finetune.epochs, max_steps, "
        "learning_rate, warmup_ratio) and every other setting from the run's recipe. Each task's run goes to "
        "RUN_DIR/finetuned/<task>/ (model/, reports/, metrics.jsonl, checkpoints), replacing an earlier one; "
        "RUN_DIR/reports/finetune_summary.md and .json set the joint and fine-tuned scores side by side. The "
        "joint model is left as it is. The recipe's data paths are read as written: run the command from the "
        "directory the training ran in. See docs/finetuning.md.",
    )
    finetune.add_argument(
        "run_dir", metavar="RUN_DIR", help="Output directory of a finished training run (with model/ and recipe.yaml)."
    )
    finetune.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="Override keys of the run's recipe, e.g. finetune.tasks=[ner] finetune.max_steps=100 "
        "finetune.learning_rate=3e-5.",
    )
    finetune.set_defaults(run=_finetune)

    tune = commands.add_parser(
        "tune",
        help="Search a recipe's hyper-parameters with optuna: pruned trials, a study that resumes and is shared.",
        description="Run trials of the recipe with values drawn from SPACE (a YAML search space, docs/search.md), "
        "each in its own directory under <output_dir>/tune/<study>/, pruning those whose evaluations fall behind. "
        "The study lives in its storage: run the command again to continue it, or in several processes at once to "
        "share the trials. At the end: best_recipe.yaml, trials.md and plots in the study's directory.",
    )
    tune.add_argument("recipe", help="Path of the recipe (YAML) whose keys the trials vary.")
    tune.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="Override recipe keys for every trial, as for train."
    )
    tune.add_argument("--space", required=True, help="The search space (YAML): keys, distributions, objective.")
    tune.add_argument(
        "--trials",
        required=True,
        type=_positive(int),
        help="Run until the study has this many trials (ended or running), counting those of earlier runs "
        "and other processes.",
    )
    tune.add_argument(
        "--storage",
        help="Where the study lives: a database URL (sqlite:///study.db, postgresql://…) or a journal file path "
        "(default: study.journal in the study's directory).",
    )
    tune.add_argument("--study-name", help="Name of the study in the storage (default: the recipe file's name).")
    tune.add_argument(
        "--timeout",
        type=_positive(float),
        metavar="S",
        help="Start no new trial after S seconds (the running one ends).",
    )
    tune.set_defaults(run=_tune)

    evaluate = commands.add_parser("evaluate", help="Score a saved model's task on a file and write its reports.")
    evaluate.add_argument("model_dir", help="Directory of a saved multi-task model (e.g. runs/quickstart/model).")
    evaluate.add_argument("--task", required=True, help="Name of the task to score.")
    evaluate.add_argument("--file", required=True, help="Labelled file in the task's format (CoNLL, TSV, …).")
    evaluate.add_argument(
        "--output-dir", default="evaluation", help="Where to write the reports (default: %(default)s)."
    )
    evaluate.add_argument("--batch-size", type=int, default=64, help="Evaluation batch size (default: %(default)s).")
    _add_backend(evaluate)
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="Run every head of a saved model on unlabelled input (one encoder pass per batch)."
    )
    predict.add_argument("model_dir", help="Directory of a saved multi-task model.")
    predict.add_argument(
        "input", help="One text per line, JSON Lines with 'text' [+ 'question', 'text_pair'], or CoNLL tokens."
    )
    predict.add_argument(
        "--output", required=True, help="Where to write: .jsonl (every head), or .conll for CoNLL input (tag columns)."
    )
    predict.add_argument(
        "--format",
        default="auto",
        choices=INPUT_FORMATS,
        help="Input format; auto: .jsonl/.json → jsonl, .conll/.bio/.iob → conll, other extensions (.txt too) "
        "need --format text or conll (default: %(default)s).",
    )
    predict.add_argument(
        "--conll-columns", nargs="+", default=["tokens"], help="Column names of CoNLL input; the first is the token."
    )
    predict.add_argument("--batch-size", type=int, default=32, help="Texts per encoder pass (default: %(default)s).")
    predict.add_argument(
        "--stride", type=int, default=None, help="Read texts longer than the model's limit in windows overlapping by N."
    )
    _add_backend(predict)
    predict.set_defaults(run=_predict)

    export = commands.add_parser(
        "export",
        help="Write one task of a saved model as a stock transformers model (AutoModelFor… + tokenizer).",
        description="Write one task as a directory that loads with transformers' AutoModelFor… and AutoTokenizer "
        "and runs in transformers.pipeline, without mtl-nlp. The export is checked to give the same outputs as "
        "the multi-task model before it is written.",
    )
    export.add_argument("model_dir", help="Directory of a saved multi-task model (e.g. runs/quickstart/model).")
    export.add_argument("--task", required=True, help="Name of the task to export.")
    export.add_argument("out_dir", help="Directory to write (must be new or empty).")
    export.set_defaults(run=_export)

    export_onnx = commands.add_parser(
        "export-onnx",
        help="Write the whole model as one ONNX graph (every head's outputs) for ONNX Runtime, optionally int8.",
        description="Write one ONNX graph whose outputs are every head's logits (named <task>.<field>, dynamic "
        "batch and sequence axes), with the tokenizer and the task descriptions, for `serve`, `predict` and "
        "`evaluate` with --backend onnx. ONNX Runtime's outputs are checked against PyTorch's before writing.",
    )
    export_onnx.add_argument("model_dir", help="Directory of a saved multi-task model (e.g. runs/quickstart/model).")
    export_onnx.add_argument("out_dir", help="Directory to write (must be new or empty).")
    export_onnx.add_argument(
        "--quantize", choices=["int8"], help="Quantize the weights to int8 (dynamic quantization; faster on CPU)."
    )
    export_onnx.set_defaults(run=_export_onnx)
    _add_serve(commands)

    push = commands.add_parser(
        "push",
        help="Upload a saved model with a model card to the Hugging Face Hub in one commit.",
        description="Upload the multi-task model, a model card (metadata, each task's labels and scores, the "
        "recipe, usage) and optionally every task as a stock transformers model under tasks/<task>/, in one "
        "commit. The token comes from HF_TOKEN or `hf auth login`.",
    )
    push.add_argument("model_dir", help="Directory of a saved multi-task model (e.g. runs/quickstart/model).")
    push.add_argument("repo_id", help="Hub repository, e.g. my-name/my-model (created if missing).")
    push.add_argument("--private", action="store_true", help="Create the repository as private (if it is new).")
    push.add_argument("--revision", help="Branch to commit to (created from main if missing; default: main).")
    push.add_argument(
        "--export-tasks", action="store_true", help="Also upload each task as a stock transformers model."
    )
    push.add_argument(
        "--dry-run",
        metavar="DIR",
        help="Write the folder that would be uploaded to DIR (new or empty) and list its files; send nothing.",
    )
    push.set_defaults(run=_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input ends with a one-line error and exit status 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "urllib3", "filelock", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.run(args)
    except MtlNlpError as error:
        print(f"mtl-nlp: error: {error}", file=sys.stderr)
        return 2
