"""Sandbox guest: runs the solution's code and serves calls into it.

Started by the launcher (inside the sandbox, with rlimits already applied) as
``python3 -I -S runner.pyc REQ_FD RESP_FD SOLUTION_PATH MAX_REPLY``.
It loads the solution as a module named ``solution`` and answers requests on
REQ_FD with replies on RESP_FD, each a length-prefixed JSON object:

* ``{"op": "lookup", "names": [...]}`` -> ``{"names": {name: kind-or-value}}``
* ``{"op": "call", "fn": name, "args": wire, "kwargs": wire, "want_args": bool}``
  -> ``{"ok": wire}`` or ``{"exc": name, "mro": [...], "msg": ..., "tb": ...}``

Nothing here is trusted: the solution runs in this process and may rewrite
any of it. The launcher therefore only ever reads *values* from this process,
decodes them into plain built-in objects itself, and compares them elsewhere.
"""

# ruff: noqa: SIM105 - contextlib would be one more import on the sandbox's start-up path

from __future__ import annotations

import builtins
import posix as os  # `os` itself costs an import on the start-up path
import sys

# Functions defined below resolve built-in names through this snapshot, not the
# live `builtins` module, so a solution that patches builtins cannot break the
# runner's own encoding of its results.
__builtins__ = dict(vars(builtins))  # type: ignore[assignment]

from verifiers.code.guest.codec import (
    CodecError,
    decode_value,
    encode_value,
    from_json,
    to_json,
)

TYPE_CHECKING = False  # typing costs ~25 ms to import on the sandbox start-up path
if TYPE_CHECKING:
    from typing import Any, BinaryIO


def _send(wf: BinaryIO, obj: dict[str, Any]) -> None:
    data = to_json(obj).encode()
    wf.write(b"%d\n" % len(data) + data)
    wf.flush()


def _recv(rf: BinaryIO) -> dict[str, Any] | None:
    header = rf.readline(32)
    if not header:
        return None
    data = rf.read(int(header))
    msg = from_json(data)
    if not isinstance(msg, dict):
        raise ValueError("malformed request")
    return msg


def _safe_str(obj: object, limit: int = 500) -> str:
    try:
        return str(obj)[:limit]
    except BaseException:
        return "<unprintable>"


def _exc_reply(exc: BaseException) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "exc": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins"],
        "msg": _safe_str(exc),
    }
    try:
        import traceback

        reply["tb"] = "".join(traceback.format_exception(exc))[-2000:]
    except BaseException:
        reply["tb"] = ""
    return reply


def _resolve(ns: dict[str, Any], name: str) -> Any:
    obj = ns.get(name)
    if obj is None:
        sol = ns.get("Solution")
        if isinstance(sol, type) and hasattr(sol, name):
            return getattr(sol(), name)
        raise NameError(f"name {name!r} is not defined")
    if not callable(obj):
        raise TypeError(f"{name!r} is not callable")
    return obj


def _lookup(ns: dict[str, Any], names: list[str], max_reply: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in names:
        if name not in ns:
            if isinstance(ns.get("Solution"), type) and hasattr(ns["Solution"], name):
                found[name] = {"kind": "callable"}
            continue
        value = ns[name]
        if callable(value):
            found[name] = {"kind": "callable"}
            continue
        try:
            found[name] = {"kind": "value", "value": encode_value(value, max_reply)}
        except (CodecError, RecursionError, ValueError):
            pass
    return {"names": found}


def _call(ns: dict[str, Any], msg: dict[str, Any], max_reply: int) -> dict[str, Any]:
    try:
        fn = _resolve(ns, msg["fn"])
        args = decode_value(msg["args"])
        kwargs = decode_value(msg.get("kwargs", '{"d":[]}'))
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return _exc_reply(exc)
    try:
        reply: dict[str, Any] = {"ok": encode_value(result, max_reply)}
    except CodecError as exc:
        kind = "too_large" if "exceeds" in str(exc) or "too large" in str(exc) else "type"
        return {"unserialisable": kind, "msg": _safe_str(exc)}
    except BaseException as exc:
        return _exc_reply(exc)
    if msg.get("want_args"):
        try:
            reply["args"] = encode_value(args, max_reply)
        except BaseException:
            pass
    return reply


def main() -> None:
    req_fd, resp_fd, path, max_reply = (
        int(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
    )
    rf = open(req_fd, "rb")  # noqa: SIM115 - lives as long as the process
    wf = open(resp_fd, "wb")  # noqa: SIM115
    sys.argv = [path]
    ns: dict[str, Any] = {"__name__": "solution", "__file__": path, "__builtins__": builtins}
    try:
        with open(path, "rb") as f:
            source = f.read()
        exec(compile(source, path, "exec"), ns)
    except BaseException as exc:
        reply = _exc_reply(exc)
        reply["phase"] = "load"
        _send(wf, reply)
        return
    _send(wf, {"ready": True})
    while True:
        msg = _recv(rf)
        if msg is None:
            return
        if msg.get("op") == "lookup":
            _send(wf, _lookup(ns, list(msg["names"]), max_reply))
        else:
            _send(wf, _call(ns, msg, max_reply))


if __name__ == "__main__":
    try:
        main()
    finally:
        sys.stdout.flush()
        os._exit(0)
