"""Resolve the locations a recipe may name: local paths, ``pkg:`` paths inside installed packages, Hub ids."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from .errors import ModelLoadError

PACKAGE_PREFIX = "pkg:"

Loaded = TypeVar("Loaded")


def resolve_package_path(location: str) -> str:
    """Turn ``pkg:<package>/<path>`` into the absolute path of ``<path>`` inside the installed ``<package>``.

    Other strings are returned unchanged. This is how recipes name data and models that ship inside Python
    packages (the bundled sample data, the packaged MiniLM) without depending on where site-packages is.
    """
    if not location.startswith(PACKAGE_PREFIX):
        return location
    package, _, inner = location[len(PACKAGE_PREFIX) :].partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"{location!r}: Python package {package!r} is not installed. "
            f"Install it (e.g. `pip install {package.replace('_', '-')}`) or give a local path instead."
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / inner)


def looks_local(location: str) -> bool:
    """True when ``location`` can only mean a local path: it starts like one (``/``, ``./``, ``../``, ``~``,
    ``pkg:``) or is not a valid Hub id (``name`` or ``owner/name``), e.g. ``runs/exp1/model``."""
    if location.startswith((PACKAGE_PREFIX, "/", "./", "../", "~", ".\\", "..\\")) or os.path.isabs(location):
        return True
    try:
        validate_repo_id(location)
    except HFValidationError:
        return True
    return False


def resolve_model_location(location: str) -> str:
    """Return a local model directory or a Hub id for ``location``; fail at once, without asking the Hub, for a
    local path that does not exist or a directory without ``config.json``.

    A Hub id is returned as given: the Hub client decides, and offline it fails fast with ``HF_HUB_OFFLINE=1``.
    """
    resolved = os.path.expanduser(resolve_package_path(location))
    if os.path.isdir(resolved):
        if not os.path.isfile(os.path.join(resolved, "config.json")):
            raise ModelLoadError(
                f"model {location!r}: {resolved} has no config.json, so it is not a saved model. Give the "
                "directory that holds config.json, the weights and the tokenizer files (what save_pretrained writes)."
            )
        return resolved
    if looks_local(location) or os.path.exists(resolved):
        raise ModelLoadError(
            f"model {location!r}: no such directory ({resolved}). Give the directory that holds config.json "
            "and the weights, or a Hub id such as 'bert-base-cased'."
        )
    return location


def load_pretrained(load: Callable[..., Loaded], name_or_path: str, what: str, **kwargs: Any) -> Loaded:
    """``load(location, **kwargs)`` (a ``from_pretrained``) for the resolved ``name_or_path``; a failure becomes
    one ``ModelLoadError`` that names ``what`` was being loaded, from where, and what to do."""
    location = resolve_model_location(name_or_path)
    try:
        return load(location, **kwargs)
    except (OSError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise ModelLoadError(
            f"{what} from {name_or_path!r} could not be loaded ({reason}). Give a model directory written by "
            "save_pretrained (e.g. a training run's model/), or a Hub id with network access (offline, set "
            "HF_HUB_OFFLINE=1 to fail fast)."
        ) from None
