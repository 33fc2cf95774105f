"""Question answering: windows with stride and offsets, span labels, answer decoding, bad input, reports."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from conftest import FIXTURE_TEXT, write_squad, write_toy_sentiment

from mtl_nlp import train
from mtl_nlp.cli import main
from mtl_nlp.config import recipe_from_dict
from mtl_nlp.errors import DataError, RecipeError
from mtl_nlp.evaluation.reports import write_task_report
from mtl_nlp.tasks import build_task
from mtl_nlp.tasks.question_answering import best_span
from mtl_nlp.training.history import read_history

MERKEL = "Angela Merkel met officials of Siemens in Munich on Tuesday"
CAFE = "Le café de Zürich vend du thé 日本 ici ."
LONG = " ".join(FIXTURE_TEXT.splitlines()[:4])


def qa(id_, question, *answers, **extra):
    """A question whose answers are given as texts, placed at their first occurrence in the context later."""
    return {"id": id_, "question": question, "answers": list(answers), **extra}


def write(path, paragraphs, version="1.1"):
    """Write paragraphs of (context, questions), locating each answer text in its context."""
    located = [
        (context, [{**q, "answers": [(text, context.index(text)) for text in q["answers"]]} for q in questions])
        for context, questions in paragraphs
    ]
    return write_squad(path, located, version)


def make_task(tokenizer, train, validation=None, **settings):
    data = {"train": str(train), **({"validation": str(validation)} if validation else {})}
    task_settings = {"type": "question_answering", "data": data, "max_length": 64, "doc_stride": 16, **settings}
    recipe = recipe_from_dict({"tasks": {"qa": task_settings}})
    task = build_task("qa", recipe.tasks["qa"], tokenizer)
    task.prepare()
    return task


def labelled_text(task, split, window):
    """The context text between the labelled start and end token of a window."""
    row = task.encoded[split][window]
    context = task.raw[split]["context"][row["example_index"]]
    return context[row["offset_start"][row["start_positions"]] : row["offset_end"][row["end_positions"]]]


def windows_of(task, split, example):
    return [i for i, e in enumerate(task.encoded[split]["example_index"]) if e == example]


def perfect_logits(task, split):
    """Logits that point at each window's labelled start and end token."""
    logits = []
    for row in task.encoded[split]:
        window = np.full((2, len(row["input_ids"])), -5.0, dtype=np.float32)
        window[0, row["start_positions"]] = window[1, row["end_positions"]] = 5.0
        logits.append(window)
    return logits


@pytest.fixture
def short_file(tmp_path):
    return write(
        tmp_path / "short.json",
        [
            (MERKEL, [qa("first", "who met officials ?", "Angela Merkel"), qa("last", "when ?", "Tuesday")]),
            (CAFE, [qa("accent", "what is sold ?", "café"), qa("cjk", "and here ?", "日本")]),
        ],
    )


def test_labelled_span_decodes_to_the_answer_at_start_end_and_with_multibyte_characters(tiny_tokenizer, short_file):
    task = make_task(tiny_tokenizer, short_file)
    assert task.raw["train"]["id"] == ["first", "last", "accent", "cjk"]
    assert len(task.encoded["train"]) == 4  # one window each
    assert [labelled_text(task, "train", i) for i in range(4)] == ["Angela Merkel", "Tuesday", "café", "日本"]
    first = task.encoded["train"][0]
    # The question's tokens and the special tokens have no context offsets; the answer's first token does.
    question_end = first["input_ids"].index(tiny_tokenizer.sep_token_id)
    assert set(first["offset_start"][: question_end + 1]) == {-1} and first["offset_start"][-1] == -1
    assert first["offset_start"][first["start_positions"]] == 0
    assert task.model_columns() == ["input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"]


def context_tokens(row):
    """A window's context tokens as (start, end) character offsets."""
    return [(s, e) for s, e in zip(row["offset_start"], row["offset_end"]) if s >= 0]


