"""Security: a Hub token or an environment value never reaches saved files or logs, remote code runs only when
asked, no unsafe unpickling."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
import yaml
from conftest import toy_recipe
from transformers import AutoModel, AutoTokenizer

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.cli import main
from mtl_nlp.tokenization import load_tokenizer

FAKE_TOKEN = "hf_FakeToken0123456789abcdefghijklmnopqrstu"
PACKAGE = Path(__file__).resolve().parent.parent / "mtl_nlp"


def files_containing(directory: Path, needle: str) -> list[Path]:
    """Every file under ``directory`` whose bytes contain ``needle`` (binary files included)."""
    return [path for path in directory.rglob("*") if path.is_file() and needle.encode() in path.read_bytes()]


@pytest.fixture
def from_pretrained_calls(monkeypatch) -> list[dict]:
    """The keyword arguments of every AutoTokenizer/AutoModel.from_pretrained call, which still load for real."""
    calls = []
    for auto_class in (AutoTokenizer, AutoModel):
        real = auto_class.from_pretrained

        def spy(*args, _real=real, **kwargs):
            calls.append(kwargs)
            return _real(*args, **kwargs)

        monkeypatch.setattr(auto_class, "from_pretrained", spy)
    return calls


def test_scanner_finds_a_planted_token(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "weights.bin").write_bytes(b"\x00\xff" + FAKE_TOKEN.encode() + b"\x00")
    (tmp_path / "clean.txt").write_text("nothing here")
    assert files_containing(tmp_path, FAKE_TOKEN) == [tmp_path / "nested" / "weights.bin"]


def test_training_run_never_writes_or_logs_the_hub_token(
    tiny_model_dir, tmp_path, monkeypatch, caplog, capfd, from_pretrained_calls
):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    training = {"max_steps": 3, "log_every_steps": 1}
    recipe = recipe_from_dict(toy_recipe(tmp_path, tiny_model_dir, train_rows=8, eval_rows=4, training=training))
    output_dir = Path(recipe.output_dir)
    caplog.set_level(logging.DEBUG)
    result = train(recipe)

    written = sorted(path.name for path in output_dir.rglob("*") if path.is_file())
    assert "model.safetensors" in written and "metrics.jsonl" in written and "recipe.yaml" in written
    assert files_containing(output_dir, FAKE_TOKEN) == []
    captured = capfd.readouterr()
    assert caplog.records and result.evaluations
    for text in (caplog.text, captured.out, captured.err):
        assert FAKE_TOKEN not in text
        assert "hf_Fake" not in text
    # Remote code stays off on the whole path from recipe to model.
    assert from_pretrained_calls and all(call["trust_remote_code"] is False for call in from_pretrained_calls)


SECRET = "s3cr3t-7f1c9a0e"  # what an environment variable named in a recipe holds


def test_environment_values_are_used_in_memory_but_never_saved(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SOME_SECRET", SECRET)
    raw = toy_recipe(tmp_path, tiny_model_dir, train_rows=8, eval_rows=4, training={"max_steps": 2})
    data_dir = tmp_path / SECRET  # the data lives where the expanded reference points
    data_dir.mkdir()
    for split in ("train", "validation"):
        path = Path(raw["tasks"]["sentiment"]["data"][split])
        path.rename(data_dir / path.name)
        raw["tasks"]["sentiment"]["data"][split] = f"{tmp_path}/${{SOME_SECRET:-data}}/{path.name}"
    raw["tasks"]["sentiment"]["text_column"] = "${NO_SUCH_VARIABLE:-text}"
    recipe = recipe_from_dict(raw)
    assert recipe.tasks["sentiment"].data.train == str(data_dir / "train.tsv")  # expanded where it is used
    result = train(recipe)

    output_dir = Path(recipe.output_dir)
    saved = yaml.safe_load((output_dir / "recipe.yaml").read_text(encoding="utf-8"))
    assert saved["tasks"]["sentiment"]["data"]["train"] == f"{tmp_path}/${{SOME_SECRET:-data}}/train.tsv"
    assert saved["tasks"]["sentiment"]["text_column"] == "${NO_SUCH_VARIABLE:-text}"
    upload = tmp_path / "upload"
    assert main(["push", str(result.model_dir), "me/tiny-mtl", "--dry-run", str(upload), "--export-tasks"]) == 0
    assert "${SOME_SECRET:-data}" in (upload / "README.md").read_text(encoding="utf-8")
    assert files_containing(output_dir, SECRET) == []
    assert files_containing(upload, SECRET) == []


def test_remote_code_is_off_unless_the_recipe_turns_it_on(tiny_model_dir, from_pretrained_calls):
    recipe = recipe_from_dict({"tasks": {"ner": {"type": "token_classification", "data": {"train": "a.conll"}}}})
    assert recipe.model.trust_remote_code is False
    load_tokenizer(str(tiny_model_dir))
    MultiTaskModel.from_backbone(str(tiny_model_dir), {})
    assert [call["trust_remote_code"] for call in from_pretrained_calls] == [False, False]
    load_tokenizer(str(tiny_model_dir), trust_remote_code=True)
    MultiTaskModel.from_backbone(str(tiny_model_dir), {}, trust_remote_code=True)
    assert [call["trust_remote_code"] for call in from_pretrained_calls[2:]] == [True, True]


UNPICKLING_MODULES = {"pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def unsafe_loads(source: str) -> list[str]:
    """Calls and imports in ``source`` that can run code from a file: unpickling modules, ``torch.load``
    without ``weights_only=True``, ``numpy.load`` with ``allow_pickle=True``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            found += [f"import {name}" for name in names if name and name.split(".")[0] in UNPICKLING_MODULES]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
            owner = ast.unparse(node.func.value)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if owner == "torch" and keywords.get("weights_only") != "True":
                found.append(ast.unparse(node))
            if owner in ("np", "numpy") and keywords.get("allow_pickle") == "True":
                found.append(ast.unparse(node))
    return found


def test_the_checker_flags_unsafe_loads():
    source = (
        "import pickle\nimport torch\ntorch.load(f)\ntorch.load(f, weights_only=True)\nnp.load(f, allow_pickle=True)\n"
    )
    assert unsafe_loads(source) == ["import pickle", "torch.load(f)", "np.load(f, allow_pickle=True)"]


def test_package_never_unpickles_files():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    found = {str(path.relative_to(PACKAGE)): unsafe_loads(path.read_text(encoding="utf-8")) for path in sources}
    assert {path: calls for path, calls in found.items() if calls} == {}
