"""MultiTaskModel: stock heads on a shared encoder, one-pass inference, save and reload."""

from __future__ import annotations

import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from mtl_nlp.modeling import MultiTaskModel

TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER"]},
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
}


def inputs(tokenizer):
    return tokenizer(["Angela Merkel visited Munich", "The film was wonderful"], padding=True, return_tensors="pt")


def test_heads_are_the_stock_heads_without_an_encoder_of_their_own(tiny_model_dir):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS)
    assert isinstance(model.heads["ner"], AutoModelForTokenClassification._model_mapping[type(model.encoder.config)])
    assert sorted(model.heads["sentiment"].state_dict()) == ["classifier.bias", "classifier.weight"]
    assert model.heads["sentiment"].config.id2label == {0: "negative", 1: "positive"}
    encoder_parameters = sum(p.numel() for p in model.encoder.parameters())
    assert sum(p.numel() for p in model.parameters()) == encoder_parameters + 32 * 3 + 3 + 32 * 2 + 2


def test_task_output_equals_the_stock_model_with_the_same_weights(tiny_model_dir, tiny_tokenizer):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS).eval()
    batch = inputs(tiny_tokenizer)
    stock = AutoModelForSequenceClassification.from_config(model.heads["sentiment"].config).eval()
    state = {f"bert.{k}": v for k, v in model.encoder.state_dict().items()} | model.heads["sentiment"].state_dict()
    stock.load_state_dict(state)
    torch.testing.assert_close(model(task="sentiment", **batch).logits, stock(**batch).logits, rtol=0, atol=0)


def test_forward_heads_runs_the_encoder_once(tiny_model_dir, tiny_tokenizer):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS).eval()
    calls = []
    model.encoder.register_forward_hook(lambda *_: calls.append(1))
    batch = inputs(tiny_tokenizer)
    outputs = model.forward_heads(**batch)
    assert len(calls) == 1
    torch.testing.assert_close(outputs["ner"].logits, model(task="ner", **batch).logits)
    assert outputs["sentiment"].logits.shape == (2, 2)


def test_save_and_reload_give_identical_logits(tiny_model_dir, tiny_tokenizer, tmp_path):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS).eval()
    batch = inputs(tiny_tokenizer)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = MultiTaskModel.from_pretrained(tmp_path).eval()
    for task in TASKS:
        assert torch.equal(model(task=task, **batch).logits, reloaded(task=task, **batch).logits)
    assert reloaded.config.tasks["ner"]["id2label"] == ["O", "B-PER", "I-PER"]