def test_long_context_is_cut_into_overlapping_windows_labelled_where_the_answer_fits(tiny_tokenizer, tmp_path):
    settings = {"max_length": 24, "doc_stride": 8}
    probe = make_task(
        tiny_tokenizer, write(tmp_path / "probe.json", [(LONG, [qa("p", "where ?", "Tuesday")])]), **settings
    )
    windows = [context_tokens(row) for row in probe.encoded["train"]]
    assert len(windows) >= 4
    # Answers taken from the windows themselves: the tokens that windows 1 and 2 share, and a span from the last
    # token of window 1 to the token after it (which only window 2 holds whole).
    shared = (windows[2][0][0], windows[1][-1][1])
    after = next(end for start, end in windows[2] if start >= windows[1][-1][1])
    crossing = (windows[1][-1][0], after)
    answers = [(LONG[start:end], start) for start, end in (shared, crossing)]
    questions = [{"id": f"q{i}", "question": "where ?", "answers": [answer]} for i, answer in enumerate(answers)]
    task = make_task(tiny_tokenizer, write_squad(tmp_path / "long.json", [(LONG, questions)]), **settings)
    encoded = task.encoded["train"]
    for example, ((answer, start), expected) in enumerate(zip(answers, ([1, 2], [2]))):
        labelled = []
        for number, window in enumerate(windows_of(task, "train", example)):
            row = encoded[window]
            tokens = context_tokens(row)
            if tokens[0][0] <= start and tokens[-1][1] >= start + len(answer):
                labelled.append(number)
                assert labelled_text(task, "train", window) == answer
            else:
                assert row["start_positions"] == row["end_positions"] == row["cls_index"] == 0
        assert labelled == expected
    # Together the windows hold every token of the context.
    whole = tiny_tokenizer(LONG, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    assert {tuple(pair) for pair in whole} == {pair for tokens in windows for pair in tokens}


def test_unanswerable_question_labels_cls_in_v2(tiny_tokenizer, tmp_path):
    path = write(
        tmp_path / "v2.json",
        [(MERKEL, [qa("none", "who won ?", is_impossible=True), qa("some", "who met ?", "Angela Merkel")])],
        version="v2.0",
    )
    task = make_task(tiny_tokenizer, path, version_2_with_negative=True)
    assert task.raw["train"]["answers"][0] == {"text": [], "answer_start": []}
    row = task.encoded["train"][0]
    assert row["start_positions"] == row["end_positions"] == row["cls_index"] == 0
    assert labelled_text(task, "train", 1) == "Angela Merkel"


def test_perfect_logits_recover_the_exact_answer_texts(tiny_tokenizer, short_file):
    task = make_task(tiny_tokenizer, short_file, short_file)
    assert task.answers("validation", perfect_logits(task, "validation")) == [
        "Angela Merkel",
        "Tuesday",
        "café",
        "日本",
    ]
    evaluation = task.evaluate("validation", perfect_logits(task, "validation"))
    assert evaluation.metrics["exact"] == evaluation.metrics["f1"] == evaluation.headline_value == 1.0
    assert json.loads(evaluation.predictions) == {
        "first": "Angela Merkel",
        "last": "Tuesday",
        "accent": "café",
        "cjk": "日本",
    }


def test_the_best_window_decides_the_answer(tiny_tokenizer, tmp_path):
    path = write(tmp_path / "long.json", [(LONG, [qa("rio", "where ?", "Rio de Janeiro")])])
    task = make_task(tiny_tokenizer, path, path, max_length=24, doc_stride=8)
    encoded = task.encoded["validation"]
    logits = [np.zeros((2, len(row["input_ids"])), dtype=np.float32) for row in encoded]
    gold = next(i for i, row in enumerate(encoded) if row["start_positions"] != 0)
    other = 0  # the first window: "Angela Merkel met …"
    start_of = {i: encoded[i]["offset_start"] for i in (gold, other)}
    merkel = LONG.index("Merkel")
    merkel_start = start_of[other].index(merkel)
    merkel_end = encoded[other]["offset_end"].index(merkel + len("Merkel"))
    logits[gold][0, encoded[gold]["start_positions"]] = logits[gold][1, encoded[gold]["end_positions"]] = 3.0
    logits[other][0, merkel_start] = logits[other][1, merkel_end] = 2.0
    assert task.answers("validation", logits) == ["Rio de Janeiro"]
    logits[other][0, merkel_start] = logits[other][1, merkel_end] = 4.0
    assert task.answers("validation", logits) == ["Merkel"]


def test_v2_predicts_no_answer_when_the_null_score_wins_by_more_than_the_threshold(tiny_tokenizer, tmp_path):
    path = write(tmp_path / "v2.json", [(MERKEL, [qa("q", "who met ?", "Angela Merkel")])])
    task = make_task(tiny_tokenizer, path, path, version_2_with_negative=True)
    row = task.encoded["validation"][0]
    logits = np.zeros((2, len(row["input_ids"])), dtype=np.float32)
    logits[0, row["start_positions"]] = logits[1, row["end_positions"]] = 2.0  # span score 4
    logits[:, 0] = 3.0  # null score 6
    assert task.answers("validation", [logits]) == [""]
    task.config.null_score_diff_threshold = 2.5
    assert task.answers("validation", [logits]) == ["Angela Merkel"]


def test_best_span_keeps_to_the_context_and_the_order_of_start_and_end():
    start = np.array([9.0, 1.0, 2.0, 0.0, 7.0, 0.0])
    end = np.array([9.0, 3.0, 6.0, 2.0, 0.0, 0.5])
    context = np.array([False, True, True, True, True, True])  # token 0 is [CLS]
    # (0, 0) scores 18 but is not context; (4, 2) scores 13 but ends before it starts.
    assert best_span(start, end, context, n_best=20, max_answer_length=30) == (2, 2, 8.0)
    # With one candidate each, the best start (4) and the best end (2) are all there is.
    assert best_span(start, end, context, n_best=1, max_answer_length=30) is None
    assert best_span(start, end, np.zeros(6, dtype=bool), n_best=20, max_answer_length=30) is None


def test_best_span_keeps_to_max_answer_length():
    start = np.array([0.0, 5.0, 0.0, 0.0, 0.0, 0.0])
    end = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 5.0])
    context = np.array([False, True, True, True, True, True])
    assert best_span(start, end, context, n_best=20, max_answer_length=5) == (1, 5, 10.0)
    assert best_span(start, end, context, n_best=20, max_answer_length=4) == (1, 2, 6.0)


