"""Shared fixtures: tiny random BERT, RoBERTa and DistilBERT models with tokenizers trained here; small data files.

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
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertModel,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertModel,
    DistilBertTokenizerFast,
    RobertaConfig,
    RobertaModel,
    RobertaTokenizer,
)

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


# The size of every tiny random encoder the tests build: 2 layers, hidden 32.
TINY_ENCODER_SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_ENCODER_SEED = int(os.environ.get("MTL_NLP_TEST_ENCODER_SEED", "0"))


def _save_random_encoder(model_class, config, directory: Path) -> None:
    """Save a random encoder whose weights depend on TINY_ENCODER_SEED only, not on which tests ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_ENCODER_SEED)
        model_class(config).save_pretrained(directory)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny random BERT (2 layers, hidden 32) and its WordPiece tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _train_tokenizer(directory)
    config = BertConfig(
        vocab_size=len(tokenizer),
        **TINY_ENCODER_SIZE,
        max_position_embeddings=128,
    )
    _save_random_encoder(BertModel, config, directory)
    return directory


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random RoBERTa with a byte-level BPE tokenizer trained here (RoBERTa's own tokenizer class)."""
    directory = tmp_path_factory.mktemp("tiny-roberta")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
    )
    bpe.train_from_iterator(FIXTURE_TEXT.splitlines() * 3, trainer=trainer)
    merges = [tuple(merge) for merge in json.loads(bpe.to_str())["model"]["merges"]]
    tokenizer = RobertaTokenizer(vocab=bpe.get_vocab(), merges=merges, model_max_length=64)
    tokenizer.save_pretrained(directory)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        **TINY_ENCODER_SIZE,
        max_position_embeddings=66,  # RoBERTa's positions start after the padding index
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    _save_random_encoder(RobertaModel, config, directory)
    return directory


@pytest.fixture(scope="session")
def tiny_distilbert_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random DistilBERT; its tokenizer is the BERT fixture's WordPiece as DistilBERT's class (no type ids)."""
    directory = tmp_path_factory.mktemp("tiny-distilbert")
    wordpiece = BertTokenizerFast.from_pretrained(tiny_model_dir).backend_tokenizer
    tokenizer = DistilBertTokenizerFast(tokenizer_object=wordpiece, model_max_length=64)
    tokenizer.save_pretrained(directory)
    config = DistilBertConfig(
        vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64, pad_token_id=tokenizer.pad_token_id
    )
    _save_random_encoder(DistilBertModel, config, directory)
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


def toy_recipe(directory: Path, model_dir: Path, train_rows: int = 160, eval_rows: int = 40, **sections) -> dict:
    """A two-task recipe (sample NER + toy sentiment) on the tiny model; ``sections`` add recipe sections."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "model": {"name_or_path": str(model_dir)},
        "output_dir": str(directory / "out"),
        "tasks": {
            "ner": {
                "type": "token_classification",
                "data": {
                    "train": "pkg:mtl_nlp/sample_data/ner_train.conll",
                    "validation": "pkg:mtl_nlp/sample_data/ner_dev.conll",
                    "max_train_examples": train_rows,
                    "max_eval_examples": eval_rows,
                },
                "batch_size": 16,
            },
            "sentiment": {
                "type": "sequence_classification",
                "data": {
                    "train": write_toy_sentiment(directory / "train.tsv", train_rows, seed=1),
                    "validation": write_toy_sentiment(directory / "dev.tsv", eval_rows, seed=2),
                },
                "batch_size": 16,
            },
        },
        **sections,
    }


def assert_same_logits(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding: the check for two models that hold the same weights.

    Two instances whose weights sit at different memory addresses can take different MKL vector paths (seen for
    matrix-vector products, i.e. batches of one) and differ in the last bits: measured up to 4 ulps (3.7e-9 on
    logits of 0.013). The tolerance is about a hundred ulps; one wrong weight moves the logits by over 1e-3.
    """
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-7)


def token_predictions(label_ids, probability=0.9):
    """What a token task's batch_predictions gives for one example: each sub-token's label id and probability."""
    import numpy as np

    label_ids = np.asarray(label_ids)
    return np.stack([label_ids.astype(np.float32), np.full(len(label_ids), probability, np.float32)])


def ner_sentiment_qa_tasks(ner_labels: list[str]) -> dict:
    """Short task descriptions of an NER, a sentiment and a QA head (QA windows of 64 tokens, stride 16)."""
    import dataclasses

    from mtl_nlp.config import DataConfig
    from mtl_nlp.tasks import QuestionAnsweringConfig

    qa = QuestionAnsweringConfig(
        type="question_answering", data=DataConfig(train="train.json"), max_length=64, doc_stride=16
    )
    return {
        "ner": {"type": "token_classification", "id2label": ner_labels},
        "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
        "qa": {"type": "question_answering", "id2label": ["start", "end"], "task_config": dataclasses.asdict(qa)},
    }
