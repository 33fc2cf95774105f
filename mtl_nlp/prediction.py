"""``mtl-nlp predict``: read unlabelled input, run :class:`MultiTaskPipeline`, write the predictions.

Input formats (``--format``): ``text`` — one text per line; ``jsonl`` — one object per line with a ``text`` (and
an optional ``question``, ``text_pair``); ``conll`` — sentences as whitespace-separated columns, the first the
token, blank lines between sentences. ``auto`` decides by extension: ``.jsonl``/``.json`` → jsonl,
``.conll``/``.bio``/``.iob`` → conll; other extensions (``.txt`` is CoNLL in training recipes but often plain text)
need ``--format``. Outputs: JSON Lines with every task's result per input, or for CoNLL input a CoNLL file with
one predicted tag column per word-tagging task (in the model's task order, logged), the same tags as the
evaluation's predictions file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from .data.conll import iter_conll_sentences
from .errors import DataError
from .pipeline import HeadRunner, MultiTaskPipeline
from .tasks import InferenceInput, Prediction

INPUT_FORMATS = ("auto", "text", "jsonl", "conll")
EXTENSION_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".conll": "conll", ".bio": "conll", ".iob": "conll"}
CHUNK = 1024  # inputs handed to the pipeline at once (it sorts their windows by length)

logger = logging.getLogger(__name__)


def input_format(path: Path, declared: str = "auto") -> str:
    """The input's format: as declared, or by extension (see the module's documentation)."""
    if declared != "auto":
        return declared
    if path.suffix.lower() not in EXTENSION_FORMATS:
        raise DataError(
            f"{path}: cannot tell the format from the extension {path.suffix or '(none)'!r}. Give --format text "
            "(one text per line), --format jsonl or --format conll."
        )
    return EXTENSION_FORMATS[path.suffix.lower()]


def _json_input(path: Path, line_number: int, line: str) -> InferenceInput:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{line_number}: not valid JSON ({error.msg}).") from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not record["text"].strip():
        raise DataError(f'{path}:{line_number}: each line needs an object with a non-empty "text" string.')
    for key in ("question", "text_pair"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise DataError(f'{path}:{line_number}: "{key}" must be a string.')
    return InferenceInput(record["text"], record.get("question"), text_pair=record.get("text_pair"))


def read_inputs(path: Path, kind: str, conll_columns: list[str]) -> list[InferenceInput]:
    """The inputs of a file; errors name the file and line. Blank lines of text files are skipped."""
    if kind == "conll":
        inputs = [
            InferenceInput.from_words(sentence[conll_columns[0]])
            for sentence in iter_conll_sentences(path, conll_columns)
        ]
    else:
        inputs = []
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                text = line.rstrip("\n")
                inputs.append(InferenceInput(text) if kind == "text" else _json_input(path, line_number, text))
    if not inputs:
        raise DataError(f"{path}: no input to predict on (the file is empty).")
    return inputs


def _json_line(given: InferenceInput, result: dict[str, Prediction]) -> str:
    record: dict[str, Any] = {"text": given.text, **{task: prediction.output for task, prediction in result.items()}}
    return json.dumps(record, ensure_ascii=False, default=float) + "\n"


def _conll_lines(given: InferenceInput, result: dict[str, Prediction]) -> str:
    columns = [prediction.word_tags for prediction in result.values() if prediction.word_tags is not None]
    rows = [" ".join(cells) for cells in zip(given.words, *columns)]
    return "\n".join(rows) + "\n\n"


def predict_file(
    model_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    declared_format: str = "auto",
    conll_columns: list[str] | None = None,
    batch_size: int = 32,
    stride: int | None = None,
    load: Callable[[str | Path], tuple[HeadRunner, PreTrainedTokenizerBase]] | None = None,
) -> int:
    """Predict every input of ``input_path`` with the saved model and write ``output_path``; return the count.

    ``load`` reads ``model_dir`` into a runner of the heads and its tokenizer (default: the saved PyTorch model;
    ``mtl_nlp.serving.onnx_backend.load_onnx_model`` runs an ONNX export)."""
    input_path, output_path = Path(input_path), Path(output_path)
    kind = input_format(input_path, declared_format)
    inputs = read_inputs(input_path, kind, conll_columns or ["tokens"])
    model: HeadRunner | str | Path = model_dir
    tokenizer = None
    if load is not None:
        model, tokenizer = load(model_dir)
    runner = MultiTaskPipeline(model, tokenizer, batch_size=batch_size, stride=stride)
    write = _conll_lines if kind == "conll" and output_path.suffix.lower() != ".jsonl" else _json_line
    if write is _conll_lines:
        tagging = [name for name, task in runner.tasks.items() if task.tags_words]
        logger.info("CoNLL columns of %s: word, then %s", output_path, ", ".join(tagging))
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")  # the output appears complete or not at all
    with partial.open("w", encoding="utf-8") as handle:
        for start in tqdm(range(0, len(inputs), CHUNK), desc="Predicting", unit="chunk"):
            chunk = inputs[start : start + CHUNK]
            for given, result in zip(chunk, runner.predict(chunk)):
                handle.write(write(given, result))
    partial.replace(output_path)
    return len(inputs)
