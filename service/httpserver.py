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
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@functools.cache
def header_timeout_s() -> float:
    from service.settings import Settings

    return Settings().body_timeout_s


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that closes connections whose headers do not arrive."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
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
