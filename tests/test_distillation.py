"""Knowledge distillation: the cached soft targets are the teachers' probabilities, the loss is the KL the docs
give, a student learns its teacher's predictions from them alone, and a changed teacher is never served stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from conftest import toy_recipe, write_squad, write_toy_sentiment
from transformers.modeling_outputs import SequenceClassifierOutput

from mtl_nlp import recipe_from_dict, train
from mtl_nlp.config import DistillationConfig
from mtl_nlp.errors import ModelLoadError, RecipeError
from mtl_nlp.evaluation.evaluator import predict_split
from mtl_nlp.export import export_saved_task
from mtl_nlp.modeling import MultiTaskModel
from mtl_nlp.modeling.saved import load_saved_model
from mtl_nlp.tasks import build_task
from mtl_nlp.tasks.base import TEACHER_COLUMN
from mtl_nlp.tokenization import load_tokenizer
from mtl_nlp.training import distillation
from mtl_nlp.training.distillation import StudentLoss, distillation_kl
from mtl_nlp.training.run import prepare_tasks
from mtl_nlp.training.trainer import MultiTaskBatches

TEMPERATURE = 2.0


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """An NER + sentiment model trained on gold labels: the teacher."""
    directory = tmp_path_factory.mktemp("teacher")
    # The toy sentiment loss sits near log 2 for its first 70-90 steps (12 encoder seeds); 300 steps leave a margin
    # for other machines' arithmetic, where a teacher stuck on that plateau predicts one class for everything.
    training = {"max_steps": 300, "learning_rate": 3e-3, "save_every_steps": 0, "log_every_steps": 300}
    raw = toy_recipe(directory, tiny_model_dir, train_rows=64, eval_rows=40, training=training)
    raw["sampling"] = {"strategy": "uniform"}
    return train(recipe_from_dict(raw)).model_dir


def perturbed_copy(source: Path, target: Path, seed: int) -> Path:
    """The model saved in ``source`` with noise on every weight, saved (with its tokenizer) to ``target``."""
    model, tokenizer = load_saved_model(source)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    staging = target.parent / f"{target.name}.staging"
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.copytree(staging, target, dirs_exist_ok=True)
    shutil.rmtree(staging)
    return target


def distilled(raw: dict, batch_size: int = 8):
    """The recipe's tasks, prepared and given their teachers' probabilities, as a run does before training."""
    recipe = recipe_from_dict(raw)
    tokenizer = load_tokenizer(recipe.model.name_or_path)
    teachers = distillation.check_teachers(recipe, tokenizer)
    tasks = prepare_tasks(recipe, tokenizer)
    distillation.add_teacher_probabilities(tasks, teachers, recipe.distillation, torch.device("cpu"), batch_size)
    return tasks


def with_teachers(raw: dict, teachers: dict, **settings) -> dict:
    return {
        **raw,
        "distillation": {"teachers": {t: [str(p) for p in paths] for t, paths in teachers.items()}, **settings},
    }


def direct_probabilities(model_dir: Path, task, temperature: float) -> list[np.ndarray]:
    """Each training example's teacher probabilities, computed by hand one example at a time: per labelled
    sub-token (token tasks), per example (classification), start then end over the window (QA)."""
    model, _ = load_saved_model(model_dir)
    model.eval()
    rows = []
    for row in task.encoded["train"]:
        inputs = {name: torch.tensor([row[name]]) for name in task.tokenizer.model_input_names if name in row}
        with torch.no_grad():
            output = model(task=task.name, **inputs)
        if task.type_name == "question_answering":
            logits = torch.cat([output.start_logits[0], output.end_logits[0]]).view(2, -1)
        elif task.type_name == "token_classification":
            logits = output.logits[0][torch.tensor(row["labels"]) != -100]
        else:
            logits = output.logits
        rows.append((logits / temperature).softmax(dim=-1).flatten().numpy())
    return rows


def assert_column_equals(task, expected: list[np.ndarray]) -> None:
    stored = task.encoded["train"][TEACHER_COLUMN]
    assert len(stored) == len(expected)
    for row, wanted in zip(stored, expected):
        np.testing.assert_allclose(np.asarray(row), wanted, atol=2e-6)


def test_cached_soft_targets_are_the_teachers_mean_probabilities(teacher_dir, tiny_model_dir, tmp_path):
    second = perturbed_copy(teacher_dir, tmp_path / "second", seed=1)
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=24)
    plain = prepare_tasks(recipe_from_dict(raw), load_tokenizer(str(tiny_model_dir)))
    tasks = distilled(with_teachers(raw, {"ner": [teacher_dir, second], "sentiment": [teacher_dir]}))
    for name, teachers in (("ner", [teacher_dir, second]), ("sentiment", [teacher_dir])):
        task = tasks[name]
        # The teachers read the split by length; the split keeps its order, and its lengths as Task.lengths reads them.
        assert task.encoded["train"].remove_columns(TEACHER_COLUMN).to_list() == plain[name].encoded["train"].to_list()
        np.testing.assert_array_equal(task.lengths("train"), plain[name].lengths("train"))
        each = [direct_probabilities(directory, task, TEMPERATURE) for directory in teachers]
        assert_column_equals(task, [np.mean(rows, axis=0) for rows in zip(*each)])
        assert task.encoded["train"].features[TEACHER_COLUMN].feature.dtype == "float32"
        assert all(TEACHER_COLUMN not in task.encoded[split].column_names for split in ("validation",))
    # The ensemble is not one of its teachers: the perturbed copy moved the mean.
    alone = direct_probabilities(teacher_dir, tasks["ner"], TEMPERATURE)
    assert not np.allclose(np.concatenate(alone), np.concatenate(tasks["ner"].encoded["train"][TEACHER_COLUMN]))


def test_a_stock_checkpoint_teaches_as_the_model_it_was_exported_from(teacher_dir, tiny_model_dir, tmp_path):
    stock = {name: export_saved_task(teacher_dir, name, tmp_path / f"stock-{name}") for name in ("ner", "sentiment")}
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=24)
    tasks = distilled(with_teachers(raw, {name: [path] for name, path in stock.items()}))
    for task in tasks.values():
        assert_column_equals(task, direct_probabilities(teacher_dir, task, TEMPERATURE))


def test_question_answering_soft_targets_are_start_and_end_distributions(tiny_model_dir, tiny_tokenizer, tmp_path):
    context = "Angela Merkel met officials of Siemens in Munich on Tuesday ."
    asked = [("who met officials ?", "Angela Merkel"), ("where ?", "Munich"), ("when ?", "Tuesday")]
    questions = [
        {"id": str(i), "question": question, "answers": [(answer, context.index(answer))]}
        for i, (question, answer) in enumerate(asked)
    ]
    train_file = write_squad(tmp_path / "train.json", [(context, questions)])
    settings = {"type": "question_answering", "data": {"train": str(train_file)}, "max_length": 24, "doc_stride": 4}
    raw = {"model": {"name_or_path": str(tiny_model_dir)}, "tasks": {"qa": settings}}
    task = build_task("qa", recipe_from_dict(raw).tasks["qa"], tiny_tokenizer)
    teacher = tmp_path / "qa-teacher"
    MultiTaskModel.from_backbone(str(tiny_model_dir), {"qa": task.description()}).save_pretrained(teacher)
    tiny_tokenizer.save_pretrained(teacher)
    tasks = distilled(with_teachers(raw, {"qa": [teacher]}))
    assert len(tasks["qa"].encoded["train"]) > 3  # long contexts are cut into several windows
    assert_column_equals(tasks["qa"], direct_probabilities(teacher, tasks["qa"], TEMPERATURE))


def test_multi_label_units_are_each_labels_sigmoid(tiny_tokenizer):
    raw = {"tasks": {"tags": {"type": "sequence_classification", "data": {"train": "x.tsv"}}}}
    raw["tasks"]["tags"]["problem_type"] = "multi_label_classification"
    task = build_task("tags", recipe_from_dict(raw).tasks["tags"], tiny_tokenizer)
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    units, valid = task.distillation_units(SequenceClassifierOutput(logits=logits), {})
    assert units.shape == (1, 3, 2) and valid.all()
    torch.testing.assert_close((units / TEMPERATURE).softmax(dim=-1)[..., 1], torch.sigmoid(logits / TEMPERATURE))


def test_the_kl_is_averaged_over_the_units_that_carry_a_target():
    torch.manual_seed(0)
    student, teacher_logits = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    valid = torch.tensor([[True, True, True], [True, False, False]]).unsqueeze(2).expand(2, 3, 4)
    teacher = (teacher_logits / TEMPERATURE).softmax(dim=-1)
    # As stored and collated: each example's units flattened, the shorter one padded with zeros.
    targets = torch.zeros(2, 12)
    targets[0], targets[1, :4] = teacher[0].flatten(), teacher[1, 0]
    per_unit = [
        torch.nn.functional.kl_div((student[b, u] / TEMPERATURE).log_softmax(dim=-1), teacher[b, u], reduction="sum")
        for b, u in [(0, 0), (0, 1), (0, 2), (1, 0)]
    ]
    torch.testing.assert_close(distillation_kl(student, valid, targets, TEMPERATURE), torch.stack(per_unit).mean())


def test_a_student_that_is_its_teacher_has_no_distillation_loss(teacher_dir, tiny_model_dir, tmp_path):
    raw = with_teachers(
        toy_recipe(tmp_path, tiny_model_dir, train_rows=24), {t: [teacher_dir] for t in ("ner", "sentiment")}, alpha=1.0
    )
    tasks = distilled(raw)
    loss = StudentLoss(recipe_from_dict(raw).distillation, tasks, total_steps=10)
    batches = MultiTaskBatches(tasks)
    student, _ = load_saved_model(teacher_dir)
    other = load_saved_model(perturbed_copy(teacher_dir, tmp_path / "other", seed=2))[0]
    for model in (student, other):
        model.eval()  # no dropout: the teacher's probabilities were computed without it
    for name in tasks:
        batch = batches[(name, list(range(16)))][1]
        assert TEACHER_COLUMN in batch
        assert abs(float(loss(student, name, dict(batch), step=0))) < 1e-6
        assert float(loss(other, name, dict(batch), step=0)) > 1e-4


def test_teacher_annealing_goes_from_the_teacher_to_the_labels():
    config = DistillationConfig(teachers={"ner": ["teacher"]}, alpha=0.3, anneal=True)
    shares = [StudentLoss(config, {}, total_steps=5).teacher_share(step) for step in range(5)]
    assert shares == [1.0, 0.75, 0.5, 0.25, 0.0]
    config.anneal = False
    assert StudentLoss(config, {}, total_steps=5).teacher_share(3) == 0.3


def test_a_student_trained_on_soft_targets_alone_predicts_as_its_teacher(teacher_dir, tiny_model_dir, tmp_path):
    # The student's gold labels are all wrong: whatever it gets right, it learnt from the teacher.
    flipped = tmp_path / "flipped.tsv"
    write_toy_sentiment(flipped, 64, seed=1)
    header, *rows = flipped.read_text(encoding="utf-8").splitlines()
    swap = {"\tpositive": "\tnegative", "\tnegative": "\tpositive"}
    flipped.write_text("\n".join([header] + [row[: row.rindex("\t")] + swap[row[row.rindex("\t") :]] for row in rows]))
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=64, eval_rows=40)
    raw["tasks"] = {"sentiment": raw["tasks"]["sentiment"]}
    raw["tasks"]["sentiment"]["data"]["train"] = str(flipped)
    raw["training"] = {"max_steps": 150, "learning_rate": 3e-3, "save_every_steps": 0, "log_every_steps": 150}
    result = train(recipe_from_dict(with_teachers(raw, {"sentiment": [teacher_dir]}, alpha=1.0)))

    task = prepare_tasks(recipe_from_dict(raw), load_tokenizer(str(tiny_model_dir)))["sentiment"]
    accelerator = Accelerator(cpu=True)
    predicted = {}
    for name, directory in (("teacher", teacher_dir), ("student", result.model_dir)):
        logits, _ = predict_split(load_saved_model(directory)[0], task, "validation", accelerator, 64)
        predicted[name] = np.stack(logits).argmax(axis=1)
    gold = np.asarray(task.encoded["validation"]["labels"])
    assert (predicted["teacher"] == gold).mean() >= 0.9  # a teacher worth imitating, not a constant
    assert (predicted["student"] == predicted["teacher"]).mean() >= 0.95


def test_the_cache_serves_the_same_teacher_and_recomputes_for_a_changed_one(
    teacher_dir, tiny_model_dir, tmp_path, monkeypatch
):
    loads = []
    load = distillation.Teacher.load

    def counting(self, device):
        loads.append(self.path)
        return load(self, device)

    monkeypatch.setattr(distillation.Teacher, "load", counting)
    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_dir, teacher)
    raw = with_teachers(toy_recipe(tmp_path, tiny_model_dir, train_rows=24), {"sentiment": [teacher]})

    first = distilled(raw)["sentiment"]
    assert len(loads) == 1
    again = distilled(raw)["sentiment"]
    assert len(loads) == 1  # served from the cache: no teacher ran
    assert again.encoded["train"][TEACHER_COLUMN] == first.encoded["train"][TEACHER_COLUMN]

    perturbed_copy(teacher_dir, teacher, seed=3)  # the teacher is trained again and saved in place
    changed = distilled(raw)["sentiment"]
    assert len(loads) == 2
    assert_column_equals(changed, direct_probabilities(teacher, changed, TEMPERATURE))

    hotter = distilled(with_teachers(raw, {"sentiment": [teacher]}, temperature=4.0))["sentiment"]
    assert len(loads) == 3
    assert_column_equals(hotter, direct_probabilities(teacher, hotter, 4.0))


def test_teachers_are_checked_before_any_data_is_read(tiny_model_dir, tmp_path):
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=24)
    raw["tasks"]["ner"]["data"]["train"] = str(tmp_path / "no-such-file.conll")
    with pytest.raises(ModelLoadError, match=r"distillation\.teachers\.ner\[0\] \(.*no-such-teacher\): no such"):
        train(recipe_from_dict(with_teachers(raw, {"ner": [tmp_path / "no-such-teacher"]})))


def test_a_crf_teacher_and_a_regression_task_are_refused(tiny_model_dir, tiny_tokenizer, tmp_path):
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=24)
    crf = build_task(
        "ner",
        recipe_from_dict({**raw, "tasks": {"ner": {**raw["tasks"]["ner"], "crf": True}}}).tasks["ner"],
        tiny_tokenizer,
    )
    teacher = tmp_path / "crf-teacher"
    description = {**crf.description(), "labels": ["O", "B-PER", "I-PER"]}
    MultiTaskModel.from_backbone(str(tiny_model_dir), {"ner": description}).save_pretrained(teacher)
    tiny_tokenizer.save_pretrained(teacher)
    with pytest.raises(ModelLoadError, match=r"its task 'ner' is token_classification with a crf head, which cannot"):
        distillation.check_teachers(recipe_from_dict(with_teachers(raw, {"ner": [teacher]})), tiny_tokenizer)
    raw["tasks"]["sentiment"]["problem_type"] = "regression"
    with pytest.raises(RecipeError, match=r"task 'sentiment' cannot learn from a teacher: a regression head"):
        distillation.check_teachers(recipe_from_dict(with_teachers(raw, {"sentiment": [teacher]})), tiny_tokenizer)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"teachers": {"ner": ["t"]}, "temperature": 0}, r"distillation\.temperature: must be greater than 0"),
        ({"teachers": {"ner": ["t"]}, "alpha": 1.5}, r"distillation\.alpha: must be from 0 to 1"),
        ({"teachers": {"ner": []}}, r"distillation\.teachers\.ner: give at least one teacher directory"),
        ({"teachers": {}}, r"distillation\.teachers: name at least one task"),
    ],
)
def test_the_section_is_checked_when_the_recipe_loads(section, message, tiny_model_dir, tmp_path):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict({**toy_recipe(tmp_path, tiny_model_dir), "distillation": section})
