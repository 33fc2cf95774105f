"""MultiTaskPipeline and ``mtl-nlp predict`` decode exactly as the evaluation scored: same words, same tags, same
entities, for every tag scheme; long texts in windows; one encoder pass; bad input refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ner_sentiment_qa_tasks, write_conll

from mtl_nlp import MultiTaskModel, recipe_from_dict, train
from mtl_nlp.cli import main
from mtl_nlp.data.conll import iter_conll_sentences
from mtl_nlp.errors import InputError
from mtl_nlp.evaluation.sequence_labeling import entity_spans
from mtl_nlp.paths import resolve_package_path
from mtl_nlp.pipeline import MultiTaskPipeline
from mtl_nlp.tasks import InferenceInput

COLUMNS = ["tokens", "pos", "chunk", "ner"]
SCHEMES = ("iob2", "iob1", "iobes", "bilou", "none")
TASK_NAMES = (*SCHEMES, "iobes_crf")  # the last decodes with a CRF (Viterbi) on the IOBES files


def iob2_to(scheme: str, tags: list[str]) -> list[str]:
    """Sample IOB2 tags in another scheme (written out here, independently of mtl_nlp's conversions)."""
    converted = []
    for i, tag in enumerate(tags):
        following = tags[i + 1] if i + 1 < len(tags) else "O"
        continues = following == "I-" + tag[2:]
        if tag == "O":
            converted.append(tag)
        elif scheme == "iob1":
            previous = tags[i - 1] if i else "O"
            starts_after_same_type = tag.startswith("B-") and previous[2:] == tag[2:] and previous != "O"
            converted.append(("B-" if starts_after_same_type else "I-") + tag[2:])
        else:
            single, end = ("S-", "E-") if scheme == "iobes" else ("U-", "L-")
            if tag.startswith("B-"):
                converted.append(("B-" if continues else single) + tag[2:])
            else:
                converted.append(("I-" if continues else end) + tag[2:])
    return converted


@pytest.fixture(scope="module")
def scheme_run(tiny_model_dir, tmp_path_factory):
    """A tiny model trained briefly on the sample NER data in every tag scheme (and POS tags, scheme none),
    one task per scheme; its validation predictions are the evaluation's own files."""
    directory = tmp_path_factory.mktemp("schemes")
    files = {}
    for split, name, count in (("train", "ner_train", 200), ("validation", "ner_dev", 40)):
        sentences = list(iter_conll_sentences(resolve_package_path(f"pkg:mtl_nlp/sample_data/{name}.conll"), COLUMNS))
        sentences = sentences[:count]
        for scheme in SCHEMES[:-1]:
            tags = [s["ner"] if scheme == "iob2" else iob2_to(scheme, s["ner"]) for s in sentences]
            rows = [list(zip(s["tokens"], s["pos"], s["chunk"], t)) for s, t in zip(sentences, tags)]
            files[scheme, split] = str(write_conll(directory / f"{scheme}.{split}.conll", rows))
        files["none", split] = files["iob2", split]
    tasks = {
        scheme: {
            "type": "token_classification",
            "data": {"train": files[scheme, "train"], "validation": files[scheme, "validation"]},
            "tag_scheme": scheme,
            "tags_column": "pos" if scheme == "none" else "ner",
            "batch_size": 16,
        }
        for scheme in SCHEMES
    }
    tasks["iobes_crf"] = {**tasks["iobes"], "crf": True}
    recipe = recipe_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "output_dir": str(directory / "out"),
            "tasks": tasks,
            "training": {"max_steps": 600, "learning_rate": 5e-3, "warmup_ratio": 0.05, "save_every_steps": 0},
            "sampling": {"strategy": "round_robin"},
        }
    )
    result = train(recipe)
    return result, files


