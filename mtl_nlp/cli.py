"""The ``mtl-nlp`` command line: ``train`` a recipe, ``evaluate`` or ``predict`` with a saved model (``--help``)."""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import MtlNlpError


def _train(args: argparse.Namespace) -> int:
    from .config import load_recipe
    from .training.run import train

    train(load_recipe(args.recipe, args.overrides), resume=args.resume)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation.saved_model import evaluate_file

    evaluation = evaluate_file(args.model_dir, args.task, args.file, args.output_dir, args.batch_size)
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
    )
    print(f"Predicted {count} inputs: {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command and its help text."""
    parser = argparse.ArgumentParser(
        prog="mtl-nlp",
        description="Multi-task NLP on Hugging Face transformers: one encoder, many task heads.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Log debug messages too.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="Train the tasks of a YAML recipe jointly and write reports.")
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

    evaluate = commands.add_parser("evaluate", help="Score a saved model's task on a file and write its reports.")
    evaluate.add_argument("model_dir", help="Directory of a saved multi-task model (e.g. runs/quickstart/model).")
    evaluate.add_argument("--task", required=True, help="Name of the task to score.")
    evaluate.add_argument("--file", required=True, help="Labelled file in the task's format (CoNLL, TSV, …).")
    evaluate.add_argument(
        "--output-dir", default="evaluation", help="Where to write the reports (default: %(default)s)."
    )
    evaluate.add_argument("--batch-size", type=int, default=64, help="Evaluation batch size (default: %(default)s).")
    evaluate.set_defaults(run=_evaluate)

    predict = commands.add_parser(
        "predict", help="Run every head of a saved model on unlabelled input (one encoder pass per batch)."
    )
    predict.add_argument("model_dir", help="Directory of a saved multi-task model.")
    predict.add_argument(
        "input", help="One text per line (.txt), JSON Lines with 'text' [+ 'question'], or CoNLL tokens."
    )
    predict.add_argument(
        "--output", required=True, help="Where to write: .jsonl (every head), or .conll for CoNLL input (tag columns)."
    )
    predict.add_argument("--format", default="auto", choices=["auto", "text", "jsonl", "conll"], help="Input format.")
    predict.add_argument(
        "--conll-columns", nargs="+", default=["tokens"], help="Column names of CoNLL input; the first is the token."
    )
    predict.add_argument("--batch-size", type=int, default=32, help="Texts per encoder pass (default: %(default)s).")
    predict.add_argument(
        "--stride", type=int, default=None, help="Read texts longer than the model's limit in windows overlapping by N."
    )
    predict.set_defaults(run=_predict)
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