def bad_paragraphs(kind):
    good = qa("good", "who met ?", "Angela Merkel")
    if kind == "answer_start":
        return [(MERKEL, [good, {"id": "bad", "question": "where ?", "answers": [("Munich", 3)]}])]
    if kind == "empty_context":
        return [(MERKEL, [good]), ("  ", [{"id": "bad", "question": "where ?", "answers": []}])]
    if kind == "long_question":
        return [(MERKEL, [good, qa("bad", "who met officials of siemens in munich on tuesday ? " * 3, "Munich")])]
    if kind == "no_answer":
        return [(MERKEL, [good, qa("bad", "who won ?")])]
    return [(MERKEL, [good, {**qa("bad", "who ?", "Angela Merkel"), "id": "good"}])]


BAD_MESSAGES = {
    "answer_start": r"answer 'Munich' is not at answer_start 3 of the context \(found 'ela Me'\)",
    "empty_context": r"the context is empty or missing",
    "long_question": r"the question has \d+ tokens, which leaves 0 tokens of context per window",
    "no_answer": r"the question has no answer. For unanswerable questions \(SQuAD v2.0\) set version_2_with_negative",
    "duplicate_id": r"the id was already used by example 0",
}


def write_bad(path, kind):
    paragraphs = bad_paragraphs(kind)
    located = [
        (
            context,
            [
                {**q, "answers": [a if isinstance(a, tuple) else (a, context.index(a)) for a in q["answers"]]}
                for q in questions
            ],
        )
        for context, questions in paragraphs
    ]
    return write_squad(path, located)


@pytest.mark.parametrize("kind", list(BAD_MESSAGES))
def test_bad_example_names_file_and_id(tiny_tokenizer, tmp_path, kind):
    path = write_bad(tmp_path / "bad.json", kind)
    bad_id = "good" if kind == "duplicate_id" else "bad"
    with pytest.raises(DataError, match=rf"bad.json: example 1, question id '{bad_id}': {BAD_MESSAGES[kind]}.*skip"):
        make_task(tiny_tokenizer, path, max_length=32)


@pytest.mark.parametrize("kind", list(BAD_MESSAGES))
def test_skipped_bad_examples_are_counted_logged_and_reported(tiny_tokenizer, tmp_path, kind, caplog):
    path = write_bad(tmp_path / "bad.json", kind)
    task = make_task(tiny_tokenizer, path, path, max_length=32, on_bad_example="skip")
    assert task.raw["train"]["id"] == task.raw["validation"]["id"] == ["good"]
    assert "skipped 1 of 2 examples as bad" in caplog.text
    evaluation = task.evaluate("validation", perfect_logits(task, "validation"))
    assert evaluation.metrics["skipped_examples"] == 1
    assert "1 bad examples skipped" in evaluation.report
    assert "example 1, question id" in evaluation.report.split("Skipped (on_bad_example: skip):")[1]


def test_all_examples_bad_is_an_error_even_when_skipping(tiny_tokenizer, tmp_path):
    path = write(tmp_path / "bad.json", [("", [qa("a", "who ?")])])
    with pytest.raises(DataError, match=r"bad.json: all 1 examples are bad"):
        make_task(tiny_tokenizer, path, on_bad_example="skip")


