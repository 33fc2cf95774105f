"""Every recipe in recipes/ loads and validates; the local-file ones run a few steps on the tiny model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import write_squad

from mtl_nlp import load_recipe, train
from mtl_nlp.paths import resolve_package_path

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
SAMPLE = Path(resolve_package_path("pkg:mtl_nlp/sample_data/ner_train.conll")).parent


@pytest.fixture
def data_tree(tmp_path, monkeypatch):
    """The layout of ../shared/data (and an NLI folder), filled with the bundled sample data and a tiny SQuAD."""
    root = tmp_path / "data"
    for folder, train_file, dev_file in (
        ("conll2003", "ner_train.conll", "ner_dev.conll"),
        ("sst2", "sentiment_train.tsv", "sentiment_dev.tsv"),
    ):
        (root / folder).mkdir(parents=True)
        suffix = ".txt" if folder == "conll2003" else ".tsv"
        shutil.copy(SAMPLE / train_file, root / folder / f"train{suffix}")
        shutil.copy(SAMPLE / dev_file, root / folder / f"dev{suffix}")
    nli = root / "nli"
    nli.mkdir()
    rows = ["premise\thypothesis\tlabel"] + [
        f"a man plays guitar\ta {word} plays\t{label}"
        for word, label in (("man", "entailment"), ("woman", "contradiction"), ("person", "neutral"))
    ] * 4
    for split in ("train", "dev"):
        (nli / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    squad = root / "squad_v1.1"
    squad.mkdir()
    context = "john smith flew to paris in may with the acme team"
    questions = [
        {"id": f"q{i}", "question": question, "answers": [(answer, context.index(answer))]}
        for i, (question, answer) in enumerate(
            (("who flew ?", "john smith"), ("where to ?", "paris"), ("when ?", "may"))
        )
    ]
    for split in ("train", "dev"):
        write_squad(squad / f"{split}.json", [(context, questions)])
    monkeypatch.setenv("MTL_NLP_DATA", str(root))
    monkeypatch.setenv("MTL_NLP_PAIRS", str(nli))
    return root


def local_files(recipe) -> list[str]:
    return [path for task in recipe.tasks.values() for path in task.data.files().values()]


@pytest.mark.parametrize("path", RECIPES, ids=[path.stem for path in RECIPES])
def test_recipe_is_valid_and_its_files_resolve(path, data_tree):
    recipe = load_recipe(path)
    for name, task in recipe.tasks.items():
        if task.data.hub_dataset:
            assert not task.data.files(), f"{name} mixes a Hub dataset with local files"
        else:
            assert task.data.train, f"{name} has no training data"
    for file in local_files(recipe):
        assert Path(file).is_file(), f"{path.name}: {file} does not resolve"


LOCAL_RECIPES = [path for path in RECIPES if not any(t.data.hub_dataset for t in load_recipe(path).tasks.values())]


@pytest.mark.parametrize("path", LOCAL_RECIPES, ids=[path.stem for path in LOCAL_RECIPES])
def test_local_recipe_trains_on_the_tiny_model(path, data_tree, tiny_model_dir, tmp_path):
    tasks = load_recipe(path).tasks
    overrides = [
        f"model.name_or_path={tiny_model_dir}",
        f"output_dir={tmp_path / 'run'}",
        "training.max_steps=2",
        "training.save_every_steps=0",
    ]
    for name in tasks:
        # All 400 sample sentences train (so every dev tag is known), four score.
        overrides += [f"tasks.{name}.data.max_train_examples=null", f"tasks.{name}.data.max_eval_examples=4"]
    result = train(load_recipe(path, overrides))
    assert {e.task for e in result.evaluations} == set(tasks)
