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
import uuid
from contextvars import ContextVar
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")
#: LogRecord attributes that are not user extras.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Loggers that get the JSON format: ours and uvicorn's.
LOGGERS = ("rlvr_verifier", "uvicorn", "uvicorn.error")


def request_id_from(header: str | None) -> str:
    """The client's id when it is short and printable, else a fresh one."""
    if header and _SAFE_ID.match(header):
        return header
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extras}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
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
        return orjson.dumps(entry, default=str).decode()


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send the service's logs to stderr in `fmt`; give uvicorn's handlers the
    same format. Idempotent (one handler per logger)."""
    formatter: logging.Formatter = (
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
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
