"""MultiTaskModel: stock heads on a shared encoder, one-pass inference, save and reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_ENCODER_SIZE
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertModel,
    BigBirdConfig,
    LongformerConfig,
)

from mtl_nlp.errors import ModelBuildError
from mtl_nlp.modeling import MultiTaskConfig, MultiTaskModel

TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER"]},
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
}


def inputs(tokenizer):
    return tokenizer(["Angela Merkel visited Munich", "The film was wonderful"], padding=True, return_tensors="pt")


def test_heads_are_the_stock_heads_without_an_encoder_of_their_own(tiny_model_dir):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS)
    stock_class = AutoModelForTokenClassification._model_mapping[type(model.encoder.config)]
    assert isinstance(model.heads["ner"].shell, stock_class)
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


CRF_TASK = {
    "format": 2,
    "type": "token_classification",
    "labels": ["O", "B-PER", "I-PER"],
    "head": {"kind": "crf", "auto_class": "AutoModelForTokenClassification", "scheme": "iob2"},
    "settings": {"crf": True},
}


def test_save_and_reload_give_identical_outputs(tiny_model_dir, tiny_tokenizer, tmp_path):
    tasks = {**TASKS, "tagged": CRF_TASK}
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), tasks).eval()
    with torch.no_grad():
        model.heads["tagged"].crf.transitions.normal_()
    batch = inputs(tiny_tokenizer)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    reloaded = MultiTaskModel.from_pretrained(tmp_path).eval()
    for task in tasks:
        expected, actual = model(task=task, **batch), reloaded(task=task, **batch)
        for field, value in expected.items():
            assert torch.equal(value, actual[field]), (task, field)
    # The CRF's allowed moves (built from the labels and scheme) survive loading on the meta device.
    assert reloaded.heads["tagged"].crf.allowed.tolist() == model.heads["tagged"].crf.allowed.tolist()
    assert reloaded.config.tasks["ner"]["labels"] == ["O", "B-PER", "I-PER"]


def test_the_encoder_is_built_once_and_heads_are_initialised_like_transformers(tiny_model_dir, monkeypatch):
    built = []
    original = BertModel.__init__

    def counting_init(self, *args, **kwargs):
        built.append(torch.get_default_device().type)
        original(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "__init__", counting_init)
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), {**TASKS, "qa": {"type": "question_answering"}})
    # The loaded encoder and each head's stock class are built on the meta device: no encoder weights are
    # allocated or initialised except those the checkpoint fills.
    assert built == ["meta"] * 4
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in model.encoder.parameters()) + (
        32 * 3 + 3 + 32 * 2 + 2 + 32 * 2 + 2
    )
    weight = model.heads["sentiment"].classifier.weight
    assert weight.device.type == "cpu" and abs(weight.std().item() - model.encoder.config.initializer_range) < 0.01
    assert torch.count_nonzero(model.heads["sentiment"].classifier.bias) == 0


FIXTURE = Path(__file__).parent / "fixtures" / "saved_model_format1"


def test_a_model_saved_in_format_1_loads_with_identical_outputs_and_a_format_2_description(tmp_path):
    model = MultiTaskModel.from_pretrained(FIXTURE).eval()
    expected = json.loads((FIXTURE / "expected_logits.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(FIXTURE)
    outputs = model.forward_heads(**tokenizer(expected["text"], return_tensors="pt"))
    for task in ("ner", "sentiment"):
        torch.testing.assert_close(outputs[task].logits[0], torch.tensor(expected[task]))
    ner = model.config.tasks["ner"]
    assert ner["format"] == 2 and ner["labels"] == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    assert ner["head"]["auto_class"] == "AutoModelForTokenClassification"
    assert ner["settings"]["tag_scheme"] == "iob2" and "train" not in ner["settings"]["data"]
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["tasks"]["ner"] == ner


def test_a_description_from_a_newer_format_is_refused_with_advice():
    with pytest.raises(ValueError, match="newer than this mtl-nlp reads"):
        MultiTaskConfig(encoder={}, tasks={"ner": {"format": 99, "type": "token_classification"}})


def tiny_config(config_class, **extra):
    return config_class(vocab_size=300, **TINY_ENCODER_SIZE, max_position_embeddings=128, **extra).to_dict()


@pytest.mark.parametrize(
    ("config_class", "extra", "task", "argument"),
    [
        (LongformerConfig, {"attention_window": 4}, "sequence_classification", "global_attention_mask"),
        (BigBirdConfig, {"attention_type": "original_full"}, "question_answering", "token_type_ids"),
    ],
)
def test_a_stock_head_that_makes_its_own_encoder_inputs_is_refused_when_built(config_class, extra, task, argument):
    with pytest.raises(ModelBuildError, match=rf"(?s){config_class.model_type!r} backbone passes its own {argument!r}"):
        MultiTaskModel(MultiTaskConfig(encoder=tiny_config(config_class, **extra), tasks={"t": {"type": task}}))
    # The other heads of the same backbones build.
    other = "token_classification"
    MultiTaskModel(MultiTaskConfig(encoder=tiny_config(config_class, **extra), tasks={"t": {"type": other}}))
