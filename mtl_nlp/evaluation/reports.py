"""Report files: per task a text report, a JSON file with stable keys and a predictions file; a summary; the
final evaluations saved next to the model."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..tasks import TaskEvaluation

EVAL_RESULTS_FILE = "eval_results.json"


def report_payload(evaluation: TaskEvaluation) -> dict:
    """One evaluation as plain data: task, split, headline metric and its value, and every metric."""
    return {
        "task": evaluation.task,
        "split": evaluation.split,
        "headline": evaluation.headline,
        "headline_value": evaluation.headline_value,
        "metrics": evaluation.metrics,
    }


def write_task_report(directory: str | Path, evaluation: TaskEvaluation) -> list[Path]:
    """Write ``<task>.<split>.report.txt``, ``….report.json`` and ``….predictions<suffix>``; return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{evaluation.task}.{evaluation.split}"
    text = directory / f"{stem}.report.txt"
    text.write_text(evaluation.report, encoding="utf-8")
    data = directory / f"{stem}.report.json"
    data.write_text(json.dumps(report_payload(evaluation), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    predictions = directory / f"{stem}.predictions{evaluation.predictions_suffix}"
    predictions.write_text(evaluation.predictions, encoding="utf-8")
    return [text, data, predictions]


def summary_rows(evaluations: list[TaskEvaluation]) -> list[tuple[str, str, str, float]]:
    """(task, split, headline metric, value) per evaluation."""
    return [(e.task, e.split, e.headline, e.headline_value) for e in evaluations]


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table of ``rows`` (cells already formatted) under ``columns``, readable as plain text too."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_table_files(directory: str | Path, stem: str, rows: list[dict[str, Any]], table: str) -> list[Path]:
    """Write ``<stem>.json`` (``rows``) and ``<stem>.md`` (``table``, the rows as Markdown) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data, markdown = directory / f"{stem}.json", directory / f"{stem}.md"
    data.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    markdown.write_text(table, encoding="utf-8")
    return [data, markdown]


def summary_table(evaluations: list[TaskEvaluation]) -> str:
    """A Markdown table of each task's headline metric."""
    rows = [(task, split, metric, f"{value:.4f}") for task, split, metric, value in summary_rows(evaluations)]
    return markdown_table(("task", "split", "metric", "value"), rows)


def write_summary(directory: str | Path, evaluations: list[TaskEvaluation]) -> list[Path]:
    """Write ``summary.json`` and ``summary.md`` across tasks."""
    rows = [
        {"task": task, "split": split, "metric": metric, "value": value}
        for task, split, metric, value in summary_rows(evaluations)
    ]
    return write_table_files(directory, "summary", rows, summary_table(evaluations))


def comparison_table(rows: list[dict[str, Any]], before: tuple[str, str], after: tuple[str, str]) -> str:
    """A Markdown table of headline values before and after a change (a training stage, a setting) and their
    difference. ``rows`` hold task, split, metric, difference and the two values under the keys of ``before`` and
    ``after``, each a (key, column heading) pair; a missing value shows as –."""

    def number(value: float | None, sign: str = "") -> str:
        return "–" if value is None else f"{value:{sign}.4f}"

    (before_key, before_heading), (after_key, after_heading) = before, after
    cells = [
        (
            row["task"],
            row["split"],
            row["metric"],
            number(row[before_key]),
            number(row[after_key]),
            number(row["difference"], "+"),
        )
        for row in rows
    ]
    return markdown_table(("task", "split", "metric", before_heading, after_heading, "difference"), cells)


def write_eval_results(directory: str | Path, evaluations: list[TaskEvaluation]) -> Path:
    """Write ``eval_results.json``: the run's final evaluations, kept with the model so a model card can cite them."""
    path = Path(directory) / EVAL_RESULTS_FILE
    payloads = [report_payload(evaluation) for evaluation in evaluations]
    path.write_text(json.dumps(payloads, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_eval_results(directory: str | Path) -> list[dict] | None:
    """The evaluations saved by :func:`write_eval_results` in ``directory``, or None when there are none."""
    path = Path(directory) / EVAL_RESULTS_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
