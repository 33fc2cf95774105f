"""Reader for SQuAD-layout JSON files: articles of paragraphs of questions, flattened to one row per question.

The layout is ``{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}`` (SQuAD v1.1 and v2.0). Rows have the columns of
the Hub's ``squad`` datasets: ``id``, ``title``, ``context``, ``question`` and ``answers`` (``{"text": [...],
"answer_start": [...]}``; empty for unanswerable questions).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Sequence, Value

from ..errors import DataError
from .cached import read_cached

FEATURES = Features(
    {
        "id": Value("string"),
        "title": Value("string"),
        "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": Sequence(Value("string")), "answer_start": Sequence(Value("int32"))},
    }
)
LAYOUT = '{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers"}]}]}]}'
SNIFF_BYTES = 1 << 16
# In JSON text, a quoted word followed by ':' can only be a key: a "paragraphs" key marks the SQuAD layout.
_PARAGRAPHS_KEY = re.compile(r'"paragraphs"\s*:\s*\[')


def looks_like_squad(path: str | Path) -> bool:
    """Whether a JSON file is in the SQuAD layout (one document with articles of paragraphs), judged from its
    first 64 KiB, rather than JSON Lines or a flat list of examples."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES).decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return head.startswith("{") and _PARAGRAPHS_KEY.search(head) is not None


def _load_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: bytes that are not UTF-8 at byte {error.start}. Re-encode the file as UTF-8."
        ) from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno}).") from None


def _list(value: Any, where: str, key: str, path: str) -> list:
    if not isinstance(value, list):
        raise DataError(f"{path}: {where}: {key!r} should be a list, got {type(value).__name__}. Expected {LAYOUT}.")
    return value


def _answers(qa: dict, where: str, path: str) -> dict[str, list]:
    """A question's answers as ``{"text": [...], "answer_start": [...]}``; none when ``is_impossible``."""
    if qa.get("is_impossible") is True:
        return {"text": [], "answer_start": []}
    if "answers" not in qa:
        raise DataError(f"{path}: {where}: no 'answers' list (and not marked is_impossible). Expected {LAYOUT}.")
    texts, starts = [], []
    for number, answer in enumerate(_list(qa["answers"], where, "answers", path)):
        text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, int):
            raise DataError(
                f"{path}: {where}: answer {number} should be an object with a string 'text' and an integer "
                f"'answer_start', got {answer!r}."
            )
        texts.append(text)
        starts.append(start)
    return {"text": texts, "answer_start": starts}


def iter_squad_questions(path: str | Path) -> Iterator[dict]:
    """Yield one row per question of a SQuAD-layout file.

    Raises ``DataError`` naming the file and the question id (or its article/paragraph position) when the
    file is not JSON, not in the layout, or a question lacks its id or well-formed answers. Empty contexts and
    questions, and answers that do not match the context, are left to the task's checks (which may skip them).
    """
    path = str(path)
    document = _load_json(path)
    if not isinstance(document, dict) or "data" not in document:
        raise DataError(
            f"{path}: not in the SQuAD layout {LAYOUT}. For one example per line (JSON Lines) or a flat list "
            "of examples set data.format: json."
        )
    count = 0
    for article_number, article in enumerate(_list(document["data"], "top level", "data", path)):
        title = article.get("title", "") if isinstance(article, dict) else ""
        article_where = f"article {article_number} ({title!r})"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        for paragraph_number, paragraph in enumerate(_list(paragraphs, article_where, "paragraphs", path)):
            where = f"{article_where}, paragraph {paragraph_number}"
            if not isinstance(paragraph, dict):
                raise DataError(f"{path}: {where}: expected an object with 'context' and 'qas'. Expected {LAYOUT}.")
            context = paragraph.get("context")
            for qa in _list(paragraph.get("qas"), where, "qas", path):
                if not isinstance(qa, dict) or qa.get("id") in (None, ""):
                    raise DataError(f"{path}: {where}: a question without an 'id': {qa!r}.")
                question_where = f"question id {qa['id']!r}"
                yield {
                    "id": str(qa["id"]),
                    "title": str(title),
                    "context": context if isinstance(context, str) else "",
                    "question": qa.get("question") if isinstance(qa.get("question"), str) else "",
                    "answers": _answers(qa, question_where, path),
                }
                count += 1
    if not count:
        raise DataError(f"{path}: the file has no questions. Give a file with examples.")


def _generate(path: str, file_stamp: tuple[int, int]) -> Iterator[dict]:
    del file_stamp
    yield from iter_squad_questions(path)


def read_squad(path: str | Path) -> Dataset:
    """Read a SQuAD-layout file into a memory-mapped ``Dataset`` (cached; re-read when the file changes)."""
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file. Check the path in the recipe's data section.")
    return read_cached(path, _generate, FEATURES)
