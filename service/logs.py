"""Structured logs: one JSON object per line, carrying the request id.

`REQUEST_ID` is set per HTTP request by the app's middleware (from an
incoming ``X-Request-ID`` header, else generated) and is inherited by every
task the request starts, so background probes log under the same id.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, TextIO

import orjson

from service.ids import random_hex

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")
#: LogRecord attributes that are not user extras.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Loggers that get the JSON format: ours and uvicorn's.
LOGGERS = ("rlvr_verifier", "uvicorn", "uvicorn.error")


#: Secrets (API keys, the judge's token) replaced in every formatted log line.
_SECRETS: tuple[str, ...] = ()


def redact_secrets(secrets: Iterable[str]) -> None:
    """Never log these strings (also in their JSON-escaped form), wherever a
    client put them: a path, a request id, a message."""
    global _SECRETS
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= 4:
            forms.update((secret, orjson.dumps(secret).decode()[1:-1]))
    _SECRETS = tuple(sorted(forms, key=len, reverse=True))


def _redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return text


def request_id_from(header: str | None) -> str:
    """The client's id when it is short and printable, else a fresh one."""
    if header and _SAFE_ID.match(header):
        return header
    return random_hex(16)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extras}`` per line."""

    _second: tuple[int, str] = (-1, "")

    def _timestamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached, text = self._second  # one tuple: consistent across threads
        if second != cached:  # strftime once per second, not once per line
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        attributes = vars(record)
        for key in sorted(attributes.keys() - _STANDARD):  # the extras, without a full scan
            if not key.startswith("_"):
                entry[key] = attributes[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _redact(orjson.dumps(entry, default=str).decode())


class BatchedStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes the lines of one event-loop iteration together.

    Under load one iteration answers many requests; writing each access line
    on its own costs a system call per request (a tenth of the throughput of
    single-item traffic). Lines logged from a thread running an event loop are
    gathered and written once the loop has run its current callbacks - before
    it waits for I/O again, so no line is held while the process is idle.
    Lines from other threads (or another loop), and warnings and errors from
    anywhere, are written at once after what was gathered, keeping the order;
    `flush` (also called at exit) writes what is left.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._gathered: list[str] = []
        self._flushing_loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's lock
        try:
            self._gathered.append(self.format(record) + self.terminator)
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None or record.levelno >= logging.WARNING:
                self._write_gathered()
            elif self._flushing_loop is None:
                self._flushing_loop = loop
                loop.call_soon(self.flush)
            elif self._flushing_loop is not loop:
                self._write_gathered()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_gathered()
        finally:
            self.release()

    def _write_gathered(self) -> None:
        lines, self._gathered, self._flushing_loop = self._gathered, [], None
        stream = self.stream
        if stream is None:
            return
        if lines:
            stream.write("".join(lines))
        if hasattr(stream, "flush"):
            stream.flush()


class TextFormatter(logging.Formatter):
    """``LEVEL logger message``, secrets redacted."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return _redact(super().format(record))


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send the service's logs to stderr in `fmt`; give uvicorn's handlers the
    same format. Idempotent (one handler per logger).

    Neither format shows source lines, threads or processes, so the records
    skip collecting them (the logging module's documented optimisations;
    about a fifth of the cost of an access-log line)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    ours = logging.getLogger("rlvr_verifier")
    ours.setLevel(level.upper())
    handler = next((h for h in ours.handlers if getattr(h, "_rlvr", False)), None)
    if handler is None:
        handler = BatchedStreamHandler(sys.stderr)
        handler._rlvr = True  # type: ignore[attr-defined]
        ours.addHandler(handler)
        ours.propagate = False
    handler.setFormatter(formatter)
    for name in LOGGERS[1:]:
        for existing in logging.getLogger(name).handlers:
            existing.setFormatter(formatter)
