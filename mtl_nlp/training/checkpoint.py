"""Atomic directory writes: a directory appears complete under its final name, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces ``target`` by renames.

    A crash while writing leaves ``target`` as it was (the temporary directory is removed on errors and
    ignored by readers, since its name starts with a dot).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


CHECKPOINT_PREFIX = "step-"
PARTIAL_SUFFIX = ".partial"


class CheckpointDirectory:
    """The run's resumable checkpoints: ``<root>/step-<N>``, written atomically, the last ``keep`` kept.

    A checkpoint is written into ``.step-<N>.partial`` by every process and renamed to ``step-<N>`` by the
    main process once all are done, so a kill during a save leaves only a partial directory that
    :meth:`latest` never picks and the next save removes.
    """

    def __init__(self, root: str | Path, keep: int) -> None:
        self.root = Path(root)
        self.keep = keep

    def final_path(self, step: int) -> Path:
        return self.root / f"{CHECKPOINT_PREFIX}{step:08d}"

    def partial_path(self, step: int) -> Path:
        return self.root / f".{CHECKPOINT_PREFIX}{step:08d}{PARTIAL_SUFFIX}"

    def begin(self, step: int) -> Path:
        """Make an empty staging directory for step ``step``, clearing leftovers of interrupted saves (main
        process only)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(f".{CHECKPOINT_PREFIX}*{PARTIAL_SUFFIX}"):
            shutil.rmtree(leftover)
        staging = self.partial_path(step)
        staging.mkdir()
        return staging

    def commit(self, step: int) -> Path:
        """Publish the staged checkpoint under its final name and drop the oldest beyond ``keep`` (main only)."""
        final = self.final_path(step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(self.partial_path(step), final)
        for old in self.completed()[: -self.keep]:
            shutil.rmtree(old)
        return final

    def completed(self) -> list[Path]:
        """Finished checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = [path for path in self.root.glob(f"{CHECKPOINT_PREFIX}*") if path.is_dir()]
        return sorted(found, key=lambda path: int(path.name.removeprefix(CHECKPOINT_PREFIX)))

    def latest(self) -> Path | None:
        """The most recent finished checkpoint, if any."""
        completed = self.completed()
        return completed[-1] if completed else None
