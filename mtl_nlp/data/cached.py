"""The ``datasets`` cache for readers and encoders: a file is parsed (and a split encoded) once, later runs map
the Arrow copy — and a new version of the code that produced it is never served a stale copy."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any

from datasets import Dataset, Features
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from ..errors import DataError
from ..tokenization import encoding_fingerprint


def read_cached(path: str, generate: Callable[..., Iterator[dict]], features: Features, **kwargs: Any) -> Dataset:
    """The rows ``generate(path=path, file_stamp=…, **kwargs)`` yields, as a memory-mapped ``Dataset``.

    ``file_stamp`` (size, modification time and the reader's code) only enters the cache fingerprint, so that
    an edited file or a changed reader is read again; the generator ignores it. A ``DataError`` raised while
    generating comes out as it is, not wrapped in the ``datasets`` builder's own exception. Keyword values
    must be hashable and not lists (``datasets`` would read a list as shards).
    """
    stat = os.stat(path)
    stamp = (stat.st_size, stat.st_mtime_ns, code_fingerprint(generate))
    try:
        return Dataset.from_generator(
            generate, features=features, gen_kwargs={"path": path, "file_stamp": stamp, **kwargs}
        )
    except Exception as error:
        cause = error
        while cause is not None and not isinstance(cause, DataError):
            cause = cause.__cause__ or cause.__context__
        raise (cause or error) from None


def code_fingerprint(function: Callable) -> str:
    """A hash of the source of the module that defines ``function``.

    ``datasets`` hashes a function imported from a package by its name only, so without this a changed reader
    or encoder would be served the cache its previous version wrote.
    """
    return Hasher.hash(inspect.getsource(inspect.getmodule(function)))


def map_cached(dataset: Dataset, function: Callable, cache_key: Any = None, **kwargs: Any) -> Dataset:
    """``dataset.map(function, **kwargs)``, cached under a fingerprint that also covers ``function``'s code.

    A fast tokenizer among ``fn_kwargs`` enters the fingerprint by what it encodes (:func:`encoding_fingerprint`),
    not by where it was loaded from. ``cache_key`` stands in for ``fn_kwargs`` in the fingerprint when they are too
    costly to hash or only known once the function runs (models loaded on first use); it must then change whenever
    their result would.
    """
    if cache_key is None:
        cache_key = {
            name: encoding_fingerprint(value) if isinstance(value, PreTrainedTokenizerBase) and value.is_fast else value
            for name, value in kwargs.get("fn_kwargs", {}).items()
        }
    key = {**kwargs, "fn_kwargs": cache_key}
    fingerprint = Hasher.hash([dataset._fingerprint, code_fingerprint(function), key])
    return dataset.map(function, new_fingerprint=fingerprint, **kwargs)
