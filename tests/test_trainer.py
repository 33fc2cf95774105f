"""The training loop: non-finite losses are skipped and counted, gradient combination in all-tasks mode."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
import yaml
from conftest import toy_recipe
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import BertConfig

from mtl_nlp import MultiTaskModel, MultiTaskTrainer, recipe_from_dict, train
from mtl_nlp.errors import TrainingError
from mtl_nlp.tokenization import load_tokenizer
from mtl_nlp.training import trainer as trainer_module
from mtl_nlp.training.callbacks import TrainerCallback
from mtl_nlp.training.gradients import build_aggregator, combined_backward
from mtl_nlp.training.history import read_history
from mtl_nlp.training.optimization import auto_learning_rate
from mtl_nlp.training.run import prepare_tasks
from mtl_nlp.training.weighting import DynamicWeightAverage


def small_recipe(directory, model_dir, **sections):
    training = {"max_steps": 12, "log_every_steps": 1, "save_every_steps": 0, "learning_rate": 1e-3}
    sections["training"] = {**training, **sections.get("training", {})}
    return recipe_from_dict(toy_recipe(directory, model_dir, train_rows=32, eval_rows=8, **sections))


def poison(monkeypatch, should_poison):
    """Make the loss NaN whenever ``should_poison(task, call_number)`` says so."""
    forward = MultiTaskModel.forward
    calls = []

    def poisoned(self, task, **inputs):
        output = forward(self, task, **inputs)
        calls.append(task)
        if self.training and should_poison(task, len(calls)):
            output.loss = output.loss * float("nan")
        return output

    monkeypatch.setattr(MultiTaskModel, "forward", poisoned)


def test_a_non_finite_loss_skips_the_update_and_is_counted(tmp_path, tiny_model_dir, monkeypatch):
    poison(monkeypatch, lambda task, call: call in (3, 4))
    recipe = small_recipe(tmp_path, tiny_model_dir, sampling={"strategy": "round_robin"})
    result = train(recipe)
    records = [r for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in r]
    # Two batches were poisoned, so two updates were skipped and 12 steps took 14 batches.
    assert [r["step"] for r in records] == list(range(1, 13))
    assert records[-1]["skipped_steps"] == 2
    assert records[-1]["epoch"] == pytest.approx(14 / 4)
    weights = MultiTaskModel.from_pretrained(result.model_dir).state_dict()
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_a_non_finite_micro_batch_drops_the_whole_accumulated_update(tmp_path, tiny_model_dir, monkeypatch):
    poison(monkeypatch, lambda task, call: call == 1)
    finite_gradients = []
    step = torch.optim.AdamW.step

    def checked_step(optimizer, *args, **kwargs):
        gradients = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        finite_gradients.append(all(torch.isfinite(gradient).all() for gradient in gradients))
        return step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", checked_step)
    recipe = small_recipe(tmp_path, tiny_model_dir, training={"max_steps": 3, "gradient_accumulation_steps": 4})
    result = train(recipe)
    records = [r for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in r]
    # The poisoned batch opened the first window of 4, so 3 updates took 4 windows: 16 batches, 4 per epoch.
    assert records[-1]["skipped_steps"] == 1
    assert records[-1]["epoch"] == pytest.approx(16 / 4)
    # No update for the poisoned window, and none of its gradients left over for the next.
    assert finite_gradients == [True] * 3
    weights = MultiTaskModel.from_pretrained(result.model_dir).state_dict()
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_repeated_non_finite_losses_stop_the_run_naming_task_and_step(tmp_path, tiny_model_dir, monkeypatch):
    poison(monkeypatch, lambda task, call: call > 1)
    recipe = small_recipe(
        tmp_path, tiny_model_dir, training={"max_nonfinite_steps": 3}, sampling={"strategy": "round_robin"}
    )
    # Round robin: ner trains step 1, then sentiment, ner, sentiment all fail at step 2.
    with pytest.raises(TrainingError, match=r"3 consecutive steps .* at step 2 \(task sentiment\)"):
        train(recipe)


def test_combined_backward_applies_the_aggregator_to_the_tasks_jacobian():
    parameter = torch.zeros(3, requires_grad=True)
    g1, g2 = torch.tensor([-4.0, 1.0, 1.0]), torch.tensor([6.0, 1.0, 1.0])
    combined_backward([g1 @ parameter, g2 @ parameter], [parameter], build_aggregator("pcgrad"))
    # PCGrad by hand: each gradient loses its component along the other (they conflict: g1·g2 = −22).
    expected = (g1 + 22 / 38 * g2) + (g2 + 22 / 18 * g1)
    torch.testing.assert_close(parameter.grad, expected)


def test_all_tasks_mode_with_gradient_combination_trains_every_task_each_step(tmp_path, tiny_model_dir, monkeypatch):
    calls = []

    def counting_backward(losses, parameters, aggregator):
        calls.append((len(losses), type(aggregator).__name__))
        combined_backward(losses, parameters, aggregator)

    monkeypatch.setattr(trainer_module, "combined_backward", counting_backward)
    recipe = small_recipe(
        tmp_path, tiny_model_dir, sampling={"mode": "all_tasks"}, weighting={"gradient_method": "imtl_g"}
    )
    result = train(recipe)
    records = [r for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in r]
    assert len(records) == 12
    assert all(set(r["loss"]) == {"ner", "sentiment"} for r in records)
    assert calls == [(2, "IMTLG")] * 12
    weights = MultiTaskModel.from_pretrained(result.model_dir).state_dict()
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())


def test_uncertainty_weights_are_learned_and_logged(tmp_path, tiny_model_dir):
    recipe = small_recipe(tmp_path, tiny_model_dir, weighting={"method": "uncertainty"})
    train(recipe)
    records = [r for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in r]
    assert records[0]["loss_weights"] != records[-1]["loss_weights"]


@pytest.mark.parametrize(("hidden_size", "rate"), [(1024, 2e-5), (768, 5e-5), (512, 1e-4), (384, 2e-4), (32, 2e-4)])
def test_auto_learning_rate_follows_the_encoders_width(hidden_size, rate):
    assert auto_learning_rate(BertConfig(hidden_size=hidden_size, num_attention_heads=4)) == rate


def test_learning_rate_auto_is_the_default_and_the_saved_recipe_records_the_rate_used(tmp_path, tiny_model_dir):
    recipe = small_recipe(tmp_path, tiny_model_dir, training={"max_steps": 2, "learning_rate": "auto"})
    assert recipe_from_dict(toy_recipe(tmp_path, tiny_model_dir)).training.learning_rate == "auto"
    result = train(recipe)
    expected = auto_learning_rate(MultiTaskModel.from_pretrained(result.model_dir).encoder.config)
    saved = yaml.safe_load((result.model_dir / "recipe.yaml").read_text())
    assert saved["training"]["learning_rate"] == expected
    first_logged = next(r for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "learning_rate" in r)
    # Warm-up: step 1 of 2 with 10 % warm-up (one step) ends warm-up at the peak, then linear decay to 0.
    assert first_logged["learning_rate"] == pytest.approx(expected)


def test_torch_compile_trains_compiled_blocks_and_saves_plain_weights(tmp_path, tiny_model_dir, tiny_tokenizer):
    torch._dynamo.reset()
    recipe = small_recipe(tmp_path, tiny_model_dir, training={"max_steps": 4, "torch_compile": True})
    result = train(recipe)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    losses = [r["loss"] for r in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in r]
    assert len(losses) == 4 and all(math.isfinite(value) for step in losses for value in step.values())
    with safe_open(result.model_dir / "model.safetensors", framework="pt") as saved:
        saved_keys = set(saved.keys())
    eager = MultiTaskModel.from_pretrained(result.model_dir).eval()
    assert saved_keys == set(eager.state_dict()) and not any("_orig_mod" in key for key in saved_keys)
    # Compiled blocks compute what the eager ones do (dropout aside, whose random stream inductor draws itself).
    compiled = MultiTaskModel.from_pretrained(result.model_dir).eval()
    assert compiled.compile_encoder_blocks() == 1 + compiled.encoder.config.num_hidden_layers
    batch = tiny_tokenizer(["the film was wonderful", "a dull , slow film"], padding=True, return_tensors="pt")
    with torch.no_grad():
        for task in ("ner", "sentiment"):
            torch.testing.assert_close(compiled(task=task, **batch).logits, eager(task=task, **batch).logits)


def test_dwa_windows_are_one_epoch_of_batches_with_gradient_accumulation(tmp_path, tiny_model_dir, monkeypatch):
    window_batches = []
    end_window = DynamicWeightAverage.end_window

    def recording_end_window(weighting, reduce):
        window_batches.append(int(weighting.loss_counts.sum()))
        end_window(weighting, reduce)

    monkeypatch.setattr(DynamicWeightAverage, "end_window", recording_end_window)
    recipe = small_recipe(
        tmp_path,
        tiny_model_dir,
        weighting={"method": "dwa"},
        training={"max_steps": 6, "gradient_accumulation_steps": 2},
    )
    train(recipe)
    # An epoch is 4 batches (2 per task): 2 optimizer steps of 2 batches, so 6 steps close 3 windows.
    assert window_batches == [4, 4, 4]


def test_the_best_model_is_loaded_from_a_sharded_save(tmp_path, tiny_model_dir, monkeypatch):
    scores = iter([0.1, 0.9, 0.5])  # of the validations at steps 2, 4 and 6: the best is step 4's
    monkeypatch.setattr(trainer_module, "aggregate_score", lambda evaluations, weights: next(scores))
    sharded = functools.partialmethod(MultiTaskModel.save_pretrained, max_shard_size="20KB")
    monkeypatch.setattr(MultiTaskModel, "save_pretrained", sharded)
    training = {"max_steps": 6, "eval_every_steps": 2, "save_every_steps": 2, "save_total_limit": 3}
    recipe = small_recipe(tmp_path, tiny_model_dir, training=training)
    result = train(recipe)
    output_dir = Path(recipe.output_dir)
    assert len(list((output_dir / "best").glob("model-*-of-*.safetensors"))) > 1
    final = MultiTaskModel.from_pretrained(result.model_dir).state_dict()
    for step, expected in ((4, True), (6, False)):
        checkpoint = load_file(output_dir / "checkpoints" / f"step-{step:08d}" / "model.safetensors")
        assert all(torch.equal(final[name], tensor) for name, tensor in checkpoint.items()) == expected


def test_the_trainer_leaves_the_random_state_to_its_caller(tmp_path, tiny_model_dir):
    # train() seeds once, before it builds the new heads; a trainer built from Python keeps the caller's state.
    recipe = small_recipe(tmp_path, tiny_model_dir)
    tasks = prepare_tasks(recipe, load_tokenizer(str(tiny_model_dir)))
    descriptions = {name: task.description() for name, task in tasks.items()}
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), descriptions)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    trainer = MultiTaskTrainer(model, tasks, recipe)
    assert torch.equal(torch.get_rng_state(), state)
    assert trainer.train()


HOST_READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist")


def test_micro_steps_leave_the_losses_on_the_device(tmp_path, tiny_model_dir, monkeypatch):
    """Outside reading batches and the model's own forward, a micro-step reads no tensor on the host: on a GPU
    each read would wait for the device."""
    reads, guarding = [], [False]

    def counted(name):
        original = getattr(torch.Tensor, name)

        def read(tensor, *args, **kwargs):
            if guarding[-1]:
                reads.append(name)
            return original(tensor, *args, **kwargs)

        return read

    for name in HOST_READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name))

    def guarded(function, state):
        @functools.wraps(function)
        def call(*args, **kwargs):
            guarding.append(state)
            try:
                return function(*args, **kwargs)
            finally:
                guarding.pop()

        return call

    def unguarded_batches(trainer):
        stream, fetch = batches(trainer), guarded(next, False)
        while True:
            yield fetch(stream)

    batches = MultiTaskTrainer._batches
    monkeypatch.setattr(MultiTaskTrainer, "_forward_backward", guarded(MultiTaskTrainer._forward_backward, True))
    monkeypatch.setattr(MultiTaskModel, "forward", guarded(MultiTaskModel.forward, False))
    monkeypatch.setattr(MultiTaskTrainer, "_batches", unguarded_batches)
    train(small_recipe(tmp_path, tiny_model_dir, training={"max_steps": 4, "gradient_accumulation_steps": 2}))
    assert reads == []


class Recorder(TrainerCallback):
    """Records every event with its step; stops training at the validation of step ``stop_at``."""

    def __init__(self, stop_at: int) -> None:
        self.events: list[tuple[str, int]] = []
        self.records: list[dict] = []
        self.scores: list[tuple[int, float | None]] = []
        self.stop_at = stop_at

    def __getattribute__(self, name):
        attribute = super().__getattribute__(name)
        if name.startswith("on_"):

            def recorded(trainer, **details):
                self.events.append((name, trainer.step))
                return attribute(trainer, **details)

            return recorded
        return attribute

    def on_log(self, trainer, record):
        self.records.append(record)

    def on_validate(self, trainer, evaluations, score):
        self.scores.append((trainer.step, score))
        if trainer.step == self.stop_at:
            trainer.stop("the test asked")


def test_callbacks_see_every_event_in_order_and_can_stop_training(tmp_path, tiny_model_dir):
    recorder = Recorder(stop_at=8)
    training = {
        "max_steps": 12,
        "log_every_steps": 2,
        "eval_every_steps": 4,
        "save_every_steps": 4,
        "load_best_at_end": False,
    }
    recipe = small_recipe(tmp_path, tiny_model_dir, training=training)
    train(recipe, callbacks=[recorder])
    events = recorder.events
    assert events[0] == ("on_train_begin", 0) and events[-1] == ("on_train_end", 8)
    assert [step for name, step in events if name == "on_step_end"] == list(range(1, 9))
    # Validations at steps 4 and 8 (where the callback stopped the run) and the final one at step 8; the
    # checkpoint of step 8 is the last, and is not written twice.
    assert [step for step, _ in recorder.scores] == [4, 8, 8] and all(score is not None for _, score in recorder.scores)
    assert [step for name, step in events if name == "on_save"] == [4, 8]
    assert [name for name, step in events if step == 4] == [
        "on_step_end",
        "on_log",  # the losses of steps 3 and 4
        "on_validate_begin",
        "on_evaluate_begin",
        "on_log",  # the evaluation's metrics
        "on_evaluate",
        "on_log",  # the aggregate score
        "on_validate",
        "on_save_begin",
        "on_save",
    ]
    # After the final validation, the test split is scored (the toy tasks have none) before training ends.
    assert [name for name, _ in events[-4:]] == ["on_validate", "on_evaluate_begin", "on_evaluate", "on_train_end"]
    # on_log carries exactly the records of metrics.jsonl.
    assert recorder.records == read_history(f"{recipe.output_dir}/metrics.jsonl")
    assert max(r["step"] for r in recorder.records if "loss" in r) == 8
