"""``mtl-nlp predict``: read unlabelled input, run :class:`MultiTaskPipeline`, write the predictions.

Inputs: one text per line (``.txt``), JSON Lines with a ``text`` (and optional ``question``) per object
(``.jsonl``), or CoNLL tokens (``.conll``; first column the token). Outputs: JSON Lines with every head's
result per input, or for CoNLL input a CoNLL file with one predicted tag column per token task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .data.conll import iter_conll_sentences
from .errors import DataError
from .pipeline import MultiTaskPipeline

INPUT_FORMATS = ("text", "jsonl", "conll")


def input_format(path: Path, declared: str = "auto") -> str:
    """The input's format: as declared, or by extension (.jsonl/.json → jsonl, .conll/.bio/.iob → conll)."""
    if declared != "auto":
        return declared
    return {".jsonl": "jsonl", ".json": "jsonl", ".conll": "conll", ".bio": "conll", ".iob": "conll"}.get(
        path.suffix.lower(), "text"
    )


def read_inputs(path: Path, kind: str, conll_columns: list[str]) -> list[dict[str, Any]]:
    """The inputs as ``{"text", "question"?, "tokens"?}`` records; errors name the file and line."""
    if kind == "conll":
        return [
            {"text": " ".join(sentence[conll_columns[0]]), "tokens": sentence[conll_columns[0]]}
            for sentence in iter_conll_sentences(path, conll_columns)
        ]
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if kind == "text":
                records.append({"text": line.rstrip("\n")})
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{line_number}: not valid JSON ({error.msg}).") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(f'{path}:{line_number}: each line needs an object with a "text" string.')
            records.append(record)
    if not records:
        raise DataError(f"{path}: no input to predict on (the file is empty).")
    return records


def word_tags(tokens: list[str], entities: list[dict[str, Any]]) -> list[str]:
    """IOB2 tags for space-joined ``tokens`` from entity groups with character offsets."""
    tags, position = [], 0
    previous_entity = None
    for token in tokens:
        start = position
        position += len(token) + 1
        entity = next((e for e in entities if e["start"] <= start < e["end"]), None)
        if entity is None:
            tags.append("O")
        else:
            tags.append(("I-" if entity is previous_entity else "B-") + entity["entity_group"])
        previous_entity = entity
    return tags


def predict_file(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    declared_format: str = "auto",
    conll_columns: list[str] | None = None,
    batch_size: int = 32,
    stride: int | None = None,
) -> int:
    """Predict every input of ``input_path`` with the saved model and write ``output_path``; return the count."""
    input_path, output_path = Path(input_path), Path(output_path)
    kind = input_format(input_path, declared_format)
    records = read_inputs(input_path, kind, conll_columns or ["tokens"])
    runner = MultiTaskPipeline(model_dir, batch_size=batch_size, stride=stride)
    results = []
    for start in tqdm(range(0, len(records), batch_size), desc="Predicting", unit="batch"):
        chunk = records[start : start + batch_size]
        results += runner([r["text"] for r in chunk], [r.get("question") for r in chunk])
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf-8") as handle:
        if kind == "conll" and output_path.suffix.lower() != ".jsonl":
            token_tasks = [t for t, kind in runner.types.items() if kind == "token_classification"]
            for record, result in zip(records, results):
                columns = [word_tags(record["tokens"], result[task]) for task in token_tasks]
                for token, *tags in zip(record["tokens"], *columns):
                    handle.write(" ".join([token, *tags]) + "\n")
                handle.write("\n")
        else:
            for result in results:
                handle.write(json.dumps(result, ensure_ascii=False, default=float) + "\n")
    return len(results)
