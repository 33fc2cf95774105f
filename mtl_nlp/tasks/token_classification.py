"""Token classification (NER, chunking, POS): one tag per word, scored at word level on the original tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.compute as pc
import torch
from datasets import ClassLabel, Dataset, DatasetDict, List, Value
from transformers.utils import ModelOutput

from ..config import TaskConfig, option
from ..data.cached import map_cached
from ..errors import DataError, RecipeError
from ..evaluation.schemes import PREFIXES, iob1_to_iob2, iob2_to_iob1
from ..modeling.crf import viterbi
from ..modeling.heads import CRF_KIND, pack_words
from .base import Task, TaskEvaluation
from .inference import InferenceEncoding, InferenceInput, Prediction


@dataclass
class TokenClassificationConfig(TaskConfig):
    """A tag per word: NER, chunking, part-of-speech."""

    tokens_column: str = option("Column holding each sentence's words.", default="tokens")
    tags_column: str | int = option(
        "Column holding the tags: a name, or an index into data.conll_columns for CoNLL files.", default="ner"
    )
    tag_scheme: Literal["iob2", "iob1", "iobes", "bilou", "none"] = option(
        "Tagging scheme of the files: iob2, iob1 (converted to iob2 on load, predictions written back in iob1), "
        "iobes, bilou; none: plain tags (e.g. POS) scored per token.",
        default="iob2",
    )
    evaluation_mode: Literal["conlleval", "strict"] = option(
        "conlleval: entity counting of the conlleval script (seqeval default mode); strict: seqeval strict mode "
        "with the task's scheme (an entity must start with B-/S-/U-).",
        default="conlleval",
    )
    label_all_subtokens: bool = option(
        "Train on every sub-token of a word (continuations of B-X learn I-X), not only on the first.",
        default=False,
    )
    crf: bool = option(
        "Decode with a linear-chain CRF over the words' emissions (learned transition scores, the tag scheme's "
        "forbidden moves never decoded) instead of each word's own best tag.",
        default=False,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crf and self.label_all_subtokens:
            raise RecipeError(
                "crf: a CRF reads one emission per word (its first sub-token); set label_all_subtokens: false."
            )


def tokenize_words(tokenizer: Any, words: list[list[str]], max_length: int, stride: int | None = None) -> Any:
    """Tokenize sentences given as words, as training and inference both do: truncated at ``max_length``, or with
    ``stride`` cut into windows that share ``stride`` tokens (``overflow_to_sample_mapping`` names each window's
    sentence)."""
    return tokenizer(
        words,
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        stride=stride or 0,
        return_overflowing_tokens=stride is not None,
    )


def word_ids_of(encoding: Any, window: int) -> np.ndarray:
    """The word of every sub-token of one encoded window (-1: a special token)."""
    return np.array([-1 if w is None else w for w in encoding.word_ids(window)], dtype=np.int64)


def first_subtokens(word_ids: np.ndarray) -> np.ndarray:
    """Whether each sub-token is the first of its word within the window."""
    return (word_ids >= 0) & (word_ids != np.concatenate(([-2], word_ids[:-1])))


def _encode_words(
    batch: dict[str, list],
    tokenizer: Any,
    tokens_column: str,
    tags_column: str,
    label2id: dict[str, int],
    continuation: list[int],
    max_length: int,
    label_all_subtokens: bool,
) -> dict[str, list]:
    """Tokenize pre-split words; the first sub-token of each word carries its tag, the others -100 (or the
    continuation tag when ``label_all_subtokens``). ``word_ids`` maps every sub-token to its word (-1: none),
    ``word_starts`` marks each word's first sub-token (what a CRF reads); ``words_without_subtokens`` counts the
    sentence's words cut at ``max_length`` or dropped by the tokenizer."""
    encoding = tokenize_words(tokenizer, batch[tokens_column], max_length)
    labels, word_ids_column, starts_column, without_subtokens = [], [], [], []
    for row, tags in enumerate(batch[tags_column]):
        word_ids = word_ids_of(encoding, row)
        tag_ids = np.array([label2id[tag] for tag in tags], dtype=np.int64)
        row_labels = np.full(len(word_ids), -100, dtype=np.int64)
        first = first_subtokens(word_ids)
        row_labels[first] = tag_ids[word_ids[first]]
        if label_all_subtokens:
            rest = (word_ids >= 0) & ~first
            row_labels[rest] = np.asarray(continuation)[tag_ids[word_ids[rest]]]
        labels.append(row_labels.tolist())
        word_ids_column.append(word_ids.tolist())
        starts_column.append(first.astype(np.int64).tolist())
        without_subtokens.append(len(tags) - int(first.sum()))
    return {
        **encoding,
        "labels": labels,
        "word_ids": word_ids_column,
        "word_starts": starts_column,
        "words_without_subtokens": without_subtokens,
    }


