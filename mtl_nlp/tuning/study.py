"""The study and the processes that work on it: its storage (optuna's journal file by default, or a database), and
which process runs which trial — so that trials are never run twice and a trial whose process died is resumed.

Each process holds an exclusive lock on a file of its own (``workers/<id>.lock`` beside the study) while it lives
and marks the trials it runs with its id. A running trial whose process's lock is free belongs to a process that
died (killed, machine lost, interrupted): the first process to take that lock takes the trial over and continues
it from its checkpoint. Locks are ``flock`` locks, so processes on several machines need a shared file system
with working file locks (NFSv4 has them).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path
from typing import IO

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from ..errors import SearchError
from .space import SearchSpace

JOURNAL_FILE = "study.journal"
WORKER_ATTR = "worker"
ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def open_storage(url: str | None, study_dir: Path) -> BaseStorage:
    """The study's storage: a database URL (``sqlite:///study.db``, ``postgresql://…``), a journal file path, or by
    default the journal file ``study.journal`` in ``study_dir``. An unusable one is refused before any trial."""
    if url is None:
        study_dir.mkdir(parents=True, exist_ok=True)
        url = str(study_dir / JOURNAL_FILE)
    try:
        if "://" in url:
            return RDBStorage(url)
        return JournalStorage(JournalFileBackend(url))
    except Exception as error:  # drivers and databases raise their own types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SearchError(
            f"--storage {url}: the study's storage cannot be opened ({reason}). Give a reachable database URL "
            "(sqlite:///path/study.db, postgresql://…) or a writable journal file path."
        ) from None


def open_study(storage: BaseStorage, name: str, space: SearchSpace) -> optuna.Study:
    """The study ``name`` in ``storage``, created on first use and continued afterwards."""
    return optuna.create_study(
        storage=storage,
        study_name=name,
        direction=space.direction,
        sampler=optuna.samplers.TPESampler(seed=space.seed),
        pruner=space.pruner_for_optuna(),
        load_if_exists=True,
    )


def _try_lock(path: Path) -> IO[bytes] | None:
    """An open handle holding an exclusive lock on ``path``, or None when another process holds it."""
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class Worker:
    """This process's part in a study: its lock, and the trials it starts or takes over."""

    def __init__(self, study: optuna.Study, directory: Path) -> None:
        self.study = study
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.id = uuid.uuid4().hex
        self._lock = _try_lock(directory / f"{self.id}.lock")

    def next_trial(self, trials: int, space: SearchSpace) -> optuna.Trial | None:
        """A trial to run: one that a dead process left unfinished, else a new one while the study has fewer
        than ``trials`` trials ended or running; None when it has enough."""
        abandoned = self._take_over_abandoned()
        if abandoned is not None:
            return abandoned
        if len(self.study.get_trials(deepcopy=False, states=(*ENDED, TrialState.RUNNING))) >= trials:
            return None
        trial = self.study.ask({key: distribution.to_optuna() for key, distribution in space.parameters.items()})
        trial.set_user_attr(WORKER_ATTR, self.id)
        return trial

    def _take_over_abandoned(self) -> optuna.Trial | None:
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = frozen.user_attrs.get(WORKER_ATTR)
            if owner is None or owner == self.id:
                continue  # a trial just asked for, not yet marked, is not abandoned
            owner_lock = self.directory / f"{owner}.lock"
            handle = _try_lock(owner_lock)
            if handle is None:
                continue
            try:
                # Read again under the lock: another process may have taken it over a moment ago.
                current = self.study.get_trials(deepcopy=False)[frozen.number]
                if current.state == TrialState.RUNNING and current.user_attrs.get(WORKER_ATTR) == owner:
                    # optuna hands out Trial objects for new trials only; an unfinished one is continued by id.
                    trial = optuna.trial.Trial(self.study, current._trial_id)
                    trial.set_user_attr(WORKER_ATTR, self.id)
                    return trial
            finally:
                os.unlink(owner_lock)
                handle.close()
        return None
