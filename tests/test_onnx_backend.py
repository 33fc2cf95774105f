"""ONNX export and the ONNX Runtime backend: one graph with every head's outputs, equal to PyTorch's within 1e-4;
the pipeline, ``predict`` and ``evaluate`` decode its outputs exactly as they decode PyTorch's; int8 quantization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import ner_sentiment_qa_tasks, write_conll
from transformers import AutoTokenizer

from mtl_nlp.cli import main
from mtl_nlp.config import DataConfig
from mtl_nlp.errors import ExportError, ModelLoadError
from mtl_nlp.modeling import MultiTaskModel
from mtl_nlp.pipeline import MultiTaskPipeline
from mtl_nlp.serving.backends import load_runner
from mtl_nlp.serving.onnx_backend import ONNX_FILE, ONNX_INFO, export_saved_onnx, load_onnx_model
from mtl_nlp.tasks import TokenClassificationConfig, TokenClassificationTask

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
TASKS = ner_sentiment_qa_tasks(NER_LABELS)
TEXTS = [
    "angela merkel met officials of siemens in munich on tuesday .",
    "the film was wonderful",
    "brazil beat argentina in the final played in rio de janeiro , and the reuters report said the united "
    "nations will meet in geneva next week while shares of toyota fell in tokyo",
]


def save_demo_model(directory: Path, backbone: Path) -> Path:
    """A tiny random model with a token, a classification and a question answering head, saved with its
    tokenizer; its token head is sharpened so that it predicts entities, not only O."""
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(backbone), TASKS).eval()
    with torch.no_grad():
        model.heads["ner"].classifier.weight.mul_(40)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(backbone).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def saved_dir(tiny_model_dir, tmp_path_factory):
    return save_demo_model(tmp_path_factory.mktemp("demo-model"), tiny_model_dir)


@pytest.fixture(scope="module")
def onnx_dir(saved_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "fp32"
    export_saved_onnx(saved_dir, out)
    return out


def encoded(tokenizer, texts):
    return dict(tokenizer(texts, padding=True, return_tensors="pt"))


def test_the_graph_has_every_heads_fields_as_outputs_with_dynamic_batch_and_length(onnx_dir):
    graph = onnx.load(str(onnx_dir / ONNX_FILE))
    outputs = [output.name for output in graph.graph.output]
    assert sorted(outputs) == ["ner.logits", "qa.end_logits", "qa.start_logits", "sentiment.logits"]
    for given in graph.graph.input:
        dims = given.type.tensor_type.shape.dim
        assert [dim.dim_param != "" for dim in dims] == [True, True]  # symbolic batch and sequence axes
    info = json.loads((onnx_dir / ONNX_INFO).read_text())
    assert info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert info["quantization"] is None and info["fp32_max_abs_difference"] <= 1e-4


@pytest.mark.parametrize("texts", [TEXTS[:1], TEXTS, TEXTS[1:2] * 5])
def test_onnx_runtime_logits_equal_pytorchs_within_1e_4(saved_dir, onnx_dir, texts):
    model = MultiTaskModel.from_pretrained(saved_dir).eval()
    heads, tokenizer = load_onnx_model(onnx_dir)
    inputs = encoded(tokenizer, texts)
    with torch.inference_mode():
        expected = model.forward_heads(None, **inputs)
    actual = heads.forward_heads(None, **inputs)
    for task, output in expected.items():
        for field, value in output.items():
            assert actual[task][field].shape == value.shape
            torch.testing.assert_close(actual[task][field], value, rtol=0, atol=1e-4)
    assert float(expected["ner"].logits.abs().max()) > 1  # the comparison is not between near-zero numbers


def test_the_pipeline_on_onnx_runtime_decodes_as_on_pytorch(saved_dir, onnx_dir):
    questions = [None, "what was it ?", "where will the nations meet ?"]
    expected = MultiTaskPipeline(saved_dir, device="cpu")(TEXTS, questions)
    heads, tokenizer = load_runner(onnx_dir, "onnx")
    actual = MultiTaskPipeline(heads, tokenizer, batch_size=2)(TEXTS, questions)
    assert sum(len(result["ner"]) for result in expected) > 0 and "qa" in expected[2]
    for want, got in zip(expected, actual):
        assert got.keys() == want.keys()
        assert [(e["entity_group"], e["start"], e["end"]) for e in got["ner"]] == [
            (e["entity_group"], e["start"], e["end"]) for e in want["ner"]
        ]
        assert [e["score"] for e in got["ner"]] == pytest.approx([e["score"] for e in want["ner"]], abs=1e-4)
        assert got["sentiment"]["label"] == want["sentiment"]["label"]
        assert got["sentiment"]["score"] == pytest.approx(want["sentiment"]["score"], abs=1e-4)
    assert (actual[2]["qa"]["start"], actual[2]["qa"]["end"]) == (expected[2]["qa"]["start"], expected[2]["qa"]["end"])


def test_int8_quantization_shrinks_the_graph_and_keeps_its_outputs(saved_dir, onnx_dir, tmp_path):
    info = export_saved_onnx(saved_dir, tmp_path / "int8", quantize="int8")
    assert info["quantization"] == "int8" and json.loads((tmp_path / "int8" / ONNX_INFO).read_text()) == info
    graph = onnx.load(str(tmp_path / "int8" / ONNX_FILE))
    assert any(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for node in graph.graph.node)
    assert sorted(path.name for path in (tmp_path / "int8").glob("*.onnx")) == [ONNX_FILE]
    heads, tokenizer = load_onnx_model(tmp_path / "int8")
    assert heads.quantization == "int8"
    fp32, _ = load_onnx_model(onnx_dir)
    inputs = encoded(tokenizer, TEXTS)
    quantized, reference = heads.forward_heads(None, **inputs), fp32.forward_heads(None, **inputs)
    difference = (quantized["ner"].logits - reference["ner"].logits).abs().max()
    assert 0 < float(difference) < 0.2 * float(reference["ner"].logits.abs().max())


def test_backends_refuse_the_other_kind_of_directory_with_the_command_to_use(saved_dir, onnx_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="export-onnx"):
        load_runner(saved_dir, "onnx")
    with pytest.raises(ModelLoadError, match="--backend onnx"):
        load_runner(onnx_dir, "torch")
    with pytest.raises(ExportError, match="int4"):
        export_saved_onnx(saved_dir, tmp_path / "q", quantize="int4")
    with pytest.raises(ExportError, match="not an empty directory"):
        export_saved_onnx(saved_dir, onnx_dir)


def test_predict_and_evaluate_take_backend_onnx_and_give_pytorchs_results(saved_dir, onnx_dir, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    outputs = {}
    for backend, directory in (("torch", saved_dir), ("onnx", onnx_dir)):
        outputs[backend] = tmp_path / f"{backend}.jsonl"
        args = ["predict", str(directory), str(texts), "--format", "text", "--output", str(outputs[backend])]
        assert main([*args, "--backend", backend]) == 0
    torch_lines, onnx_lines = (
        [json.loads(line) for line in outputs[b].read_text().splitlines()] for b in ("torch", "onnx")
    )
    assert [[e["word"] for e in r["ner"]] for r in onnx_lines] == [[e["word"] for e in r["ner"]] for r in torch_lines]
    gold = [[(word, "NN", "O", "O") for word in text.split()] for text in TEXTS]
    gold[0][0], gold[0][1] = ("angela", "NNP", "B-NP", "B-PER"), ("merkel", "NNP", "I-NP", "I-PER")
    conll = write_conll(tmp_path / "test.conll", gold, docstart=False)
    metrics, predicted = {}, {}
    for backend, directory in (("torch", saved_dir), ("onnx", onnx_dir)):
        out = tmp_path / f"eval-{backend}"
        args = ["evaluate", str(directory), "--task", "ner", "--file", str(conll), "--output-dir", str(out)]
        assert main([*args, "--backend", backend]) == 0
        metrics[backend] = json.loads((out / "ner.test.report.json").read_text())["metrics"]
        predicted[backend] = (out / "ner.test.predictions.conll").read_text()
    assert "loss" not in metrics["onnx"] and np.isfinite(metrics["torch"].pop("loss"))
    assert metrics["onnx"] == metrics["torch"] and predicted["onnx"] == predicted["torch"]
    assert {line.split()[-1] for line in predicted["onnx"].splitlines() if line} - {"O"}  # it predicts entities
    capsys.readouterr()


def test_export_onnx_command_writes_the_export_and_says_where(saved_dir, tmp_path, capsys):
    assert main(["export-onnx", str(saved_dir), str(tmp_path / "out"), "--quantize", "int8"]) == 0
    assert "int8" in capsys.readouterr().out
    assert (tmp_path / "out" / ONNX_FILE).is_file() and (tmp_path / "out" / "config.json").is_file()
    assert main(["export-onnx", str(tmp_path / "missing"), str(tmp_path / "out2")]) == 2


def test_a_crf_head_exports_its_transition_scores_and_decodes_as_on_pytorch(tiny_model_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = TokenClassificationConfig(
        type="token_classification", data=DataConfig(train="train.conll"), crf=True, labels=NER_LABELS
    )
    description = TokenClassificationTask("ner", config, tokenizer).description()
    torch.manual_seed(1)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), {"ner": description}).eval()
    with torch.no_grad():
        model.heads["ner"].emissions.classifier.weight.mul_(20)
        model.heads["ner"].crf.transitions.normal_(0, 3)
        # Whatever the random tiny encoder, no word is tagged O: every text holds entities to compare.
        model.heads["ner"].emissions.classifier.bias[NER_LABELS.index("O")] = -10.0
    model.save_pretrained(tmp_path / "crf")
    tokenizer.save_pretrained(tmp_path / "crf")
    info = export_saved_onnx(tmp_path / "crf", tmp_path / "onnx")
    assert info["outputs"]["ner"] == ["logits", "start_transitions", "transitions", "end_transitions"]
    expected = MultiTaskPipeline(tmp_path / "crf", device="cpu")(TEXTS)
    actual = MultiTaskPipeline(*load_onnx_model(tmp_path / "onnx"))(TEXTS)
    words = [[(e["entity_group"], e["start"], e["end"]) for e in result["ner"]] for result in expected]
    assert words == [[(e["entity_group"], e["start"], e["end"]) for e in result["ner"]] for result in actual]
    assert sum(map(len, words)) > 0
