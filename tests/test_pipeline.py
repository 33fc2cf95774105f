"""MultiTaskPipeline: one encoder pass, and results equal to the stock transformers pipelines per task."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import pipeline

from mtl_nlp import MultiTaskModel
from mtl_nlp.config import DataConfig
from mtl_nlp.pipeline import MultiTaskPipeline
from mtl_nlp.tasks import QuestionAnsweringConfig

TEXTS = [
    "john smith flew to paris with the acme team",
    "the film was wonderful and funny",
    "a dull , slow and predictable story set in berlin",
]
TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]},
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
    "qa": {
        "type": "question_answering",
        "id2label": ["start", "end"],
        "task_config": dataclasses.asdict(
            QuestionAnsweringConfig(
                type="question_answering", data=DataConfig(train="train.json"), max_length=64, doc_stride=16
            )
        ),
    },
}


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS).eval()
    # Sharpen the random token head so that it predicts entities, not only O.
    with torch.no_grad():
        model.heads["ner"].classifier.weight.mul_(40)
    return model


def assert_same_entities(ours, stock):
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in ours] == [
        (e["entity_group"], e["word"], e["start"], e["end"]) for e in stock
    ]
    assert [float(e["score"]) for e in ours] == pytest.approx([float(e["score"]) for e in stock], abs=1e-5)


def test_results_equal_the_stock_pipelines(model, tiny_tokenizer):
    results = MultiTaskPipeline(model, tiny_tokenizer, device="cpu", batch_size=2)(TEXTS)
    ner = pipeline(
        "token-classification", model=model.task_model("ner"), tokenizer=tiny_tokenizer, aggregation_strategy="simple"
    )
    sentiment = pipeline("text-classification", model=model.task_model("sentiment"), tokenizer=tiny_tokenizer)
    assert sum(len(result["ner"]) for result in results) > 0
    for text, result in zip(TEXTS, results):
        assert result["text"] == text
        assert_same_entities(result["ner"], ner(text))
        expected = sentiment(text)[0]
        assert result["sentiment"]["label"] == expected["label"]
        assert result["sentiment"]["score"] == pytest.approx(expected["score"], abs=1e-5)
        for entity in result["ner"]:
            # Character offsets point into the text; "word" is the decoded sub-words ("##n", "dull,").
            assert text[entity["start"] : entity["end"]].replace(" ", "") == entity["word"].replace("##", "").replace(
                " ", ""
            )
        assert "qa" not in result


def test_the_encoder_runs_once_per_batch(model, tiny_tokenizer, monkeypatch):
    calls = []
    hook = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        MultiTaskPipeline(model, tiny_tokenizer, device="cpu", batch_size=2)(TEXTS)
    finally:
        hook.remove()
    assert len(calls) == 2  # three texts in batches of two, two text heads


def test_long_texts_are_read_in_overlapping_windows(model, tiny_tokenizer):
    long_text = " ".join(["john smith flew to paris"] * 30)  # beyond the tiny tokenizer's 64 tokens
    [result] = MultiTaskPipeline(model, tiny_tokenizer, device="cpu", stride=16)(long_text)
    stock = pipeline(
        "token-classification",
        model=model.task_model("ner"),
        tokenizer=tiny_tokenizer,
        aggregation_strategy="simple",
        stride=16,
    )
    assert_same_entities(result["ner"], stock(long_text))
    assert max(entity["end"] for entity in result["ner"]) > len(long_text) // 2


def brute_force_answer(model, tokenizer, question, context, max_answer_length=30):
    """The best span by trying every (start, end) pair of context tokens with the stock QA model."""
    encoding = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoding.pop("offset_mapping")[0].tolist()
    output = model.task_model("qa")(**encoding)
    start_logits, end_logits = output.start_logits[0].tolist(), output.end_logits[0].tolist()
    in_context = [i for i, sequence in enumerate(encoding.sequence_ids(0)) if sequence == 1]
    best = max(
        (start_logits[s] + end_logits[e], s, e)
        for s in in_context
        for e in in_context
        if s <= e < s + max_answer_length
    )
    return context[offsets[best[1]][0] : offsets[best[2]][1]]


def test_a_question_adds_the_best_answer_span_with_offsets(model, tiny_tokenizer):
    question = "who flew to paris ?"
    results = MultiTaskPipeline(model, tiny_tokenizer, device="cpu")(TEXTS[:2], questions=[question, None])
    answer = results[0]["qa"]
    assert answer["answer"] == brute_force_answer(model, tiny_tokenizer, question, TEXTS[0])
    assert TEXTS[0][answer["start"] : answer["end"]] == answer["answer"]
    assert 0.0 < answer["score"] <= 1.0
    assert "qa" not in results[1] and "sentiment" in results[1]
