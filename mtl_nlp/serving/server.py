"""``mtl-nlp serve``: the application on uvicorn, bound to loopback unless told otherwise, stopped gracefully.

On SIGTERM (or Ctrl+C) uvicorn stops accepting connections and waits for the requests in flight; the batcher
runs every queued request before the application stops; the process then exits with status 0.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from ..errors import InputError
from ..evaluation.reports import read_eval_results
from ..modeling.saved import load_saved_config
from ..pipeline import MultiTaskPipeline
from .app import create_app
from .backends import load_runner
from .batcher import DynamicBatcher
from .limits import ServeLimits
from .onnx_backend import read_onnx_info

logger = logging.getLogger(__name__)


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, which also tells the batcher to run what it holds at once when a stop signal comes."""

    def __init__(self, config: uvicorn.Config, batcher: DynamicBatcher) -> None:
        super().__init__(config)
        self.batcher = batcher

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.batcher.drain_soon()


def _resolved(host: str) -> str:
    """The address ``host`` binds to (a name such as ``localhost`` resolved)."""
    try:
        return socket.getaddrinfo(host, None)[0][4][0]
    except (socket.gaierror, IndexError):
        return "0.0.0.0"


def _stop(signum: int, frame: object) -> None:
    """What SIGTERM or SIGINT does outside uvicorn's own handling: before start-up, or re-raised by uvicorn once it has
    shut down gracefully: exit with status 0."""
    raise SystemExit(0)


def serve(
    model_dir: str | Path,
    *,
    backend: str = "torch",
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ServeLimits | None = None,
    api_key_env: str | None = None,
    cors_origins: Sequence[str] = (),
    access_log: bool = False,
) -> int:
    """Serve the model in ``model_dir`` until SIGTERM or Ctrl+C; return the exit status.

    The directory is checked before the server starts (a clear error, not a server that never gets ready); the
    weights load in the background, and ``/ready`` says when they are loaded and warmed up.
    """
    limits = limits or ServeLimits()
    if backend == "onnx":
        read_onnx_info(model_dir)
    load_saved_config(model_dir)
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env, "")
        if not api_key:
            raise InputError(f"--api-key-env {api_key_env}: that environment variable is not set or is empty.")

    def load() -> MultiTaskPipeline:
        runner, tokenizer = load_runner(model_dir, backend)
        return MultiTaskPipeline(runner, tokenizer, device="cpu", batch_size=limits.max_batch_size)

    app = create_app(
        load,
        limits=limits,
        backend=backend,
        eval_results=read_eval_results(model_dir),
        api_key=api_key,
        cors_origins=cors_origins,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_config=None,  # the command's logging set-up applies
        timeout_graceful_shutdown=None,  # every accepted request is answered
        server_header=False,
    )
    if api_key is None and not ipaddress.ip_address(_resolved(host)).is_loopback:
        logger.warning("Serving on %s without --api-key-env: anyone who can reach this port can use the model.", host)
    for handled in (signal.SIGTERM, signal.SIGINT):
        signal.signal(handled, _stop)
    logger.info(
        "Serving %s (%s) on http://%s:%d/ ; the page to try it is at that address.", model_dir, backend, host, port
    )
    _DrainingServer(config, app.state.batcher).run()
    return 0
