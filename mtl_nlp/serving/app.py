"""The HTTP application: FastAPI routes over the dynamic batcher and :class:`~mtl_nlp.pipeline.MultiTaskPipeline`.

The server owns no decoding: ``POST /v1/predict`` hands the request's texts to the batcher, which runs the
pipeline (``Task.encode_inputs`` / ``Task.decode``), and sends each text's results exactly as the pipeline returns
them. Bad requests get a JSON error naming the field (400 for a body that is not JSON, 422 for one that breaks
the schema, 413 past a limit, 503 when the queue is full, with ``Retry-After``), never a stack trace. No route
takes a path or touches files: the model is fixed when the application is made, and the page's three files are
read from the package once, then.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..errors import InputError, MtlNlpError
from ..paths import looks_local
from ..pipeline import MultiTaskPipeline, result_record
from ..tasks import InferenceInput
from .batcher import DynamicBatcher, QueueFull, ShuttingDown
from .limits import ServeLimits
from .metrics import ServeMetrics
from .middleware import BodyLimitMiddleware, RequestMetricsMiddleware
from .schemas import ErrorResponse, ModelInfo, PredictRequest, PredictResponse, TaskInfo

PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/static/page.css": ("page.css", "text/css; charset=utf-8"),
}
PAGE_POLICY = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
RETRY_AFTER_SECONDS = 1
WARM_UP = InferenceInput("mtl-nlp warms up the model in Geneva .", question="Where does it warm up ?")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The body is not JSON, or not sent as application/json.",
        401: "The API key is missing or wrong (only when the server was started with --api-key-env).",
        413: "Too many texts, a text or question too long, or a body too large.",
        422: "The body breaks the schema: a missing or mistyped field, an unknown task, a blank text or question.",
        503: "The model is loading, the queue is full or the server is stopping; retry after Retry-After seconds.",
    }.items()
}

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """An error response: status, a message for a person, the request field at fault, extra headers."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    """The JSON body every error has: ``{"error": {"status", "message", "field"}}``."""
    content = {"error": {"status": status, "message": message, "field": field}}
    return JSONResponse(content, status_code=status, headers=headers)


def _plain(value: Any) -> Any:
    """numpy scalars in a result as Python numbers, for JSON."""
    return value.item() if hasattr(value, "item") else float(value)


def needs_question(pipeline: MultiTaskPipeline, name: str) -> bool:
    """Whether task ``name`` only answers inputs that come with a question: it gives a text alone no window."""
    return not pipeline.tasks[name].encode_inputs([InferenceInput("probe")]).example_index


@dataclass
class ServerState:
    """What the routes share: the pipeline once loaded, or why it failed."""

    pipeline: MultiTaskPipeline | None = None
    load_error: str | None = None
    ready: bool = False
    question_tasks: frozenset[str] = field(default_factory=frozenset)


def _load_and_warm(load: Callable[[], MultiTaskPipeline], state: ServerState) -> None:
    pipeline = load()
    questions = frozenset(name for name in pipeline.tasks if needs_question(pipeline, name))
    pipeline.predict([WARM_UP])  # the first run allocates and picks kernels; requests should not wait for it
    state.pipeline, state.question_tasks, state.ready = pipeline, questions, True
    logger.info("Model ready: tasks %s.", ", ".join(pipeline.tasks))


def _read_request(
    body: PredictRequest, limits: ServeLimits, pipeline: MultiTaskPipeline, question_tasks: frozenset[str]
) -> tuple[list[InferenceInput], list[str] | None]:
    """The request's inputs and tasks, or an :class:`ApiError` naming the field at fault."""
    texts = body.texts
    if len(texts) > limits.max_texts:
        raise ApiError(
            413, f"a request holds at most {limits.max_texts} texts (--max-texts); got {len(texts)}: split it.", "texts"
        )
    questions = body.questions if body.questions is not None else [None] * len(texts)
    if len(questions) != len(texts):
        raise ApiError(422, f"got {len(texts)} texts but {len(questions)} questions; give one per text.", "questions")
    for name, values in (("texts", texts), ("questions", questions)):
        for number, value in enumerate(values):
            if value is not None and len(value) > limits.max_text_chars:
                raise ApiError(
                    413,
                    f"{name}[{number}] has {len(value)} characters; the limit is {limits.max_text_chars} "
                    "(--max-text-chars).",
                    f"{name}.{number}",
                )
            if value is not None and not value.strip():
                raise ApiError(422, f"{name}[{number}] is empty or only whitespace.", f"{name}.{number}")
    tasks = None if body.tasks is None else list(dict.fromkeys(body.tasks))
    for number, name in enumerate(tasks or []):
        if name not in pipeline.tasks:
            raise ApiError(
                422, f"unknown task {name!r}; this model has {', '.join(pipeline.tasks)}.", f"tasks.{number}"
            )
    asked = [name for name in tasks or [] if name in question_tasks]
    unasked = next((number for number, question in enumerate(questions) if question is None), None)
    if asked and unasked is not None:
        raise ApiError(
            422,
            f"task {asked[0]!r} answers a question about each text: give questions[{unasked}] (one per text), or "
            f"leave {asked[0]!r} out of tasks.",
            "questions" if body.questions is None else f"questions.{unasked}",
        )
    return [InferenceInput(text, question) for text, question in zip(texts, questions)], tasks


