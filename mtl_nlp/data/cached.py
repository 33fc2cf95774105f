"""Run a file reader through the ``datasets`` cache: the file is parsed once, later runs map the Arrow copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from datasets import Dataset, Features

from ..errors import DataError


def read_cached(path: str, generate: Callable[..., Iterator[dict]], features: Features, **kwargs: Any) -> Dataset:
    """The rows ``generate(path=path, file_stamp=…, **kwargs)`` yields, as a memory-mapped ``Dataset``.

    ``file_stamp`` (size and modification time) only enters the cache fingerprint, so that an edited file is
    read again; the generator ignores it. A ``DataError`` raised while generating comes out as it is, not
    wrapped in the ``datasets`` builder's own exception. Keyword values must be hashable and not lists
    (``datasets`` would read a list as shards).
    """
    stat = os.stat(path)
    try:
        return Dataset.from_generator(
            generate,
            features=features,
            gen_kwargs={"path": path, "file_stamp": (stat.st_size, stat.st_mtime_ns), **kwargs},
        )
    except Exception as error:
        cause = error
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or error) from None
