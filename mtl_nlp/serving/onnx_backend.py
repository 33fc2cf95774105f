"""One ONNX graph for every head of a multi-task model, and ONNX Runtime running it as the pipeline's backend.

:func:`export_onnx` traces ``MultiTaskModel.forward_heads`` with ``torch.onnx.export`` (the dynamo exporter, with
dynamic batch and sequence axes) into one graph whose outputs are every tensor field of every head's output, named
``<task>.<field>`` (``ner.logits``, ``qa.start_logits`` …). Decoding stays outside the graph, in the task types'
decoders, so any head kind exports whatever its output holds. Before anything is written, ONNX Runtime runs the
graph next to PyTorch on sample texts and must agree within :data:`PARITY_TOLERANCE`; ``quantize="int8"`` then
quantizes the weights to int8 (``onnxruntime.quantization.quantize_dynamic``, activations quantized at run time).

An export directory holds ``model.onnx``, ``onnx.json`` (inputs, each task's output fields, the quantization and
the measured agreement), the model's ``config.json`` (its task descriptions), the tokenizer, and
``eval_results.json`` when the model has one. :class:`OnnxHeads` runs it with ``forward_heads`` like the PyTorch
model, so :class:`~mtl_nlp.pipeline.MultiTaskPipeline` and the evaluation use it unchanged.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from ..errors import ExportError, ModelLoadError
from ..evaluation.reports import EVAL_RESULTS_FILE
from ..export import require_new_directory
from ..modeling import MultiTaskModel
from ..modeling.config import MultiTaskConfig
from ..modeling.model import ENCODER_INPUTS
from ..modeling.saved import load_saved_config, load_saved_model
from ..tokenization import load_tokenizer
from ..training.checkpoint import atomic_directory

ONNX_FILE = "model.onnx"
ONNX_INFO = "onnx.json"
INFO_FORMAT = 1
QUANTIZATIONS = ("int8",)
PARITY_TOLERANCE = 1e-4
"""Largest absolute difference allowed between ONNX Runtime's and PyTorch's fp32 outputs on the sample texts."""
SAMPLE_TEXTS = (
    "mtl-nlp checks that the ONNX graph gives the same outputs",
    "as PyTorch .",
    "on texts of other lengths than the export traced",
)

logger = logging.getLogger(__name__)


class _AllHeads(nn.Module):
    """``forward_heads`` as a traceable function: encoder inputs in, every head's tensor fields out, flat."""

    def __init__(self, model: MultiTaskModel, fields: dict[str, list[str]]) -> None:
        super().__init__()
        self.model = model
        self.fields = fields

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        inputs = {name: value for name, value in given.items() if value is not None}
        outputs = self.model.forward_heads(list(self.fields), **inputs)
        return tuple(outputs[task][field] for task, fields in self.fields.items() for field in fields)


def _sample(tokenizer: PreTrainedTokenizerBase, texts: tuple[str, ...], names: list[str]) -> dict[str, torch.Tensor]:
    encoded = tokenizer(list(texts), padding=True, return_tensors="pt")
    return {name: encoded[name] for name in names}


