"""Sub-word alignment of word tags, decoding back to words, and tag checks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import token_predictions, write_conll

from mtl_nlp.config import recipe_from_dict
from mtl_nlp.errors import DataError
from mtl_nlp.tasks import build_task
from mtl_nlp.tasks.token_classification import word_predictions

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
ZERO_WIDTH_SPACE = "\u200b"


def make_task(tokenizer, train, validation=None, **settings):
    data = {"train": str(train), **({"validation": str(validation)} if validation else {})}
    recipe = recipe_from_dict({"tasks": {"ner": {"type": "token_classification", "data": data, **settings}}})
    task = build_task("ner", recipe.tasks["ner"], tokenizer)
    task.prepare()
    return task


def sentence(*pairs):
    return [(token, "X", "O", tag) for token, tag in pairs]


@pytest.fixture
def ner_file(tmp_path):
    return write_conll(
        tmp_path / "train.conll",
        [
            sentence(
                ("Angela", "B-PER"),
                ("Siemensmunichfrankfurt", "I-PER"),
                ("visited", "O"),
                ("Munich", "B-LOC"),
            ),
            sentence((ZERO_WIDTH_SPACE, "O"), ("Rio", "B-LOC"), ("de", "I-LOC"), ("Janeiro", "I-LOC")),
        ],
    )


def test_first_subtoken_carries_the_tag_and_the_rest_are_ignored(tiny_tokenizer, ner_file):
    task = make_task(tiny_tokenizer, ner_file, labels=LABELS)
    row = task.encoded["train"][0]
    word_ids, labels = np.array(row["word_ids"]), np.array(row["labels"])
    # The made-up word is split into several sub-tokens by the tiny vocabulary.
    assert (word_ids == 1).sum() > 2
    assert labels[word_ids == -1].tolist() == [-100, -100]  # [CLS], [SEP]
    firsts = [int(np.flatnonzero(word_ids == w)[0]) for w in range(4)]
    assert [LABELS[labels[i]] for i in firsts] == ["B-PER", "I-PER", "O", "B-LOC"]
    continuation = (word_ids >= 0) & ~np.isin(np.arange(len(word_ids)), firsts)
    assert continuation.any() and (labels[continuation] == -100).all()


def test_label_all_subtokens_turns_b_into_i_on_continuations(tiny_tokenizer, tmp_path):
    path = write_conll(tmp_path / "t.conll", [sentence(("Siemensmunichfrankfurt", "B-PER"), ("visited", "O"))])
    task = make_task(tiny_tokenizer, path, labels=LABELS, label_all_subtokens=True)
    row = task.encoded["train"][0]
    word_ids, labels = np.array(row["word_ids"]), np.array(row["labels"])
    pieces = labels[word_ids == 0].tolist()
    assert pieces[0] == LABELS.index("B-PER") and set(pieces[1:]) == {LABELS.index("I-PER")}


def test_word_dropped_by_the_tokenizer_is_predicted_o_and_counted(tiny_tokenizer, ner_file):
    task = make_task(tiny_tokenizer, ner_file, ner_file, labels=LABELS)
    row = task.encoded["validation"][1]
    assert 0 not in row["word_ids"]  # the zero-width space has no sub-token
    gold_ids = np.array(row["labels"])
    predictions = [token_predictions(np.array(r["labels"]).clip(min=0)) for r in task.encoded["validation"]]
    predictions[1] = token_predictions(gold_ids.clip(min=0))
    predicted = task.predicted_tags("validation", predictions)
    assert task.truncation_counts("validation") == {"words_without_subtokens": 1}
    assert predicted[1] == ["O", "B-LOC", "I-LOC", "I-LOC"]
    assert predicted[0] == ["B-PER", "I-PER", "O", "B-LOC"]


def test_a_word_takes_its_first_pieces_prediction_and_words_without_pieces_the_fallback():
    word_ids = np.array([-1, 0, 0, 0, 2, 3, 3, -1])
    labels, probabilities = word_predictions([(word_ids, token_predictions([9, 1, 7, 7, 3, 4, 8, 9]))], 5, 0)
    assert labels.tolist() == [1, 0, 3, 4, 0]
    assert probabilities.tolist() == pytest.approx([0.9, 0.0, 0.9, 0.9, 0.0])


def test_truncated_words_are_filled_with_fallback():
    word_ids = np.array([-1, 0, 1, 1, 2, 3])
    # Predictions cover only the first four positions (the rest was cut).
    labels, _ = word_predictions([(word_ids, token_predictions([5, 1, 2, 2]))], 4, 0)
    assert labels.tolist() == [1, 2, 0, 0]


def test_overlapping_windows_read_each_word_where_it_is_farthest_from_an_edge():
    # Six words in two windows sharing words 2-4; window 2 opens with the continuation of word 2.
    first = np.array([-1, 0, 1, 2, 2, 3, 4, -1])
    second = np.array([-1, 2, 3, 4, 5, -1])
    labels, _ = word_predictions(
        [(first, token_predictions([0, 1, 1, 1, 1, 1, 1, 0])), (second, token_predictions([0, 2, 2, 2, 2, 0]))],
        6,
        0,
    )
    # Word 2 is only a continuation in window 2, so window 1 reads it; word 3 is one token from an edge in both
    # windows, so the earlier wins; word 4 is window 1's last word (at its edge), one token inside window 2.
    assert labels.tolist() == [1, 1, 1, 1, 2, 2]


def test_labels_are_read_from_training_data_with_o_first(tiny_tokenizer, ner_file):
    task = make_task(tiny_tokenizer, ner_file)
    assert task.labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


@pytest.mark.parametrize("bad_tag", ["B_PER", "X-LOC", "PER"])
def test_tag_outside_the_scheme_names_file_and_line(tiny_tokenizer, tmp_path, bad_tag):
    path = write_conll(tmp_path / "bad.conll", [sentence(("Angela", "B-PER")), sentence(("Paris", bad_tag))])
    with pytest.raises(DataError, match=rf"bad.conll:5: tag '{bad_tag}' is not a tag of the IOB2 scheme"):
        make_task(tiny_tokenizer, path)


def test_dev_tag_unseen_in_training_names_file_and_line(tiny_tokenizer, ner_file, tmp_path):
    dev = write_conll(tmp_path / "dev.conll", [sentence(("Siemens", "B-ORG"), ("rose", "O"))])
    with pytest.raises(DataError, match=r"dev.conll:3: tag 'B-ORG' does not occur in the training data"):
        make_task(tiny_tokenizer, ner_file, dev)


def test_plain_tags_are_allowed_with_scheme_none(tiny_tokenizer, tmp_path):
    path = write_conll(tmp_path / "pos.conll", [[("Angela", "NNP", "B-NP", "B-PER"), ("ran", "VBD", "B-VP", "O")]])
    task = make_task(tiny_tokenizer, path, tags_column=1, tag_scheme="none")
    assert task.labels == ["NNP", "VBD"]


def test_iob1_files_are_converted_on_load_and_written_back_in_iob1(tiny_tokenizer, tmp_path):
    iob1 = [sentence(("Angela", "I-PER"), ("Merkel", "I-PER"), ("Peter", "B-PER"), ("met", "O"))]
    path = write_conll(tmp_path / "iob1.conll", iob1)
    task = make_task(tiny_tokenizer, path, path, tag_scheme="iob1")
    assert task.raw["train"]["ner"] == [["B-PER", "I-PER", "B-PER", "O"]]
    perfect = [token_predictions(np.array(row["labels"]).clip(min=0)) for row in task.encoded["validation"]]
    evaluation = task.evaluate("validation", perfect)
    assert evaluation.metrics["f1"] == 1.0 and evaluation.metrics["scheme"] == "iob2"
    assert [line.split()[1:] for line in evaluation.predictions.splitlines() if line] == [
        ["I-PER", "I-PER"],
        ["I-PER", "I-PER"],
        ["B-PER", "B-PER"],
        ["O", "O"],
    ]


def test_strict_mode_is_selectable_and_named_in_the_report(tiny_tokenizer, tmp_path):
    path = write_conll(tmp_path / "t.conll", [sentence(("Angela", "B-PER"), ("met", "O"), ("Paris", "B-LOC"))])
    task = make_task(tiny_tokenizer, path, path, labels=LABELS, evaluation_mode="strict")
    label_ids = {label: i for i, label in enumerate(task.labels)}
    row = task.encoded["validation"][0]
    predicted = np.array(row["labels"]).clip(min=0)
    predicted[np.array(row["labels"]) == label_ids["B-LOC"]] = label_ids["I-LOC"]  # an I- start: no entity in strict
    evaluation = task.evaluate("validation", [token_predictions(predicted)])
    assert evaluation.metrics["mode"] == "strict"
    assert evaluation.metrics["recall"] == 0.5
    assert "mode strict" in evaluation.report.splitlines()[0]


@pytest.mark.parametrize(
    ("scheme", "tags"),
    [("iobes", ["S-PER", "B-LOC", "E-LOC"]), ("bilou", ["U-PER", "B-LOC", "L-LOC"]), ("iob1", ["I-PER", "B-PER", "O"])],
)
def test_each_scheme_accepts_its_own_prefixes(tiny_tokenizer, tmp_path, scheme, tags):
    path = write_conll(tmp_path / "t.conll", [sentence(*zip(["Angela", "Rio", "Janeiro"], tags))])
    assert set(make_task(tiny_tokenizer, path, tag_scheme=scheme).labels) <= {"O", *tags}


def test_iobes_rejects_bilou_prefixes(tiny_tokenizer, tmp_path):
    path = write_conll(tmp_path / "t.conll", [sentence(("Angela", "U-PER"))])
    with pytest.raises(
        DataError, match=r"t.conll:3: tag 'U-PER' is not a tag of the IOBES scheme \(O, B-TYPE, I-TYPE, "
    ):
        make_task(tiny_tokenizer, path, tag_scheme="iobes")


def test_the_report_is_rendered_once_and_only_when_read(tiny_tokenizer, ner_file, monkeypatch):
    from mtl_nlp.evaluation import sequence_labeling

    task = make_task(tiny_tokenizer, ner_file, ner_file, labels=LABELS)
    calls = []
    render = sequence_labeling.entity_report
    monkeypatch.setattr(sequence_labeling, "entity_report", lambda *a, **k: calls.append(1) or render(*a, **k))
    perfect = [token_predictions(np.array(row["labels"]).clip(min=0)) for row in task.encoded["validation"]]
    evaluation = task.evaluate("validation", perfect)
    assert evaluation.metrics["f1"] == 1.0 and calls == []  # validations during training only need the metrics
    assert "entity-level scores" in evaluation.report and evaluation.predictions.count("\n\n") >= 1
    assert evaluation.report is evaluation.report and calls == [1]
