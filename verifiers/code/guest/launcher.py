"""Sandbox guest: the trusted launcher, pid 1 of the sandbox.

Run as ``python3 -I -S launcher.pyc`` inside bubblewrap (``--as-pid-1``), as
the unprivileged sandbox uid. It reads one job (marshal) from stdin, runs the
solution under rlimits in child processes, and writes one JSON event per line
to stdout, each carrying the job's nonce:

* ``{"type": "compile", "ok": false, "msg": ...}`` - the code does not compile;
* ``{"type": "plan", "total": n}`` - number of cases (assert format);
* ``{"type": "case", "i": k, "status": ..., ...}`` - one finished case;
* ``{"type": "spec_error", "msg": ...}`` - the tests themselves are malformed;
* ``{"type": "error", "msg": ...}`` - an internal failure;
* ``{"type": "done"}`` - always last.

Why the solution cannot forge these: the launcher makes itself non-dumpable
before any solution code exists, so the solution (same uid, no capabilities)
can neither read its memory (where the nonce and the assert-style tests live)
nor open its file descriptors through /proc. As pid 1 of its own pid
namespace it ignores every signal it has no handler for, SIGKILL included,
so "kill the parent" does nothing. The solution never sees expected outputs:
stdout and return values go back to the host, which compares them. For
assert-style tests the test code runs *here*, in a process no solution code
ever ran in, and calls into the solution process over a pipe: arguments and
return values cross as plain data (see `codec`), so a returned object with a
custom ``__eq__``, patched builtins or a redefined ``check`` change nothing.

Only the standard library may be imported; the codec is inlined at load time.
"""

# ruff: noqa: SIM105 - contextlib would be one more import on the sandbox's start-up path

from __future__ import annotations

import _signal as signal  # `signal` imports enum: ~4 ms per start
import builtins
import fcntl
import marshal
import posix as os  # `os` itself costs an import on the start-up path
import resource
import select
import time

from verifiers.code.guest.codec import (
    CodecError,
    decode_value,
    encode_value,
    from_json,
    to_json,
)

TYPE_CHECKING = False  # typing costs ~25 ms to import on the sandbox start-up path
if TYPE_CHECKING:
    from typing import Any

STDERR_KEEP = 4000
_TICK = os.sysconf("SC_CLK_TCK")
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4


class CaseTimeout(BaseException):
    """The per-case wall-clock alarm fired."""


class CandidateFatal(BaseException):
    """The solution process failed in a way the tests must not swallow."""

    def __init__(self, status: str, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


class GuestDied(Exception):
    """The solution process exited or broke the protocol."""


class Emitter:
    """Writes nonce-tagged JSON lines to the host."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce

    def emit(self, **fields: Any) -> None:
        fields["nonce"] = self.nonce
        data = (to_json(fields) + "\n").encode()
        while data:
            n = os.write(1, data)
            data = data[n:]


class Alarm:
    """Single-shot wall-clock deadline that raises `CaseTimeout` when armed."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = False
        signal.signal(signal.SIGALRM, self._handler)

    def _handler(self, signum: int, frame: object) -> None:
        if self.armed:
            self.armed = False
            self.fired = True
            raise CaseTimeout()

    def arm(self, seconds: float) -> None:
        self.fired = False
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))

    def disarm(self) -> None:
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)


