"""Bad input, one row each: how it is built, the error it must raise and what the message must say.

Every message names where the problem is (file and line, example, recipe key or model path) and what to do.
The row ids are the ones docs/troubleshooting.md lists; a test keeps the two in step.
"""

from __future__ import annotations

import logging
import re
import runpy
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_ENCODER_SIZE, token_predictions, toy_recipe, write_conll
from transformers import BertConfig, BertForSequenceClassification, LongformerConfig, PreTrainedModel

from mtl_nlp import MultiTaskModel, MultiTaskPipeline, train
from mtl_nlp.config import DataConfig, load_recipe, recipe_from_dict
from mtl_nlp.data.loading import load_splits
from mtl_nlp.errors import DataError, InputError, ModelBuildError, ModelLoadError, RecipeError, TrainingError
from mtl_nlp.evaluation.saved_model import evaluate_file
from mtl_nlp.modeling import MultiTaskConfig
from mtl_nlp.tasks import InferenceInput, build_task
from mtl_nlp.tokenization import load_tokenizer
from mtl_nlp.training.finetune import load_run_recipe

TROUBLESHOOTING = Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md"
SENTIMENT_LABELS = ["negative", "positive"]


@dataclass(frozen=True)
class Context:
    """What a row may use to build its bad input."""

    tmp: Path
    model_dir: Path
    tokenizer: object


@dataclass(frozen=True)
class Row:
    """One bad input: ``build`` writes it under ``tmp`` and returns the call that must fail."""

    id: str
    build: Callable[[Context], Callable[[], object]]
    error: type[Exception]
    message: str


def prepared_task(ctx: Context, kind: str, files: dict[str, Path], **settings) -> Callable[[], object]:
    """The call that loads, checks and encodes one task of ``kind`` over ``files`` (split → path)."""
    name = "ner" if kind == "token_classification" else "sentiment"

    def prepare():
        data = {split: str(path) for split, path in files.items()}
        recipe = recipe_from_dict({"tasks": {name: {"type": kind, "data": data, **settings}}})
        task = build_task(name, recipe.tasks[name], ctx.tokenizer)
        task.prepare()
        return task

    return prepare


def ner(ctx: Context, train: Path, validation: Path | None = None, **settings) -> Callable[[], object]:
    files = {"train": train, **({"validation": validation} if validation else {})}
    return prepared_task(ctx, "token_classification", files, **settings)


def sentiment(ctx: Context, train: Path, validation: Path | None = None, **settings) -> Callable[[], object]:
    files = {"train": train, **({"validation": validation} if validation else {})}
    return prepared_task(ctx, "sequence_classification", files, **settings)


def conll(ctx: Context, name: str, *tags: str) -> Path:
    """A CoNLL file with one sentence per tag (the sentence of tag i starts on line 3 + 2 i)."""
    return write_conll(ctx.tmp / name, [[(f"word{i}", "NN", "O", tag)] for i, tag in enumerate(tags)])


def text_file(ctx: Context, name: str, content: str | bytes) -> Path:
    path = ctx.tmp / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


TSV = "text\tlabel\nthe film was wonderful\tpositive\nthe food arrived cold\tnegative\n"


def recipe(ctx: Context, text: str) -> Callable[[], object]:
    path = text_file(ctx, "recipe.yaml", text)
    return lambda: load_recipe(path)


