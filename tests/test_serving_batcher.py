"""The dynamic batcher on its own: requests that arrive together share a batch, each gets its own results for its
own tasks, a failing request fails alone, a full queue refuses, closing answers every queued request."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mtl_nlp.serving.batcher import DynamicBatcher, QueueFull, ShuttingDown
from mtl_nlp.tasks import InferenceInput, Prediction


class FakeModel:
    """Stands in for MultiTaskPipeline.predict: records each call; a text "fail" makes the call raise."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[list[str], list[str] | None]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.delay = delay

    def predict(self, inputs, tasks):
        self.calls.append(([given.text for given in inputs], tasks))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            self.release.wait(self.delay)
        if any(given.text == "fail" for given in inputs):
            raise ValueError("this input fails")
        return [{name: Prediction(f"{name}:{given.text}") for name in tasks or ["a", "b"]} for given in inputs]


def inputs(*texts: str) -> list[InferenceInput]:
    return [InferenceInput(text) for text in texts]


async def started(model: FakeModel, **limits) -> DynamicBatcher:
    batcher = DynamicBatcher(model.predict, **{"max_batch_size": 8, "max_wait_ms": 50, "max_queue": 32, **limits})
    batcher.start()
    return batcher


def outputs(results):
    return [{name: prediction.output for name, prediction in result.items()} for result in results]


def test_concurrent_requests_share_one_batch_with_the_union_of_their_tasks():
    async def scenario():
        model = FakeModel()
        sizes = []
        batcher = await started(model, on_batch=lambda texts, seconds: sizes.append(texts))
        answers = await asyncio.gather(
            batcher.submit(inputs("x", "y"), ["a"]),
            batcher.submit(inputs("z"), ["b"]),
            batcher.submit(inputs("w"), None),
        )
        await batcher.close()
        return model, sizes, answers

    model, sizes, answers = asyncio.run(scenario())
    assert model.calls == [(["x", "y", "z", "w"], None)] and sizes == [4]
    assert outputs(answers[0]) == [{"a": "a:x"}, {"a": "a:y"}]
    assert outputs(answers[1]) == [{"b": "b:z"}]
    assert outputs(answers[2]) == [{"a": "a:w", "b": "b:w"}]
    assert model.threads == {"mtl-nlp-model_0"}  # off the event loop, in the batcher's worker


def test_a_batch_holds_at_most_max_batch_size_texts_of_whole_requests():
    async def scenario():
        model = FakeModel()
        batcher = await started(model, max_batch_size=3)
        await asyncio.gather(*(batcher.submit(inputs(f"{i}a", f"{i}b"), ["a"]) for i in range(3)))
        await asyncio.gather(batcher.submit(inputs(*"abcde"), ["a"]))  # larger than a batch: runs alone
        await batcher.close()
        return model

    model = asyncio.run(scenario())
    assert [texts for texts, _ in model.calls] == [["0a", "0b"], ["1a", "1b"], ["2a", "2b"], list("abcde")]


def test_a_failing_request_fails_alone_and_the_others_are_answered():
    async def scenario():
        batcher = await started(FakeModel())
        answers = await asyncio.gather(
            batcher.submit(inputs("ok"), ["a"]), batcher.submit(inputs("fail"), ["a"]), return_exceptions=True
        )
        await batcher.close()
        return answers

    good, bad = asyncio.run(scenario())
    assert outputs(good) == [{"a": "a:ok"}]
    assert isinstance(bad, ValueError)


def test_a_full_queue_refuses_and_a_closed_batcher_answers_what_it_had_queued():
    async def scenario():
        model = FakeModel(delay=5)
        batcher = await started(model, max_batch_size=1, max_wait_ms=0, max_queue=2)
        running = asyncio.ensure_future(batcher.submit(inputs("first"), ["a"]))
        while not model.calls:  # the first batch runs (blocked in the model); the next requests queue
            await asyncio.sleep(0.01)
        queued = [asyncio.ensure_future(batcher.submit(inputs(text), ["a"])) for text in ("second", "third")]
        await asyncio.sleep(0.01)
        assert batcher.queued_texts == 2
        with pytest.raises(QueueFull):
            await batcher.submit(inputs("fourth"), ["a"])
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.01)
        with pytest.raises(ShuttingDown):
            await batcher.submit(inputs("late"), ["a"])
        model.release.set()
        answers = await asyncio.gather(running, *queued)
        await closing
        return model, answers

    model, answers = asyncio.run(scenario())
    assert [outputs(answer) for answer in answers] == [[{"a": "a:first"}], [{"a": "a:second"}], [{"a": "a:third"}]]
    assert [texts for texts, _ in model.calls] == [["first"], ["second"], ["third"]]


def test_the_first_text_waits_at_most_max_wait_ms():
    async def scenario():
        batcher = await started(FakeModel(), max_wait_ms=30)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await batcher.submit(inputs("alone"), ["a"])
        waited = loop.time() - began
        await batcher.close()
        return waited

    assert 0.025 <= asyncio.run(scenario()) < 0.5
