"""Load a task's raw splits from local files or the Hub, through ``datasets`` wherever it can read the format."""

from __future__ import annotations

import csv
import logging
import os

from datasets import Dataset, DatasetDict, load_dataset

from ..config import DataConfig
from ..errors import DataError
from .conll import read_conll
from .squad import looks_like_squad, read_squad
from .utf8 import utf8_lines

logger = logging.getLogger(__name__)

_FORMAT_BY_EXTENSION = {
    ".conll": "conll",
    ".txt": "conll",
    ".bio": "conll",
    ".iob": "conll",
    ".tsv": "tsv",
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
}


def file_format(path: str, declared: str) -> str:
    """The format of ``path``: the declared one, or the one its extension implies (for JSON files, ``squad``
    when the file is in the SQuAD layout of articles and paragraphs)."""
    if declared != "auto":
        return declared
    extension = os.path.splitext(path)[1].lower()
    if extension not in _FORMAT_BY_EXTENSION:
        raise DataError(
            f"{path}: cannot tell the format from the extension {extension!r}; set data.format to one of "
            "conll, tsv, csv, json, squad."
        )
    kind = _FORMAT_BY_EXTENSION[extension]
    return "squad" if kind == "json" and looks_like_squad(path) else kind


def _count_rows(path: str) -> int:
    """The number of non-blank lines of ``path``; reading them checks that every line is UTF-8."""
    return sum(1 for _, line in utf8_lines(path) if line.strip())


def read_file(path: str, data: DataConfig) -> Dataset:
    """Read one local file into a ``Dataset``."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file. Check the path in the recipe's data section.")
    kind = file_format(path, data.format)
    if kind == "conll":
        return read_conll(path, data.conll_columns)
    if kind == "squad":
        return read_squad(path)
    header_lines = 0 if kind == "json" else 1
    if _count_rows(path) <= header_lines:
        raise DataError(
            f"{path}: the file has no examples. Give a file with {'a header row and ' * header_lines}examples."
        )
    try:
        if kind == "json":
            return load_dataset("json", data_files=path, split="train")
        # Only empty cells are missing: texts and labels such as "NA" or "null" stay as written.
        options = {"keep_default_na": False, "na_values": [""]}
        if kind == "tsv":
            # GLUE-style TSV files hold bare quote characters inside sentences: never treat them as quoting.
            options |= {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
        return load_dataset("csv", data_files=path, split="train", **options)
    except Exception as error:
        raise DataError(
            f"{path}: could not be read as {kind} ({_reason(error)}). Fix the file, or set data.format if it is not "
            f"{kind}."
        ) from error


def _reason(error: Exception) -> str:
    """An exception's message (or its cause's) on one line."""
    return " ".join(str(error.__cause__ or error).split())


def load_hub_dataset(data: DataConfig) -> dict[str, Dataset]:
    """The ``hub_splits`` of ``data.hub_dataset`` (a Hub id, or a local dataset repository with a README.md
    card) that it has; it must have a training split when one is asked for."""
    name = data.hub_dataset
    try:
        loaded = load_dataset(name, data.hub_config)
    except Exception as error:
        raise DataError(
            f"{name}: could not be loaded as a dataset ({_reason(error)}). Check data.hub_dataset (a Hub id, or a "
            "dataset folder with its data files and README.md card) and data.hub_config; offline, only datasets "
            "already in the cache load."
        ) from error
    if "train" in data.hub_splits and "train" not in loaded:
        raise DataError(
            f"{name}: the dataset has no 'train' split (it has {', '.join(sorted(loaded))}). Give a dataset (or "
            "data.hub_config) with a training split, or local files."
        )
    return {split: loaded[split] for split in data.hub_splits if split in loaded}


def load_splits(data: DataConfig) -> DatasetDict:
    """Load every configured split, cut to the configured sizes; a split with no examples is an error."""
    if data.hub_dataset:
        splits = load_hub_dataset(data)
        sources = {split: f"{data.hub_dataset}[{split}]" for split in splits}
    else:
        files = data.files()
        splits = {split: read_file(path, data) for split, path in files.items()}
        sources = files
    for split, dataset in splits.items():
        setting = "max_train_examples" if split == "train" else "max_eval_examples"
        limit = getattr(data, setting)
        if limit is not None and limit < len(dataset):
            logger.info("%s: using the first %d of %d examples (data.%s)", sources[split], limit, len(dataset), setting)
            splits[split] = dataset.select(range(limit))
        if len(splits[split]) == 0:
            raise DataError(f"{sources[split]}: the {split} split has no examples. Give a file with examples.")
    return DatasetDict(splits)
