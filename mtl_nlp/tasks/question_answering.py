"""Extractive question answering (SQuAD v1.1 and v2.0): the answer is a span of the context.

A long context is cut into overlapping windows (``max_length``/``doc_stride``); each window is one encoded row
that learns the answer's start and end token, or the [CLS] position when the answer is not inside it (or the
question has none). Predictions are searched per window among the ``n_best`` start and end tokens, mapped
back to the context by character offsets, and the best window decides each question's answer.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import Dataset, DatasetDict, Features, Sequence, Value
from transformers import PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from ..config import TaskConfig, option
from ..data.cached import map_cached
from ..errors import DataError, InputError, RecipeError
from ..evaluation.squad import score_squad, squad_report
from .base import Task, TaskEvaluation
from .inference import InferenceEncoding, InferenceInput, Prediction

logger = logging.getLogger(__name__)

SPAN_OUTPUTS = ["start", "end"]  # the head's two outputs per token, its "labels"
DEFAULT_MAX_LENGTH = 384
REPORTED_SKIPS = 10
ANSWERS_FEATURE = {"text": Sequence(Value("string")), "answer_start": Sequence(Value("int32"))}


@dataclass
class QuestionAnsweringConfig(TaskConfig):
    """An answer span in a context per question (SQuAD); with v2.0, possibly no answer."""

    question_column: str = option("Column holding the question.", default="question")
    context_column: str = option("Column holding the context the answer is taken from.", default="context")
    answers_column: str = option(
        "Column holding the answers: {text: [...], answer_start: [...]} (the Hub's squad layout) or a list of "
        "{text, answer_start} objects; answer_start counts characters of the context. Empty: no answer (v2.0).",
        default="answers",
    )
    id_column: str = option(
        "Column holding each question's id (the keys of the predictions file); when absent, the example's "
        "position in its split.",
        default="id",
    )
    max_length: int | None = option(
        "Longest window in sub-word tokens, question and special tokens included; default 384, or the "
        "tokenizer's limit when smaller.",
        default=None,
        minimum=1,
    )
    doc_stride: int = option("Context tokens that consecutive windows of a long context share.", default=128, minimum=0)
    max_answer_length: int = option("Longest predicted answer, in sub-word tokens.", default=30, minimum=1)
    n_best: int = option("Start and end candidates searched per window.", default=20, minimum=1)
    version_2_with_negative: bool = option(
        "SQuAD v2.0: questions may have no answer (empty answers), predicted when the [CLS] score beats the best "
        "span by more than null_score_diff_threshold.",
        default=False,
    )
    null_score_diff_threshold: float = option(
        "v2.0: predict no answer when the null score minus the best span's score exceeds this.", default=0.0
    )
    on_bad_example: Literal["error", "skip"] = option(
        "A bad example (answer not at its answer_start, empty context or question, question too long to leave "
        "room for context, repeated id): error stops with its file and id; skip leaves it out and counts it in "
        "the log and the reports.",
        default="error",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.labels not in (None, SPAN_OUTPUTS):
            raise RecipeError("labels: a question answering task predicts spans and takes no labels; leave it out.")


def _answer_lists(value: Any) -> dict[str, list] | None:
    """Answers given either way (a mapping of lists, or a list of mappings) as a mapping of lists; None when
    they are neither."""
    if value is None:
        return {"text": [], "answer_start": []}
    if isinstance(value, dict):
        texts, starts = value.get("text"), value.get("answer_start")
    elif isinstance(value, list) and all(isinstance(answer, dict) for answer in value):
        texts = [answer.get("text") for answer in value]
        starts = [answer.get("answer_start") for answer in value]
    else:
        return None
    if (
        not isinstance(texts, list)
        or not isinstance(starts, list)
        or len(texts) != len(starts)
        or not all(isinstance(text, str) for text in texts)
        or not all(isinstance(start, int) and not isinstance(start, bool) for start in starts)
    ):
        return None
    return {"text": texts, "answer_start": starts}


def _example_problem(
    context: Any,
    question: str,
    question_tokens: int,
    answers: dict[str, list] | None,
    context_room: int,
    doc_stride: int,
    version_2: bool,
) -> str:
    """What makes one example unusable, with what to do about it; "" when it is fine. ``context_room`` is the
    number of tokens a window has for the question and the context together."""
    if answers is None:
        return "the answers are neither {text: [...], answer_start: [...]} nor a list of {text, answer_start} objects."
    if not isinstance(context, str) or not context.strip():
        return "the context is empty or missing. Give the passage the answer is taken from."
    if not question.strip():
        return "the question is empty."
    if question_tokens + doc_stride >= context_room:
        return (
            f"the question has {question_tokens} tokens, which leaves {max(context_room - question_tokens, 0)} "
            f"tokens of context per window, not more than doc_stride {doc_stride}. Shorten the question, or raise "
            "max_length or lower doc_stride."
        )
    if not answers["text"] and not version_2:
        return "the question has no answer. For unanswerable questions (SQuAD v2.0) set version_2_with_negative: true."
    for text, start in zip(answers["text"], answers["answer_start"]):
        if not text.strip():
            return "an answer text is empty."
        if not 0 <= start <= len(context) - len(text) or context[start : start + len(text)] != text:
            found = context[max(start, 0) : max(start, 0) + len(text)]
            return f"answer {text!r} is not at answer_start {start} of the context (found {found!r}). Fix answer_start."
    return ""


def _check_examples(
    batch: dict[str, list],
    indices: list[int],
    tokenizer: Any,
    question_column: str,
    context_column: str,
    answers_column: str,
    id_column: str,
    max_length: int,
    doc_stride: int,
    version_2: bool,
) -> dict[str, list]:
    """Per example: its id as text, its answers as a mapping of lists, and its problem ("" when fine)."""
    ids = batch.get(id_column, indices)
    answers = [_answer_lists(value) for value in batch[answers_column]]
    questions = [question.lstrip() if isinstance(question, str) else "" for question in batch[question_column]]
    question_tokens = [len(tokens) for tokens in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    problems = [
        _example_problem(context, question, tokens, answer, room, doc_stride, version_2)
        for context, question, tokens, answer in zip(batch[context_column], questions, question_tokens, answers)
    ]
    empty = {"text": [], "answer_start": []}
    return {
        id_column: [str(i) for i in ids],
        answers_column: [answer or empty for answer in answers],
        "problem": problems,
    }


def answer_char_span(answers: dict[str, list]) -> tuple[int, int] | None:
    """The first answer's character span in the context, without surrounding whitespace; None when there is
    no answer. Training learns the first answer, as the SQuAD references do."""
    if not answers["text"]:
        return None
    text, start = answers["text"][0], answers["answer_start"][0]
    start += len(text) - len(text.lstrip())
    return start, start + len(text.strip())


def span_labels(
    offset_start: np.ndarray, offset_end: np.ndarray, answer: tuple[int, int] | None, cls_index: int
) -> tuple[int, int]:
    """The start and end token of a character span in one window (context tokens have offsets ≥ 0), or
    ``cls_index`` twice when the span is not wholly inside the window."""
    context = np.flatnonzero(offset_start >= 0)
    if answer is None or not context.size:
        return cls_index, cls_index
    first, last = answer
    if offset_start[context[0]] > first or offset_end[context[-1]] < last:
        return cls_index, cls_index
    start = context[offset_start[context] <= first][-1]
    end = context[offset_end[context] >= last][0]
    # An answer made only of characters the tokenizer drops covers no token.
    return (int(start), int(end)) if start <= end else (cls_index, cls_index)


def _encode_windows(
    batch: dict[str, list],
    indices: list[int],
    tokenizer: Any,
    question_column: str,
    context_column: str,
    answers_column: str,
    max_length: int,
    doc_stride: int,
) -> dict[str, list]:
    """Tokenize (question, context) pairs into overlapping windows; per window the answer's token span (or
    [CLS]), the example it comes from, its [CLS] position and the context tokens' character offsets (-1 for
    question and special tokens)."""
    questions = [question.lstrip() for question in batch[question_column]]
    encoding = tokenizer(
        questions,
        batch[context_column],
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    samples = encoding.pop("overflow_to_sample_mapping")
    offsets = encoding.pop("offset_mapping")
    names = ("start_positions", "end_positions", "example_index", "cls_index", "offset_start", "offset_end")
    columns: dict[str, list] = {name: [] for name in names}
    for window, sample in enumerate(samples):
        in_context = np.array([sequence == 1 for sequence in encoding.sequence_ids(window)])
        pairs = np.asarray(offsets[window], dtype=np.int32).reshape(-1, 2)
        offset_start = np.where(in_context, pairs[:, 0], -1).astype(np.int32)
        offset_end = np.where(in_context, pairs[:, 1], -1).astype(np.int32)
        input_ids = encoding["input_ids"][window]
        cls_index = input_ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in input_ids else 0
        start, end = span_labels(offset_start, offset_end, answer_char_span(batch[answers_column][sample]), cls_index)
        columns["start_positions"].append(start)
        columns["end_positions"].append(end)
        columns["example_index"].append(indices[sample])
        columns["cls_index"].append(cls_index)
        columns["offset_start"].append(offset_start)
        columns["offset_end"].append(offset_end)
    return {**encoding, **columns}


def best_span(
    start_logits: np.ndarray, end_logits: np.ndarray, in_context: np.ndarray, n_best: int, max_answer_length: int
) -> tuple[int, int, float] | None:
    """The highest-scoring (start, end, start + end logit) over the ``n_best`` best start and end tokens of the
    context, with start ≤ end and at most ``max_answer_length`` tokens; None when no span qualifies."""
    candidates = np.flatnonzero(in_context)
    if not candidates.size:
        return None
    starts = candidates[np.argsort(-start_logits[candidates], kind="stable")[:n_best]]
    ends = candidates[np.argsort(-end_logits[candidates], kind="stable")[:n_best]]
    length = ends[None, :] - starts[:, None] + 1
    scores = start_logits[starts][:, None] + end_logits[ends][None, :]
    scores = np.where((length >= 1) & (length <= max_answer_length), scores, -np.inf)
    row, column = np.unravel_index(np.argmax(scores), scores.shape)
    if not np.isfinite(scores[row, column]):
        return None
    return int(starts[row]), int(ends[column]), float(scores[row, column])


class QuestionAnsweringTask(Task):
    """Answer spans in a context, learnt and predicted per window, decided and scored per question."""

    type_name = "question_answering"
    config_class = QuestionAnsweringConfig
    # transformers 5 has no question-answering pipeline; the tag is still the Hub's task id.
    hub_pipeline_tag = "question-answering"
    stock_auto_class = "AutoModelForQuestionAnswering"
    target_columns = ("start_positions", "end_positions")
    target_pad_values = {}
    config: QuestionAnsweringConfig

    def __init__(self, name: str, config: TaskConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__(name, config, tokenizer)
        self.labels = list(SPAN_OUTPUTS)
        self.skipped: dict[str, list[str]] = {}

    @property
    def max_length(self) -> int:
        return self.config.max_length or min(self.tokenizer.model_max_length, DEFAULT_MAX_LENGTH)

    def _column_names(self) -> dict[str, str]:
        config = self.config
        return {
            "question_column": config.question_column,
            "context_column": config.context_column,
            "answers_column": config.answers_column,
        }

    def check(self, raw: DatasetDict) -> DatasetDict:
        config = self.config
        if config.doc_stride >= self.max_length:
            raise RecipeError(
                f"tasks.{self.name}.doc_stride: {config.doc_stride} must be less than max_length {self.max_length} "
                "(windows share doc_stride tokens of context)."
            )
        checked = {}
        for split, dataset in raw.items():
            for column in (config.question_column, config.context_column, config.answers_column):
                if column not in dataset.column_names:
                    raise DataError(
                        f"{self.split_source(split)}: no column {column!r} (columns: "
                        f"{', '.join(dataset.column_names)}). Set tasks.{self.name}.question_column / "
                        "context_column / answers_column, or data.format: squad for files in the SQuAD layout."
                    )
            features = Features(
                {
                    **dataset.features,
                    config.id_column: Value("string"),
                    config.answers_column: ANSWERS_FEATURE,
                    "problem": Value("string"),
                }
            )
            dataset = map_cached(
                dataset,
                _check_examples,
                batched=True,
                with_indices=True,
                features=features,
                fn_kwargs={
                    "tokenizer": self.tokenizer,
                    **self._column_names(),
                    "id_column": config.id_column,
                    "max_length": self.max_length,
                    "doc_stride": config.doc_stride,
                    "version_2": config.version_2_with_negative,
                },
                desc=f"Checking {self.name}/{split}",
            )
            checked[split] = self._drop_bad_examples(split, dataset)
        return DatasetDict(checked)

    def _drop_bad_examples(self, split: str, dataset: Dataset) -> Dataset:
        """Raise on the first bad example, or (``on_bad_example: skip``) leave the bad ones out and record them."""
        problems = list(dataset["problem"])
        first_use: dict[str, int] = {}
        for index, example_id in enumerate(dataset[self.config.id_column]):
            if example_id in first_use and not problems[index]:
                problems[index] = f"the id was already used by example {first_use[example_id]}. Give unique ids."
            first_use.setdefault(example_id, index)
        bad = [index for index, problem in enumerate(problems) if problem]
        dataset = dataset.remove_columns("problem")
        if not bad:
            return dataset
        ids = dataset[self.config.id_column]
        located = [f"{self.row_location(split, i)}, question id {ids[i]!r}: {problems[i]}" for i in bad]
        if self.config.on_bad_example == "error":
            raise DataError(f"{located[0]} Or set tasks.{self.name}.on_bad_example: skip to leave such examples out.")
        if len(bad) == len(dataset):
            raise DataError(f"{self.split_source(split)}: all {len(bad)} examples are bad, e.g. {located[0]}")
        logger.warning(
            "%s/%s: skipped %d of %d examples as bad (on_bad_example: skip); the first: %s",
            self.name,
            split,
            len(bad),
            len(dataset),
            located[0],
        )
        self.skipped[split] = located
        keep = np.setdiff1d(np.arange(len(dataset)), bad)
        return dataset.select(keep)

    def encode(self, dataset: Dataset) -> Dataset:
        return map_cached(
            dataset,
            _encode_windows,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            fn_kwargs={
                "tokenizer": self.tokenizer,
                **self._column_names(),
                "max_length": self.max_length,
                "doc_stride": self.config.doc_stride,
            },
            desc=f"Tokenizing {self.name} into windows",
        )

    def distillation_refusal(self) -> str | None:
        return None

    def teacher_labels(self) -> list[str] | None:
        return None  # the outputs are positions; a stock checkpoint's two output names are arbitrary

    def distillation_units(
        self, output: ModelOutput, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two units per window, the start and the end, each a distribution over the window's (unpadded) tokens."""
        logits = torch.stack([output.start_logits, output.end_logits], dim=1)
        return logits, batch["attention_mask"].bool().unsqueeze(1).expand_as(logits)

    def batch_predictions(self, output: ModelOutput, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        """Per window, its start and end logits over its real (unpadded) tokens: an array of shape (2, tokens)."""
        logits = torch.stack([output.start_logits, output.end_logits], dim=1).float().cpu().numpy()
        lengths = batch["attention_mask"].sum(dim=1).cpu().numpy()
        return [row[:, :length] for row, length in zip(logits, lengths)]

    def _ragged(self, split: str, column: str) -> list[np.ndarray]:
        """A list column of the encoded split as one array per row, read from Arrow without decoding rows."""
        values = self.encoded[split].data.column(column)
        flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
        return np.split(flat, np.cumsum(pc.list_value_length(values).to_numpy(zero_copy_only=False))[:-1])

    def predicted_spans(self, split: str, predictions: list[np.ndarray]) -> list[dict[str, Any]]:
        """Per question of the split, the predicted answer (see :meth:`spans`)."""
        encoded = self.encoded[split]
        windows = {
            "example_index": encoded["example_index"],
            "cls_index": encoded["cls_index"],
            "offset_start": self._ragged(split, "offset_start"),
            "offset_end": self._ragged(split, "offset_end"),
        }
        return self.spans(self.raw[split][self.config.context_column], windows, predictions)

    def spans(
        self, contexts: list[str], windows: dict[str, list], predictions: list[np.ndarray]
    ) -> list[dict[str, Any]]:
        """Per context, the predicted answer: its text ("" for no answer), character ``start`` and ``end`` in the
        context, and ``score``, the probability of its start and end tokens within its window.

        ``windows`` holds each window's ``example_index``, ``cls_index`` and context offsets (``offset_start``,
        ``offset_end``: -1 outside the context). The best span over all of a question's windows wins; with v2.0
        there is no answer when the lowest [CLS] score beats it by more than the threshold.
        """
        config = self.config
        best_scores = np.full(len(contexts), -np.inf)
        null_scores = np.full(len(contexts), np.inf)
        spans: list[dict[str, Any]] = [{"answer": "", "start": 0, "end": 0, "score": 0.0} for _ in contexts]
        for logits, example, cls_index, offset_start, offset_end in zip(
            predictions, windows["example_index"], windows["cls_index"], windows["offset_start"], windows["offset_end"]
        ):
            offset_start, offset_end = np.asarray(offset_start), np.asarray(offset_end)
            null_scores[example] = min(null_scores[example], logits[0, cls_index] + logits[1, cls_index])
            span = best_span(logits[0], logits[1], offset_start >= 0, config.n_best, config.max_answer_length)
            if span is not None and span[2] > best_scores[example]:
                start, end, best_scores[example] = span
                log_normaliser = np.logaddexp.reduce(logits, axis=1).sum()
                char_start, char_end = int(offset_start[start]), int(offset_end[end])
                spans[example] = {
                    "answer": contexts[example][char_start:char_end],
                    "start": char_start,
                    "end": char_end,
                    "score": float(np.exp(best_scores[example] - log_normaliser)),
                }
        if config.version_2_with_negative:
            no_answer = null_scores - best_scores > config.null_score_diff_threshold
            spans = [
                {"answer": "", "start": 0, "end": 0, "score": 0.0} if none else span
                for span, none in zip(spans, no_answer)
            ]
        return spans

    def encode_inputs(self, inputs: list[InferenceInput], stride: int | None = None) -> InferenceEncoding:
        """(question, text) pairs in windows of ``max_length`` sharing ``doc_stride`` tokens, as in training (the
        task's own stride; ``stride`` is for tasks that read a text alone). Inputs without a question get none."""
        asked = [number for number, given in enumerate(inputs) if given.question is not None]
        blank = next((number for number in asked if not inputs[number].question.strip()), None)
        if blank is not None:
            raise InputError(f"input {blank}: the question is empty; give a question, or none to skip {self.name}.")
        if not asked:
            return InferenceEncoding({}, [], {"cls_index": [], "offset_start": [], "offset_end": []})
        config = self.config
        batch = {
            config.question_column: [inputs[number].question for number in asked],
            config.context_column: [inputs[number].text for number in asked],
            config.answers_column: [{"text": [], "answer_start": []}] * len(asked),
        }
        windows = _encode_windows(
            batch,
            asked,
            self.tokenizer,
            **self._column_names(),
            max_length=self.max_length,
            doc_stride=config.doc_stride,
        )
        model_inputs = {name: windows[name] for name in self.tokenizer.model_input_names if name in windows}
        context = {name: windows[name] for name in ("cls_index", "offset_start", "offset_end")}
        return InferenceEncoding(model_inputs, windows["example_index"], context)

    def decode(
        self, inputs: list[InferenceInput], encoding: InferenceEncoding, predictions: list[np.ndarray]
    ) -> list[Prediction | None]:
        windows = {"example_index": encoding.example_index, **encoding.context}
        spans = self.spans([given.text for given in inputs], windows, predictions)
        answered = {example for example in encoding.example_index}
        return [Prediction(span) if number in answered else None for number, span in enumerate(spans)]

    def answers(self, split: str, predictions: list[np.ndarray]) -> list[str]:
        """Per question of the split, the predicted answer text ("" for no answer)."""
        return [span["answer"] for span in self.predicted_spans(split, predictions)]

    def evaluate(self, split: str, predictions: list[np.ndarray]) -> TaskEvaluation:
        config, raw = self.config, self.raw[split]
        predicted = self.answers(split, predictions)
        references = [answers["text"] for answers in raw[config.answers_column]]
        version = "v2.0" if config.version_2_with_negative else "v1.1"
        metrics = score_squad(references, predicted, version_2=config.version_2_with_negative)
        skipped = self.skipped.get(split, [])
        metrics |= {"version": version, "windows": len(self.encoded[split]), "skipped_examples": len(skipped)}

        def render() -> tuple[str, str]:
            settings = f"max_length {self.max_length}, doc_stride {config.doc_stride}"
            if config.version_2_with_negative:
                settings += f", null_score_diff_threshold {config.null_score_diff_threshold}"
            title = (
                f"{self.name} / {split}: SQuAD {version} scores, exact match and token F1 after the official "
                f"normalisation, as fractions (the official script prints them × 100)\n"
                f"{len(raw)} questions in {len(self.encoded[split])} windows ({settings}); "
                f"{len(skipped)} bad examples skipped"
            )
            report = squad_report(metrics, title)
            if skipped:
                shown = skipped[:REPORTED_SKIPS]
                more = f"\n… and {len(skipped) - len(shown)} more" if len(skipped) > len(shown) else ""
                report += "\nSkipped (on_bad_example: skip):\n" + "\n".join(shown) + more + "\n"
            answers = dict(zip(raw[config.id_column], predicted))
            return report, json.dumps(answers, ensure_ascii=False, indent=2) + "\n"

        return TaskEvaluation(self.name, split, metrics, "f1", render, ".json")