def _iob1_to_iob2_column(batch: dict[str, list], column: str) -> dict[str, list]:
    return {column: [iob1_to_iob2(tags) for tags in batch[column]]}


def window_word_starts(word_ids: np.ndarray, previous_words: set[int]) -> np.ndarray:
    """Which sub-tokens of a window are the first sub-token of their word: not a window that opens inside a word
    the previous window of the sentence (``previous_words``) started."""
    first = first_subtokens(word_ids)
    content = np.flatnonzero(word_ids >= 0)
    if content.size and word_ids[content[0]] in previous_words:
        first[content[0]] = False
    return first


def word_predictions(
    windows: list[tuple[np.ndarray, np.ndarray]], num_words: int, fallback: int
) -> tuple[np.ndarray, np.ndarray]:
    """One label id and its probability per word, from the windows that read the sentence: ``(word_ids,
    prediction)`` pairs, ``prediction`` holding each sub-token's label id and probability (shape 2 × tokens).

    A word's prediction is that of its first sub-token, the one training labels (with ``label_all_subtokens``
    the first too: it is the one every word has). Where windows overlap, the window in which the word's first
    sub-token lies farthest from a window edge wins (the earlier window on a tie); a word that starts in an
    earlier window is not read from a later window's opening continuation. Words without a sub-token in any
    window (dropped by the tokenizer, cut by truncation) get ``fallback`` with probability 0.
    """
    labels = np.full(num_words, fallback, dtype=np.int64)
    probabilities = np.zeros(num_words, dtype=np.float32)
    margin = np.full(num_words, -1, dtype=np.int64)
    seen: set[int] = set()
    for word_ids, prediction in windows:
        word_ids = word_ids[: prediction.shape[1]]
        content = np.flatnonzero(word_ids >= 0)
        if not content.size:
            continue
        positions = np.flatnonzero(window_word_starts(word_ids, seen))
        words = word_ids[positions]
        distance = np.minimum(positions - content[0], content[-1] - positions)
        better = distance > margin[words]
        words, positions = words[better], positions[better]
        labels[words] = prediction[0, positions].astype(np.int64)
        probabilities[words] = prediction[1, positions]
        margin[words] = distance[better]
        seen = set(word_ids[content].tolist())
    return labels, probabilities


