"""Per-task LoRA adapters (peft): switched per task, trainable counts, save/reload, resume, merged export, DDP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import assert_same_logits, toy_recipe
from test_checkpoint import assert_same_weights, crash_while_checkpointing, small_recipe
from test_distributed import PER_DEVICE_BATCH, run_two_processes, write_recipe

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.errors import ModelBuildError, RecipeError
from mtl_nlp.export import export_task
from mtl_nlp.modeling.adapters import activate, adapter_layers

LORA = {"type": "lora", "r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query", "value"]}
TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER"], "adapter": LORA},
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"], "adapter": LORA},
    "topic": {"type": "sequence_classification", "id2label": ["sport", "business"]},
}


def batch(tokenizer):
    return tokenizer(["angela merkel visited munich", "the film was wonderful"], padding=True, return_tensors="pt")


@pytest.fixture
def model(tiny_model_dir):
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS).eval()
    with torch.no_grad():  # LoRA starts as a no-op (B = 0): give each adapter an effect
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    return model


def test_each_task_runs_with_its_own_adapter_and_tasks_without_one_with_none(model, tiny_tokenizer):
    inputs = batch(tiny_tokenizer)
    before = {task: model(task=task, **inputs).logits for task in TASKS}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B.ner" in name:
                parameter.mul_(3)
    after = {task: model(task=task, **inputs).logits for task in TASKS}
    assert not torch.allclose(before["ner"], after["ner"])
    torch.testing.assert_close(before["sentiment"], after["sentiment"])
    torch.testing.assert_close(before["topic"], after["topic"])
    with torch.no_grad():  # the adapter-free task reads the plain encoder
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.zero_()
    plain = MultiTaskModel.from_backbone(model.config.encoder["_name_or_path"], {"topic": TASKS["topic"]}).eval()
    plain.heads["topic"].load_state_dict(model.heads["topic"].state_dict())
    torch.testing.assert_close(plain(task="topic", **inputs).logits, model(task="topic", **inputs).logits)


def test_one_pass_inference_takes_one_encoder_pass_per_adapter(model, tiny_tokenizer):
    calls = []
    hook = model.encoder.register_forward_hook(lambda *_: calls.append(1))
    inputs = batch(tiny_tokenizer)
    outputs = model.forward_heads(**inputs)
    hook.remove()
    assert len(calls) == 3  # ner's adapter, sentiment's adapter, and no adapter for topic
    for task in TASKS:
        torch.testing.assert_close(outputs[task].logits, model(task=task, **inputs).logits)


def test_switching_adapters_never_changes_which_weights_train(model):
    # peft's own switch freezes the inactive adapters; the trainable set must stay fixed for DDP and the optimizer.
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert any("lora_A.sentiment" in name for name in trainable)
    layers = adapter_layers(model.encoder)
    for task in ("ner", None, "sentiment", "topic"):
        activate(model.encoder, task, layers)
        assert {name for name, parameter in model.named_parameters() if parameter.requires_grad} == trainable
        assert all(layer.active_adapters == ([task] if task in ("ner", "sentiment") else layer.active_adapters)
                   for layer in layers)  # fmt: skip
        assert all(layer.disable_adapters == (task not in ("ner", "sentiment")) for layer in layers)


def test_a_frozen_encoder_trains_only_adapters_and_heads(model):
    model.freeze_encoder()
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name or name.startswith("heads.") for name in trainable)
    counted, total = model.parameter_counts()
    assert counted == sum(p.numel() for n, p in model.named_parameters() if n in trainable) and counted < total


def test_adapters_save_reload_and_export_merged_into_the_encoder(model, tiny_tokenizer, tmp_path):
    inputs = batch(tiny_tokenizer)
    model.save_pretrained(tmp_path / "saved")
    reloaded = MultiTaskModel.from_pretrained(tmp_path / "saved").eval()
    for task in TASKS:
        assert_same_logits(reloaded(task=task, **inputs).logits, model(task=task, **inputs).logits)
    export_task(model, "ner", tmp_path / "ner", tiny_tokenizer)  # refuses unless the stock logits agree
    from transformers import AutoModelForTokenClassification

    stock = AutoModelForTokenClassification.from_pretrained(tmp_path / "ner").eval()
    assert not any("lora" in name for name in stock.state_dict())
    torch.testing.assert_close(stock(**inputs).logits, model(task="ner", **inputs).logits, rtol=1e-5, atol=1e-5)
    assert any("lora_A" in name for name, _ in model.named_parameters())  # the model itself keeps its adapters


def adapter_recipe(directory: Path, model_dir: Path, **model_settings) -> dict:
    raw = small_recipe(directory, model_dir)
    raw["tasks"]["ner"]["adapter"] = {"r": 4, "target_modules": ["query", "value"]}
    raw["model"] |= model_settings
    return raw


def test_adapters_train_and_resume_exactly(tmp_path, tiny_model_dir, monkeypatch):
    reference = train(recipe_from_dict(adapter_recipe(tmp_path / "a", tiny_model_dir)))
    trained = MultiTaskModel.from_pretrained(reference.model_dir)
    assert any(parameter.abs().sum() > 0 for name, parameter in trained.named_parameters() if "lora_B.ner" in name)
    recipe = recipe_from_dict(adapter_recipe(tmp_path / "b", tiny_model_dir))
    crash_while_checkpointing(recipe, monkeypatch)
    assert_same_weights(reference.model_dir, train(recipe, resume=True).model_dir)


def test_two_processes_with_task_layers_and_an_adapter_hold_identical_weights(tmp_path, tiny_model_dir):
    path = write_recipe(tmp_path, tiny_model_dir, PER_DEVICE_BATCH)
    raw = yaml.safe_load(path.read_text())
    raw["model"]["sharing"] = {"task_layers": 1}
    raw["tasks"]["ner"]["adapter"] = {"r": 4, "target_modules": ["query", "value"]}
    path.write_text(yaml.safe_dump(raw))
    rank0, rank1 = (record["digests"] for record in run_two_processes(path, tmp_path / "records"))
    assert rank0 == rank1, f"{sum(rank0[name] != rank1[name] for name in rank0)} tensors differ between the ranks"
    assert any("lora_A.ner" in name for name in rank0) and any("sharing.towers.sentiment" in name for name in rank0)


def test_bad_adapter_settings_are_refused_naming_the_key(tiny_model_dir, tmp_path):
    wrong = {**TASKS["ner"], "adapter": {**LORA, "target_modules": ["q_proj"]}}
    with pytest.raises(ModelBuildError, match=r"tasks\.ner\.adapter\.target_modules: \['q_proj'\].*named: .*query"):
        MultiTaskModel.from_backbone(str(tiny_model_dir), {"ner": wrong})
    with pytest.raises(ModelBuildError, match=r"cross_stitch: .*per-task adapters"):
        MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"task_layers": 1, "cross_stitch": True})
    raw = toy_recipe(tmp_path, tiny_model_dir)
    raw["tasks"]["ner"]["adapter"] = {"r": 0}
    with pytest.raises(RecipeError, match=r"tasks\.ner\.adapter\.r: must be at least 1"):
        recipe_from_dict(raw)
