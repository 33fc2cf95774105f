"""The shared tokenizer: pre-split words read as the words of a running text, byte-level BPE tokenizers included."""

from __future__ import annotations

import shutil

import pytest
from conftest import toy_recipe
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mtl_nlp import recipe_from_dict, train
from mtl_nlp.tokenization import encoding_fingerprint, load_tokenizer
from mtl_nlp.training.stage import prepare_tasks

SENTENCE = "Angela Merkel met officials of Siemens in Munich"


@pytest.fixture(scope="module")
def generic_byte_level_dir(tiny_roberta_dir, tmp_path_factory):
    """The RoBERTa fixture's byte-level BPE saved as a generic tokenizer (a tokenizer.json and no class of its
    own), the way many newer checkpoints ship theirs."""
    directory = tmp_path_factory.mktemp("generic-byte-level")
    backend = AutoTokenizer.from_pretrained(tiny_roberta_dir).backend_tokenizer
    generic = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    generic.save_pretrained(directory)
    shutil.copy(tiny_roberta_dir / "config.json", directory)
    return directory


@pytest.mark.parametrize("model", ["tiny_model_dir", "tiny_roberta_dir", "generic_byte_level_dir"])
def test_pre_split_words_get_the_tokens_they_have_inside_a_sentence(model, request):
    tokenizer = load_tokenizer(str(request.getfixturevalue(model)))
    words = SENTENCE.split()
    split = tokenizer(words, is_split_into_words=True)
    running = tokenizer(SENTENCE, return_offsets_mapping=True)
    assert split.tokens() == running.tokens()
    merkel = [token for token, word in zip(split.tokens(), split.word_ids()) if word == 1]
    assert merkel[0].startswith("Ġ") or model == "tiny_model_dir"  # byte-level BPE marks a leading space with Ġ
    # Offsets still point at the characters of each token (answer spans of question answering rest on them).
    for token, (start, end) in zip(running.tokens(), running["offset_mapping"]):
        if token not in tokenizer.all_special_tokens:
            assert SENTENCE[start:end].lower() == tokenizer.convert_tokens_to_string([token]).strip(" #").lower()


def test_a_tiny_roberta_trains_and_scores_ner_and_saves_its_tokenizer_setting(tiny_roberta_dir, tmp_path):
    data = {
        "train": "pkg:mtl_nlp/sample_data/ner_train.conll",
        "validation": "pkg:mtl_nlp/sample_data/ner_dev.conll",
        "max_eval_examples": 20,
    }
    recipe = recipe_from_dict(
        {
            "model": {"name_or_path": str(tiny_roberta_dir)},
            "output_dir": str(tmp_path / "run"),
            "training": {"max_steps": 6, "save_every_steps": 0},
            "tasks": {"ner": {"type": "token_classification", "data": data, "batch_size": 16}},
        }
    )
    result = train(recipe)
    [evaluation] = result.evaluations
    assert (evaluation.task, evaluation.split) == ("ner", "validation")
    assert 0.0 <= evaluation.metrics["f1"] <= 1.0
    # The saved tokenizer reads words as training did, also when loaded by transformers alone.
    saved = AutoTokenizer.from_pretrained(result.model_dir)
    assert saved(SENTENCE.split(), is_split_into_words=True).tokens() == saved(SENTENCE).tokens()


def saved_elsewhere(tokenizer, model_dir, directory):
    """``tokenizer`` saved with ``model_dir``'s config in ``directory``, as a trained model's directory holds it."""
    tokenizer.save_pretrained(directory)
    shutil.copy(model_dir / "config.json", directory)
    return load_tokenizer(str(directory))


def test_the_encoding_fingerprint_follows_what_the_tokenizer_does_not_where_it_lies(
    tiny_model_dir, tiny_roberta_dir, tmp_path
):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    fingerprint = encoding_fingerprint(tokenizer)
    assert encoding_fingerprint(saved_elsewhere(tokenizer, tiny_model_dir, tmp_path / "copy")) == fingerprint
    assert encoding_fingerprint(load_tokenizer(str(tiny_roberta_dir))) != fingerprint
    truncating_left = load_tokenizer(str(tiny_model_dir))
    truncating_left.truncation_side = "left"
    assert encoding_fingerprint(truncating_left) != fingerprint
    with_new_token = load_tokenizer(str(tiny_model_dir))
    with_new_token.add_tokens(["siemens"])
    assert encoding_fingerprint(with_new_token) != fingerprint


def test_data_encoded_for_training_is_found_again_with_the_tokenizer_saved_with_the_model(tiny_model_dir, tmp_path):
    # What the fine-tuning stage and `mtl-nlp evaluate` do: load the tokenizer from the trained model's directory.
    recipe = recipe_from_dict(toy_recipe(tmp_path, tiny_model_dir, train_rows=24))
    first = prepare_tasks(recipe, load_tokenizer(str(tiny_model_dir)))
    saved = saved_elsewhere(load_tokenizer(str(tiny_model_dir)), tiny_model_dir, tmp_path / "model")
    again = prepare_tasks(recipe, saved)
    for name, task in first.items():
        for split, dataset in task.encoded.items():
            assert dataset.cache_files, "the encoded split is not in the datasets cache"
            assert again[name].encoded[split].cache_files == dataset.cache_files
