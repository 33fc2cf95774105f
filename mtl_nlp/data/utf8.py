"""Read text files line by line as UTF-8, so that bad bytes are reported by file and line, whatever the format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError


def utf8_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` for every line of ``path``, numbered from 1, line endings kept.

    Raises ``DataError`` naming the file and line at the first bytes that are not UTF-8. Readers that hand
    files to ``datasets`` run this first: Arrow's JSON reader keeps such bytes and fails only when a row is
    read, far from the file.
    """
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(
                    f"{path}:{line_number}: bytes that are not UTF-8 ({error.reason} at byte {error.start + 1} of "
                    "the line). Re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)."
                ) from None
            yield line_number, line