def evaluation_sentences(report_dir, task):
    """Words and predicted tags per sentence, from the evaluation's predictions file."""
    sentences = iter_conll_sentences(report_dir / f"{task}.validation.predictions.conll", ["tokens", "gold", "pred"])
    return [(s["tokens"], s["pred"]) for s in sentences]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_pipeline_entities_equal_the_evaluations_sentence_by_sentence(scheme_run, task):
    result, _ = scheme_run
    scheme = task.split("_")[0]
    sentences = evaluation_sentences(result.report_dir, task)
    runner = MultiTaskPipeline(result.model_dir, device="cpu", batch_size=8)
    texts = [" ".join(words) for words, _ in sentences]
    predictions = runner.predict([InferenceInput(text) for text in texts], tasks=[task])
    found_entities = 0
    for text, (words, evaluated), prediction in zip(texts, sentences, predictions):
        prediction = prediction[task]
        assert prediction.word_tags == evaluated
        if scheme == "none":
            assert [entry["entity"] for entry in prediction.output] == evaluated
            assert [entry["word"] for entry in prediction.output] == words
            continue
        expected = entity_spans(evaluated, scheme=scheme)  # the file holds the task's own scheme
        assert [(e["entity_group"], e["words"][0], e["words"][-1] + 1) for e in prediction.output] == expected
        for entity in prediction.output:
            assert entity["word"] == " ".join(words[entity["words"][0] : entity["words"][-1] + 1])
            assert text[entity["start"] : entity["end"]] == entity["word"]
            assert 0.0 < entity["score"] <= 1.0
        found_entities += len(expected)
    assert scheme == "none" or found_entities > 0  # the trained model predicts entities to compare


def test_predict_on_a_conll_file_writes_the_evaluations_tags(scheme_run, tmp_path):
    result, files = scheme_run
    output = tmp_path / "predicted.conll"
    assert main(["predict", str(result.model_dir), files["iob2", "validation"], "--conll-columns", *COLUMNS,
                 "--output", str(output)]) == 0  # fmt: skip
    order = list(MultiTaskModel.config_class.from_pretrained(result.model_dir).tasks)  # the saved task order
    assert sorted(order) == sorted(TASK_NAMES)
    written = list(iter_conll_sentences(output, ["tokens", *order]))
    for task in TASK_NAMES:
        assert [s[task] for s in written] == [tags for _, tags in evaluation_sentences(result.report_dir, task)]


def test_long_texts_read_every_word_from_the_window_where_it_is_most_central(scheme_run):
    result, _ = scheme_run
    runner = MultiTaskPipeline(result.model_dir, device="cpu", stride=16)
    words = [word for words, _ in evaluation_sentences(result.report_dir, "iob2")[:8] for word in words]
    [prediction] = runner.predict([InferenceInput.from_words(words)], tasks=["iob2"])

    # Brute force: run the model on every window alone; a word's candidates are the windows holding its first
    # sub-token (offset 0 within the word); the farthest from a window edge wins, the earlier on a tie.
    tokenizer, model, labels = runner.tokenizer, runner.model, runner.tasks["iob2"].labels
    windows = tokenizer(words, is_split_into_words=True, truncation=True, max_length=64, stride=16,
                        return_overflowing_tokens=True, return_offsets_mapping=True)  # fmt: skip
    assert len(windows["input_ids"]) > 2
    best = {}
    for window in range(len(windows["input_ids"])):
        with torch.inference_mode():
            logits = model(task="iob2", input_ids=torch.tensor([windows["input_ids"][window]])).logits[0]
        word_ids = windows.word_ids(window)
        content = [i for i, w in enumerate(word_ids) if w is not None]
        for position in content:
            if windows["offset_mapping"][window][position][0] == 0:
                distance = min(position - content[0], content[-1] - position)
                word = word_ids[position]
                if word not in best or distance > best[word][0]:
                    best[word] = (distance, labels[int(logits[position].argmax())])
    assert sorted(best) == list(range(len(words)))  # every word is read, none falls back
    assert prediction["iob2"].word_tags == [best[word][1] for word in range(len(words))]