def make_nondumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0) through bare _ctypes (ctypes costs ms to import)."""
    import _ctypes

    class CInt(_ctypes._SimpleCData):
        _type_ = "i"

    class CFunc(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = CInt

    class Libc:
        _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]

    prctl = CFunc(("prctl", Libc()))  # type: ignore[arg-type]
    if prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 or prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_DUMPABLE, 0) failed")


def user_rlimits(lim: dict[str, Any]) -> list[tuple[int, int, int]]:
    cpu = max(1, int(-(-lim["cpu"] // 1)))
    mem = int(lim["memory"])
    stack = min(64 << 20, max(mem // 4, 8 << 20))
    return [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_STACK, stack, stack),
        (resource.RLIMIT_NPROC, int(lim["nproc"]), int(lim["nproc"])),
        (resource.RLIMIT_FSIZE, int(lim["fsize"]), int(lim["fsize"])),
        (resource.RLIMIT_NOFILE, int(lim["nofile"]), int(lim["nofile"])),
        (resource.RLIMIT_CORE, 0, 0),
    ]


def spawn(
    argv: list[str],
    fds: dict[int, int],
    rlimits: list[tuple[int, int, int]],
    env: dict[str, str],
) -> int:
    """Fork and exec `argv` in a new session with `fds` (target -> source) and rlimits."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setsid()
            # Move everything out of the target range first so no dup2 clobbers a source.
            err_w = fcntl.fcntl(err_w, fcntl.F_DUPFD_CLOEXEC, 512)
            moved = {t: fcntl.fcntl(s, fcntl.F_DUPFD_CLOEXEC, 256) for t, s in fds.items()}
            for target, src in moved.items():
                os.dup2(src, target, inheritable=True)
            keep = max(fds) + 1
            os.closerange(keep, err_w)
            os.closerange(err_w + 1, 1 << 16)
            for res, soft, hard in rlimits:
                resource.setrlimit(res, (soft, hard))
            os.execve(argv[0], argv, env)
        except BaseException as exc:
            try:
                os.write(err_w, f"{type(exc).__name__}: {exc}".encode()[:1000])
            finally:
                os._exit(127)
    os.close(err_w)
    chunks = []
    while True:
        chunk = os.read(err_r, 1000)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(err_r)
    if chunks:
        os.waitpid(pid, 0)
        raise OSError("cannot start " + argv[0] + ": " + b"".join(chunks).decode(errors="replace"))
    return pid


def proc_cpu(pid: int) -> float:
    """CPU seconds used by `pid` and its waited-for children (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data[data.rindex(b")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / _TICK


class Sandbox:
    """Process bookkeeping shared by all modes."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.confined = bool(job["confined"])
        self.env = dict(job["env"])
        self.limits = dict(job["limits"])
        self.started = time.monotonic()

    def budget_left(self) -> float:
        return float(self.limits["total"]) - (time.monotonic() - self.started)

    def kill_all(self, pgid: int | None) -> None:
        """Kill group `pgid` and, when confined, every other process in the sandbox."""
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        if not self.confined:
            return
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return
            except InterruptedError:
                continue


def _tail(data: bytes, keep: int = STDERR_KEEP) -> str:
    return data[-keep:].decode(errors="replace")


def _is_memory_error(stderr: bytes) -> bool:
    tail = stderr[-STDERR_KEEP:]
    return b"MemoryError" in tail or b"std::bad_alloc" in tail or b"Cannot allocate memory" in tail


def run_process(
    sb: Sandbox,
    argv: list[str],
    data: bytes,
    lim: dict[str, Any],
    merge_stderr: bool = False,
) -> dict[str, Any]:
    """Run one process with `data` on stdin; capture capped stdout and stderr."""
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = (out_r, out_w) if merge_stderr else os.pipe2(os.O_CLOEXEC)
    start = time.monotonic()
    try:
        pid = spawn(argv, {0: in_r, 1: out_w, 2: err_w}, user_rlimits(lim), sb.env)
    finally:
        for fd in {in_r, out_w, err_w}:
            os.close(fd)
    pidfd = os.pidfd_open(pid)
    readers = {out_r: bytearray()} if merge_stderr else {out_r: bytearray(), err_r: bytearray()}
    for fd in (in_w, *readers):
        os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    for fd in readers:
        poller.register(fd, select.POLLIN)
    if data:
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
        in_w = -1
    view, sent = memoryview(data), 0
    cap = int(lim["output"])
    deadline = start + float(lim["wall"])
    exited = timed_out = too_much = False

    def drain(fd: int) -> bool:
        buf = readers[fd]
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                poller.unregister(fd)
                return False
            buf += chunk
            if fd == out_r and len(buf) > cap:
                return True
            if fd != out_r and len(buf) > 2 * STDERR_KEEP:
                del buf[:-STDERR_KEEP]

    open_readers = set(readers)
    while not exited:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for fd, _ev in poller.poll(left * 1000):
            if fd == pidfd:
                exited = True
            elif fd == in_w:
                try:
                    sent += os.write(in_w, view[sent : sent + 65536])
                except BlockingIOError:
                    pass
                except BrokenPipeError:
                    sent = len(data)
                if sent >= len(data):
                    poller.unregister(in_w)
                    os.close(in_w)
                    in_w = -1
            elif fd in open_readers and not drain(fd):
                open_readers.discard(fd)
        if len(readers[out_r]) > cap:
            too_much = True
            break
    if not exited:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    for fd in list(open_readers):
        drain(fd)
    sb.kill_all(pid)
    for fd in (pidfd, *readers, in_w):
        if fd >= 0:
            os.close(fd)
    out = bytes(readers[out_r])
    err = out if merge_stderr else bytes(readers[err_r])
    cpu = usage.ru_utime + usage.ru_stime
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -sig
    res: dict[str, Any] = {
        "exit": code,
        "cpu": round(cpu, 4),
        "wall": round(wall, 4),
        "stderr": _tail(err),
    }
    if too_much or len(out) > cap or sig == signal.SIGXFSZ:
        res["status"] = "output_limit"
    elif (
        timed_out
        or sig == signal.SIGXCPU
        or cpu > float(lim["cpu"])
        or (sig == signal.SIGKILL and cpu >= float(lim["cpu"]) - 0.05)
    ):
        res["status"] = "timeout"
    elif code != 0 and _is_memory_error(err):
        res["status"] = "memory_limit"
    elif code != 0:
        res["status"] = "runtime_error"
        res["msg"] = f"killed by signal {sig}" if sig else f"exit code {code}"
    else:
        res["status"] = "ok"
        res["stdout"] = out.decode(errors="replace")
    return res