def _head_fields(model: MultiTaskModel, sample: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Per task, the tensor fields its head returns (``logits``; ``start_logits``, ``end_logits`` …), in order."""
    with torch.inference_mode():
        outputs = model.forward_heads(None, **sample)
    return {
        task: [field for field, value in output.items() if isinstance(value, torch.Tensor)]
        for task, output in outputs.items()
    }


def _max_difference(heads: OnnxHeads, model: MultiTaskModel, sample: dict[str, torch.Tensor]) -> float:
    """The largest absolute difference between ONNX Runtime's and PyTorch's outputs on ``sample``."""
    with torch.inference_mode():
        expected = model.forward_heads(None, **sample)
    actual = heads.forward_heads(None, **sample)
    return max(
        float((actual[task][field] - expected[task][field].float()).abs().max())
        for task, fields in heads.fields.items()
        for field in fields
    )


def export_onnx(
    model: MultiTaskModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    quantize: str | None = None,
    source_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write ``model`` as one ONNX graph with every head's outputs, plus its tokenizer and task descriptions, to
    ``out_dir`` (new or empty); ``quantize="int8"`` quantizes the weights. ``eval_results.json`` is copied from
    ``source_dir`` when there is one. Returns what ``onnx.json`` records."""
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize {quantize!r}: choose one of {', '.join(QUANTIZATIONS)} (or none for fp32).")
    out_dir = require_new_directory(out_dir)
    model = model.eval().to("cpu")
    names = [name for name in ENCODER_INPUTS if name in tokenizer.model_input_names]
    trace_sample = _sample(tokenizer, SAMPLE_TEXTS[:2], names)  # batch and length above 1: both stay dynamic
    fields = _head_fields(model, trace_sample)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with atomic_directory(out_dir) as staging:
        fp32_path = staging / (ONNX_FILE if quantize is None else "model.fp32.onnx")
        program = torch.onnx.export(
            _AllHeads(model, fields).eval(),
            kwargs=trace_sample,
            dynamo=True,
            verbose=False,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            input_names=names,
            output_names=[f"{task}.{field}" for task, task_fields in fields.items() for field in task_fields],
            external_data=False,
        )
        program.save(str(fp32_path), external_data=False)
        check_sample = _sample(tokenizer, SAMPLE_TEXTS, names)
        info: dict[str, Any] = {"format": INFO_FORMAT, "inputs": names, "outputs": fields, "quantization": quantize}
        difference = _max_difference(OnnxHeads(fp32_path, info=info, config=model.config), model, check_sample)
        if difference > PARITY_TOLERANCE:
            raise ExportError(
                f"ONNX Runtime's outputs differ from PyTorch's by up to {difference:.3g} (allowed "
                f"{PARITY_TOLERANCE:g}); this model does not export faithfully to ONNX."
            )
        info["fp32_max_abs_difference"] = difference
        if quantize is not None:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(fp32_path, staging / ONNX_FILE, weight_type=QuantType.QInt8)
            fp32_path.unlink()
            info["int8_max_abs_difference"] = _max_difference(
                OnnxHeads(staging / ONNX_FILE, info=info, config=model.config), model, check_sample
            )
        (staging / ONNX_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        model.config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if source_dir is not None and (Path(source_dir) / EVAL_RESULTS_FILE).is_file():
            shutil.copyfile(Path(source_dir) / EVAL_RESULTS_FILE, staging / EVAL_RESULTS_FILE)
    logger.info(
        "ONNX graph written to %s; outputs: %s.", out_dir, ", ".join(f"{t}.{f}" for t in fields for f in fields[t])
    )
    return info


def export_saved_onnx(model_dir: str | Path, out_dir: str | Path, quantize: str | None = None) -> dict[str, Any]:
    """Export the multi-task model saved in ``model_dir`` to ONNX in ``out_dir`` (see :func:`export_onnx`)."""
    model, tokenizer = load_saved_model(model_dir)
    return export_onnx(model, tokenizer, out_dir, quantize=quantize, source_dir=model_dir)


def read_onnx_info(directory: str | Path) -> dict[str, Any]:
    """The ``onnx.json`` of an export directory; a clear error when ``directory`` is not one."""
    path = Path(directory) / ONNX_INFO
    if not path.is_file() or not (Path(directory) / ONNX_FILE).is_file():
        raise ModelLoadError(
            f"{directory}: no ONNX export here ({ONNX_FILE} and {ONNX_INFO}); write one with "
            f"`mtl-nlp export-onnx {directory} OUT_DIR`, or run this directory with --backend torch."
        )
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("format", 0) > INFO_FORMAT:
        raise ModelLoadError(f"{path}: format {info['format']} is newer than this mtl-nlp reads; upgrade mtl-nlp.")
    return info


class OnnxHeads:
    """The heads of an ONNX export, run by ONNX Runtime on the CPU, with the PyTorch model's ``forward_heads``.

    Args:
        graph: the ``model.onnx`` of an export directory.
        info: its ``onnx.json``; read from beside the graph when not given.
        config: the model's config (task descriptions); read from beside the graph when not given.
        threads: ONNX Runtime's intra-op threads (default: its own choice, one per physical core).
    """

    def __init__(
        self,
        graph: str | Path,
        *,
        info: dict[str, Any] | None = None,
        config: MultiTaskConfig | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime

        graph = Path(graph)
        info = info or read_onnx_info(graph.parent)
        self.config = config or load_saved_config(graph.parent)
        self.fields: dict[str, list[str]] = info["outputs"]
        self.quantization: str | None = info.get("quantization")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.inputs = [given.name for given in self.session.get_inputs()]

    def forward_heads(self, tasks: list[str] | None = None, **encoder_inputs: torch.Tensor) -> dict[str, ModelOutput]:
        """Every head in ``tasks`` (default: all) on the encoder inputs: per task, its output fields as CPU
        tensors, under the names the PyTorch head's output has."""
        tasks = list(tasks or self.fields)
        unknown = next((task for task in tasks if task not in self.fields), None)
        if unknown is not None:
            raise KeyError(f"no head for task {unknown!r}; this model has {', '.join(self.fields)}.")
        missing = [name for name in self.inputs if name not in encoder_inputs]
        if missing:
            raise KeyError(f"the ONNX graph needs the inputs {', '.join(missing)}.")
        feed = {name: np.ascontiguousarray(encoder_inputs[name].cpu().numpy()) for name in self.inputs}
        names = [f"{task}.{field}" for task in tasks for field in self.fields[task]]
        values = iter(self.session.run(names, feed))
        return {
            task: ModelOutput({field: torch.from_numpy(next(values)) for field in self.fields[task]}) for task in tasks
        }


def load_onnx_model(directory: str | Path, threads: int | None = None) -> tuple[OnnxHeads, PreTrainedTokenizerBase]:
    """The ONNX export in ``directory`` as :class:`OnnxHeads`, and its tokenizer."""
    info = read_onnx_info(directory)
    heads = OnnxHeads(Path(directory) / ONNX_FILE, info=info, threads=threads)
    return heads, load_tokenizer(str(directory))