def test_flat_json_lines_with_either_answer_layout(tiny_tokenizer, tmp_path):
    path = tmp_path / "flat.jsonl"
    rows = [
        {"question": "who met ?", "context": MERKEL, "answers": [{"text": "Angela Merkel", "answer_start": 0}]},
        {"question": "where ?", "context": MERKEL, "answers": [{"text": "Munich", "answer_start": 42}]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    task = make_task(tiny_tokenizer, path, path)
    assert task.raw["train"]["id"] == ["0", "1"]  # positions stand in for the missing ids
    assert [labelled_text(task, "train", i) for i in range(2)] == ["Angela Merkel", "Munich"]
    hub_layout = tmp_path / "hub.jsonl"
    hub_layout.write_text(
        json.dumps({"id": "x", **rows[1], "answers": {"text": ["Munich"], "answer_start": [42]}}) + "\n"
    )
    assert labelled_text(make_task(tiny_tokenizer, hub_layout), "train", 0) == "Munich"


def test_flat_file_without_question_column_points_to_the_settings(tiny_tokenizer, tmp_path):
    path = tmp_path / "flat.jsonl"
    path.write_text(json.dumps({"query": "who ?", "context": MERKEL, "answers": []}) + "\n")
    with pytest.raises(DataError, match=r"flat.jsonl: no column 'question' \(columns: query, context, answers\)"):
        make_task(tiny_tokenizer, path)


def test_report_files_are_written_and_parse_back(tiny_tokenizer, tmp_path):
    path = write(
        tmp_path / "v2.json",
        [(MERKEL, [qa("has", "who met ?", "Angela Merkel"), qa("none", "who won ?", is_impossible=True)])],
        version="v2.0",
    )
    task = make_task(tiny_tokenizer, path, path, version_2_with_negative=True)
    logits = perfect_logits(task, "validation")
    logits[0][:, 0] = 20.0  # the answerable question is predicted unanswerable
    evaluation = task.evaluate("validation", logits)
    text, data, predictions = write_task_report(tmp_path / "reports", evaluation)
    assert predictions.name == "qa.validation.predictions.json"
    assert json.loads(predictions.read_text()) == {"has": "", "none": ""}
    metrics = json.loads(data.read_text())["metrics"]
    assert metrics["version"] == "v2.0" and metrics["total"] == 2 and metrics["skipped_examples"] == 0
    assert (metrics["HasAns_exact"], metrics["HasAns_total"], metrics["NoAns_exact"], metrics["NoAns_total"]) == (
        0.0,
        1,
        1.0,
        1,
    )
    report = text.read_text()
    assert report.startswith("qa / validation: SQuAD v2.0 scores")
    assert "2 questions in 2 windows" in report and "0 bad examples skipped" in report
    assert [line.split()[:4] for line in report.splitlines() if line.startswith(("all", "HasAns", "NoAns"))] == [
        ["all", "0.5000", "0.5000", "2"],
        ["HasAns", "0.0000", "0.0000", "1"],
        ["NoAns", "1.0000", "1.0000", "1"],
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"doc_stride": -1}, r"doc_stride: must be at least 0"),
        ({"labels": ["a", "b"]}, r"labels: a question answering task predicts spans and takes no labels"),
        ({"n_best": 0}, r"n_best: must be at least 1"),
        ({"on_bad_example": "drop"}, r"on_bad_example: 'drop' is not allowed; choose one of 'error', 'skip'"),
    ],
)
def test_settings_are_checked(settings, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict({"tasks": {"qa": {"type": "question_answering", "data": {"train": "a.json"}, **settings}}})


def test_doc_stride_must_be_shorter_than_the_windows(tiny_tokenizer, short_file):
    with pytest.raises(RecipeError, match=r"tasks.qa.doc_stride: 128 must be less than max_length 64"):
        make_task(tiny_tokenizer, short_file, max_length=None, doc_stride=128)


def test_default_max_length_is_384_within_the_tokenizer_limit(tiny_tokenizer):
    recipe = recipe_from_dict({"tasks": {"qa": {"type": "question_answering", "data": {"train": "a.json"}}}})
    assert build_task("qa", recipe.tasks["qa"], tiny_tokenizer).max_length == 64  # the tiny tokenizer's limit
    recipe.tasks["qa"].max_length = 100
    assert build_task("qa", recipe.tasks["qa"], tiny_tokenizer).max_length == 100


PEOPLE = ["Angela Merkel", "Serena Williams", "Brazil", "Microsoft"]
CITIES = ["Munich", "Frankfurt", "Tokyo", "Geneva", "Wimbledon", "Rio de Janeiro"]


def write_toy_squad(path, paragraphs, seed):
    """Where-questions answered by the city of a sentence, and unanswerable who-won questions (v2.0)."""
    rng = random.Random(seed)
    written = []
    for number in range(paragraphs):
        person, city = rng.choice(PEOPLE), rng.choice(CITIES)
        context = f"{person} met officials of Siemens in {city} on Tuesday . The film was a wonderful surprise ."
        questions = [
            {"id": f"{number}-where", "question": "where did they meet ?", "answers": [(city, context.index(city))]}
        ]
        if number % 3 == 0:
            questions.append(
                {"id": f"{number}-won", "question": "who won the title ?", "answers": [], "is_impossible": True}
            )
        written.append((context, questions))
    return str(write_squad(path, written, version="v2.0"))


@pytest.fixture(scope="module")
def joint_run(tiny_model_dir, tmp_path_factory):
    directory = tmp_path_factory.mktemp("qa-run")
    recipe = recipe_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "output_dir": str(directory / "out"),
            "training": {"max_steps": 90, "learning_rate": 2e-3, "warmup_ratio": 0.05, "log_every_steps": 30},
            "tasks": {
                "qa": {
                    "type": "question_answering",
                    "data": {
                        "train": write_toy_squad(directory / "train.json", 60, seed=1),
                        "validation": write_toy_squad(directory / "dev.json", 15, seed=2),
                    },
                    "version_2_with_negative": True,
                    "max_length": 32,
                    "doc_stride": 8,
                    "batch_size": 16,
                },
                "ner": {
                    "type": "token_classification",
                    "data": {
                        "train": "pkg:mtl_nlp/sample_data/ner_train.conll",
                        "validation": "pkg:mtl_nlp/sample_data/ner_dev.conll",
                        "max_train_examples": 80,
                        "max_eval_examples": 20,
                    },
                    "batch_size": 16,
                },
                "sentiment": {
                    "type": "sequence_classification",
                    "data": {
                        "train": write_toy_sentiment(directory / "train.tsv", 80, seed=1),
                        "validation": write_toy_sentiment(directory / "dev.tsv", 20, seed=2),
                    },
                    "batch_size": 16,
                },
            },
        }
    )
    return recipe, train(recipe)