class TokenClassificationTask(Task):
    """Tags per word, aligned to sub-words for training and decoded back to words for scoring."""

    type_name = "token_classification"
    config_class = TokenClassificationConfig
    hub_pipeline_tag = "token-classification"
    stock_auto_class = "AutoModelForTokenClassification"
    tags_words = True
    target_pad_values = {"labels": -100, "word_starts": 0}
    config: TokenClassificationConfig

    @property
    def target_columns(self) -> tuple[str, ...]:
        """The head's targets: the labels, and for a CRF where each word starts."""
        return ("labels", "word_starts") if self.config.crf else ("labels",)

    def head_description(self) -> dict[str, Any]:
        if not self.config.crf:
            return super().head_description()
        return {**super().head_description(), "kind": CRF_KIND, "scheme": self.scoring_scheme}

    def distillation_refusal(self) -> str | None:
        if self.config.crf:
            return (
                "a CRF head's emissions are not a distribution over tags (the CRF scores whole tag sequences); "
                f"set tasks.{self.name}.crf: false to distil this task"
            )
        return None

    def distillation_units(
        self, output: ModelOutput, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One unit per sub-token that carries a label (each word's first; every one with ``label_all_subtokens``),
        packed to the left in order; its classes are the tags."""
        logits, counts, _ = pack_words(output.logits, batch["labels"] != -100)
        units = torch.arange(logits.shape[1], device=logits.device) < counts.unsqueeze(1)
        return logits, units.unsqueeze(2).expand_as(logits)

    @property
    def tags_column(self) -> str:
        """The name of the tag column (an index resolves against the CoNLL column names)."""
        column = self.config.tags_column
        if isinstance(column, int):
            names = self.config.data.conll_columns
            if not -len(names) <= column < len(names):
                raise DataError(f"tags_column {column} is out of range for data.conll_columns {names}.")
            return names[column]
        return column

    def _where(self, split: str, dataset: Dataset, example: int, token: int | None = None) -> str:
        if "line" in dataset.column_names:
            return f"{self.split_source(split)}:{dataset[example]['line'] + (token or 0)}"
        return f"{self.split_source(split)}: example {example}" + ("" if token is None else f", token {token}")

    def _first_occurrence(self, split: str, dataset: Dataset, bad: set[str]) -> tuple[str, str]:
        for example, tags in enumerate(dataset[self.tags_column]):
            for token, tag in enumerate(tags):
                if tag in bad:
                    return tag, self._where(split, dataset, example, token)
        raise AssertionError("unreachable: the tag was found in the column before")

    def check(self, raw: DatasetDict) -> DatasetDict:
        checked = {}
        for split, dataset in raw.items():
            for column in (self.config.tokens_column, self.tags_column):
                if column not in dataset.column_names:
                    raise DataError(
                        f"{self.split_source(split)}: no column {column!r} "
                        f"(columns: {', '.join(dataset.column_names)}). "
                        f"Set tasks.{self.name}.tokens_column / tags_column, or data.conll_columns for CoNLL files."
                    )
            self._check_tag_counts(split, dataset)
            checked[split] = self._tags_as_strings(dataset)
            if self.config.tag_scheme == "iob1":
                checked[split] = map_cached(
                    checked[split],
                    _iob1_to_iob2_column,
                    batched=True,
                    fn_kwargs={"column": self.tags_column},
                    desc=f"Converting {self.name}/{split} from IOB1 to IOB2",
                )
        train_tags = set(chain.from_iterable(checked["train"][self.tags_column])) if "train" in checked else set()
        scheme = self.config.tag_scheme
        scheme_tag = re.compile(rf"O|[{PREFIXES[scheme]}]-\S+") if scheme != "none" else None
        for split, dataset in checked.items():
            seen = set(chain.from_iterable(dataset[self.tags_column]))
            if scheme_tag:
                malformed = {tag for tag in seen if not scheme_tag.fullmatch(tag)}
                if malformed:
                    tag, where = self._first_occurrence(split, dataset, malformed)
                    allowed = ", ".join(f"{prefix}-TYPE" for prefix in PREFIXES[scheme])
                    raise DataError(
                        f"{where}: tag {tag!r} is not a tag of the {scheme.upper()} scheme (O, {allowed}). Fix the "
                        f"tag, or set tasks.{self.name}.tag_scheme to the file's scheme (none for tags that are not "
                        "entity tags, e.g. POS)."
                    )
            known = set(self.labels) if self.labels else train_tags
            unknown = seen - known
            if unknown:
                tag, where = self._first_occurrence(split, dataset, unknown)
                origin = "the task's labels" if self.labels else "the training data"
                raise DataError(
                    f"{where}: tag {tag!r} does not occur in {origin}. Add it to tasks.{self.name}.labels "
                    "(with enough training examples), or fix the tag."
                )
        if self.labels is None:
            entity_order = self.config.tag_scheme != "none"
            self.labels = sorted(train_tags, key=lambda tag: (tag != "O", tag[2:], tag) if entity_order else tag)
        return DatasetDict(checked)

    def _check_tag_counts(self, split: str, dataset: Dataset) -> None:
        """Every example needs one tag per token (CoNLL files have it by construction, JSON files may not)."""
        columns = dataset.with_format("arrow")  # lengths compared in Arrow: no rows are decoded
        tokens, tags = (pc.list_value_length(columns[name]) for name in (self.config.tokens_column, self.tags_column))
        example = pc.index(pc.fill_null(pc.equal(tokens, tags), False), False).as_py()
        if example >= 0:
            counts = [length.as_py() for length in (tokens[example], tags[example])]
            raise DataError(
                f"{self._where(split, dataset, example)}: {counts[0] or 'no'} tokens but {counts[1] or 'no'} tags. "
                f"Give exactly one tag per token (columns {self.config.tokens_column!r} and {self.tags_column!r})."
            )

    def _tags_as_strings(self, dataset: Dataset) -> Dataset:
        """Hub datasets store tags as ``ClassLabel`` ids: turn them into their names."""
        feature = dataset.features[self.tags_column]
        inner = getattr(feature, "feature", None)
        if not isinstance(inner, ClassLabel):
            return dataset
        names, column = inner.names, self.tags_column
        if self.labels is None:
            self.labels = list(names)
        features = dataset.features.copy()
        features[column] = List(Value("string"))  # else map encodes the names back into ClassLabel ids
        return dataset.map(
            lambda batch: {column: [[names[i] for i in row] for row in batch[column]]}, batched=True, features=features
        )

    def _continuation_ids(self) -> list[int]:
        """For each label, the label its word's later sub-tokens learn: I-X for B-X when I-X exists."""
        label2id = {label: i for i, label in enumerate(self.labels)}
        return [
            label2id.get("I-" + label[2:], i) if label.startswith("B-") else i for i, label in enumerate(self.labels)
        ]

    def encode(self, dataset: Dataset) -> Dataset:
        return map_cached(
            dataset,
            _encode_words,
            batched=True,
            remove_columns=dataset.column_names,
            fn_kwargs={
                "tokenizer": self.tokenizer,
                "tokens_column": self.config.tokens_column,
                "tags_column": self.tags_column,
                "label2id": {label: i for i, label in enumerate(self.labels)},
                "continuation": self._continuation_ids(),
                "max_length": self.max_length,
                "label_all_subtokens": self.config.label_all_subtokens,
            },
            desc=f"Tokenizing {self.name}",
        )

    def plot(self, evaluation: TaskEvaluation, directory: Path) -> list[Path]:
        if "per_type" not in evaluation.metrics:
            return []
        from ..evaluation.plots import plot_entity_f1  # on use: see mtl_nlp.evaluation

        path = directory / f"{self.name}.{evaluation.split}.entity_f1.png"
        title = f"{self.name} / {evaluation.split}: F1 per entity type"
        return [plot_entity_f1(evaluation.metrics["per_type"], path, title)]

    def batch_predictions(self, output: ModelOutput, batch: dict[str, torch.Tensor]) -> list[np.ndarray]:
        """Per example, each real sub-token's predicted label id and its probability (shape 2 × tokens).

        With a CRF, the words' tags are the Viterbi path over their first sub-tokens' emissions (the other
        sub-tokens keep their own best tag, which no decoder reads) and the probability is the emission softmax's
        for the chosen tag."""
        probabilities = output.logits.float().softmax(dim=-1)
        predicted = probabilities.argmax(dim=-1)
        if getattr(output, "transitions", None) is not None:
            predicted = self._viterbi(output, batch["word_starts"].bool(), predicted)
        chosen = probabilities.gather(2, predicted.unsqueeze(2)).squeeze(2)
        stacked = torch.stack([predicted.float(), chosen], dim=1).cpu().numpy()
        lengths = batch["attention_mask"].sum(dim=1).cpu().numpy()
        return [row[:, :length] for row, length in zip(stacked, lengths)]

    @staticmethod
    def _viterbi(output: ModelOutput, word_starts: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """The sub-token predictions with each word's first sub-token set to the CRF's best path."""
        emissions, lengths, order = pack_words(output.logits.float(), word_starts)
        path = viterbi(emissions, lengths, output.start_transitions, output.transitions, output.end_transitions)
        valid = path >= 0
        rows = torch.arange(len(path), device=path.device).unsqueeze(1).expand_as(path)
        predicted = predicted.clone()
        predicted[rows[valid], order[valid]] = path[valid]
        return predicted

    @property
    def fallback_label(self) -> str:
        """The prediction for words without a sub-token: O, or the first label for plain tag sets."""
        return "O" if "O" in self.labels else self.labels[0]

    def _word_labels(self, windows: list[tuple[np.ndarray, np.ndarray]], num_words: int) -> tuple[list[str], list]:
        labels, probabilities = word_predictions(windows, num_words, self.labels.index(self.fallback_label))
        return [self.labels[i] for i in labels], probabilities.tolist()

    def predicted_tags(self, split: str, predictions: list[np.ndarray]) -> list[list[str]]:
        """Per sentence of a split, the predicted tag of every original word (the fallback label for words
        without a sub-token, counted by :meth:`truncation_counts`)."""
        sentences = []
        word_ids_column = self.encoded[split]["word_ids"]
        for words, word_ids, predicted in zip(self.raw[split][self.config.tokens_column], word_ids_column, predictions):
            sentences.append(self._word_labels([(np.asarray(word_ids), predicted)], len(words))[0])
        return sentences

    def file_tags(self, tags: list[str]) -> list[str]:
        """Tags in the scheme of the task's files (IOB1 files get IOB1 back), as prediction files hold them."""
        return iob2_to_iob1(tags) if self.config.tag_scheme == "iob1" else tags

    @property
    def scoring_scheme(self) -> str:
        """The scheme predicted tags are read in (IOB1 is converted to IOB2 on load)."""
        return "iob2" if self.config.tag_scheme == "iob1" else self.config.tag_scheme

    def encode_inputs(self, inputs: list[InferenceInput], stride: int | None = None) -> InferenceEncoding:
        words = [given.word_spans()[0] for given in inputs]
        encoding = tokenize_words(self.tokenizer, words, self.max_length, stride)
        example_index = encoding.get("overflow_to_sample_mapping", list(range(len(inputs))))
        model_inputs = {name: encoding[name] for name in self.tokenizer.model_input_names if name in encoding}
        word_ids = [word_ids_of(encoding, window) for window in range(len(example_index))]
        starts, previous = [], (-1, set())
        for example, ids in zip(example_index, word_ids):
            seen = previous[1] if previous[0] == example else set()
            starts.append(window_word_starts(ids, seen).astype(np.int64).tolist())
            previous = (example, set(ids[ids >= 0].tolist()))
        columns = {"word_starts": starts} if self.config.crf else {}
        return InferenceEncoding(model_inputs, list(example_index), {"word_ids": word_ids}, columns)

    def decode(
        self, inputs: list[InferenceInput], encoding: InferenceEncoding, predictions: list[np.ndarray]
    ) -> list[Prediction | None]:
        from ..evaluation.sequence_labeling import entity_spans  # on use: see mtl_nlp.evaluation

        decoded = []
        for given, windows in zip(inputs, encoding.windows_of(len(inputs))):
            words, spans = given.word_spans()
            pairs = [(encoding.context["word_ids"][w], predictions[w]) for w in windows]
            tags, scores = self._word_labels(pairs, len(words))
            if self.config.tag_scheme == "none":
                output = [
                    {"entity": tag, "score": score, "index": i, "word": word, "start": start, "end": end}
                    for i, (tag, score, word, (start, end)) in enumerate(zip(tags, scores, words, spans))
                ]
            else:
                output = []
                for kind, first, last in entity_spans(
                    tags, mode=self.config.evaluation_mode, scheme=self.scoring_scheme
                ):
                    start, end = spans[first][0], spans[last - 1][1]
                    output.append(
                        {
                            "entity_group": kind,
                            "score": float(np.mean(scores[first:last])),
                            "word": given.text[start:end],
                            "start": start,
                            "end": end,
                            "words": list(range(first, last)),
                        }
                    )
            decoded.append(Prediction(output, word_tags=self.file_tags(tags)))
        return decoded

    def truncation_counts(self, split: str) -> dict[str, int]:
        return {"words_without_subtokens": sum(self.encoded[split]["words_without_subtokens"])}

    def evaluate(self, split: str, predictions: list[np.ndarray]) -> TaskEvaluation:
        from ..evaluation.classification import label_report, score_labels  # on use: see mtl_nlp.evaluation
        from ..evaluation.sequence_labeling import entity_report, score_entities

        predicted = self.predicted_tags(split, predictions)
        raw = self.raw[split]
        gold = raw[self.tags_column]
        scheme, mode = self.scoring_scheme, self.config.evaluation_mode
        if self.config.tag_scheme == "none":
            index = {label: i for i, label in enumerate(self.labels)}
            gold_ids = np.array([index[tag] for tag in chain.from_iterable(gold)])
            predicted_ids = np.array([index[tag] for tag in chain.from_iterable(predicted)])
            metrics = score_labels(gold_ids, predicted_ids, self.labels)
            headline = "accuracy"
        else:
            metrics = score_entities(gold, predicted, mode=mode, scheme=scheme)
            headline = "f1"
        metrics.update(self.truncation_counts(split))

        def render() -> tuple[str, str]:
            if self.config.tag_scheme == "none":
                report = label_report(gold_ids, predicted_ids, self.labels, f"{self.name} / {split}: per-token scores")
            else:
                report = entity_report(gold, predicted, self.name, split, mode=mode, scheme=scheme)
            if unscored := metrics["words_without_subtokens"]:
                report += (
                    f"\n{unscored} words had no sub-token (dropped by the tokenizer or cut at max_length "
                    f"{self.max_length}) and were predicted as {self.fallback_label}.\n"
                )
            lines = []
            for words, gold_tags, predicted_tags in zip(raw[self.config.tokens_column], gold, predicted):
                gold_tags, predicted_tags = self.file_tags(gold_tags), self.file_tags(predicted_tags)
                lines.extend(f"{w} {g} {p}" for w, g, p in zip(words, gold_tags, predicted_tags))
                lines.append("")
            return report, "\n".join(lines)

        return TaskEvaluation(self.name, split, metrics, headline, render, ".conll")