MINIMAL_TASKS = "tasks:\n  ner:\n    type: token_classification\n    data: {train: train.conll}\n"
TASK = {"ner": {"type": "token_classification", "id2label": ["O", "B-PER", "I-PER"]}}
LORA = {"type": "lora", "r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["query"]}


def tiny_model(ctx: Context) -> MultiTaskModel:
    return MultiTaskModel.from_backbone(str(ctx.model_dir), TASK)


def teacher(ctx: Context, tasks: dict = TASK, tokenizer: object = None) -> Path:
    """A saved multi-task model with (untrained) heads for ``tasks`` and ``tokenizer`` (default: the student's)."""
    directory = ctx.tmp / "teacher"
    MultiTaskModel.from_backbone(str(ctx.model_dir), tasks).save_pretrained(directory)
    (tokenizer or ctx.tokenizer).save_pretrained(directory)
    return directory


def stock_sentiment_teacher(ctx: Context) -> Path:
    """A stock sequence classification checkpoint with the student's tokenizer."""
    directory = ctx.tmp / "stock-teacher"
    BertForSequenceClassification(BertConfig.from_pretrained(ctx.model_dir)).save_pretrained(directory)
    ctx.tokenizer.save_pretrained(directory)
    return directory


def tokenizer_with_another_token(ctx: Context) -> object:
    tokenizer = load_tokenizer(str(ctx.model_dir))
    tokenizer.add_tokens(["siemens-ag"])
    return tokenizer


def distilled_run(ctx: Context, teacher_path: Path | str, **settings) -> Callable[[], object]:
    """The call that trains an NER task (tags O, B-PER, I-PER) distilled from one teacher."""
    data = {"train": str(conll(ctx, "train.conll", "B-PER", "I-PER", "O"))}
    raw = {
        "model": {"name_or_path": str(ctx.model_dir)},
        "output_dir": str(ctx.tmp / "out"),
        "tasks": {"ner": {"type": "token_classification", "data": data, **settings}},
        "distillation": {"teachers": {"ner": [str(teacher_path)]}},
    }
    return lambda: train(recipe_from_dict(raw))


ROWS = [
    # CoNLL files
    Row(
        "conll-wrong-column-count",
        lambda ctx: ner(ctx, text_file(ctx, "train.conll", "EU NNP B-NP B-ORG\nrejects VBZ O\n")),
        DataError,
        r"train\.conll:2: expected 4 columns \(tokens pos chunk ner\), found 3: 'rejects VBZ O'\. Fix the line, "
        r"or set data\.conll_columns",
    ),
    Row(
        "tag-outside-scheme-underscore",
        lambda ctx: ner(ctx, conll(ctx, "train.conll", "B-PER", "B_PER")),
        DataError,
        r"train\.conll:5: tag 'B_PER' is not a tag of the IOB2 scheme \(O, B-TYPE, I-TYPE\)\. Fix the tag, or set "
        r"tasks\.ner\.tag_scheme",
    ),
    Row(
        "tag-outside-scheme-prefix",
        lambda ctx: ner(ctx, conll(ctx, "train.conll", "O", "X-LOC")),
        DataError,
        r"train\.conll:5: tag 'X-LOC' is not a tag of the IOB2 scheme .* Fix the tag",
    ),
    Row(
        "tag-of-another-scheme",
        lambda ctx: ner(ctx, conll(ctx, "train.conll", "B-PER", "S-LOC")),
        DataError,
        r"train\.conll:5: tag 'S-LOC' is not a tag of the IOB2 scheme .* set tasks\.ner\.tag_scheme to the "
        r"file's scheme",
    ),
    Row(
        "dev-tag-not-in-train",
        lambda ctx: ner(ctx, conll(ctx, "train.conll", "B-PER", "O"), conll(ctx, "dev.conll", "O", "B-ORG")),
        DataError,
        r"dev\.conll:5: tag 'B-ORG' does not occur in the training data\. Add it to tasks\.ner\.labels",
    ),
    Row(
        "tag-not-in-recipe-labels",
        lambda ctx: ner(ctx, conll(ctx, "train.conll", "B-PER", "B-MISC"), labels=["O", "B-PER", "I-PER"]),
        DataError,
        r"train\.conll:5: tag 'B-MISC' does not occur in the task's labels\. Add it to tasks\.ner\.labels",
    ),
    Row(
        "tokens-tags-length-mismatch",
        lambda ctx: ner(
            ctx,
            text_file(
                ctx,
                "train.jsonl",
                '{"tokens": ["Angela", "met"], "ner": ["B-PER", "O"]}\n{"tokens": ["Rio", "de"], "ner": ["B-LOC"]}\n',
            ),
        ),
        DataError,
        r"train\.jsonl: example 1: 2 tokens but 1 tags\. Give exactly one tag per token",
    ),
    # Sequence classification files
    Row(
        "dev-label-not-in-train",
        lambda ctx: sentiment(
            ctx,
            text_file(ctx, "train.tsv", TSV),
            text_file(ctx, "dev.tsv", "text\tlabel\nfine\tpositive\nmeh\tmixed\n"),
        ),
        DataError,
        r"dev\.tsv:3: label 'mixed' is not one of \['negative', 'positive'\]\. Fix the label or "
        r"tasks\.sentiment\.labels",
    ),
    Row(
        "label-not-in-recipe-labels",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.tsv", TSV + "it was fine\tmixed\n"), labels=SENTIMENT_LABELS),
        DataError,
        r"train\.tsv:4: label 'mixed' is not one of \['negative', 'positive'\]\. Fix the label or "
        r"tasks\.sentiment\.labels",
    ),
    Row(
        "missing-label-column",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.tsv", "text\tsentiment\ngreat\tpositive\n")),
        DataError,
        r"train\.tsv: no column 'label' \(columns: text, sentiment\)\. Set tasks\.sentiment\.text_column / "
        r"label_column",
    ),
    Row(
        "missing-text-column",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.csv", "sentence,label\ngreat,positive\n")),
        DataError,
        r"train\.csv: no column 'text' \(columns: sentence, label\)\. Set tasks\.sentiment\.text_column",
    ),
    Row(
        "empty-label-cell",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.tsv", TSV + "no label here\t\n")),
        DataError,
        r"train\.tsv:4: the 'label' value is empty\. Fill it in or remove the example",
    ),
    Row(
        "tsv-wrong-field-count",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.tsv", TSV + "one\ttoo\tmany\n")),
        DataError,
        r"train\.tsv: could not be read as tsv \(.*line 4, saw 3\)\. Fix the file, or set data\.format",
    ),
    # Empty files and splits
    Row(
        "empty-conll-file",
        lambda ctx: ner(ctx, text_file(ctx, "train.conll", "")),
        DataError,
        r"train\.conll: the train split has no examples\. Give a file with examples",
    ),
    Row(
        "empty-tsv-file",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.tsv", "")),
        DataError,
        r"train\.tsv: the file has no examples\. Give a file with a header row and examples",
    ),
    Row(
        "conll-split-only-docstart",
        lambda ctx: ner(ctx, conll(ctx, "train.conll", "O"), text_file(ctx, "dev.conll", "-DOCSTART- -X- -X- O\n\n")),
        DataError,
        r"dev\.conll: the validation split has no examples\. Give a file with examples",
    ),
    Row(
        "tsv-split-only-header",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.tsv", TSV), text_file(ctx, "dev.tsv", "text\tlabel\n")),
        DataError,
        r"dev\.tsv: the file has no examples\. Give a file with a header row and examples",
    ),
    Row(
        "missing-data-file",
        lambda ctx: ner(ctx, ctx.tmp / "no-such-file.conll"),
        DataError,
        r"no-such-file\.conll: no such file\. Check the path in the recipe's data section",
    ),
    Row(
        "hub-dataset-not-found",
        lambda ctx: lambda: load_splits(DataConfig(hub_dataset=str(ctx.tmp / "no-such-dataset"))),
        DataError,
        r"no-such-dataset: could not be loaded as a dataset \(.*\)\. Check data\.hub_dataset \(a Hub id, or a dataset "
        r"folder",
    ),
    Row(
        "unknown-file-extension",
        lambda ctx: sentiment(ctx, text_file(ctx, "train.xlsx", "text,label\n")),
        DataError,
        r"train\.xlsx: cannot tell the format from the extension '\.xlsx'; set data\.format",
    ),
    # Encodings
    Row(
        "non-utf8-conll",
        lambda ctx: ner(
            ctx, text_file(ctx, "train.conll", "Zürich NNP B-NP B-LOC\nMünchen NNP B-NP B-LOC\n".encode("latin-1"))
        ),
        DataError,
        r"train\.conll:1: bytes that are not UTF-8 .*\. Re-encode the file as UTF-8",
    ),
    Row(
        "non-utf8-tsv",
        lambda ctx: sentiment(
            ctx, text_file(ctx, "train.tsv", TSV.encode() + "München ist schön\tpositive\n".encode("latin-1"))
        ),
        DataError,
        r"train\.tsv:4: bytes that are not UTF-8 .*\. Re-encode the file as UTF-8",
    ),
    Row(
        "non-utf8-jsonl",
        lambda ctx: sentiment(
            ctx,
            text_file(
                ctx,
                "train.jsonl",
                b'{"text": "great", "label": "positive"}\n{"text": "M\xfcnchen", "label": "positive"}\n',
            ),
        ),
        DataError,
        r"train\.jsonl:2: bytes that are not UTF-8 .*\. Re-encode the file as UTF-8",
    ),
    # Recipes
    Row(
        "unknown-key-top-level",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "trainig:\n  max_steps: 10\n"),
        RecipeError,
        r"recipe\.yaml: trainig: unknown key\. Did you mean 'training'\? Valid keys here: .*training",
    ),
    Row(
        "unknown-key-nested",
        lambda ctx: recipe(ctx, "tasks:\n  ner:\n    type: token_classification\n    data: {trian: a.conll}\n"),
        RecipeError,
        r"recipe\.yaml: tasks\.ner\.data\.trian: unknown key\. Did you mean 'train'\?",
    ),
    Row(
        "unknown-task-type",
        lambda ctx: recipe(ctx, "tasks:\n  ner:\n    type: token_clasification\n    data: {train: a.conll}\n"),
        RecipeError,
        r"recipe\.yaml: tasks\.ner\.type: unknown task type 'token_clasification'\. Did you mean "
        r"'token_classification'\?",
    ),
    Row(
        "wrong-value-type",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "training:\n  max_steps: ten\n"),
        RecipeError,
        r"recipe\.yaml: training\.max_steps: expected a number, got 'ten'",
    ),
    Row(
        "value-not-allowed",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "training:\n  mixed_precision: fp8\n"),
        RecipeError,
        r"recipe\.yaml: training\.mixed_precision: 'fp8' is not allowed; choose one of 'no', 'fp16', 'bf16'",
    ),
    Row(
        "number-out-of-range",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "training:\n  warmup_ratio: 1.5\n"),
        RecipeError,
        r"recipe\.yaml: training\.warmup_ratio: must be from 0 to 1, got 1\.5\. Set it in that range",
    ),
    Row(
        "zero-interval",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "training:\n  log_every_steps: 0\n"),
        RecipeError,
        r"recipe\.yaml: training\.log_every_steps: must be at least 1, got 0\. Set it in that range",
    ),
    Row(
        "zero-where-null-is-meant",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "training:\n  max_steps: 0\n"),
        RecipeError,
        r"recipe\.yaml: training\.max_steps: must be at least 1 or null, got 0\. Set it in that range",
    ),
    Row(
        "negative-task-setting",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "    loss_weight: -1\n"),
        RecipeError,
        r"recipe\.yaml: tasks\.ner\.loss_weight: must be at least 0, got -1\.0\. Set it in that range",
    ),
    Row(
        "cross-stitch-without-task-layers",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "model:\n  sharing: {cross_stitch: true}\n"),
        RecipeError,
        r"recipe\.yaml: model\.sharing\.cross_stitch: cross-stitch units mix the task-specific layers of two tasks "
        r"or more; set model\.sharing\.task_layers to 1 or more",
    ),
    Row(
        "gradnorm-in-one-task-mode",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "weighting: {method: gradnorm}\n"),
        RecipeError,
        r"recipe\.yaml: weighting\.method: gradnorm compares every task's gradient at each step, which one_task "
        r"sampling does not have .*; set sampling\.mode: all_tasks",
    ),
    Row(
        "gradnorm-with-a-frozen-encoder",
        lambda ctx: (
            lambda: train(
                recipe_from_dict(
                    toy_recipe(
                        ctx.tmp,
                        ctx.model_dir,
                        model={"name_or_path": str(ctx.model_dir), "freeze_encoder": True},
                        sampling={"mode": "all_tasks"},
                        weighting={"method": "gradnorm"},
                    )
                )
            )
        ),
        TrainingError,
        r"weighting\.method: gradnorm balances the tasks' gradients at the last shared encoder layer, which does "
        r"not train here \(model\.freeze_encoder\); unfreeze the encoder",
    ),
    Row(
        "crf-with-all-subtokens",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "    crf: true\n    label_all_subtokens: true\n"),
        RecipeError,
        r"recipe\.yaml: tasks\.ner\.crf: a CRF reads one emission per word \(its first sub-token\); set "
        r"label_all_subtokens: false",
    ),
    Row(
        "crf-on-a-classification-task",
        lambda ctx: recipe(
            ctx, "tasks:\n  s:\n    type: sequence_classification\n    data: {train: a.tsv}\n    crf: true\n"
        ),
        RecipeError,
        r"recipe\.yaml: tasks\.s\.crf: unknown key\.",
    ),
    # Models
    Row(
        "task-layers-beyond-the-encoder",
        lambda ctx: lambda: MultiTaskModel.from_backbone(str(ctx.model_dir), TASK, sharing={"task_layers": 2}),
        ModelBuildError,
        r"model\.sharing\.task_layers: 2 must be from 0 to 1: the encoder has 2 layers and at least one stays shared",
    ),
    Row(
        "adapter-targets-nothing",
        lambda ctx: (
            lambda: MultiTaskModel.from_backbone(
                str(ctx.model_dir), {"ner": {**TASK["ner"], "adapter": {**LORA, "target_modules": ["q_proj"]}}}
            )
        ),
        ModelBuildError,
        r"tasks\.ner\.adapter\.target_modules: \['q_proj'\] cannot be adapted on the 'bert' encoder .* Its "
        r"linear layers are named: .*query",
    ),
    Row(
        "head-with-its-own-encoder-inputs",
        lambda ctx: (
            lambda: MultiTaskModel(
                MultiTaskConfig(
                    encoder=LongformerConfig(vocab_size=50, attention_window=4, **TINY_ENCODER_SIZE).to_dict(),
                    tasks={"s": {"type": "sequence_classification"}},
                )
            )
        ),
        ModelBuildError,
        r"The LongformerForSequenceClassification head of the 'longformer' backbone passes its own "
        r"'global_attention_mask' to its encoder",
    ),
    # Models
    Row(
        "model-path-missing",
        lambda ctx: lambda: load_tokenizer(str(ctx.tmp / "no-such-model")),
        ModelLoadError,
        r"model '.*no-such-model': no such directory .*\. Give the directory that holds config\.json",
    ),
    Row(
        "model-relative-path-missing",
        lambda ctx: lambda: load_tokenizer("no-such-runs/exp1/model"),
        ModelLoadError,
        r"model 'no-such-runs/exp1/model': no such directory .*\. Give the directory that holds config\.json",
    ),
    Row(
        "model-dir-without-config",
        lambda ctx: lambda: load_tokenizer(str(ctx.tmp)),
        ModelLoadError,
        r"has no config\.json, so it is not a saved model\. Give the directory that holds config\.json",
    ),
    Row(
        "predict-empty-text",
        lambda ctx: lambda: MultiTaskPipeline(tiny_model(ctx), ctx.tokenizer, device="cpu")(["fine", "  "]),
        InputError,
        r"input 1: the text is empty or only whitespace; give some text to predict on\.",
    ),
    Row(
        "predict-unknown-task",
        lambda ctx: lambda: MultiTaskPipeline(tiny_model(ctx), ctx.tokenizer, device="cpu")(["fine"], tasks=["pos"]),
        InputError,
        r"unknown task 'pos'; this model has ner\.",
    ),
    Row(
        "predict-empty-word",
        lambda ctx: (
            lambda: MultiTaskPipeline(tiny_model(ctx), ctx.tokenizer, device="cpu").predict(
                [InferenceInput.from_words(["fine", ""])]
            )
        ),
        InputError,
        r"input 0: word '' is empty or holds whitespace; give each word as a non-empty string without spaces\.",
    ),
    Row(
        "evaluate-not-a-multitask-model",
        lambda ctx: lambda: evaluate_file(ctx.model_dir, "ner", "dev.conll", ctx.tmp / "out"),
        ModelLoadError,
        r"tiny-bert\d*/config\.json: not an mtl-nlp multi-task model \(it names no tasks\)\. Give the 'model' "
        r"directory of a training run",
    ),
    # The fine-tuning stage
    Row(
        "finetune-unknown-task",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "finetune:\n  tasks: [pos]\n"),
        RecipeError,
        r"recipe\.yaml: finetune\.tasks: unknown task 'pos'; the recipe's tasks are ner\. Name tasks of the recipe, "
        r"or null for every task",
    ),
    Row(
        "finetune-a-cross-stitch-model",
        lambda ctx: recipe(
            ctx,
            MINIMAL_TASKS
            + "  pos:\n    type: token_classification\n    data: {train: train.conll}\n"
            + "model:\n  sharing: {task_layers: 1, cross_stitch: true}\nfinetune: {}\n",
        ),
        RecipeError,
        r"recipe\.yaml: finetune: model\.sharing\.cross_stitch mixes every task's layers, so a task cannot be taken "
        r"out of the joint model to fine-tune alone; remove the finetune section or model\.sharing\.cross_stitch",
    ),
    Row(
        "finetune-not-a-finished-run",
        lambda ctx: lambda: load_run_recipe(ctx.tmp),
        TrainingError,
        r"test_bad_input.*: not the output directory of a finished training run \(it has no model and no "
        r"recipe\.yaml\)\. Give the output_dir of a run that `mtl-nlp train` completed",
    ),
    # Distillation
    Row(
        "distillation-teacher-for-unknown-task",
        lambda ctx: recipe(ctx, MINIMAL_TASKS + "distillation:\n  teachers: {pos: [runs/pos/model]}\n"),
        RecipeError,
        r"recipe\.yaml: distillation\.teachers\.pos: the recipe has no task 'pos' \(tasks: ner\)\. Name the task the "
        r"teachers were trained for, or remove them",
    ),
    Row(
        "distillation-task-without-soft-targets",
        lambda ctx: distilled_run(ctx, "runs/ner/model", crf=True),
        RecipeError,
        r"distillation\.teachers\.ner: task 'ner' cannot learn from a teacher: a CRF head's emissions are not a "
        r"distribution over tags .*; set tasks\.ner\.crf: false to distil this task\. Remove its teachers",
    ),
    Row(
        "distillation-teacher-missing",
        lambda ctx: distilled_run(ctx, ctx.tmp / "no-such-teacher"),
        ModelLoadError,
        r"distillation\.teachers\.ner\[0\] \(.*no-such-teacher\): no such directory\. Give the directory of a "
        r"trained teacher",
    ),
    Row(
        "distillation-teacher-of-another-kind",
        lambda ctx: distilled_run(ctx, stock_sentiment_teacher(ctx)),
        ModelLoadError,
        r"distillation\.teachers\.ner\[0\] \(.*stock-teacher\): it is BertForSequenceClassification, which cannot "
        r"teach task 'ner' \(token_classification\)\. Give an mtl-nlp model with a token_classification task or a "
        r"stock AutoModelForTokenClassification checkpoint",
    ),
    Row(
        "distillation-teacher-with-another-tokenizer",
        lambda ctx: distilled_run(ctx, teacher(ctx, tokenizer=tokenizer_with_another_token(ctx))),
        ModelLoadError,
        r"distillation\.teachers\.ner\[0\] \(.*teacher\): the teacher's tokenizer differs from the student's "
        r"\(vocabulary of \d+ tokens, not \d+ \(differing: 'siemens-ag'\)\)",
    ),
    Row(
        "distillation-teacher-labels-differ",
        lambda ctx: distilled_run(
            ctx, teacher(ctx, {"ner": {"type": "token_classification", "id2label": ["O", "B-LOC", "I-LOC"]}})
        ),
        ModelLoadError,
        r"distillation\.teachers\.ner\[0\] \(.*teacher\): its labels differ from those of task 'ner' \(position 1: "
        r"'B-PER' here, 'B-LOC' in the teacher; position 2: 'I-PER' here, 'I-LOC' in the teacher\)\. Train the "
        r"teacher on the task's labels",
    ),
]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network fails the row: bad input must be caught locally."""

    def refuse(self, address):
        raise AssertionError(f"bad input reached the network ({address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_names_the_place_and_the_fix(row, tmp_path, tiny_model_dir, tiny_tokenizer):
    call = row.build(Context(tmp_path, tiny_model_dir, tiny_tokenizer))
    with pytest.raises(row.error) as caught:
        call()
    assert re.search(row.message, str(caught.value)), f"{caught.value!s}\ndoes not match\n{row.message}"


def test_bad_data_stops_a_run_before_any_model_is_loaded(tiny_model_dir, tmp_path, monkeypatch):
    loaded = []
    load = PreTrainedModel.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        loaded.append(cls.__name__)
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(spy))
    raw = toy_recipe(tmp_path, tiny_model_dir)
    dev = text_file(Context(tmp_path, tiny_model_dir, None), "dev.conll", "EU NNP B-NP B-ORG\nrejects VBZ O\n")
    raw["tasks"]["ner"]["data"]["validation"] = str(dev)
    with pytest.raises(DataError, match=r"dev\.conll:2: expected 4 columns"):
        train(recipe_from_dict(raw))
    assert loaded == []
    MultiTaskModel.from_backbone(str(tiny_model_dir), {})
    assert loaded  # the spy sees the backbone being loaded


def test_cli_bad_recipe_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    path = text_file(Context(tmp_path, tmp_path, None), "recipe.yaml", MINIMAL_TASKS + "trainig: {}\n")
    # `python -m mtl_nlp`, run in this process: a subprocess would spend most of its time importing torch.
    monkeypatch.setattr(sys, "argv", ["mtl-nlp", "train", str(path)])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("mtl_nlp", run_name="__main__")
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert re.fullmatch(r"mtl-nlp: error: .*recipe\.yaml: trainig: unknown key\. Did you mean 'training'\?.*\n", stderr)


# Inputs longer than the model's limit are not errors: they are cut, and what was cut is counted.


def test_long_text_is_truncated_and_counted(tiny_tokenizer, tmp_path, caplog):
    long_text = " ".join(["the film was wonderful"] * 40)
    path = text_file(
        Context(tmp_path, tmp_path, None), "dev.tsv", f"text\tlabel\n{long_text}\tpositive\nthe film\tnegative\n"
    )
    with caplog.at_level(logging.WARNING, logger="mtl_nlp"):
        task = prepared_task(
            Context(tmp_path, tmp_path, tiny_tokenizer), "sequence_classification", {"train": path, "validation": path}
        )()
    assert [len(ids) for ids in task.encoded["validation"]["input_ids"]] == [task.max_length, 5]
    assert task.truncation_counts("validation") == {"truncated_examples": 1}
    assert "sentiment/validation: 1 truncated examples (max_length 64)" in caplog.text
    evaluation = task.evaluate("validation", [np.array([0.0, 1.0]), np.array([1.0, 0.0])])
    assert evaluation.metrics["truncated_examples"] == 1
    assert "1 examples were longer than max_length 64 tokens" in evaluation.report


def test_long_sentence_words_past_the_limit_are_predicted_o_and_counted(tiny_tokenizer, tmp_path, caplog):
    # Words that are one sub-token each in the tiny vocabulary; the sentence's last entity lies past the limit.
    words = [("was", "B-PER")] + [("met", "O")] * 99 + [("the", "B-LOC")]
    path = write_conll(tmp_path / "dev.conll", [[(w, "NN", "O", t) for w, t in words]])
    with caplog.at_level(logging.WARNING, logger="mtl_nlp"):
        task = prepared_task(
            Context(tmp_path, tmp_path, tiny_tokenizer), "token_classification", {"train": path, "validation": path}
        )()
    cut = len(words) - (task.max_length - 2)  # [CLS] and [SEP] take two of the places
    assert task.truncation_counts("validation") == {"words_without_subtokens": cut}
    assert f"ner/validation: {cut} words without subtokens (max_length 64)" in caplog.text
    perfect = [token_predictions(np.array(row["labels"]).clip(min=0)) for row in task.encoded["validation"]]
    evaluation = task.evaluate("validation", perfect)
    predicted = [line.split()[2] for line in evaluation.predictions.splitlines() if line]
    assert predicted[0] == "B-PER" and predicted[-1] == "O"
    assert evaluation.metrics["words_without_subtokens"] == cut
    assert evaluation.metrics["recall"] == 0.5
    assert f"{cut} words had no sub-token" in evaluation.report


def test_every_row_is_documented_and_every_documented_row_is_tested():
    documented = re.findall(r"^\| `([a-z0-9-]+)` \|", TROUBLESHOOTING.read_text(encoding="utf-8"), flags=re.M)
    long_inputs = ["long-text-classification", "long-sentence-token-classification"]
    assert sorted(documented) == sorted([row.id for row in ROWS] + long_inputs)
