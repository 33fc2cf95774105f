"""The linear-chain CRF against brute force: every tag sequence enumerated on tiny cases."""

from __future__ import annotations

import itertools
import random

import pytest
import torch
from conftest import write_conll

from mtl_nlp import recipe_from_dict, train
from mtl_nlp.errors import ExportError, RecipeError
from mtl_nlp.export import export_saved_task
from mtl_nlp.modeling.crf import LinearChainCRF, allowed_transitions

NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SCHEME_LABELS = {
    "iob2": NER,
    "iob1": NER,
    "iobes": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "E-LOC", "S-LOC"],
    "bilou": ["O", "B-PER", "I-PER", "L-PER", "U-PER", "U-LOC"],
    "none": ["NN", "VB", "DT"],
}


def random_crf(labels, scheme, seed):
    generator = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(labels, scheme)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return crf


def path_score(crf, emissions, tags, constrained):
    start, transitions, end = crf.scores(constrained)
    score = start[tags[0]] + end[tags[-1]] + sum(emissions[t, tag] for t, tag in enumerate(tags))
    return score + sum(transitions[a, b] for a, b in itertools.pairwise(tags))


def enumerate_paths(crf, emissions, length, constrained):
    paths = list(itertools.product(range(emissions.shape[1]), repeat=length))
    scores = torch.stack([path_score(crf, emissions, path, constrained) for path in paths])
    return paths, scores


