"""Sharing options: task-specific top layers, cross-stitch units, layer attention — built, trained, saved,
reloaded, resumed, exported (or refused), and the shared bottom run once per batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import toy_recipe
from test_checkpoint import assert_same_weights, crash_while_checkpointing, small_recipe
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.errors import ExportError, ModelBuildError, RecipeError
from mtl_nlp.export import export_saved_task, export_task
from mtl_nlp.pipeline import MultiTaskPipeline
from mtl_nlp.training.checkpoint import CheckpointDirectory

TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER"]},
    "sentiment": {"type": "sequence_classification", "id2label": ["negative", "positive"]},
}
OPTIONS = {
    "task_layers": {"task_layers": 1},
    "cross_stitch": {"task_layers": 1, "cross_stitch": True},
    "layer_attention": {"layer_attention": True},
    "all": {"task_layers": 1, "cross_stitch": True, "layer_attention": True},
}


def batch(tokenizer):
    return tokenizer(["angela merkel visited munich", "the film was wonderful"], padding=True, return_tensors="pt")


def test_task_layers_are_copies_of_the_pretrained_top_layers_and_the_bottom_stays_shared(tiny_model_dir):
    plain = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"task_layers": 1})
    assert len(model.encoder.encoder.layer) == 1  # two layers: the bottom one shared, the top one per task
    top = plain.encoder.encoder.layer[1].state_dict()
    for task in TASKS:
        tower = model.sharing.towers[task][0].layer[0].state_dict()
        assert tower.keys() == top.keys() and all(torch.equal(tower[key], top[key]) for key in top)
    tower = model.sharing.towers["ner"][0].layer[0].attention.self.query.weight
    assert tower.data_ptr() != model.sharing.towers["sentiment"][0].layer[0].attention.self.query.weight.data_ptr()


def test_a_task_with_its_own_top_layers_computes_the_stock_model_with_those_layers(tiny_model_dir, tiny_tokenizer):
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"task_layers": 1}).eval()
    with torch.no_grad():  # make the two towers differ, so that the test could tell them apart
        model.sharing.towers["ner"][0].layer[0].output.dense.weight.mul_(3)
    inputs = batch(tiny_tokenizer)
    for task, auto_class in (
        ("ner", AutoModelForTokenClassification),
        ("sentiment", AutoModelForSequenceClassification),
    ):
        stock = auto_class.from_config(model.heads[task].config).eval()
        state = {f"bert.{k}": v for k, v in (model.encoder.state_dict() | model.sharing.tower_state_dict(task)).items()}
        missing, unexpected = stock.load_state_dict(state | model.heads[task].state_dict(), strict=False)
        assert set(unexpected) <= {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}  # a token head has none
        assert set(missing) <= {"bert.embeddings.position_ids"}
        torch.testing.assert_close(model(task=task, **inputs).logits, stock(**inputs).logits)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_each_option_runs_forward_heads_with_one_pass_of_the_shared_bottom(option, tiny_model_dir, tiny_tokenizer):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing=OPTIONS[option]).eval()
    calls = []
    hook = model.encoder.register_forward_hook(lambda *_: calls.append(1))
    inputs = batch(tiny_tokenizer)
    outputs = model.forward_heads(**inputs)
    hook.remove()
    assert len(calls) == 1
    for task in TASKS:
        torch.testing.assert_close(outputs[task].logits, model(task=task, **inputs).logits)


def test_cross_stitch_matrices_start_near_the_identity(tiny_model_dir):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing=OPTIONS["cross_stitch"])
    stitch = model.sharing.stitch
    assert stitch.shape == (1, 2, 2)
    torch.testing.assert_close(stitch[0], torch.tensor([[0.9, 0.1], [0.1, 0.9]]))


def test_layer_attention_weights_train_with_the_head(tiny_model_dir, tiny_tokenizer):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"layer_attention": True})
    inputs = batch(tiny_tokenizer)
    loss = model(task="sentiment", **inputs, labels=torch.tensor([0, 1])).loss
    loss.backward()
    assert model.sharing.mixes["sentiment"].weights.grad.abs().sum() > 0
    assert model.sharing.mixes["ner"].weights.grad is None
    assert len(model.sharing.mixes["ner"].weights) == 3  # embeddings and two layers


def sharing_recipe(directory: Path, model_dir: Path, option: str) -> dict:
    raw = small_recipe(directory, model_dir)
    raw["model"]["sharing"] = OPTIONS[option]
    return raw


@pytest.mark.parametrize("option", ["task_layers", "cross_stitch", "layer_attention"])
def test_each_option_trains_reloads_and_resumes_exactly(option, tmp_path, tiny_model_dir, tiny_tokenizer, monkeypatch):
    reference = train(recipe_from_dict(sharing_recipe(tmp_path / "a", tiny_model_dir, option)))
    reloaded = MultiTaskModel.from_pretrained(reference.model_dir).eval()
    inputs = batch(tiny_tokenizer)
    runner = MultiTaskPipeline(reference.model_dir, device="cpu")
    assert OPTIONS[option].items() <= runner.model.config.sharing.items()
    torch.testing.assert_close(
        reloaded(task="sentiment", **inputs).logits, runner.model(task="sentiment", **inputs).logits
    )

    recipe = recipe_from_dict(sharing_recipe(tmp_path / "b", tiny_model_dir, option))
    crash_while_checkpointing(recipe, monkeypatch)
    assert CheckpointDirectory(Path(recipe.output_dir) / "checkpoints", keep=2).latest().name == "step-00000010"
    resumed = train(recipe, resume=True)
    assert_same_weights(reference.model_dir, resumed.model_dir)


def test_task_layers_export_as_stock_models_and_soft_sharing_is_refused(tmp_path, tiny_model_dir, tiny_tokenizer):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"task_layers": 1}).eval()
    with torch.no_grad():
        model.sharing.towers["sentiment"][0].layer[0].output.dense.weight.mul_(2)
    export_task(model, "sentiment", tmp_path / "sentiment", tiny_tokenizer)  # checks the logits are equal
    stock = AutoModelForSequenceClassification.from_pretrained(tmp_path / "sentiment").eval()
    assert stock.config.num_hidden_layers == 2
    for option in ("cross_stitch", "layer_attention"):
        soft = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing=OPTIONS[option])
        with pytest.raises(ExportError, match=f"model.sharing.{option}"):
            export_task(soft, "ner", tmp_path / option, tiny_tokenizer)


def test_freezing_the_encoder_trains_only_what_is_not_pretrained(tmp_path, tiny_model_dir):
    raw = toy_recipe(tmp_path, tiny_model_dir, training={"max_steps": 5, "save_every_steps": 0})
    raw["model"] |= {"sharing": {"task_layers": 1, "layer_attention": True}, "freeze_encoder": True}
    before = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"task_layers": 1})
    result = train(recipe_from_dict(raw))
    after = MultiTaskModel.from_pretrained(result.model_dir)
    for name, value in before.encoder.state_dict().items():
        assert torch.equal(value, after.encoder.state_dict()[name]), name
    tower = before.sharing.towers["ner"][0].state_dict()
    assert all(torch.equal(v, after.sharing.towers["ner"][0].state_dict()[k]) for k, v in tower.items())
    assert not torch.equal(after.sharing.mixes["ner"].weights, torch.zeros(3))
    with pytest.raises(ExportError, match="layer_attention"):
        export_saved_task(result.model_dir, "ner", tmp_path / "export")


def test_bad_sharing_settings_are_refused_naming_the_key(tiny_model_dir):
    with pytest.raises(ModelBuildError, match=r"model.sharing.task_layers: 2 must be from 0 to 1"):
        MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS, sharing={"task_layers": 2})
    with pytest.raises(RecipeError, match=r"model\.sharing\.cross_stitch: cross-stitch units mix"):
        recipe_from_dict(
            {
                "model": {"sharing": {"cross_stitch": True}},
                "tasks": {"a": {"type": "token_classification", "data": {"train": "x"}}},
            }
        )
    with pytest.raises(RecipeError, match=r"model\.sharing\.task_layers: must be at least 0"):
        recipe_from_dict(
            {
                "model": {"sharing": {"task_layers": -1}},
                "tasks": {"a": {"type": "token_classification", "data": {"train": "x"}}},
            }
        )
