"""Per-task export to stock transformers classes: same outputs, stock configs, pipelines, clear refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import assert_same_logits
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertModel,
    pipeline,
)

from mtl_nlp.cli import main
from mtl_nlp.errors import ExportError
from mtl_nlp.export import export_task, stock_state_dict
from mtl_nlp.modeling import MultiTaskModel

TASKS = {
    "ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]},
    "sentiment": {
        "type": "sequence_classification",
        "id2label": ["negative", "positive"],
        "problem_type": "single_label_classification",
    },
    "topics": {
        "type": "sequence_classification",
        "id2label": ["business", "sport", "politics"],
        "problem_type": "multi_label_classification",
    },
    "qa": {"type": "question_answering"},
}
AUTO_CLASSES = {
    "ner": AutoModelForTokenClassification,
    "sentiment": AutoModelForSequenceClassification,
    "topics": AutoModelForSequenceClassification,
    "qa": AutoModelForQuestionAnswering,
}
TEXTS = ["Angela Merkel met officials of Siemens in Munich on Tuesday .", "The film was a wonderful surprise ."]
QUESTIONS = ["Who met officials in Munich ?", "What was the film ?"]
ARCHITECTURES = ["tiny_model_dir", "tiny_roberta_dir", "tiny_distilbert_dir"]
# Stock weights that the shared encoder has and a stock head does not (RoBERTa's heads and BERT's token and QA
# heads have no pooler; DistilBERT has none at all). Export may leave out these and nothing else.
LEFT_OUT = {
    ("tiny_model_dir", "ner"): {"bert.pooler.dense.weight", "bert.pooler.dense.bias"},
    ("tiny_model_dir", "qa"): {"bert.pooler.dense.weight", "bert.pooler.dense.bias"},
    **{("tiny_roberta_dir", task): {"roberta.pooler.dense.weight", "roberta.pooler.dense.bias"} for task in TASKS},
}


@pytest.fixture(scope="module", params=ARCHITECTURES)
def exported(request, tmp_path_factory):
    """A multi-task model with random heads on a tiny backbone, and every task exported."""
    backbone = request.getfixturevalue(request.param)
    model = MultiTaskModel.from_backbone(str(backbone), TASKS).eval()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    directory = tmp_path_factory.mktemp(f"export-{request.param}")
    for task in TASKS:
        export_task(model, task, directory / task, tokenizer)
    return request.param, model, tokenizer, directory


def outputs_of(model, **inputs):
    return {name: value for name, value in model(**inputs).items() if name.endswith("logits")}


def test_exports_load_with_stock_classes_and_give_the_same_outputs(exported):
    _, model, _, directory = exported
    for task, auto_class in AUTO_CLASSES.items():
        stock = auto_class.from_pretrained(directory / task).eval()
        assert type(stock).__module__.startswith("transformers.models.")
        assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= set(os.listdir(directory / task))
        reloaded_tokenizer = AutoTokenizer.from_pretrained(directory / task)
        pairs = (QUESTIONS, TEXTS) if task == "qa" else (TEXTS,)
        batch = reloaded_tokenizer(*pairs, padding=True, return_tensors="pt")
        assert batch["attention_mask"].min() == 0  # the batch is padded, so masking is compared too
        with torch.no_grad():
            expected, actual = outputs_of(model, task=task, **batch), outputs_of(stock, **batch)
        assert expected.keys() == actual.keys() and expected
        for name in expected:
            assert_same_logits(actual[name], expected[name])


def test_labels_and_problem_type_come_from_the_task_spec(exported):
    _, _, _, directory = exported
    for task in ("ner", "sentiment", "topics"):
        config = AutoConfig.from_pretrained(directory / task)
        labels = TASKS[task]["id2label"]
        assert config.id2label == dict(enumerate(labels))
        assert config.label2id == {label: i for i, label in enumerate(labels)}
        assert config.problem_type == TASKS[task].get("problem_type")
        assert config.model_type != "mtl_nlp" and "auto_map" not in config.to_dict()


def test_only_encoder_weights_the_stock_class_lacks_are_left_out(exported):
    architecture, model, _, _ = exported
    for task, auto_class in AUTO_CLASSES.items():
        stock = auto_class.from_config(model.heads[task].config)
        state = stock_state_dict(model, task, stock)
        encoder_keys = {f"{stock.base_model_prefix}.{key}" for key in model.encoder.state_dict()}
        assert set(state) == set(stock.state_dict())
        assert encoder_keys - set(state) == LEFT_OUT.get((architecture, task), set())


def test_exports_run_in_transformers_pipelines(exported):
    _, model, tokenizer, directory = exported
    tagger = pipeline("token-classification", model=str(directory / "ner"))
    batch = tokenizer(TEXTS[0], return_tensors="pt", return_special_tokens_mask=True)
    special = batch.pop("special_tokens_mask")[0].bool()
    with torch.no_grad():
        predicted = model(task="ner", **batch).logits[0].argmax(-1)
    labels = TASKS["ner"]["id2label"]
    expected = {(i, labels[p]) for i, p in enumerate(predicted.tolist()) if not special[i] and labels[p] != "O"}
    assert {(entity["index"], entity["entity"]) for entity in tagger(TEXTS[0])} == expected

    for task, squash in (("sentiment", torch.softmax), ("topics", lambda x, dim: torch.sigmoid(x))):
        classifier = pipeline("text-classification", model=str(directory / task), top_k=None)
        with torch.no_grad():
            logits = model(task=task, **tokenizer(TEXTS[1], return_tensors="pt")).logits[0]
        expected = dict(zip(TASKS[task]["id2label"], squash(logits, dim=-1).tolist()))
        scores = {result["label"]: result["score"] for result in classifier([TEXTS[1]])[0]}
        # The pipeline applies softmax/sigmoid itself, in numpy; float32 rounding differs from torch's.
        assert scores == pytest.approx(expected, abs=1e-6)


def test_export_loads_in_a_process_without_mtl_nlp(tiny_model_dir, tmp_path):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), {"ner": TASKS["ner"]}).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    export_task(model, "ner", tmp_path / "ner", tokenizer)
    script = (
        "import json, sys, torch\n"
        "from transformers import AutoModelForTokenClassification, AutoTokenizer\n"
        f"model = AutoModelForTokenClassification.from_pretrained({str(tmp_path / 'ner')!r}).eval()\n"
        f"tokenizer = AutoTokenizer.from_pretrained({str(tmp_path / 'ner')!r})\n"
        "with torch.no_grad():\n"
        f"    logits = model(**tokenizer({TEXTS[0]!r}, return_tensors='pt')).logits\n"
        "assert not any(name.startswith('mtl_nlp') for name in sys.modules)\n"
        "print(json.dumps(logits.tolist()))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}  # nothing of this project on the path
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=environment, check=True
    )
    with torch.no_grad():
        expected = model(task="ner", **tokenizer(TEXTS[0], return_tensors="pt")).logits
    assert_same_logits(torch.tensor(json.loads(run.stdout.strip().splitlines()[-1])), expected)


def test_a_stock_weight_missing_from_the_multi_task_model_is_refused(tiny_model_dir, tiny_tokenizer, tmp_path):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), {"sentiment": TASKS["sentiment"]})
    model.encoder = BertModel(model.encoder.config, add_pooling_layer=False)
    with pytest.raises(ExportError, match=r"weights it lacks: bert\.pooler\.dense\.bias, bert\.pooler\.dense\.weight"):
        export_task(model, "sentiment", tmp_path / "out", tiny_tokenizer)


def test_unknown_tasks_and_used_directories_are_refused(tiny_model_dir, tiny_tokenizer, tmp_path):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), {"ner": TASKS["ner"]})
    with pytest.raises(ExportError, match="'pos': the model has no such task; it has ner"):
        export_task(model, "pos", tmp_path / "out", tiny_tokenizer)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an empty directory"):
        export_task(model, "ner", tmp_path / "used", tiny_tokenizer)
    assert (tmp_path / "used" / "notes.txt").read_text() == "keep me"


def test_export_command(tiny_model_dir, tiny_tokenizer, tmp_path, capsys):
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), {"sentiment": TASKS["sentiment"]}).eval()
    model.save_pretrained(tmp_path / "model")
    tiny_tokenizer.save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--task", "sentiment", str(tmp_path / "out")]) == 0
    assert "exported to" in capsys.readouterr().out
    stock = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    batch = tiny_tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert_same_logits(stock(**batch).logits, model(task="sentiment", **batch).logits)
    assert main(["export", str(tmp_path / "model"), "--task", "ner", str(tmp_path / "other")]) == 2
    assert "the model has no such task" in capsys.readouterr().err
    assert main(["export", str(tiny_model_dir), "--task", "ner", str(tmp_path / "other")]) == 2
    assert "not an mtl-nlp multi-task model" in capsys.readouterr().err