TEXTS = [
    "john smith flew to paris with the acme team",
    "the film was wonderful and funny",
    "a dull , slow and predictable story set in berlin",
]
TASKS = ner_sentiment_qa_tasks(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"])


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    torch.manual_seed(0)
    model = MultiTaskModel.from_backbone(str(tiny_model_dir), TASKS).eval()
    # Sharpen the random token head so that it predicts entities, not only O.
    with torch.no_grad():
        model.heads["ner"].classifier.weight.mul_(40)
    return model


def test_entities_never_split_a_word_and_classification_matches_the_softmax(model, tiny_tokenizer):
    results = MultiTaskPipeline(model, tiny_tokenizer, device="cpu", batch_size=2)(TEXTS)
    assert sum(len(result["ner"]) for result in results) > 0
    for text, result in zip(TEXTS, results):
        assert result["text"] == text and "qa" not in result
        starts = {i for i in range(len(text)) if text[i] != " " and (i == 0 or text[i - 1] == " ")}
        ends = {i + 1 for i in range(len(text)) if text[i] != " " and (i + 1 == len(text) or text[i + 1] == " ")}
        for entity in result["ner"]:
            assert entity["start"] in starts and entity["end"] in ends  # whole words only
        with torch.inference_mode():
            logits = model(task="sentiment", **tiny_tokenizer(text, return_tensors="pt")).logits[0]
        probabilities = logits.softmax(-1)
        assert result["sentiment"]["label"] == ["negative", "positive"][int(probabilities.argmax())]
        assert result["sentiment"]["score"] == pytest.approx(float(probabilities.max()), abs=1e-6)


def test_token_and_text_tasks_share_one_encoder_pass_per_batch(model, tiny_tokenizer):
    calls = []
    hook = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        MultiTaskPipeline(model, tiny_tokenizer, device="cpu", batch_size=2)(TEXTS)
    finally:
        hook.remove()
    assert len(calls) == 2  # three texts in batches of two; ner and sentiment read the same windows


def brute_force_answer(model, tokenizer, question, context, max_answer_length=30):
    """The best span by trying every (start, end) pair of context tokens with the stock QA model."""
    encoding = tokenizer(question, context, return_offsets_mapping=True, return_tensors="pt")
    offsets = encoding.pop("offset_mapping")[0].tolist()
    output = model.task_model("qa")(**encoding)
    start_logits, end_logits = output.start_logits[0].tolist(), output.end_logits[0].tolist()
    in_context = [i for i, sequence in enumerate(encoding.sequence_ids(0)) if sequence == 1]
    best = max(
        (start_logits[s] + end_logits[e], s, e)
        for s in in_context
        for e in in_context
        if s <= e < s + max_answer_length
    )
    return context[offsets[best[1]][0] : offsets[best[2]][1]]


def test_a_question_adds_the_best_answer_span_with_offsets(model, tiny_tokenizer):
    question = "who flew to paris ?"
    results = MultiTaskPipeline(model, tiny_tokenizer, device="cpu")(TEXTS[:2], questions=[question, None])
    answer = results[0]["qa"]
    assert answer["answer"] == brute_force_answer(model, tiny_tokenizer, question, TEXTS[0])
    assert TEXTS[0][answer["start"] : answer["end"]] == answer["answer"]
    assert 0.0 < answer["score"] <= 1.0
    assert "qa" not in results[1] and "sentiment" in results[1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda run: run(["fine", ""]), "input 1: the text is empty or only whitespace"),
        (lambda run: run(["  \n\t "]), "input 0: the text is empty or only whitespace"),
        (lambda run: run(["fine"], tasks=["pos"]), "unknown task 'pos'; this model has ner, sentiment, qa"),
        (lambda run: run(["fine"], questions=["   "]), "input 0: the question is empty"),
        (lambda run: run(["a", "b"], questions=["who?"] * 3), "got 2 texts but 3 questions"),
        (lambda run: run.predict([InferenceInput.from_words(["a", ""])]), "input 0: word '' is empty"),
        (lambda run: run.predict([InferenceInput.from_words(["a b"])]), "input 0: word 'a b' is empty or holds"),
    ],
)
def test_bad_input_is_refused_by_name_before_any_model_call(model, tiny_tokenizer, call, message):
    runner = MultiTaskPipeline(model, tiny_tokenizer, device="cpu")
    with pytest.raises(InputError, match=message):
        call(runner)


def test_word_predictions_keep_probabilities_of_the_first_subtoken(model, tiny_tokenizer):
    # A word the tiny tokenizer cuts into several pieces is one word: one tag, scored by its first piece.
    text = "exxonmobilchevron flew"
    [result] = MultiTaskPipeline(model, tiny_tokenizer, device="cpu").predict([InferenceInput(text)], tasks=["ner"])
    pieces = tiny_tokenizer(text)["input_ids"]
    assert len(pieces) > 4  # [CLS] several pieces, flew, [SEP]
    with torch.inference_mode():
        probabilities = model(task="ner", input_ids=torch.tensor([pieces])).logits[0].softmax(-1)
    first_piece = probabilities[1]
    assert result["ner"].word_tags[0] == TASKS["ner"]["id2label"][int(first_piece.argmax())]
    if result["ner"].output and result["ner"].output[0]["words"] == [0]:
        assert result["ner"].output[0]["score"] == pytest.approx(float(first_piece.max()), abs=1e-6)
    assert np.isfinite([e["score"] for e in result["ner"].output]).all()
