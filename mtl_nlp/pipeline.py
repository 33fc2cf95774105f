"""``MultiTaskPipeline``: tokenize once, run the encoder once, decode every head like the stock pipelines.

Token and text heads are decoded by the stock ``transformers`` pipeline of their type (token-classification
with ``aggregation_strategy="simple"``, text-classification), so results follow exactly the conventions users
know — entity groups with character offsets and scores, label and score — while the encoder runs once for
all of them instead of once per task. A question-answering head reads (question, text) pairs, a different
input, in windows decoded by the task's own span search (transformers 5 has no question-answering pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoTokenizer, Pipeline, PreTrainedTokenizerBase, pipeline

from .evaluation.evaluator import eval_batches
from .modeling import MultiTaskModel
from .tasks import QuestionAnsweringTask, task_from_spec

PIPELINE_TASKS = {
    "token_classification": "token-classification",
    "sequence_classification": "text-classification",
}
STOCK_OPTIONS = {"token_classification": {"aggregation_strategy": "simple"}}


class MultiTaskPipeline:
    """Run every head of a :class:`MultiTaskModel` on texts with one encoder pass per batch.

    Args:
        model: a multi-task model, or the directory of a saved one (its tokenizer is read from there too).
        tokenizer: the tokenizer, when ``model`` is a model object.
        device: where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"`` …); default: GPU when available.
        batch_size: texts encoded together.
        stride: for texts longer than the model's maximum length, overlap (in tokens) between windows; the
            token heads see every window, the classification heads the first (as with truncation).
    """

    def __init__(
        self,
        model: MultiTaskModel | str | Path,
        tokenizer: PreTrainedTokenizerBase | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 16,
        stride: int | None = None,
    ) -> None:
        if not isinstance(model, MultiTaskModel):
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            model = MultiTaskModel.from_pretrained(model)
        if tokenizer is None:
            raise ValueError("give the tokenizer with a model object (or a saved model directory instead).")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stride = stride
        self.types = {task: spec["type"] for task, spec in model.config.tasks.items()}
        self.stock: dict[str, Pipeline] = {
            task: pipeline(
                PIPELINE_TASKS[kind],
                model=model.task_model(task),
                tokenizer=tokenizer,
                device=self.device,
                **STOCK_OPTIONS.get(kind, {}),
            )
            for task, kind in self.types.items()
            if kind in PIPELINE_TASKS
        }
        self.question_tasks: dict[str, QuestionAnsweringTask] = {
            name: task_from_spec(name, spec, tokenizer)
            for name, spec in model.config.tasks.items()
            if spec["type"] == QuestionAnsweringTask.head_type
        }

    @property
    def text_tasks(self) -> list[str]:
        """Tasks that read a text alone (all but question answering)."""
        return [task for task in self.types if task not in self.question_tasks]

    def __call__(
        self, texts: str | Sequence[str], questions: str | Sequence[str | None] | None = None
    ) -> list[dict[str, Any]]:
        """Per text: ``{"text": …, task: result, …}`` for every head; a question adds the QA heads' answers."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if questions is None or isinstance(questions, str):
            questions = [questions] * len(texts)
        if len(questions) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(questions)} questions; give one question per text.")
        results = [{"text": text} for text in texts]
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            for offset, decoded in enumerate(self._text_heads(batch)):
                results[start + offset].update(decoded)
        asked = [number for number, question in enumerate(questions) if question is not None]
        for name, task in self.question_tasks.items():
            if asked:
                answers = self._answers(task, [questions[i] for i in asked], [texts[i] for i in asked])
                for number, answer in zip(asked, answers):
                    results[number][name] = answer
        return results

    @torch.inference_mode()
    def _answers(self, task: QuestionAnsweringTask, questions: list[str], contexts: list[str]) -> list[dict]:
        """The QA head's answer (text, character start/end, score) per (question, context), in windows."""
        config = task.config
        task.raw["predict"] = Dataset.from_dict(
            {
                config.question_column: questions,
                config.context_column: contexts,
                config.answers_column: [{"text": [], "answer_start": []}] * len(questions),
            }
        )
        windows = task.encode(task.raw["predict"])
        task.encoded["predict"] = windows
        inputs = windows.select_columns([c for c in self.tokenizer.model_input_names if c in windows.column_names])
        collate = task.collator()
        predictions: list = [None] * len(windows)
        for indices in eval_batches(task.lengths("predict"), self.batch_size):
            batch = {name: tensor.to(self.device) for name, tensor in collate(inputs[indices]).items()}
            output = self.model(task=task.name, **batch)
            for index, prediction in zip(indices.tolist(), task.batch_predictions(output, batch)):
                predictions[index] = prediction
        return task.predicted_spans("predict", predictions)

    @torch.inference_mode()
    def _text_heads(self, texts: list[str]) -> list[dict[str, Any]]:
        tasks = self.text_tasks
        if not tasks:
            return [{} for _ in texts]
        windows = self.tokenizer(
            texts,
            truncation=True,
            padding=True,
            return_tensors="pt",
            return_special_tokens_mask=True,
            return_offsets_mapping=True,
            return_overflowing_tokens=self.stride is not None,
            stride=self.stride or 0,
        )
        owner = windows.pop("overflow_to_sample_mapping", torch.arange(len(texts))).tolist()
        offsets = windows.pop("offset_mapping")
        special = windows.pop("special_tokens_mask")
        inputs = {name: tensor.to(self.device) for name, tensor in windows.items()}
        logits = {
            task: output.logits.float().cpu() for task, output in self.model.forward_heads(tasks, **inputs).items()
        }
        lengths = windows["attention_mask"].sum(dim=1).tolist()
        chunks_of_text: list[list[int]] = [[] for _ in texts]
        for chunk_number, text_number in enumerate(owner):
            chunks_of_text[text_number].append(chunk_number)
        decoded: list[dict[str, Any]] = [{} for _ in texts]
        for text_number, (text, chunk_numbers) in enumerate(zip(texts, chunks_of_text)):
            for task in tasks:
                stock = self.stock[task]
                if self.types[task] == "token_classification":
                    chunks = [
                        {
                            "logits": logits[task][c : c + 1, : lengths[c]],
                            "input_ids": windows["input_ids"][c : c + 1, : lengths[c]],
                            "offset_mapping": offsets[c : c + 1, : lengths[c]],
                            "special_tokens_mask": special[c : c + 1, : lengths[c]],
                            "sentence": text if i == 0 else None,
                            "is_last": i == len(chunk_numbers) - 1,
                        }
                        for i, c in enumerate(chunk_numbers)
                    ]
                    # The stock pipeline's own decoding, with the options it was built with.
                    decoded[text_number][task] = stock.postprocess(chunks, **stock._postprocess_params)
                else:
                    first = chunk_numbers[0]
                    output = {"logits": logits[task][first : first + 1]}
                    decoded[text_number][task] = stock.postprocess(output, **stock._postprocess_params)
        return decoded
