"""``mtl-nlp serve`` as a real process on a free loopback port: predictions over HTTP equal the pipeline's,
concurrent requests are batched, bad requests get clear 4xx answers and never hurt the server, overload gives
503 with Retry-After and loses no accepted request, SIGTERM drains and exits 0, the API key is enforced."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_onnx_backend import save_demo_model

from mtl_nlp.pipeline import MultiTaskPipeline

LIMITS = {"--max-texts": 8, "--max-text-chars": 200, "--max-body-bytes": 4000}
TEXTS = [
    "angela merkel met officials of siemens in munich on tuesday .",
    "the film was wonderful and funny",
    "shares of toyota fell in tokyo after the company cut its forecast .",
    "serena williams won the title at wimbledon",
]
START_TIMEOUT = 120


@dataclass
class Server:
    """A server process and its address."""

    process: subprocess.Popen
    url: str
    log: Path

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics, keyed by name and labels."""
        text = httpx.get(f"{self.url}/metrics").text
        return {
            sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(model_dir: Path, log: Path, *flags: str, env: dict | None = None) -> Iterator[Server]:
    """``mtl-nlp serve`` on a free loopback port, ready (model loaded and warmed up); stopped with SIGTERM after."""
    port = free_port()
    command = [sys.executable, "-m", "mtl_nlp", "serve", str(model_dir), "--port", str(port), *flags]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"the server exited: {log.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/ready").status_code == 200:
                    break
                assert httpx.get(f"{server.url}/health").status_code == 200, f"the model failed: {log.read_text()}"
            assert time.monotonic() < deadline, f"not ready after {START_TIMEOUT} s: {log.read_text()}"
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