def test_qa_trains_jointly_with_ner_and_sentiment_and_is_learned(joint_run):
    recipe, result = joint_run
    assert [row["task"] for row in json.loads((result.report_dir / "summary.json").read_text())] == [
        "qa",
        "ner",
        "sentiment",
    ]
    report = json.loads((result.report_dir / "qa.validation.report.json").read_text())
    assert report["headline"] == "f1" and 0.0 <= report["headline_value"] <= 1.0
    assert report["metrics"]["HasAns_total"] == 15 and report["metrics"]["NoAns_total"] == 5
    predictions = json.loads((result.report_dir / "qa.validation.predictions.json").read_text())
    assert len(predictions) == 20 and all(isinstance(text, str) for text in predictions.values())
    assert (result.report_dir / "qa.validation.report.txt").read_text().startswith("qa / validation: SQuAD v2.0")
    logged = [record["loss"] for record in read_history(f"{recipe.output_dir}/metrics.jsonl") if "loss" in record]
    assert logged[-1]["qa"] < 0.7 * logged[0]["qa"]
    # The city after "in" is learnt well within the run (0.9 on the seed used here).
    assert {e.task: e for e in result.evaluations}["qa"].metrics["f1"] >= 0.6


def test_evaluate_command_rescoring_the_qa_dev_file_reproduces_the_run(joint_run, tmp_path):
    recipe, result = joint_run
    dev = recipe.tasks["qa"].data.validation
    assert main(["evaluate", str(result.model_dir), "--task", "qa", "--file", dev, "--output-dir", str(tmp_path)]) == 0
    rescored = json.loads((tmp_path / "qa.test.report.json").read_text())["metrics"]
    original = json.loads((result.report_dir / "qa.validation.report.json").read_text())["metrics"]
    assert rescored["f1"] == original["f1"] and rescored["exact"] == original["exact"]
    assert json.loads((tmp_path / "qa.test.predictions.json").read_text()) == json.loads(
        (result.report_dir / "qa.validation.predictions.json").read_text()
    )