# --------------------------------------------------------------------------- RPC


class Guest:
    """The runner process that holds the solution, driven over two pipes."""

    def __init__(self, sb: Sandbox, job: dict[str, Any]) -> None:
        self.sb = sb
        self.max_reply = int(sb.limits["output"])
        req_r, self.req_w = os.pipe2(os.O_CLOEXEC)
        self.resp_r, resp_w = os.pipe2(os.O_CLOEXEC)
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        argv = [*job["runner_cmd"], "3", "4", job["source_name"], str(self.max_reply)]
        lim = dict(sb.limits)
        lim["cpu"] = float(lim["total"]) + 1  # per-case CPU is accounted in `Session`
        try:
            fds = {0: null, 1: null, 2: null, 3: req_r, 4: resp_w}
            self.pid = spawn(argv, fds, user_rlimits(lim), sb.env)
        finally:
            for fd in (req_r, resp_w, null):
                os.close(fd)
        self.pidfd = os.pidfd_open(self.pid)
        os.set_blocking(self.resp_r, False)
        self.buf = bytearray()
        self.alive = True
        self.cpu_limit: float | None = None  # absolute CPU seconds for the pending reply

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def _fill(self) -> None:
        poller = select.poll()
        poller.register(self.resp_r, select.POLLIN)
        poller.register(self.pidfd, select.POLLIN)
        while True:
            timeout_ms = None
            if self.cpu_limit is not None:
                # CPU time never outruns wall time, so sleeping for the CPU budget
                # left and then re-checking catches a busy loop at its CPU limit.
                left = self.cpu_limit - self.cpu()
                if left <= 0:
                    raise CandidateFatal("timeout", "CPU time limit exceeded")
                timeout_ms = max(20.0, left * 1000)
            ready = dict(poller.poll(timeout_ms))
            if self.resp_r in ready or self.pidfd in ready:
                try:
                    chunk = os.read(self.resp_r, 1 << 20)
                except BlockingIOError:
                    if self.pidfd in ready:
                        raise GuestDied("the solution process exited") from None
                    continue
                if not chunk:
                    raise GuestDied("the solution process exited")
                self.buf += chunk
                return

    def recv(self) -> dict[str, Any]:
        while b"\n" not in self.buf[:32]:
            if len(self.buf) >= 32:
                raise GuestDied("protocol violation by the solution process")
            self._fill()
        head, _, _ = self.buf.partition(b"\n")
        try:
            size = int(head)
        except ValueError:
            raise GuestDied("protocol violation by the solution process") from None
        if size < 0 or size > 4 * self.max_reply + 65536:
            raise CandidateFatal("output_limit", "reply from the solution is too large")
        start = len(head) + 1
        while len(self.buf) < start + size:
            self._fill()
        payload = bytes(self.buf[start : start + size])
        del self.buf[: start + size]
        try:
            msg = from_json(payload)
        except (ValueError, RecursionError):
            raise GuestDied("protocol violation by the solution process") from None
        if not isinstance(msg, dict):
            raise GuestDied("protocol violation by the solution process")
        return msg

    def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        data = to_json(obj).encode()
        data = b"%d\n" % len(data) + data
        try:
            while data:
                n = os.write(self.req_w, data)
                data = data[n:]
        except BrokenPipeError:
            raise GuestDied("the solution process exited") from None
        return self.recv()

    def stop(self) -> None:
        if self.alive:
            self.alive = False
            try:
                os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            self.sb.kill_all(self.pid)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            for fd in (self.req_w, self.resp_r, self.pidfd):
                os.close(fd)


