"""Dynamic batching: requests that arrive together share one model run, which runs off the event loop.

Each request's texts join a bounded queue. A batch starts when the waiting texts reach ``max_batch_size`` or
when its first text has waited ``max_wait_ms``; it holds whole requests, up to ``max_batch_size`` texts (a larger
request runs alone). The batch runs in a worker thread as one call of the pipeline, for the union of the tasks its
requests asked for, so the encoder runs once for all their heads and the pipeline sorts the windows by length;
each request then gets its own texts' results, for its own tasks. While a batch runs, the event loop goes on
accepting requests, which queue for the next batch. A full queue refuses new requests (:class:`QueueFull`) instead
of growing; on :meth:`DynamicBatcher.close` the queued requests are still run and answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..tasks import InferenceInput, Prediction

Predict = Callable[[list[InferenceInput], list[str] | None], list[dict[str, Prediction]]]
"""The model call: inputs and tasks (None: all) → per input, task → prediction (``MultiTaskPipeline.predict``)."""

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The queue holds too many texts to take a request now; the client should retry later."""


class ShuttingDown(Exception):
    """The server is stopping and takes no new requests."""


@dataclass
class _Job:
    inputs: list[InferenceInput]
    tasks: list[str] | None
    future: asyncio.Future = field(repr=False)
    queued_at: float


class DynamicBatcher:
    """Coalesce concurrent requests into batches for ``predict``, run one batch at a time in a worker thread.

    Args:
        predict: the model call (see :data:`Predict`); it runs in the batcher's one worker thread.
        max_batch_size: most texts in a batch (a request with more runs alone).
        max_wait_ms: longest the first text of a batch waits for others.
        max_queue: most texts waiting for a batch; :meth:`submit` raises :class:`QueueFull` beyond it.
        on_batch: called with each batch's number of texts and its run time in seconds (metrics).
    """

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_size: int,
        max_wait_ms: float,
        max_queue: int,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._jobs: deque[_Job] = deque()
        self._queued_texts = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtl-nlp-model")
        self._loop_task: asyncio.Task | None = None

    @property
    def queued_texts(self) -> int:
        """Texts waiting for a batch (not those of the batch that runs)."""
        return self._queued_texts

    def start(self) -> None:
        """Start forming batches (call from the event loop that will submit)."""
        self._loop = asyncio.get_running_loop()
        self._loop_task = self._loop.create_task(self._run(), name="mtl-nlp-batcher")

    def drain_soon(self) -> None:
        """From now on run batches without waiting for them to fill: the server is stopping, and the requests it
        has accepted should not wait out ``max_wait_ms``. Safe to call from a signal handler or another thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._draining = True
        self._wakeup.set()

    async def submit(
        self, inputs: Sequence[InferenceInput], tasks: Sequence[str] | None
    ) -> list[dict[str, Prediction]]:
        """Queue a request and wait for its results: per input, task → prediction, for ``tasks`` (None: all).

        Raises :class:`QueueFull` when its texts would pass ``max_queue``, :class:`ShuttingDown` after
        :meth:`close`, and whatever ``predict`` raised for this request's own inputs.
        """
        if self._closing:
            raise ShuttingDown("the server is shutting down")
        if self._queued_texts + len(inputs) > self.max_queue:
            raise QueueFull(f"{self._queued_texts} texts are waiting (at most {self.max_queue})")
        job = _Job(list(inputs), None if tasks is None else list(tasks), asyncio.get_running_loop().create_future(), 0)
        job.queued_at = time.monotonic()
        self._jobs.append(job)
        self._queued_texts += len(job.inputs)
        self._wakeup.set()
        return await job.future

    async def close(self) -> None:
        """Take no new requests, run every queued one (without waiting to fill batches), then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._loop_task is not None:
            await self._loop_task
        self._worker.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = self._jobs[0].queued_at + self.max_wait
            while self._queued_texts < self.max_batch_size and not (self._closing or self._draining):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            await self._run_batch(self._take_batch())

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        texts = 0
        while self._jobs and (not batch or texts + len(self._jobs[0].inputs) <= self.max_batch_size):
            job = self._jobs.popleft()
            self._queued_texts -= len(job.inputs)
            if not job.future.done():  # a request whose client went away is not run
                batch.append(job)
                texts += len(job.inputs)
        return batch

    async def _run_batch(self, batch: list[_Job]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(self._worker, self._predict_jobs, batch)
        except Exception as error:  # the worker itself failed: every request of the batch gets the error
            outcomes = [error] * len(batch)
        if self.on_batch is not None:
            self.on_batch(sum(len(job.inputs) for job in batch), time.perf_counter() - started)
        for job, outcome in zip(batch, outcomes):
            if job.future.done():
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _predict_jobs(self, batch: list[_Job]) -> list[list[dict[str, Prediction]] | Exception]:
        """Run a batch as one call; when it fails, run its requests one by one so that only the request at fault
        gets the error."""
        inputs = [given for job in batch for given in job.inputs]
        wanted = [job.tasks for job in batch]
        tasks = None if None in wanted else list(dict.fromkeys(name for names in wanted for name in names))
        try:
            results = self.predict(inputs, tasks)
        except Exception as error:
            if len(batch) == 1:
                return [error]
            logger.info("A batch of %d requests failed (%s); running them one by one.", len(batch), error)
            return [self._predict_jobs([job])[0] for job in batch]
        outcomes: list[list[dict[str, Prediction]] | Exception] = []
        start = 0
        for job in batch:
            own = results[start : start + len(job.inputs)]
            start += len(job.inputs)
            if job.tasks is not None and job.tasks != tasks:
                own = [{name: result[name] for name in job.tasks if name in result} for result in own]
            outcomes.append(own)
        return outcomes
