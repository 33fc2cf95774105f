"""Publishing: the dry-run folder is exactly what is uploaded, reloads, and carries a card; one commit; no token."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client, to build the error it raises
import pytest
import torch
import yaml
from conftest import assert_same_logits
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from mtl_nlp import MultiTaskModel, recipe_from_dict
from mtl_nlp.cli import main
from mtl_nlp.errors import ExportError, HubError, ModelLoadError
from mtl_nlp.evaluation.reports import write_eval_results
from mtl_nlp.hub import prepare_upload, push_to_hub
from mtl_nlp.tasks import TaskEvaluation

FAKE_TOKEN = "hf_mtlNlpFakeTokenThatMustNeverBeWritten"
REPO = "me/tiny-mtl"
RECIPE = {
    "output_dir": "runs/hub",
    "tasks": {
        "ner": {"type": "token_classification", "data": {"hub_dataset": "conll2003"}},
        "sentiment": {
            "type": "sequence_classification",
            "data": {"train": "data/train.tsv", "validation": "data/dev.tsv"},
            "labels": ["negative", "positive"],
        },
    },
}
LABELS = {"ner": ["O", "B-PER", "I-PER"], "sentiment": ["negative", "positive"]}
TEXT = "Angela Merkel met officials of Siemens in Munich on Tuesday ."


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tiny_tokenizer, tmp_path_factory):
    """A saved multi-task model as a training run leaves it: weights, config, tokenizer, recipe, evaluations."""
    recipe = recipe_from_dict(RECIPE)
    tasks = {
        name: {"type": task.type, "id2label": LABELS[name], "task_config": dataclasses.asdict(task)}
        for name, task in recipe.tasks.items()
    }
    tasks["sentiment"]["problem_type"] = "single_label_classification"
    directory = tmp_path_factory.mktemp("hub") / "model"
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), tasks)
    model.save_pretrained(directory)
    tiny_tokenizer.save_pretrained(directory)
    (directory / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False), encoding="utf-8")
    evaluations = [
        TaskEvaluation("ner", "validation", {"f1": 0.5, "precision": 0.4, "per_type": {}}, "f1", lambda: ("", ""), ""),
        TaskEvaluation(
            "sentiment", "validation", {"accuracy": 0.75, "f1_macro": 0.7}, "accuracy", lambda: ("", ""), ""
        ),
    ]
    write_eval_results(directory, evaluations)
    return directory


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def assert_no_token(folder: Path, *texts: str) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path
    assert all(FAKE_TOKEN not in text for text in texts)


def test_dry_run_folder_reloads_and_its_snippets_run(model_dir, tiny_tokenizer, tmp_path):
    folder = tmp_path / "upload"
    files = prepare_upload(model_dir, folder, REPO, export_tasks=True)
    assert files == files_under(folder)
    assert {"README.md", "recipe.yaml", "eval_results.json"} <= set(files)
    assert set(files_under(model_dir)) <= set(files)
    for task in ("ner", "sentiment"):
        assert {f"tasks/{task}/config.json", f"tasks/{task}/model.safetensors"} <= set(files)

    original = MultiTaskModel.from_pretrained(model_dir).eval()
    reloaded = MultiTaskModel.from_pretrained(folder).eval()
    batch = tiny_tokenizer([TEXT], return_tensors="pt")
    with torch.no_grad():
        for task, auto_class in (("ner", AutoModelForTokenClassification), ("sentiment", None)):
            expected = original(task=task, **batch).logits
            assert torch.equal(reloaded(task=task, **batch).logits, expected)  # the same file, copied
            auto_class = auto_class or AutoModelForSequenceClassification
            stock = auto_class.from_pretrained(folder, subfolder=f"tasks/{task}").eval()
            assert_same_logits(stock(**batch).logits, expected)

    card = ModelCard.load(folder / "README.md", ignore_metadata_errors=False)
    assert card.data.datasets == ["conll2003"]
    assert [(r.metric_name, r.metric_value) for r in card.data.eval_results] == [
        ("ner f1", 0.5),
        ("ner precision", 0.4),
        ("sentiment accuracy", 0.75),
        ("sentiment f1_macro", 0.7),
    ]
    # Every usage snippet of the card runs against the folder as if it were the Hub repository.
    snippets = re.findall(r"```python\n(.*?)```", card.text, flags=re.DOTALL)
    assert len(snippets) == 3
    for snippet in snippets:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(snippet.replace(f'"{REPO}"', repr(str(folder))), {})
        assert output.getvalue().strip()


def test_push_uploads_the_folder_in_one_commit_without_the_token(model_dir, monkeypatch, caplog, capsys):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs, self.token))

    def create_branch(self, repo_id, **kwargs):
        calls.append(("create_branch", repo_id, kwargs, self.token))

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        calls.append(("upload_folder", kwargs["repo_id"], kwargs, files_under(folder)))
        assert_no_token(folder)
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"})()

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_branch", create_branch)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    caplog.set_level(logging.DEBUG)
    assert main(["push", str(model_dir), REPO, "--private", "--revision", "v1", "--export-tasks"]) == 0

    assert [call[0] for call in calls] == ["create_repo", "create_branch", "upload_folder"]
    assert calls[0][1:] == (REPO, {"private": True, "exist_ok": True}, None)  # the token is left to the library
    assert calls[1][1:] == (REPO, {"branch": "v1", "exist_ok": True}, None)
    _, repo_id, upload, uploaded = calls[2]
    assert repo_id == REPO and upload["revision"] == "v1"
    assert "README.md" in uploaded and "tasks/ner/model.safetensors" in uploaded
    assert not Path(upload["folder_path"]).exists()  # the staging folder is removed after the upload
    printed = capsys.readouterr()
    assert f"https://huggingface.co/{REPO}/commit/abc" in printed.out
    assert_no_token(model_dir, caplog.text, printed.out, printed.err)


def test_dry_run_command_lists_the_files_and_sends_nothing(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(HfApi, "create_repo", lambda *args, **kwargs: pytest.fail("dry run must not create"))
    monkeypatch.setattr(HfApi, "upload_folder", lambda *args, **kwargs: pytest.fail("dry run must not upload"))
    folder = tmp_path / "dry"
    assert main(["push", str(model_dir), REPO, "--dry-run", str(folder)]) == 0
    listed = [line.strip() for line in capsys.readouterr().out.splitlines()[1:]]
    assert listed == files_under(folder)
    assert not any(name.startswith("tasks/") for name in listed)
    assert "mtl-nlp export MODEL_DIR" in (folder / "README.md").read_text()


def test_hub_failures_become_one_clear_error(model_dir, monkeypatch):
    # Unpatched, under the tests' HF_HUB_OFFLINE=1, huggingface_hub itself refuses to connect.
    with pytest.raises(HubError, match=r"me/tiny-mtl: the upload failed \(.*offline.*\)\. Check the repository id"):
        push_to_hub(model_dir, REPO)

    def refuse(self, repo_id, **kwargs):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
        raise HfHubHTTPError("401 Unauthorized", response=httpx2.Response(401, request=request))

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    with pytest.raises(HubError, match=r"me/tiny-mtl: the upload failed \(401 Unauthorized\).*`hf auth login`"):
        push_to_hub(model_dir, REPO)


def test_bad_input_is_refused_before_anything_is_written(model_dir, tiny_model_dir, tmp_path):
    with pytest.raises(ExportError, match="repository id 'not a repo'"):
        prepare_upload(model_dir, tmp_path / "a", "not a repo")
    with pytest.raises(ModelLoadError, match="not an mtl-nlp multi-task model"):
        prepare_upload(tiny_model_dir, tmp_path / "b", REPO)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("x")
    with pytest.raises(ExportError, match="not an empty directory"):
        prepare_upload(model_dir, tmp_path / "c", REPO)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_failed_export_leaves_no_half_written_folder(model_dir, tmp_path, monkeypatch):
    def refuse(model, task, out_dir, tokenizer):
        raise ExportError(f"task {task!r}: refused")

    monkeypatch.setattr("mtl_nlp.hub.export_task", refuse)
    with pytest.raises(ExportError, match="refused"):
        prepare_upload(model_dir, tmp_path / "upload", REPO, export_tasks=True)
    assert list(tmp_path.iterdir()) == []
