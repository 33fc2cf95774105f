"""Shared fixtures: a tiny random BERT-family model with a tokenizer trained here, and small data files.

Nothing is downloaded: the environment is set offline before any Hugging Face library is imported.
"""

from __future__ import annotations

import json
import os
import random
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="mtl-nlp-datasets-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, BertTokenizerFast

FIXTURE_TEXT = """\
Angela Merkel met officials of Siemens in Munich on Tuesday .
The European Central Bank kept interest rates unchanged in Frankfurt .
Brazil beat Argentina 2-1 in the final played in Rio de Janeiro .
Microsoft said its profit rose sharply in the second quarter .
The film was a wonderful surprise , funny and moving .
The service was slow and the food arrived cold .
Shares of Toyota fell in Tokyo after the company cut its forecast .
Serena Williams won the title at Wimbledon for the seventh time .
A dull , predictable plot with wooden acting .
The hotel staff were friendly and the rooms spotless .
Reuters reported that the United Nations will meet in Geneva next week .
Exxonmobil and Chevron shares rallied as oil prices climbed .
"""


def _train_tokenizer(directory: Path) -> BertTokenizerFast:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], min_frequency=1
    )
    tokenizer.train_from_iterator(FIXTURE_TEXT.splitlines() * 3, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    fast.save_pretrained(directory)
    return fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny random BERT (2 layers, hidden 32) and its WordPiece tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _train_tokenizer(directory)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> BertTokenizerFast:
    """The tiny model's tokenizer."""
    return BertTokenizerFast.from_pretrained(tiny_model_dir)


def write_conll(path: Path, sentences: list[list[tuple[str, ...]]], docstart: bool = True) -> Path:
    """Write sentences of (token, tag…) tuples as a CoNLL file."""
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for sentence in sentences:
        lines += [" ".join(fields) for fields in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_squad(path: Path, paragraphs: list[tuple[str, list[dict]]], version: str = "1.1") -> Path:
    """Write a SQuAD-layout file: one article holding (context, questions) paragraphs. A question is a dict with
    id, question and answers as (text, answer_start) pairs, plus any other keys (e.g. is_impossible)."""
    qas = [
        [{**qa, "answers": [{"text": t, "answer_start": s} for t, s in qa.get("answers", [])]} for qa in questions]
        for _, questions in paragraphs
    ]
    article = {"title": "Test", "paragraphs": [{"context": c, "qas": q} for (c, _), q in zip(paragraphs, qas)]}
    path.write_text(json.dumps({"version": version, "data": [article]}, ensure_ascii=False), encoding="utf-8")
    return path


POSITIVE = ["wonderful", "friendly", "spotless", "funny", "moving"]
NEGATIVE = ["slow", "cold", "dull", "predictable", "wooden"]


def write_toy_sentiment(path: Path, rows: int, seed: int) -> str:
    """Texts whose label is decided by which word list they draw from: learnable in a few dozen steps."""
    rng = random.Random(seed)
    lines = ["text\tlabel"]
    for _ in range(rows):
        label = rng.choice(["positive", "negative"])
        words = rng.sample(POSITIVE if label == "positive" else NEGATIVE, 2)
        lines.append(f"the film was {words[0]} and {words[1]}\t{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)
