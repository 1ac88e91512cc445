"""Plain-ASGI middleware: request ids, metrics and access logs; body limits.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's
`BaseHTTPMiddleware` costs a task group and memory streams per request. The
pieces (`request_id_of`, `observe`, `send_error`) are shared with the verify
fast path (`service.fast_path`), which serves the hot routes without this stack.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import logs, metrics
from service.schemas import ErrorResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("rlvr_verifier.access")


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` mid-stream; an HTTPException so the framework's
    body parser re-raises it instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class _BodyTimeout(StarletteHTTPException):
    """Raised from `receive` when the body has not arrived in time (a stalled
    or trickling client); 408, and the connection is closed."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, body_timeout_message(timeout_s), {"connection": "close"})


def body_timeout_message(timeout_s: float) -> str:
    """The 408 message for a body that did not arrive within `timeout_s`."""
    return f"request body not received within {timeout_s:g} s"


class BodyLimitMiddleware:
    """413 for bodies over the limit, without reading them whole; 408 for
    bodies that do not arrive in full within `timeout_s` of the headers."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._reject(send, 413, "payload_too_large", self._too_large)
                    return
        seen = 0
        started = False
        body_done = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # later receives only wait for a disconnect: no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise _BodyTimeout(self.timeout_s) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._reject(send, 413, "payload_too_large", self._too_large)
        except _BodyTimeout as exc:
            if not started:
                await self._reject(send, 408, "request_timeout", str(exc.detail))

    @property
    def _too_large(self) -> str:
        return f"request body exceeds {self.max_bytes} bytes"

    async def _reject(self, send: Send, status: int, error: str, message: str) -> None:
        await send_error(send, status, error, message, close=True)


async def send_error(
    send: Send,
    status: int,
    error: str,
    message: str,
    *,
    close: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete `ErrorResponse` (used before or instead of the app)."""
    body = ErrorResponse(error=error, message=message).model_dump_json().encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        head.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


#: Scope key holding the id already given to this request (by the verify fast path).
REQUEST_ID_KEY = "rlvr.request_id"


def bearer_token(authorization: bytes | None) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` header value, else b""."""
    if authorization is None:
        return b""
    scheme, _, token = authorization.partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


def valid_token(token: bytes, keys: Iterable[bytes]) -> bool:
    """Whether `token` is one of `keys` (constant-time comparisons)."""
    return bool(token) and any(hmac.compare_digest(token, key) for key in keys)


def request_id_of(scope: Scope) -> str:
    """The request's id: the one it already has, else the client's ``X-Request-ID``
    when usable, else a fresh one."""
    given = scope.get(REQUEST_ID_KEY)
    if given is not None:
        return str(given)
    supplied = None
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            supplied = value.decode("latin-1")
            break
    return logs.request_id_from(supplied)


def observe(endpoint: str, scope: Scope, status: int, began: float, access: bool) -> None:
    """HTTP metrics and (when `access`) the access-log line of a finished request."""
    method = scope["method"]
    elapsed = time.perf_counter() - began
    metrics.add(metrics.child(metrics.HTTP_REQUESTS, endpoint, method, str(status)))
    metrics.child(metrics.HTTP_LATENCY, endpoint, method).observe(elapsed)
    if access:
        path = scope["path"]
        access_log.info(
            "%s %s %d",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )


class ObserveMiddleware:
    """Request id, HTTP metrics and the access log for every request.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's
    `BaseHTTPMiddleware` costs a task group and memory streams per request,
    which dominated single-item traffic.
    """

    def __init__(self, app: ASGIApp, access: bool) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = request_id_of(scope)
        token = logs.REQUEST_ID.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
            route = scope.get("route")
            observe(getattr(route, "path", "unmatched"), scope, status, began, self.access)
        finally:
            logs.REQUEST_ID.reset(token)
