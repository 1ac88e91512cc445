"""Start the guest launcher under bubblewrap and stream its events back.

Isolation: ``bwrap --unshare-all`` (no network, new pid/ipc/uts/user
namespaces), a read-only root holding only read-only binds of /usr and the
loader cache, a size-limited tmpfs as the only writable directory, a fresh
/proc, a read-only /dev, ``--die-with-parent``, ``--new-session``,
``--clearenv``. bwrap runs as the unprivileged uid 65534 (when we are root)
so RLIMIT_NPROC holds (dropping privileges with ``setpriv`` when available);
the launcher applies the other rlimits to the
solution's processes.

Process hygiene without reaping other people's children: the launcher is pid
1 of the sandbox (``--as-pid-1``) and reaps everything inside it. To stop a
sandbox we SIGKILL that pid 1 (its host pid comes from ``--info-fd``); the
kernel then kills the whole pid namespace and the outer bwrap exits normally,
so nothing is orphaned and the caller only ever waits for its own child.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import marshal
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from verifiers.code.guest import GUEST_MOUNT, compiled_dir, script_command
from verifiers.code.languages import SANDBOX_PYTHON
from verifiers.code.limits import SandboxLimits

SANDBOX_UID = 65534
SANDBOX_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_STDERR_KEEP = 8000
_CHILD_PID = re.compile(rb'"child-pid"\s*:\s*(\d+)')


def bwrap_path() -> str | None:
    """Path of the bwrap binary, or None."""
    return shutil.which("bwrap")


@cache
def _bwrap_has_size() -> bool:
    """bwrap >= 0.5 understands ``--size`` (a size limit for the next --tmpfs)."""
    try:
        out = subprocess.run(
            [bwrap_path() or "bwrap", "--help"], capture_output=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return b"--size" in out


@cache
def _system_binds() -> tuple[str, ...]:
    args = ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        args += ["--ro-bind-try", f, f]
    return tuple(args)


def bwrap_argv(limits: SandboxLimits, info_fd: int | None, command: list[str]) -> list[str]:
    """The full bwrap command line that runs `command` in a fresh sandbox."""
    argv = [bwrap_path() or "/usr/bin/bwrap", "--unshare-all", "--die-with-parent"]
    argv += ["--new-session", "--as-pid-1"]
    argv += _system_binds()
    guest = compiled_dir(SANDBOX_PYTHON)
    if guest is not None:
        argv += ["--ro-bind", guest, GUEST_MOUNT]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    if _bwrap_has_size():
        argv += ["--size", str(limits.tmpfs_bytes)]
    argv += ["--tmpfs", "/tmp"]
    argv += ["--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--", *command]
    return argv if info_fd is None else _with_info_fd(argv, info_fd)


def _with_info_fd(argv: list[str] | tuple[str, ...], info_fd: int) -> list[str]:
    """`argv` (a bwrap command line) reporting the sandbox's pid on `info_fd`."""
    return [argv[0], "--info-fd", str(info_fd), *argv[1:]]


def _privilege_drop() -> tuple[list[str], dict[str, Any]]:
    """How to start the sandbox as uid 65534 when we are root: a command prefix
    (``setpriv``, so subprocess can still use vfork: with ``user=`` it must fork,
    which costs ~40 ms in a 1.5 GB service process) or Popen arguments."""
    if os.geteuid() != 0:
        return [], {}
    setpriv = shutil.which("setpriv")
    if setpriv:
        uid = str(SANDBOX_UID)
        flags = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
        return [setpriv, *flags, "--"], {}
    return [], {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}


_probe_lock = threading.Lock()
_probe_result: tuple[bool, str] | None = None
_probe_time = 0.0


def sandbox_available() -> tuple[bool, str]:
    """Whether a bubblewrap sandbox can be started here, and a human-readable detail.

    Runs one trivial sandbox the first time (cached; a failure is re-checked
    after 30 s).
    """
    global _probe_result, _probe_time
    with _probe_lock:
        if _probe_result is not None and (_probe_result[0] or time.monotonic() - _probe_time < 30):
            return _probe_result
        _probe_result = _probe()
        _probe_time = time.monotonic()
        return _probe_result


