"""ASGI middleware of the server: the request body limit, per-request metrics and security headers.

Pure ASGI (no buffering of responses), so that each wraps a request in a few attribute look-ups.
"""

from __future__ import annotations

import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import ServeMetrics

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def body_too_large(limit: int) -> str:
    """The message of a 413 for a body over ``limit`` bytes."""
    return (
        f"the request body is larger than the limit of {limit} bytes (--max-body-bytes); send fewer or shorter texts."
    )


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413: at once from ``Content-Length``, or as soon as a
    streamed (chunked) body passes the limit, before it is read whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            message = body_too_large(self.limit) if declared.isdigit() else "the Content-Length header is not a number."
            status = 413 if declared.isdigit() else 400
            body = json.dumps({"error": {"status": status, "message": message, "field": None}}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send(
                {"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, body_too_large(self.limit))
            return message

        await self.app(scope, counted, send)


class RequestMetricsMiddleware:
    """Count every response by endpoint and status and time it (unknown paths count as ``other``), and add the
    security headers every response carries."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, endpoints: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)