def load_failure(reply: dict[str, Any]) -> tuple[str, str, str]:
    """(status, message, traceback) for a runner that failed to load the code."""
    name = str(reply.get("exc", "error"))
    msg = f"{name}: {reply.get('msg', '')}"
    status = "memory_limit" if name == "MemoryError" else "runtime_error"
    return status, msg, str(reply.get("tb", ""))[-STDERR_KEEP:]


class Session:
    """A (re)startable solution process with per-case deadline bookkeeping."""

    def __init__(self, sb: Sandbox, job: dict[str, Any], alarm: Alarm) -> None:
        self.sb = sb
        self.job = job
        self.alarm = alarm
        self.guest: Guest | None = None
        self.load_error: tuple[str, str, str] | None = None
        self.fatal: tuple[str, str] | None = None
        self.last_tb = ""
        self.cpu_used = 0.0

    def ensure(self) -> Guest:
        """The running guest, started (and the code loaded) on first use."""
        if self.load_error is not None:
            raise CandidateFatal(self.load_error[0], self.load_error[1])
        if self.guest is not None:
            return self.guest
        guest = Guest(self.sb, self.job)
        self.guest = guest
        guest.cpu_limit = float(self.sb.limits["cpu"])
        try:
            reply = guest.recv()
        except GuestDied as exc:
            self.load_error = ("runtime_error", f"the solution exited while loading: {exc}", "")
            self.drop()
            raise CandidateFatal(self.load_error[0], self.load_error[1]) from None
        except CandidateFatal as exc:
            self.load_error = (exc.status, f"while loading the solution: {exc.msg}", "")
            self.drop()
            raise
        except CaseTimeout:
            self.load_error = ("timeout", "loading the solution timed out", "")
            self.drop()
            raise
        finally:
            guest.cpu_limit = None
        if not reply.get("ready"):
            self.load_error = load_failure(reply)
            self.last_tb = self.load_error[2]
            self.drop()
            raise CandidateFatal(self.load_error[0], self.load_error[1])
        return guest

    def drop(self) -> None:
        if self.guest is not None:
            self.guest.stop()
            self.guest = None

    def begin_case(self) -> None:
        self.fatal = None
        self.last_tb = ""
        self.cpu_used = 0.0

    def fail(self, status: str, msg: str) -> CandidateFatal:
        if self.fatal is None:
            self.fatal = (status, msg)
        self.drop()
        return CandidateFatal(status, msg)

    def call(self, name: str, args_text: str, kwargs_text: str, want_args: bool) -> dict[str, Any]:
        """One call into the solution; fatal failures are recorded and raised."""
        if self.fatal is not None:
            raise CandidateFatal(*self.fatal)
        guest = self.ensure()
        before = guest.cpu()
        req: dict[str, Any] = {"op": "call", "fn": name, "args": args_text}
        req.update(kwargs=kwargs_text, want_args=want_args)
        guest.cpu_limit = before + float(self.sb.limits["cpu"]) - self.cpu_used
        try:
            reply = guest.request(req)
        except GuestDied as exc:
            raise self.fail("runtime_error", str(exc)) from None
        except CandidateFatal as exc:
            raise self.fail(exc.status, exc.msg) from None
        finally:
            guest.cpu_limit = None
        self.cpu_used += max(0.0, guest.cpu() - before)
        if self.cpu_used > float(self.sb.limits["cpu"]):
            raise self.fail("timeout", "CPU time limit exceeded")
        if "exc" in reply:
            self.last_tb = str(reply.get("tb", ""))[-STDERR_KEEP:]
            if reply["exc"] == "MemoryError":
                raise self.fail("memory_limit", "MemoryError")
        if "unserialisable" in reply:
            if reply["unserialisable"] == "too_large":
                raise self.fail("output_limit", "return value too large")
            raise self.fail("wrong_answer", f"return value is not plain data: {reply.get('msg')}")
        return reply