def _probe() -> tuple[bool, str]:
    if bwrap_path() is None:
        return False, "bubblewrap (bwrap) is not installed; install the 'bubblewrap' package"
    if not os.access(SANDBOX_PYTHON, os.X_OK):
        return False, f"{SANDBOX_PYTHON} is missing; the sandbox runs Python solutions with it"
    cmd = [SANDBOX_PYTHON, "-I", "-S", "-c", "print('sandbox-ok')"]
    prefix, kwargs = _privilege_drop()
    try:
        proc = subprocess.run(
            [*prefix, *bwrap_argv(SandboxLimits(), None, cmd)],
            capture_output=True,
            timeout=20,
            process_group=0,
            **kwargs,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"cannot start bubblewrap: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != b"sandbox-ok":
        err = proc.stderr.decode(errors="replace").strip()[-500:]
        return False, f"bubblewrap sandbox does not work here (exit {proc.returncode}): {err}"
    uid = SANDBOX_UID if os.geteuid() == 0 else os.geteuid()
    tmpfs = "size-limited tmpfs" if _bwrap_has_size() else "tmpfs WITHOUT a size limit (old bwrap)"
    return True, f"bubblewrap {bwrap_path()} as uid {uid}, {tmpfs}"


@dataclass(slots=True)
class GuestRun:
    """How a launcher run ended (its events went to the callback)."""

    done: bool = False
    timed_out: bool = False
    stopped: bool = False
    tampered: bool = False
    exit_code: int | None = None
    stderr: str = ""
    error: str | None = None
    seconds: float = 0.0


def run_guest(
    job: dict[str, Any],
    limits: SandboxLimits,
    *,
    confined: bool,
    deadline_seconds: float,
    on_event: Callable[[dict[str, Any]], bool],
    spares: int = 0,
) -> GuestRun:
    """Run the launcher on `job`; feed each authentic event to `on_event`.

    `on_event` returns True to stop the run early. Events without the job's
    nonce are dropped and flagged (`tampered`). The sandbox is killed (with
    everything in it) at `deadline_seconds`. Never raises for guest misbehaviour;
    spawn failures are reported in `GuestRun.error`.

    With `spares` > 0 a confined run takes a pre-started sandbox (bwrap and the
    launcher already up, blocked reading their job) when one is ready and keeps
    that many started in the background; see `_SparePool`.
    """
    started = time.monotonic()
    deadline = started + deadline_seconds
    result = GuestRun()
    payload = marshal.dumps(job, 4)
    command = script_command(SANDBOX_PYTHON, "launcher", confined)
    prefix, kwargs = _privilege_drop()
    workdir: str | None = None
    box: _Box | None = None
    sent: bool | None = None
    try:
        if confined:
            launch = _Launch(tuple(prefix), tuple(bwrap_argv(limits, None, command)), kwargs)
            box = _POOL.take(launch, spares) if spares > 0 else None
            if box is not None:
                sent = _send(box.proc, payload, deadline)
                if sent is False:  # the spare died while waiting: start one the usual way
                    box.discard()
                    box = None
            if box is None:
                box = launch.start()
                sent = _send(box.proc, payload, deadline)
        else:
            workdir = tempfile.mkdtemp(prefix="rlvr-sandbox-")
            if os.geteuid() == 0:
                os.chown(workdir, SANDBOX_UID, SANDBOX_UID)
            proc = subprocess.Popen(
                [*prefix, *command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                process_group=0,
                cwd=workdir,
                env=dict(SANDBOX_ENV),
                **kwargs,
            )
            box = _Box(proc, -1)
            sent = _send(proc, payload, deadline)
    except BaseException as exc:
        if box is not None:
            box.discard()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        if not isinstance(exc, OSError):
            raise
        result.error = f"cannot start the sandbox: {exc}"
        return result
    proc, info_r = box.proc, box.info_r
    try:
        if sent is None:
            result.error = "the sandbox did not read its job in time"
        else:  # sent or not, its stderr and exit status tell what happened
            _pump(proc, result, job["nonce"], deadline, on_event, limits)
        if result.timed_out or result.stopped or result.error:
            _kill(proc, info_r)
        try:
            proc.wait(timeout=max(1.0, deadline + 5 - time.monotonic()))
        except subprocess.TimeoutExpired:
            result.timed_out = True
            _kill(proc, info_r)
    finally:
        if proc.returncode is None:
            _kill(proc, info_r)
        box.close()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result.exit_code = proc.returncode
    result.seconds = time.monotonic() - started
    return result


def _send(proc: subprocess.Popen[bytes], payload: bytes, deadline: float) -> bool | None:
    """Write the job to the launcher's stdin, then close it.

    True when written, False when the sandbox exited before reading it all,
    None when it did not read it by `deadline`. A pipe (not a file) so that a
    spare started before its job was known can receive it.
    """
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    view = memoryview(payload)
    try:
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            while view:
                try:
                    view = view[os.write(fd, view) :]
                    continue
                except BlockingIOError:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                sel.select(left)
        return True
    except BrokenPipeError:
        return False
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


@dataclass(frozen=True, slots=True)
class _Launch:
    """How to start a confined sandbox: everything that shapes its command line
    except the per-spawn ``--info-fd`` number. Equal launches make
    interchangeable sandboxes (the job, sent later, carries the rest)."""

    prefix: tuple[str, ...]
    bwrap: tuple[str, ...]
    popen: dict[str, Any] = field(hash=False)

    def start(self) -> _Box:
        """Start bwrap and the launcher; it waits for its job on stdin."""
        info_r, info_w = os.pipe()
        try:
            os.set_blocking(info_r, False)
            proc = subprocess.Popen(
                [*self.prefix, *_with_info_fd(self.bwrap, info_w)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                process_group=0,
                pass_fds=(info_w,),
                **self.popen,
            )
        except BaseException:
            os.close(info_r)
            raise
        finally:
            os.close(info_w)
        return _Box(proc, info_r)


@dataclass(eq=False, slots=True)
class _Box:
    """A started sandbox (or unconfined launcher) and our ends of its pipes."""

    proc: subprocess.Popen[bytes]
    info_r: int

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Close our ends of its pipes (it must have exited or been killed)."""
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if self.info_r >= 0:
            os.close(self.info_r)
            self.info_r = -1

    def discard(self) -> None:
        """Kill it (with everything inside) and close its pipes."""
        try:
            _kill(self.proc, self.info_r)
        finally:
            self.close()


class _SparePool:
    """Sandboxes started ahead of need, so a run skips bwrap and launcher start-up.

    A spare's launcher blocks reading its job before it knows the nonce or the
    code, so an unused spare is exactly as isolated as a sandbox started on
    demand; each is used for one run only. Spares are started by one long-lived
    daemon thread: bwrap's ``--die-with-parent`` fires when the *thread* that
    started it exits, so they must not come from a short-lived thread. Only the
    launch of the latest `take` is kept warm; a different one replaces them.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._after_fork)
        atexit.register(self.close)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._launch: _Launch | None = None
        self._want = 0
        self._idle: list[_Box] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's spares (they are not our
        children) without touching them, but close our copies of their pipes."""
        if self._pid == os.getpid():
            return
        idle, self._idle = self._idle, []
        for box in idle:
            box.close()
        self._reset()

    def take(self, launch: _Launch, want: int) -> _Box | None:
        """A ready spare for `launch` (or None), and keep `want` of them started."""
        self._after_fork()
        stale: list[_Box] = []
        box = None
        with self._cond:
            if self._closed:
                return None
            if launch != self._launch:
                stale, self._idle = self._idle, []
                self._launch = launch
            self._want = want
            while box is None and self._idle:
                candidate = self._idle.pop(0)
                if candidate.alive():
                    box = candidate
                else:
                    stale.append(candidate)
            while len(self._idle) > want:
                stale.append(self._idle.pop())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._refill, name="sandbox-spares", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        for old in stale:
            old.discard()
        return box

    def pids(self) -> set[int]:
        self._after_fork()
        with self._cond:
            return {box.proc.pid for box in self._idle}

    def close(self) -> None:
        """Kill the idle spares and start no more (at exit)."""
        self._after_fork()
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for box in idle:
            box.discard()

    def _refill(self) -> None:
        """The spare-starting thread: lives as long as the process."""
        while True:
            with self._cond:
                while not self._closed and (self._launch is None or len(self._idle) >= self._want):
                    self._cond.wait()
                launch = self._launch
                if self._closed or launch is None:
                    return
            try:
                box = launch.start()
            except Exception:  # fds, processes, memory: try again later, never spin
                with self._cond:
                    self._cond.wait(_SPARE_BACKOFF)
                continue
            with self._cond:
                keep = not self._closed and launch == self._launch and len(self._idle) < self._want
                if keep:
                    self._idle.append(box)
            if not keep:
                with contextlib.suppress(OSError):  # this thread must outlive any failure
                    box.discard()


_SPARE_BACKOFF = 1.0
_POOL = _SparePool()


def spare_pids() -> set[int]:
    """Host pids (bwrap's) of the idle spare sandboxes of this process."""
    return _POOL.pids()


def _pump(
    proc: subprocess.Popen[bytes],
    result: GuestRun,
    nonce: str,
    deadline: float,
    on_event: Callable[[dict[str, Any]], bool],
    limits: SandboxLimits,
) -> None:
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    max_line = 8 * limits.max_output_bytes + (1 << 20)
    buf, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(out_fd, selectors.EVENT_READ)
        sel.register(err_fd, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                result.timed_out = True
                return
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 1 << 20)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                if key.fd == err_fd:
                    err += chunk
                    del err[:-_STDERR_KEEP]
                    result.stderr = err.decode(errors="replace")
                    continue
                buf += chunk
                while (nl := buf.find(b"\n")) >= 0:
                    line = bytes(buf[:nl])
                    del buf[: nl + 1]
                    if _deliver(line, nonce, result, on_event):
                        result.stopped = True
                        return
                if len(buf) > max_line:
                    result.error = "oversized event from the sandbox"
                    return


def _deliver(
    line: bytes, nonce: str, result: GuestRun, on_event: Callable[[dict[str, Any]], bool]
) -> bool:
    try:
        event = json.loads(line)
    except ValueError:
        result.tampered = True
        return False
    if not isinstance(event, dict) or event.get("nonce") != nonce:
        result.tampered = True
        return False
    if event.get("type") == "done":
        result.done = True
    return bool(on_event(event))


def _sandbox_init_pid(proc: subprocess.Popen[bytes], info_r: int) -> int | None:
    """Host pid of the sandbox's pid 1, from bwrap's --info-fd (waits up to 1 s)."""
    if info_r < 0:
        return None
    data = b""
    end = time.monotonic() + 1.0
    while time.monotonic() < end and proc.poll() is None:
        try:
            chunk = os.read(info_r, 4096)
        except BlockingIOError:
            chunk = None
        if chunk:
            data += chunk
        m = _CHILD_PID.search(data)
        if m:
            pid = int(m.group(1))
            try:
                with open(f"/proc/{pid}/status", "rb") as f:
                    status = f.read()
            except OSError:
                return None
            ppid = re.search(rb"\nPPid:\s*(\d+)", status)
            return pid if ppid and int(ppid.group(1)) == proc.pid else None
        if chunk == b"":
            return None
        time.sleep(0.005)
    return None


def _kill(proc: subprocess.Popen[bytes], info_r: int) -> None:
    """Kill the sandbox: its pid 1 first (takes the namespace down), then bwrap."""
    if proc.poll() is not None:
        return
    init = _sandbox_init_pid(proc, info_r)
    if init is not None:
        with contextlib.suppress(OSError):
            os.kill(init, 9)
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, 9)
    proc.wait()
