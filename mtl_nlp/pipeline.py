"""``MultiTaskPipeline``: every head of a multi-task model on raw inputs, decoded as the evaluation scored it.

Each task encodes the inputs exactly as training encoded its examples and decodes the head's output with the
same code its evaluation scores (``Task.encode_inputs`` / ``Task.decode``): entities are read from one
prediction per word, by the scheme and mode of the task's report. Tasks whose encodings are the same windows —
token and text classification on a WordPiece backbone, for instance — share one encoder pass per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from .errors import InputError
from .evaluation.evaluator import eval_batches
from .modeling.config import MultiTaskConfig
from .modeling.saved import load_saved_model
from .tasks import InferenceEncoding, InferenceInput, Prediction, check_inputs, task_from_description


class HeadRunner(Protocol):
    """What runs the heads: a :class:`~mtl_nlp.modeling.MultiTaskModel`, or another backend of the same model
    (ONNX Runtime, :class:`mtl_nlp.serving.onnx_backend.OnnxHeads`) that offers its task descriptions and
    ``forward_heads``, returning each head's output with the fields of the PyTorch head's output."""

    config: MultiTaskConfig

    def forward_heads(self, tasks: list[str] | None = None, **encoder_inputs: torch.Tensor) -> dict[str, ModelOutput]:
        """Run the encoder once and every head in ``tasks`` on its output."""
        ...


class MultiTaskPipeline:
    """Run the heads of a :class:`MultiTaskModel` on texts, sharing the encoder pass between tasks.

    Args:
        model: a multi-task model or another :class:`HeadRunner` (e.g. an ONNX Runtime session), or the directory
            (or Hub id) of a saved PyTorch model, whose tokenizer is used too.
        tokenizer: the tokenizer, when ``model`` is a model object.
        device: where a PyTorch model runs (``"cpu"``, ``"cuda"``, ``"cuda:1"`` …); default: GPU when available.
            Other runners take CPU tensors and place the work themselves.
        batch_size: windows encoded together (sorted by length, so little padding).
        stride: for texts longer than a task's ``max_length``, the tokens that consecutive windows share; token
            tasks then read every word (each word from the window where it lies farthest from an edge),
            classification tasks read the first window, as in training. Question answering uses its own
            ``doc_stride``.
    """

    def __init__(
        self,
        model: HeadRunner | str | Path,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 16,
        stride: int | None = None,
    ) -> None:
        if isinstance(model, (str, Path)):
            model, saved_tokenizer = load_saved_model(model)
            tokenizer = tokenizer or saved_tokenizer
        if tokenizer is None:
            raise ValueError("give the tokenizer with a model object (or a saved model directory instead).")
        if isinstance(model, torch.nn.Module):
            self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            model = model.eval().to(self.device)
        else:
            self.device = torch.device("cpu")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stride = stride
        self.tasks = {
            name: task_from_description(name, description, tokenizer)
            for name, description in model.config.tasks.items()
        }

    def _selected(self, tasks: Sequence[str] | None) -> list[str]:
        if tasks is None:
            return list(self.tasks)
        unknown = [task for task in tasks if task not in self.tasks]
        if unknown:
            raise InputError(f"unknown task {unknown[0]!r}; this model has {', '.join(self.tasks)}.")
        return list(dict.fromkeys(tasks))

    def predict(
        self, inputs: Sequence[InferenceInput], tasks: Sequence[str] | None = None
    ) -> list[dict[str, Prediction]]:
        """Per input, task name → :class:`Prediction`, for ``tasks`` (default: all); a task that does not answer
        an input (question answering without a question) is left out of that input's mapping."""
        inputs = list(inputs)
        check_inputs(inputs)
        encodings = {name: self.tasks[name].encode_inputs(inputs, self.stride) for name in self._selected(tasks)}
        groups: list[tuple[InferenceEncoding, list[str]]] = []
        for name, encoding in encodings.items():
            group = next((g for g in groups if g[0].same_windows(encoding)), None)
            if group is None:
                groups.append((encoding, [name]))
            else:
                group[1].append(name)
        results: list[dict[str, Prediction]] = [{} for _ in inputs]
        for encoding, names in groups:
            window_predictions = self._run_heads(encoding, names, encodings)
            for name in names:
                decoded = self.tasks[name].decode(inputs, encodings[name], window_predictions[name])
                for result, prediction in zip(results, decoded):
                    if prediction is not None:
                        result[name] = prediction
        return results

    @torch.inference_mode()
    def _run_heads(
        self, encoding: InferenceEncoding, names: list[str], encodings: dict[str, InferenceEncoding]
    ) -> dict[str, list[np.ndarray]]:
        """Every window through the encoder once and the heads of ``names``: per task, one prediction per window."""
        windows = encoding.model_inputs
        lengths = np.array([len(ids) for ids in windows.get("input_ids", [])], dtype=np.int64)
        predictions: dict[str, list[Any]] = {name: [None] * len(lengths) for name in names}
        collate = self.tasks[names[0]].collator()
        for indices in eval_batches(lengths, self.batch_size):
            batch = self._collate(collate, windows, indices)
            outputs = self.model.forward_heads(names, **batch)
            for name in names:
                task_batch = {**batch, **self._collate(collate, encodings[name].batch_columns, indices)}
                for index, prediction in zip(indices, self.tasks[name].batch_predictions(outputs[name], task_batch)):
                    predictions[name][index] = prediction
        return predictions

    def _collate(self, collate: Any, columns: dict[str, list], indices: np.ndarray) -> dict[str, torch.Tensor]:
        selected = {column: [values[i] for i in indices] for column, values in columns.items()}
        return {column: tensor.to(self.device) for column, tensor in collate(selected).items()}

    def __call__(
        self,
        texts: str | Sequence[str],
        questions: str | Sequence[str | None] | None = None,
        *,
        tasks: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Per text: ``{"text": …, task: result, …}`` for every task (or ``tasks``); a question adds the question
        answering tasks' answers. Results: entities (``entity_group``, ``score``, ``word``, ``start``, ``end``,
        ``words``) or tags per word, ``{"label", "score"}`` per classification, ``{"answer", "start", "end",
        "score"}`` per question (docs/export.md)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if questions is None or isinstance(questions, str):
            questions = [questions] * len(texts)
        if len(questions) != len(texts):
            raise InputError(f"got {len(texts)} texts but {len(questions)} questions; give one question per text.")
        inputs = [InferenceInput(text, question) for text, question in zip(texts, questions)]
        return [result_record(text, result) for text, result in zip(texts, self.predict(inputs, tasks))]


def result_record(text: str, result: dict[str, Prediction]) -> dict[str, Any]:
    """One text's results as the pipeline returns them (and the server sends them): ``{"text": …, task: output}``."""
    return {"text": text, **{name: prediction.output for name, prediction in result.items()}}