def _exception_from(reply: dict[str, Any]) -> BaseException:
    """A pristine built-in exception matching the solution's exception."""
    msg = str(reply.get("msg", ""))
    for name in reply.get("mro", []):
        cls = getattr(builtins, str(name), None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(msg)
    return CandidateFatal("runtime_error", f"{reply.get('exc')}: {msg}")


# --------------------------------------------------------------------------- modes


def run_stdin(sb: Sandbox, job: dict[str, Any], out: Emitter) -> None:
    for i, data in enumerate(job["cases"]):
        if sb.budget_left() <= 0:
            out.emit(type="case", i=i, status="timeout", stderr="total time budget exhausted")
            continue
        lim = dict(sb.limits)
        lim["wall"] = min(float(lim["wall"]), max(sb.budget_left(), 0.05))
        res = run_process(sb, job["run"], data.encode(), lim)
        out.emit(type="case", i=i, **res)


def run_functional(sb: Sandbox, job: dict[str, Any], out: Emitter, alarm: Alarm) -> None:
    session = Session(sb, job, alarm)
    for i, args_text in enumerate(job["cases"]):
        if sb.budget_left() <= 0:
            out.emit(type="case", i=i, status="timeout", stderr="total time budget exhausted")
            continue
        session.begin_case()
        event: dict[str, Any]
        try:
            alarm.arm(min(float(sb.limits["wall"]), sb.budget_left()))
            try:
                reply = session.call(job["fn_name"], args_text, '{"d":[]}', False)
            finally:
                alarm.disarm()
            if "ok" in reply:
                event = {"status": "ok", "value": reply["ok"]}
            elif "exc" in reply:
                msg = f"{reply['exc']}: {reply.get('msg', '')}"
                event = {"status": "runtime_error", "msg": msg, "stderr": session.last_tb}
            else:
                event = {"status": "runtime_error", "msg": "protocol violation"}
        except CaseTimeout:
            session.fail("timeout", "wall-clock time limit exceeded")
            event = {"status": "timeout", "msg": "wall-clock time limit exceeded"}
        except CandidateFatal as exc:
            event = {"status": exc.status, "msg": exc.msg, "stderr": session.last_tb}
        out.emit(type="case", i=i, cpu=round(session.cpu_used, 4), **event)
    session.drop()


def _mutable_args(args: tuple[Any, ...]) -> bool:
    return any(type(a) in (list, dict, set, bytearray) for a in args)


def _copy_back(args: tuple[Any, ...], new: Any) -> None:
    if not isinstance(new, list) or len(new) != len(args):
        return
    for old, fresh in zip(args, new, strict=True):
        if type(old) is list and type(fresh) is list:
            old[:] = fresh
        elif type(old) in (dict, set) and type(fresh) is type(old):
            old.clear()
            old.update(fresh)
        elif type(old) is bytearray and type(fresh) is bytes:
            old[:] = fresh


def make_proxy(session: Session, name: str) -> Any:
    """A local stand-in for the solution's callable `name`."""

    def proxy(*args: Any, **kwargs: Any) -> Any:
        cap = int(session.sb.limits["output"])
        try:
            args_text = encode_value(list(args), cap)
            kwargs_text = encode_value(dict(kwargs), cap)
        except (CodecError, RecursionError) as exc:
            raise TypeError(f"cannot pass this argument to the solution: {exc}") from None
        reply = session.call(name, args_text, kwargs_text, _mutable_args(args))
        if "exc" in reply:
            raise _exception_from(reply)
        if "ok" not in reply:
            raise session.fail("runtime_error", "protocol violation by the solution process")
        try:
            value = decode_value(reply["ok"])
            if "args" in reply:
                _copy_back(args, decode_value(reply["args"]))
        except CodecError as exc:
            raise session.fail(
                "runtime_error", f"malformed value from the solution: {exc}"
            ) from None
        return value

    proxy.__name__ = proxy.__qualname__ = name
    return proxy


def run_assert(sb: Sandbox, job: dict[str, Any], out: Emitter, alarm: Alarm) -> None:
    """Run the planned test statements here; the solution's names are proxies."""
    plan = job["plan"]
    try:
        compiled = [
            (kind, src, compile(src, "<tests>", "exec", dont_inherit=True))
            for kind, src in plan["statements"]
        ]
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        out.emit(type="spec_error", msg=f"test code does not compile: {exc}")
        return
    out.emit(type="plan", total=sum(1 for kind, _, _ in compiled if kind == "case"))

    session = Session(sb, job, alarm)
    wanted = [n for n in plan["names"] if not hasattr(builtins, n)]
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        alarm.arm(min(float(sb.limits["wall"]), sb.budget_left()))
        try:
            guest = session.ensure()
            found = guest.request({"op": "lookup", "names": wanted}).get("names", {})
        finally:
            alarm.disarm()
        if not isinstance(found, dict):
            found = {}
        for name in wanted:
            info = found.get(name)
            if not isinstance(info, dict):
                continue
            if info.get("kind") == "callable":
                ns[name] = make_proxy(session, name)
            elif info.get("kind") == "value":
                try:
                    ns[name] = decode_value(str(info.get("value")))
                except CodecError:
                    pass
    except CaseTimeout:
        session.load_error = ("timeout", "loading the solution timed out", "")
        session.drop()
    except CandidateFatal:
        pass
    except GuestDied as exc:
        session.load_error = ("runtime_error", f"the solution exited while loading: {exc}", "")
        session.drop()

    setup_error = ""
    case_no = 0
    for kind, text, code in compiled:
        if kind == "setup":
            session.begin_case()
            try:
                alarm.arm(min(float(sb.limits["wall"]), max(sb.budget_left(), 0.05)))
                try:
                    exec(code, ns)
                finally:
                    alarm.disarm()
            except BaseException as exc:
                setup_error = setup_error or f"{type(exc).__name__}: {exc}"[:500]
            continue
        i, case_no = case_no, case_no + 1
        shown = text[:300]
        if session.load_error is not None:
            status, msg, tb = session.load_error
            out.emit(type="case", i=i, status=status, msg=msg, stderr=tb, test=shown)
            continue
        if sb.budget_left() <= 0:
            out.emit(type="case", i=i, status="timeout", msg="total time budget exhausted")
            continue
        session.begin_case()
        status, msg = "passed", ""
        try:
            alarm.arm(min(float(sb.limits["wall"]), sb.budget_left()))
            try:
                exec(code, ns)
            finally:
                alarm.disarm()
        except CaseTimeout:
            status, msg = "timeout", "wall-clock time limit exceeded"
        except CandidateFatal as exc:
            status, msg = exc.status, exc.msg
        except AssertionError as exc:
            status, msg = "wrong_answer", f"AssertionError: {exc}"[:500]
        except BaseException as exc:
            status, msg = "runtime_error", f"{type(exc).__name__}: {exc}"[:500]
        if alarm.fired:
            status, msg = "timeout", "wall-clock time limit exceeded"
            session.fail(status, msg)
        if session.fatal is not None:
            status, msg = session.fatal
        if status == "passed" and session.cpu_used > float(sb.limits["cpu"]):
            status, msg = "timeout", "CPU time limit exceeded"
        event: dict[str, Any] = {"status": status, "test": shown, "cpu": round(session.cpu_used, 4)}
        if status != "passed":
            event.update(msg=msg, stderr=session.last_tb or setup_error)
        out.emit(type="case", i=i, **event)
    session.drop()


def compile_step(sb: Sandbox, job: dict[str, Any], out: Emitter) -> bool:
    source = job["source"]
    if job.get("syntax_check"):
        try:
            compile(source, job["source_name"], "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
            out.emit(type="compile", ok=False, msg=f"{type(exc).__name__}: {exc}"[:STDERR_KEEP])
            return False
    if job.get("compile"):
        lim = dict(sb.limits)
        lim.update(job["compile_limits"])
        res = run_process(sb, job["compile"], b"", lim, merge_stderr=True)
        if res["status"] != "ok":
            msg = res["stderr"] or f"compiler status {res['status']} (exit {res['exit']})"
            out.emit(type="compile", ok=False, msg=msg[-STDERR_KEEP:], status=res["status"])
            return False
    return True


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    make_nondumpable()
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    job = marshal.loads(b"".join(chunks))
    chunks.clear()
    out = Emitter(job["nonce"])
    alarm = Alarm()
    sb = Sandbox(job)
    try:
        with open(job["source_name"], "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(job["source"])
        if compile_step(sb, job, out):
            mode = job["mode"]
            if mode == "stdin":
                run_stdin(sb, job, out)
            elif mode == "functional":
                run_functional(sb, job, out, alarm)
            else:
                run_assert(sb, job, out, alarm)
    except BaseException as exc:
        import traceback

        alarm.disarm()
        out.emit(type="error", msg="".join(traceback.format_exception(exc))[-STDERR_KEEP:])
    finally:
        alarm.disarm()
        sb.kill_all(None)
        out.emit(type="done")


if __name__ == "__main__":
    main()