def create_app(
    load: Callable[[], MultiTaskPipeline],
    *,
    limits: ServeLimits | None = None,
    backend: str = "torch",
    eval_results: list[dict] | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The application serving the pipeline that ``load`` returns; ``load`` runs in a thread after start-up, so
    ``/health`` answers while the model loads and ``/ready`` once it is loaded and warmed up.

    Args:
        load: builds the pipeline (the model directory is fixed inside it; no request can change it).
        limits: batching, queue and request limits.
        backend: the runtime's name, reported by ``/v1/model``.
        eval_results: the model's saved evaluations (``eval_results.json``), reported by ``/v1/model``.
        api_key: when given, ``/v1/*`` and ``/metrics`` require it (``Authorization: Bearer …`` or ``X-API-Key``).
        cors_origins: origins allowed to call the API from a browser (none: CORS off).
    """
    limits = limits or ServeLimits()
    state = ServerState()
    batcher: DynamicBatcher
    metrics = ServeMetrics(lambda: batcher.queued_texts)
    batcher = DynamicBatcher(
        lambda inputs, tasks: state.pipeline.predict(inputs, tasks),
        max_batch_size=limits.max_batch_size,
        max_wait_ms=limits.max_wait_ms,
        max_queue=limits.max_queue,
        on_batch=metrics.observe_batch,
    )
    page = {
        path: (resources.files(__package__).joinpath("static", name).read_bytes(), kind)
        for path, (name, kind) in PAGE_FILES.items()
    }

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        loop = asyncio.get_running_loop()
        loading = loop.run_in_executor(None, _load_and_warm, load, state)
        loading.add_done_callback(lambda done: _report_load(done, state))
        yield
        await batcher.close()

    app = FastAPI(
        title="mtl-nlp",
        summary="Every head of a multi-task model on your texts, decoded as its evaluation scored it.",
        version="1",
        lifespan=lifespan,
    )

    def require_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key", "")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given = token.strip()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise ApiError(
                401,
                "missing or wrong API key; send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def loaded() -> MultiTaskPipeline:
        if state.load_error is not None:
            raise ApiError(503, f"the model could not be loaded: {state.load_error}")
        if not state.ready:
            raise ApiError(503, "the model is still loading.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        return state.pipeline

    @app.post(
        "/v1/predict",
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        dependencies=[Depends(require_key)],
        summary="Run the model's heads on texts",
    )
    async def predict(body: PredictRequest) -> Response:
        """One result per text and task, exactly as ``MultiTaskPipeline`` returns it: entities for token tasks,
        ``{label, score}`` for classification, ``{answer, start, end, score}`` for a question."""
        pipeline = loaded()
        inputs, tasks = _read_request(body, limits, pipeline, state.question_tasks)
        try:
            results = await batcher.submit(inputs, tasks)
        except QueueFull as error:
            raise ApiError(
                503, f"the server is busy ({error}); retry shortly.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None
        except ShuttingDown:
            raise ApiError(
                503, "the server is shutting down.", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            ) from None
        except InputError as error:
            raise ApiError(422, str(error)) from None
        payload = {"results": [result_record(given.text, result) for given, result in zip(inputs, results)]}
        return Response(json.dumps(payload, ensure_ascii=False, default=_plain), media_type="application/json")

    @app.get("/v1/model", response_model=ModelInfo, responses=ERROR_RESPONSES, dependencies=[Depends(require_key)])
    async def model_info() -> ModelInfo:
        """The tasks (type, labels, saved scores), the backbone, the runtime and the request limits."""
        pipeline = loaded()
        scores: dict[str, dict[str, dict]] = {}
        for evaluation in eval_results or []:
            scores.setdefault(evaluation["task"], {})[evaluation["split"]] = evaluation["metrics"]
        encoder = pipeline.model.config.encoder
        name = encoder.get("_name_or_path") or ""
        backbone = {key: encoder.get(key) for key in ("model_type", "num_hidden_layers", "hidden_size", "vocab_size")}
        if name and not looks_local(name):  # a Hub id; a local path says nothing to clients about the server
            backbone["name"] = name
        tasks = [
            TaskInfo(
                name=name,
                type=description["type"],
                labels=list(description["labels"]),
                needs_question=name in state.question_tasks,
                scores=scores.get(name, {}),
            )
            for name, description in pipeline.model.config.tasks.items()
        ]
        quantization = getattr(pipeline.model, "quantization", None)
        limit_values = {key: getattr(limits, key) for key in ("max_texts", "max_text_chars", "max_body_bytes")}
        return ModelInfo(
            backbone=backbone, backend=backend, quantization=quantization, tasks=tasks, limits=limit_values
        )

    @app.get("/health", summary="Liveness")
    async def health() -> JSONResponse:
        """200 while the process serves; 503 when the model failed to load (restart it)."""
        if state.load_error is not None:
            return error_response(503, f"the model could not be loaded: {state.load_error}")
        return JSONResponse({"status": "ok"})

    @app.get("/ready", summary="Readiness")
    async def ready() -> JSONResponse:
        """200 once the model is loaded and warmed up; 503 before."""
        if not state.ready:
            return JSONResponse({"status": "loading" if state.load_error is None else "failed"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", dependencies=[Depends(require_key)], summary="Prometheus metrics")
    async def prometheus() -> Response:
        """Requests by endpoint and status, request latency, batch sizes and times, queue length."""
        return Response(metrics.render(), media_type=metrics.content_type)

    def serve_page_file(path: str) -> Callable[[], Any]:
        content, kind = page[path]

        async def page_file() -> Response:
            return Response(content, media_type=kind, headers={"Content-Security-Policy": PAGE_POLICY})

        return page_file

    for path in PAGE_FILES:
        app.add_api_route(path, serve_page_file(path), methods=["GET"], include_in_schema=False)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.field, error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "the request cannot be served."
        if error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs."
        elif error.status_code == 405:
            message = f"{request.url.path} does not take {request.method}; see /docs."
        return error_response(error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_response(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("Unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "the server failed on this request; it has been logged.")

    app.add_middleware(BodyLimitMiddleware, limit=limits.max_body_bytes)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["content-type", "authorization", "x-api-key"],
        )
    endpoints = {"/v1/predict", "/v1/model", "/health", "/ready", "/metrics", "/docs", "/openapi.json", *PAGE_FILES}
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics, endpoints=endpoints)
    app.state.server = state
    app.state.batcher = batcher
    return app


def _report_load(done: asyncio.Future, state: ServerState) -> None:
    error = done.exception()
    if error is None:
        return
    state.load_error = str(error) if isinstance(error, MtlNlpError) else f"{type(error).__name__}: {error}"
    logger.error("The model could not be loaded: %s", state.load_error, exc_info=error)


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _validation_response(request: Request, error: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON (or not sent as JSON), else 422 naming the first field at fault."""
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        return error_response(
            400, f"send the body as JSON with 'Content-Type: application/json' (got {content_type or 'none'!r})."
        )
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    if first["type"] == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "malformed")
        position = location[0] if location else "?"
        return error_response(400, f"the body is not valid JSON ({detail} at character {position}).")
    if not location:
        if first["type"] == "missing":
            return error_response(400, 'the body is empty; send a JSON object such as {"texts": ["…"]}.')
        return error_response(422, 'the body must be a JSON object such as {"texts": ["…"]}.')
    field_name = ".".join(location)
    return error_response(422, f"{field_name}: {first['msg']}.", field_name)
