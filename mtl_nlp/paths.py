"""Resolve the locations a recipe may name: local paths, ``pkg:`` paths inside installed packages, Hub ids."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import ModelLoadError

PACKAGE_PREFIX = "pkg:"


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
    """True when ``location`` can only mean a local path (absolute, ``./``, ``../``, ``~`` or ``pkg:``)."""
    return location.startswith((PACKAGE_PREFIX, "/", "./", "../", "~", ".\\", "..\\")) or os.path.isabs(location)


def resolve_model_location(location: str) -> str:
    """Return a local directory or a Hub id for ``location``; fail at once for a local path that does not exist.

    A Hub id is returned as given: the Hub client decides, and offline it fails fast with ``HF_HUB_OFFLINE=1``.
    """
    resolved = os.path.expanduser(resolve_package_path(location))
    if os.path.isdir(resolved):
        return resolved
    if looks_local(location) or os.path.exists(resolved):
        raise ModelLoadError(
            f"model {location!r}: no such directory ({resolved}). Give the directory that holds config.json "
            "and the weights, or a Hub id such as 'bert-base-cased'."
        )
    return location