EVAL_RESULTS = [{"task": "ner", "split": "validation", "headline": "f1", "headline_value": 0.5, "metrics": {"f1": 0.5}}]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory):
    directory = save_demo_model(tmp_path_factory.mktemp("served-model"), tiny_model_dir)
    (directory / "eval_results.json").write_text(json.dumps(EVAL_RESULTS), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    flags = [item for pair in LIMITS.items() for item in map(str, pair)]
    with running_server(model_dir, log, "--max-wait-ms", "20", *flags) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline(model_dir):
    return MultiTaskPipeline(model_dir, device="cpu")


def as_json(value):
    """What a value becomes through JSON (numpy numbers → Python numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item()))


def test_predictions_over_http_equal_the_pipelines(server, pipeline):
    questions = [None, "what was the film ?", None, "who won the title ?"]
    response = httpx.post(f"{server.url}/v1/predict", json={"texts": TEXTS, "questions": questions})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results == as_json(pipeline(TEXTS, questions))
    assert sum(len(result["ner"]) for result in results) > 0 and "qa" in results[1] and "qa" not in results[0]
    subset = httpx.post(f"{server.url}/v1/predict", json={"texts": TEXTS[:2], "tasks": ["sentiment"]}).json()
    assert subset["results"] == as_json(pipeline(TEXTS[:2], tasks=["sentiment"]))
    assert all(result.keys() == {"text", "sentiment"} for result in subset["results"])


def test_64_concurrent_requests_are_all_answered_correctly_and_batched(server, pipeline):
    texts = [TEXTS[i % len(TEXTS)] + f" number {i}" for i in range(64)]
    expected = as_json(pipeline(texts))
    before = server.metrics()

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/v1/predict", json={"texts": [text]}) for text in texts))

    responses = asyncio.run(send_all())
    assert [response.status_code for response in responses] == [200] * 64
    assert [response.json()["results"][0] for response in responses] == expected
    after = server.metrics()
    batches = after["mtl_nlp_batch_size_texts_count{}"] - before["mtl_nlp_batch_size_texts_count{}"]
    texts_run = after["mtl_nlp_batch_size_texts_sum{}"] - before["mtl_nlp_batch_size_texts_sum{}"]
    assert texts_run == 64 and batches < 64  # several requests shared a batch
    single = (
        after['mtl_nlp_batch_size_texts_bucket{"le": "1.0"}'] - before['mtl_nlp_batch_size_texts_bucket{"le": "1.0"}']
    )
    assert single < batches  # some batch held more than one text
    assert after['mtl_nlp_requests_total{"endpoint": "/v1/predict", "status": "200"}'] >= 64


def test_model_health_ready_metrics_docs_and_page(server):
    model = httpx.get(f"{server.url}/v1/model").json()
    tasks = {task["name"]: task for task in model["tasks"]}
    assert sorted(tasks) == ["ner", "qa", "sentiment"]
    assert tasks["ner"]["labels"][:3] == ["O", "B-PER", "I-PER"] and tasks["ner"]["type"] == "token_classification"
    assert tasks["qa"]["needs_question"] and not tasks["sentiment"]["needs_question"]
    assert tasks["ner"]["scores"] == {"validation": {"f1": 0.5}} and tasks["sentiment"]["scores"] == {}
    assert model["backend"] == "torch" and model["backbone"]["model_type"] == "bert"
    assert "name" not in model["backbone"]  # a local path is not shown to clients
    assert model["limits"]["max_texts"] == 8
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").json() == {"status": "ready"}
    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain") and "mtl_nlp_queue_texts" in metrics.text
    assert "/v1/predict" in httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200
    page = httpx.get(f"{server.url}/")
    assert page.headers["content-type"].startswith("text/html") and "/static/page.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    assert httpx.get(f"{server.url}/static/page.js").headers["content-type"].startswith("text/javascript")


def _body(value) -> dict:
    return {"content": json.dumps(value), "headers": {"content-type": "application/json"}}


def _oversized_stream():
    for _ in range(10):
        yield b'{"texts": ["' + b"a" * 1000


BAD_REQUESTS = {
    "malformed JSON": ("POST", _body(None) | {"content": '{"texts": ['}, 400, None),
    "wrong content type": (
        "POST",
        {"content": '{"texts": ["a b"]}', "headers": {"content-type": "text/plain"}},
        400,
        None,
    ),
    "no content type": ("POST", {"content": '{"texts": ["a b"]}'}, 400, None),
    "empty body": ("POST", {"content": b"", "headers": {"content-type": "application/json"}}, 400, None),
    "body not an object": ("POST", _body(["a b"]), 422, None),
    "texts missing": ("POST", _body({"tasks": ["ner"]}), 422, "texts"),
    "texts not a list": ("POST", _body({"texts": "a b"}), 422, "texts"),
    "texts null": ("POST", _body({"texts": None}), 422, "texts"),
    "a text not a string": ("POST", _body({"texts": ["a", 3]}), 422, "texts.1"),
    "empty list of texts": ("POST", _body({"texts": []}), 422, "texts"),
    "blank text": ("POST", _body({"texts": ["a", "   "]}), 422, "texts.1"),
    "unknown task": ("POST", _body({"texts": ["a"], "tasks": ["ner", "pos"]}), 422, "tasks.1"),
    "tasks not a list": ("POST", _body({"texts": ["a"], "tasks": "ner"}), 422, "tasks"),
    "empty list of tasks": ("POST", _body({"texts": ["a"], "tasks": []}), 422, "tasks"),
    "unknown field": ("POST", _body({"texts": ["a"], "context": "b"}), 422, "context"),
    "QA text without a question": ("POST", _body({"texts": ["a"], "tasks": ["qa"]}), 422, "questions"),
    "QA text with a null question": (
        "POST",
        _body({"texts": ["a", "b"], "tasks": ["qa"], "questions": ["q", None]}),
        422,
        "questions.1",
    ),
    "fewer questions than texts": ("POST", _body({"texts": ["a", "b"], "questions": ["q"]}), 422, "questions"),
    "blank question": ("POST", _body({"texts": ["a"], "questions": [" "]}), 422, "questions.0"),
    "too many texts": ("POST", _body({"texts": ["a"] * 9}), 413, "texts"),
    "text over the character limit": ("POST", _body({"texts": ["a" * 201]}), 413, "texts.0"),
    "question over the character limit": (
        "POST",
        _body({"texts": ["a"], "questions": ["q" * 201]}),
        413,
        "questions.0",
    ),
    "body over the size limit": ("POST", _body({"texts": ["a " * 60] * 40}), 413, None),
    "streamed body over the size limit": (
        "POST",
        {"content": _oversized_stream, "headers": {"content-type": "application/json"}},
        413,
        None,
    ),
    "GET on the predict endpoint": ("GET", {}, 405, None),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_clear_answers_and_the_server_lives_on(server, case):
    method, options, status, field = BAD_REQUESTS[case]
    if callable(options.get("content")):
        options = {**options, "content": options["content"]()}
    response = httpx.request(method, f"{server.url}/v1/predict", timeout=30, **options)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["field"] == field and len(error["message"]) > 10
    assert "Traceback" not in response.text and 'File "' not in response.text
    if status == 413:
        limit = {"texts": 8, "texts.0": 200, "questions.0": 200, None: 4000}[field]
        assert str(limit) in error["message"]
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_an_unknown_endpoint_is_a_json_404(server):
    response = httpx.get(f"{server.url}/v1/files")
    assert response.status_code == 404 and "/v1/files" in response.json()["error"]["message"]


def test_overload_gives_503_with_retry_after_and_every_accepted_request_is_answered(model_dir, tmp_path):
    flags = ["--max-batch-size", "1", "--max-wait-ms", "0", "--max-queue", "4", "--max-texts", "4"]
    texts = [TEXTS[0] * 3] * 4
    with running_server(model_dir, tmp_path / "server.log", *flags) as server:

        async def flood() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
                return await asyncio.gather(*(client.post("/v1/predict", json={"texts": texts}) for _ in range(64)))

        responses = asyncio.run(flood())
        codes = [response.status_code for response in responses]
        assert set(codes) == {200, 503}, codes
        for response in responses:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1" and "busy" in response.json()["error"]["message"]
            else:
                assert len(response.json()["results"]) == 4
        metrics = server.metrics()
        answered = metrics['mtl_nlp_requests_total{"endpoint": "/v1/predict", "status": "200"}']
        assert answered == codes.count(200)  # every accepted request got its answer
        assert metrics["mtl_nlp_batch_size_texts_sum{}"] == 4 * codes.count(200)
        assert metrics["mtl_nlp_queue_texts{}"] == 0


def test_sigterm_stops_accepting_answers_the_queued_requests_and_exits_0(model_dir, tmp_path):
    flags = ["--max-batch-size", "64", "--max-wait-ms", "20000"]
    with running_server(model_dir, tmp_path / "server.log", *flags) as server:

        async def send_then_stop() -> tuple[list[httpx.Response], float]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                sent = [asyncio.create_task(client.post("/v1/predict", json={"texts": [text]})) for text in TEXTS]
                while server_queue(server) < len(TEXTS):  # all accepted and waiting for their batch
                    await asyncio.sleep(0.05)
                server.process.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                responses = await asyncio.gather(*sent)
                return responses, time.monotonic() - signalled

        responses, answered_after = asyncio.run(send_then_stop())
        assert [response.status_code for response in responses] == [200] * len(TEXTS)
        assert [response.json()["results"][0]["text"] for response in responses] == TEXTS
        assert answered_after < 10  # the queued batch ran at once, without waiting out the 20 s of --max-wait-ms
        assert server.process.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.url}/health")
        assert "Traceback" not in server.log.read_text()


def server_queue(server: Server) -> float:
    return server.metrics()["mtl_nlp_queue_texts{}"]


def test_the_api_key_is_required_compared_and_never_logged(model_dir, tmp_path):
    key = "s3cret-key-for-the-test"
    log = tmp_path / "server.log"
    flags = ["--api-key-env", "MTL_TEST_KEY", "--access-log"]
    with running_server(model_dir, log, *flags, env={"MTL_TEST_KEY": key}) as server:
        request = {"json": {"texts": ["a b"]}}
        assert httpx.post(f"{server.url}/v1/predict", **request).status_code == 401
        wrong = httpx.post(f"{server.url}/v1/predict", headers={"authorization": "Bearer nope"}, **request)
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.post(f"{server.url}/v1/predict", headers={"authorization": f"Bearer {key}"}, **request).is_success
        assert httpx.post(f"{server.url}/v1/predict", headers={"x-api-key": key}, **request).is_success
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/health").status_code == 200  # liveness stays open for probes
        assert httpx.get(f"{server.url}/").status_code == 200
    assert key not in log.read_text() and "POST /v1/predict" in log.read_text()


def test_serve_refuses_a_bad_directory_or_an_unset_key_before_starting(model_dir, tmp_path):
    def serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "mtl_nlp", "serve", *args, "--port", str(free_port())]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})

    missing = serve(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr
    onnx = serve(str(model_dir), "--backend", "onnx")
    assert onnx.returncode == 2 and "export-onnx" in onnx.stderr
    unset = serve(str(model_dir), "--api-key-env", "MTL_UNSET_KEY", env={"MTL_UNSET_KEY": ""})
    assert unset.returncode == 2 and "MTL_UNSET_KEY" in unset.stderr
    queue = serve(str(model_dir), "--max-queue", "4", "--max-texts", "8")
    assert queue.returncode == 2 and "--max-queue" in queue.stderr
