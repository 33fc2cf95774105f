"""Security: a Hub token or an environment value never reaches saved files or logs, remote code runs only when
asked, no unsafe unpickling."""

from __future__ import annotations

import ast
import base64
import json
import logging
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client
import huggingface_hub
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


REPO = "me/tiny-mtl"


@pytest.fixture
def hub_requests(monkeypatch) -> list[httpx2.Request]:
    """Every request huggingface_hub sends, answered at its HTTP transport, so nothing leaves the machine: the
    repository is created, the card's metadata is valid, every file is pre-uploaded as a regular (inline) file and
    the commit succeeds; anything else is a 404."""
    sent = []

    def answer(transport, request: httpx2.Request) -> httpx2.Response:
        request.read()
        sent.append(request)
        path = request.url.path
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{REPO}"})
        if path == "/api/validate-yaml":  # the model card's metadata
            return httpx2.Response(200, json={"warnings": []})
        if path.startswith(f"/api/models/{REPO}/preupload/"):
            files = json.loads(request.content)["files"]
            modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            return httpx2.Response(200, json={"files": modes})
        if path.startswith(f"/api/models/{REPO}/commit/"):
            commit = {"commitUrl": f"https://huggingface.co/{REPO}/commit/abc", "commitOid": "a" * 40}
            return httpx2.Response(200, json=commit)
        return httpx2.Response(404, json={"error": "not answered by the test"})

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the tests run offline
    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", answer)
    return sent


def committed_files(requests: list[httpx2.Request]) -> dict[str, bytes]:
    """Path → content of every file the commit requests upload (the ndjson payload's base64 file lines)."""
    files = {}
    for request in requests:
        if "/commit/" in request.url.path:
            for line in request.content.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
    return files


def test_training_and_push_never_write_or_log_the_hub_token(
    tiny_model_dir, tmp_path, monkeypatch, caplog, capfd, from_pretrained_calls, hub_requests
):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    training = {"max_steps": 3, "log_every_steps": 1}
    recipe = recipe_from_dict(toy_recipe(tmp_path, tiny_model_dir, train_rows=8, eval_rows=4, training=training))
    output_dir = Path(recipe.output_dir)
    caplog.set_level(logging.DEBUG)
    result = train(recipe)
    assert main(["push", str(result.model_dir), REPO, "--export-tasks"]) == 0

    # The push path reads HF_TOKEN: huggingface_hub sent it with every request of the upload.
    authorized = {r.url.path for r in hub_requests if r.headers.get("authorization") == f"Bearer {FAKE_TOKEN}"}
    upload = {"/api/repos/create", "/api/validate-yaml", f"/api/models/{REPO}/preupload/main"}
    assert upload | {f"/api/models/{REPO}/commit/main"} <= authorized
    uploaded = committed_files(hub_requests)
    assert {"README.md", "recipe.yaml", "model.safetensors", "tasks/ner/model.safetensors"} <= set(uploaded)
    assert [path for path, content in uploaded.items() if FAKE_TOKEN.encode() in content] == []
    assert all(FAKE_TOKEN.encode() not in request.content for request in hub_requests)

    written = sorted(path.name for path in output_dir.rglob("*") if path.is_file())
    assert "model.safetensors" in written and "metrics.jsonl" in written and "recipe.yaml" in written
    assert files_containing(tmp_path, FAKE_TOKEN) == []
    captured = capfd.readouterr()
    assert caplog.records and result.evaluations and f"https://huggingface.co/{REPO}/commit/abc" in captured.out
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