@pytest.mark.parametrize("scheme", list(SCHEME_LABELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_likelihood_and_best_path_equal_an_enumeration_of_all_sequences(scheme, seed):
    labels = SCHEME_LABELS[scheme]
    crf = random_crf(labels, scheme, seed)
    generator = torch.Generator().manual_seed(100 + seed)
    lengths = torch.tensor([1, 5, 3, 4, 2]) if len(labels) <= 5 else torch.tensor([1, 4, 3, 2])
    emissions = torch.randn(len(lengths), int(lengths.max()) + 1, len(labels), generator=generator)  # +1: padding
    tags = torch.randint(len(labels), (len(lengths), emissions.shape[1]), generator=generator)
    expected_nll, expected_best = [], []
    for row, length in enumerate(lengths.tolist()):
        # The likelihood uses the learned scores as they are; decoding keeps to the scheme's allowed moves.
        paths, scores = enumerate_paths(crf, emissions[row], length, constrained=False)
        log_partition = torch.logsumexp(scores, dim=0)
        gold = tags[row, :length].tolist()
        expected_nll.append(log_partition - path_score(crf, emissions[row], gold, constrained=False))
        paths, scores = enumerate_paths(crf, emissions[row], length, constrained=True)
        expected_best.append(list(paths[int(scores.argmax())]))
    nll = crf.negative_log_likelihood(emissions, tags, lengths)
    torch.testing.assert_close(nll, torch.stack(expected_nll).mean(), rtol=1e-5, atol=1e-4)
    decoded = crf.decode(emissions, lengths)
    for row, length in enumerate(lengths.tolist()):
        assert decoded[row, :length].tolist() == expected_best[row]
        assert (decoded[row, length:] == -1).all()


def is_valid(tags, scheme):
    start, follow, end = allowed_transitions(SCHEME_LABELS[scheme], scheme)
    return bool(start[tags[0]] and end[tags[-1]] and all(follow[a, b] for a, b in itertools.pairwise(tags)))


@pytest.mark.parametrize("scheme", ["iob2", "iob1", "iobes", "bilou"])
def test_constrained_decoding_never_outputs_a_forbidden_move(scheme):
    labels = SCHEME_LABELS[scheme]
    crf = LinearChainCRF(labels, scheme)  # zero transitions: the emissions alone would often break the scheme
    generator = torch.Generator().manual_seed(7)
    emissions = torch.randn(200, 9, len(labels), generator=generator) * 5
    lengths = torch.randint(1, 10, (200,), generator=generator)
    decoded = crf.decode(emissions, lengths)
    unconstrained = emissions.argmax(-1)
    assert not all(is_valid(unconstrained[r, :n].tolist(), scheme) for r, n in enumerate(lengths.tolist()))
    assert all(is_valid(decoded[r, :n].tolist(), scheme) for r, n in enumerate(lengths.tolist()))


def test_scheme_rules_by_example():
    start, follow, end = allowed_transitions(NER, "iob2")
    index = {label: i for i, label in enumerate(NER)}
    assert follow[index["B-PER"], index["I-PER"]] and follow[index["I-PER"], index["I-PER"]]
    assert not follow[index["O"], index["I-PER"]] and not follow[index["B-LOC"], index["I-PER"]]
    assert not start[index["I-LOC"]] and end.all()
    labels = SCHEME_LABELS["iobes"]
    start, follow, end = allowed_transitions(labels, "iobes")
    index = {label: i for i, label in enumerate(labels)}
    assert follow[index["B-PER"], index["E-PER"]] and not follow[index["B-PER"], index["O"]]
    assert not follow[index["S-PER"], index["I-PER"]] and follow[index["E-PER"], index["B-LOC"]]
    assert not end[index["B-PER"]] and not start[index["E-LOC"]]


def test_gradients_are_finite_and_empty_sentences_add_nothing():
    crf = LinearChainCRF(NER, "iob2")
    emissions = torch.randn(3, 4, len(NER), requires_grad=True)
    tags = torch.tensor([[0, 2, 0, 0], [1, 2, 0, 3], [0, 0, 0, 0]])  # sentence 0 holds a forbidden O → I-PER
    loss = crf.negative_log_likelihood(emissions, tags, torch.tensor([2, 4, 0]))
    loss.backward()
    assert (
        torch.isfinite(loss) and loss < 20 and all(torch.isfinite(p.grad).all() for p in [emissions, *crf.parameters()])
    )
    alone = crf.negative_log_likelihood(emissions[1:2], tags[1:2], torch.tensor([4]))
    both = crf.negative_log_likelihood(emissions[1:], tags[1:], torch.tensor([4, 0]))
    torch.testing.assert_close(alone, both)


def toy_tagging(path, rows, seed):
    """Sentences where names (two words, PER) and cities (one word, LOC) are tagged: learnable in a few steps."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(rows):
        words = []
        for _ in range(rng.randint(2, 5)):
            kind = rng.choice(["name", "city", "other", "other"])
            if kind == "name":
                words += [("john", "B-PER"), (rng.choice(["smith", "williams"]), "I-PER")]
            elif kind == "city":
                words.append((rng.choice(["paris", "berlin", "tokyo"]), "B-LOC"))
            else:
                words.append((rng.choice(["met", "the", "in", "flew", "to", "film"]), "O"))
        sentences.append(words)
    return str(write_conll(path, sentences, docstart=False))


def test_a_tiny_model_learns_to_tag_with_a_crf_and_never_breaks_the_scheme(tiny_model_dir, tmp_path):
    recipe = recipe_from_dict(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "output_dir": str(tmp_path / "out"),
            "tasks": {
                "ner": {
                    "type": "token_classification",
                    "data": {
                        "train": toy_tagging(tmp_path / "train.conll", 300, seed=1),
                        "validation": toy_tagging(tmp_path / "dev.conll", 60, seed=2),
                        "conll_columns": ["tokens", "ner"],
                    },
                    "crf": True,
                    "batch_size": 16,
                }
            },
            "training": {"max_steps": 150, "learning_rate": 3e-3, "save_every_steps": 0},
        }
    )
    result = train(recipe)
    [evaluation] = result.evaluations
    assert evaluation.metrics["f1"] >= 0.95
    sentences = [block.split("\n") for block in evaluation.predictions.strip().split("\n\n")]
    predicted = [[line.split()[2] for line in sentence] for sentence in sentences]
    labels = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    start, follow, _end = allowed_transitions(labels, "iob2")
    for tags in predicted:
        ids = [labels.index(tag) for tag in tags]
        assert start[ids[0]] and all(follow[a, b] for a, b in itertools.pairwise(ids))
    # A stock AutoModelForTokenClassification has no transition scores: export refuses rather than drop them.
    with pytest.raises(ExportError, match="head is of kind 'crf'"):
        export_saved_task(result.model_dir, "ner", tmp_path / "export")


def test_crf_settings_are_checked_when_the_recipe_loads():
    task = {"type": "token_classification", "data": {"train": "a.conll"}, "crf": True, "label_all_subtokens": True}
    with pytest.raises(RecipeError, match="crf: a CRF reads one emission per word"):
        recipe_from_dict({"tasks": {"ner": task}})
    with pytest.raises(RecipeError, match=r"tasks\.s\.crf: unknown key"):
        recipe_from_dict({"tasks": {"s": {"type": "sequence_classification", "data": {"train": "a.tsv"}, "crf": True}}})
