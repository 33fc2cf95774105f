"""Reader for CoNLL column files: one token a line, blank lines between sentences, ``-DOCSTART-`` skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, Features, Sequence, Value

from ..errors import DataError
from .cached import read_cached
from .utf8 import utf8_lines


def iter_conll_sentences(path: str | Path, columns: list[str]) -> Iterator[dict]:
    """Yield one dict per sentence: a list per column, plus ``line`` (the sentence's first line number).

    Raises ``DataError`` naming the file and line for bytes that are not UTF-8 and for lines whose number of
    whitespace-separated fields differs from ``columns``.
    """
    sentence: dict[str, list[str]] = {name: [] for name in columns}
    first_line = 0
    for line_number, line in utf8_lines(path):
        line = line.strip()
        if not line or line.startswith("-DOCSTART-"):
            if sentence[columns[0]]:
                yield {**sentence, "line": first_line}
                sentence = {name: [] for name in columns}
            continue
        fields = line.split()
        if len(fields) != len(columns):
            raise DataError(
                f"{path}:{line_number}: expected {len(columns)} columns ({' '.join(columns)}), found "
                f"{len(fields)}: {line!r}. Fix the line, or set data.conll_columns to the file's columns."
            )
        if not sentence[columns[0]]:
            first_line = line_number
        for name, value in zip(columns, fields):
            sentence[name].append(value)
    if sentence[columns[0]]:
        yield {**sentence, "line": first_line}


def _generate(path: str, columns: tuple[str, ...], file_stamp: tuple[int, int]) -> Iterator[dict]:
    # columns is a tuple because datasets would read a list in gen_kwargs as shards.
    del file_stamp
    yield from iter_conll_sentences(path, list(columns))


def read_conll(path: str | Path, columns: list[str]) -> Dataset:
    """Read a CoNLL file into a memory-mapped ``Dataset`` (cached; re-read when the file changes)."""
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file. Check the path in the recipe's data section.")
    features = Features({name: Sequence(Value("string")) for name in columns} | {"line": Value("int64")})
    if os.stat(path).st_size == 0 or next(iter_conll_sentences(path, columns), None) is None:
        return Dataset.from_dict({name: [] for name in features}, features=features)
    return read_cached(path, _generate, features, columns=tuple(columns))
