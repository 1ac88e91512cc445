"""uvicorn's HTTP protocol with a deadline for request headers.

uvicorn arms its keep-alive timer only after a response, and every byte a
client sends cancels it: a connection that is opened and left silent, or that
trickles a header line now and then (slowloris), stays open forever and holds
a file descriptor. Here a connection must deliver complete request headers
within ``VERIFIER_BODY_TIMEOUT_S`` of being opened (or of its previous
response), else it is closed. The body then has its own deadline
(`service.middleware.BodyLimitMiddleware` and, for the verify routes,
`service.fast_path`: 408).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@functools.cache
def header_timeout_s() -> float:
    from service.settings import Settings

    return Settings().body_timeout_s


#: Gathered writes beyond this many bytes are handed on at once.
_GATHER_LIMIT = 64 * 1024


class CoalescingTransport:
    """A transport whose writes within one event-loop iteration leave as one.

    uvicorn writes a response's status line and headers, then its body: two
    system calls and two TCP segments per response, which for small answers
    costs as much as building them. Here writes are gathered and handed to the
    real transport once the loop has run the current callbacks (before it
    waits for I/O again), so a response sent at once goes out in one write.
    Everything else is the real transport's; closing writes what is gathered.
    """

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._pending_bytes = 0

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._pending_bytes = len(data)
            self._loop.call_soon(self._flush)
        else:
            self._pending.append(data)
            self._pending_bytes += len(data)
        if self._pending_bytes > _GATHER_LIMIT:
            # A long stream written without a pause: hand it on now, so the real
            # transport's flow control (pause_writing) holds the writer back.
            self._flush()

    def writelines(self, lines: Iterable[bytes]) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def get_write_buffer_size(self) -> int:
        gathered = self._pending_bytes if self._pending is not None else 0
        return self._transport.get_write_buffer_size() + gathered

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that closes connections whose headers do not arrive,
    and sends each response in one write (`CoalescingTransport`)."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, CoalescingTransport(transport, self.loop)))
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # a queued request's headers are already in
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(header_timeout_s(), self._headers_overdue)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        cycle: Any = self.cycle
        if (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()
