"""Structured logs: one JSON object per line, carrying the request id.

`REQUEST_ID` is set per HTTP request by the app's middleware (from an
incoming ``X-Request-ID`` header, else generated) and is inherited by every
task the request starts, so background probes log under the same id.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

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
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _redact(orjson.dumps(entry, default=str).decode())


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
        handler = logging.StreamHandler(sys.stderr)
        handler._rlvr = True  # type: ignore[attr-defined]
        ours.addHandler(handler)
        ours.propagate = False
    handler.setFormatter(formatter)
    for name in LOGGERS[1:]:
        for existing in logging.getLogger(name).handlers:
            existing.setFormatter(formatter)
