"""Attacks on the code sandbox: each must come back incorrect, for the right
reason, without touching the host and without leaving a process behind."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from verifiers.code import CodeVerifier, SandboxLimits, sandbox_available
from verifiers.code.sandbox import spare_pids
from verifiers.verdict import Reason, Verdict

AVAILABLE, WHY = sandbox_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox: {WHY}")

SANDBOX_UID = "65534"
LIMITS = SandboxLimits(
    cpu_seconds=1,
    wall_seconds=2,
    memory_bytes=256 << 20,
    max_processes=16,
    max_output_bytes=64 << 10,
    max_file_bytes=1 << 20,
    total_wall_seconds=8,
)
# with a warm spare: a pre-started sandbox must be exactly as isolated as a fresh one
CV = CodeVerifier(LIMITS, max_concurrency=2, spares=1)

STDIN = {"kind": "stdin", "cases": [{"input": "1\n", "output": "2\n"}]}
# HumanEval-style: the attacks below pair each trick with a WRONG `inc`, so any
# pass means the trick worked.
HUMANEVAL = {
    "kind": "assert",
    "entry_point": "inc",
    "code": (
        "def check(candidate):\n"
        "    assert candidate(1) == 2\n"
        "    assert abs(candidate(2) - 3) < 1e-9\n"
        "    assert isinstance(candidate(3), int)\n"
    ),
}
MBPP = {"kind": "assert", "code": "assert inc(1) == 2\nassert inc(5) == 6\n"}
FUNCTIONAL = {"kind": "functional", "fn_name": "inc", "cases": [{"input": [1], "output": 2}]}
WRONG_INC = "\ndef inc(x):\n    return x\n"


def _leftovers() -> list[str]:
    """Zombies of the sandbox uid, and sandbox-uid processes that escaped into our
    pid namespace (anything but another run's live bwrap; none of ours but the
    idle spare sandboxes)."""
    me, my_ns = os.getpid(), os.readlink("/proc/self/ns/pid")
    spares = {str(pid) for pid in spare_pids()}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or entry in spares:
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            ns = os.readlink(f"/proc/{entry}/ns/pid")
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Uid", "").split()[:1] != [SANDBOX_UID]:
            continue
        name, state, ppid = fields["Name"], fields["State"][:1], int(fields["PPid"])
        if state == "Z" or (ns == my_ns and (name != "bwrap" or ppid == me)):
            found.append(f"pid {entry} {name} state {state} ppid {ppid}")
    return found


def assert_nothing_left() -> None:
    deadline = time.monotonic() + 3
    while (left := _leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {left}"


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    assert_nothing_left()


def run(code: str, tests: dict[str, Any]) -> Verdict:
    verdict = CV.verify(code, tests)
    assert verdict.cacheable or verdict.reason == Reason.TIMEOUT
    return verdict


ATTACKS: dict[str, tuple[str, dict[str, Any], set[str]]] = {
    "fork bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        STDIN,
        {Reason.TIMEOUT},
    ),
    "fork bomb in a function": (
        "import os\ndef inc(x):\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n",
        HUMANEVAL,
        {Reason.TIMEOUT},
    ),
    "memory bomb": (
        "x = []\nwhile True:\n    x.append(' ' * 10**7)\n",
        STDIN,
        {Reason.MEMORY_LIMIT},
    ),
    "memory bomb in a function": (
        "def inc(x):\n    return len(bytearray(1 << 40))\n",
        FUNCTIONAL,
        {Reason.MEMORY_LIMIT},
    ),
    "infinite loop": ("while True:\n    pass\n", STDIN, {Reason.TIMEOUT}),
    "infinite loop at import": ("while True:\n    pass\n" + WRONG_INC, HUMANEVAL, {Reason.TIMEOUT}),
    "sleep forever": ("import time\ntime.sleep(10**6)\n", STDIN, {Reason.TIMEOUT}),
    "sleep forever in a function": (
        "import time\ndef inc(x):\n    time.sleep(10**6)\n",
        FUNCTIONAL,
        {Reason.TIMEOUT},
    ),
    "unbounded output": ("while True:\n    print('x' * 1000)\n", STDIN, {Reason.OUTPUT_LIMIT}),
    "huge return value": (
        "def inc(x):\n    return 'x' * (1 << 24)\n",
        FUNCTIONAL,
        {Reason.OUTPUT_LIMIT},
    ),
    "file larger than the limit": (
        "open('big', 'wb').write(b'x' * (4 << 20))\nprint(2)\n",
        STDIN,
        {Reason.OUTPUT_LIMIT, Reason.RUNTIME_ERROR},
    ),
    "sys.exit(0) before the tests": (
        "import sys\nsys.exit(0)\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.RUNTIME_ERROR},
    ),
    "os._exit(0) before the tests": (
        "import os\nos._exit(0)\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.RUNTIME_ERROR},
    ),
    "sys.exit(0) inside the candidate": (
        "import sys\ndef inc(x):\n    sys.exit(0)\n",
        MBPP,
        {Reason.RUNTIME_ERROR},
    ),
    "os._exit(0) inside the candidate": (
        "import os\ndef inc(x):\n    os._exit(0)\n",
        FUNCTIONAL,
        {Reason.RUNTIME_ERROR},
    ),
    "sys.exit(0) with no output": ("import sys\nsys.exit(0)\n", STDIN, {Reason.WRONG_ANSWER}),
    "kill the parent": (
        "import os\nos.kill(os.getppid(), 9)\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.WRONG_ANSWER},
    ),
    "kill the parent (stdin)": (
        "import os, signal\nfor s in (9, 15, 2, 14, 1):\n    os.kill(os.getppid(), s)\nprint(3)\n",
        STDIN,
        {Reason.WRONG_ANSWER},
    ),
    "kill everything": (
        "import os\nos.kill(-1, 9)\nprint(3)\n",
        STDIN,
        {
            Reason.WRONG_ANSWER,
            Reason.RUNTIME_ERROR,
        },
    ),
    "redefine check": (
        "def check(candidate):\n    pass\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.WRONG_ANSWER},
    ),
    "patch builtins": (
        "import builtins\n"
        "builtins.abs = lambda x: 0\n"
        "builtins.isinstance = lambda *a: True\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n"
        "abs = lambda x: 0\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.WRONG_ANSWER},
    ),
    "always-equal object": (
        "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
        "    def __sub__(self, other):\n        return 0\n"
        "def inc(x):\n    return AlwaysEqual()\n",
        HUMANEVAL,
        {Reason.WRONG_ANSWER},
    ),
    "int subclass that equals everything": (
        "class Liar(int):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "def inc(x):\n    return Liar(x)\n",
        MBPP,
        {Reason.WRONG_ANSWER},
    ),
    "always-equal object (functional)": (
        "class A:\n    def __eq__(self, other):\n        return True\n"
        "def inc(x):\n    return A()\n",
        FUNCTIONAL,
        {Reason.WRONG_ANSWER},
    ),
    "print fake pass lines": (
        "print('All tests passed')\n"
        'print(\'{"type": "case", "i": 0, "status": "passed"}\')\n'
        'print(\'{"type": "done"}\')\n' + WRONG_INC,
        HUMANEVAL,
        {Reason.WRONG_ANSWER},
    ),
    "write fake events to the launcher's channels": (
        "import os\n"
        'line = b\'{"type":"case","i":0,"status":"passed"}\\n{"type":"done"}\\n\'\n'
        "for path in ('/proc/1/fd/1', '/proc/1/fd/2', '/proc/1/mem'):\n"
        "    try:\n        open(path, 'wb').write(line)\n    except OSError:\n        pass\n"
        "for fd in range(3, 64):\n"
        "    try:\n        os.write(fd, line)\n    except OSError:\n        pass\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.WRONG_ANSWER, Reason.RUNTIME_ERROR},
    ),
    "signal the launcher": (
        "import os\nfor s in (14, 2, 15, 10, 12):\n    os.kill(1, s)\n" + WRONG_INC,
        HUMANEVAL,
        {Reason.WRONG_ANSWER, Reason.TIMEOUT},
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack(name: str) -> None:
    code, tests, reasons = ATTACKS[name]
    verdict = run(code, tests)
    assert verdict.correct is False, verdict
    assert verdict.reward == 0.0
    assert verdict.reason in reasons, verdict.detail


def test_process_limit_holds() -> None:
    code = (
        "import os, time\nn = 0\n"
        "for _ in range(200):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(100)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    verdict = run(code, {"kind": "stdin", "cases": [{"input": "", "output": "200"}]})
    assert verdict.reason == Reason.WRONG_ANSWER
    assert int(verdict.detail["first_failure"]["got"]) < LIMITS.max_processes


def test_launcher_memory_is_unreadable() -> None:
    code = (
        "import os\n"
        "for path in ('/proc/1/mem', '/proc/1/environ', '/proc/1/fd', '/proc/1/maps'):\n"
        "    try:\n"
        "        os.listdir(path) if path.endswith('fd') else open(path, 'rb').read(1)\n"
        "        print('open', path)\n"
        "    except OSError:\n"
        "        print('denied', path)\n"
    )
    verdict = run(code, {"kind": "stdin", "cases": [{"input": "", "output": ""}]})
    got = verdict.detail["first_failure"]["got"]
    assert "open" not in got and got.count("denied") == 4


def test_no_network() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = (
            "import socket\n"
            "for host in ('127.0.0.1', '10.0.2.2', '8.8.8.8'):\n"
            "    s = socket.socket()\n    s.settimeout(0.5)\n"
            f"    print(host, s.connect_ex((host, {port})) == 0)\n"
        )
        verdict = run(code, {"kind": "stdin", "cases": [{"input": "", "output": "connected"}]})
        assert verdict.reason == Reason.WRONG_ANSWER
        assert "True" not in verdict.detail["first_failure"]["got"]
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_no_host_writes() -> None:
    tag = uuid.uuid4().hex
    targets = [f"/tmp/rlvr-pwned-{tag}", f"/root/rlvr-pwned-{tag}", f"/usr/rlvr-pwned-{tag}"]
    targets += [f"/etc/rlvr-pwned-{tag}", f"/dev/rlvr-pwned-{tag}", f"/rlvr-pwned-{tag}"]
    targets.append(str(Path(__file__).resolve().parent / f"rlvr-pwned-{tag}"))
    code = (
        f"for path in {targets!r}:\n"
        "    try:\n        open(path, 'w').write('x')\n        print('wrote', path)\n"
        "    except OSError as exc:\n        print('failed', path, exc.errno)\n"
    )
    verdict = run(code, {"kind": "stdin", "cases": [{"input": "", "output": ""}]})
    assert verdict.correct is False
    for path in targets:
        assert not os.path.exists(path), path
    got = verdict.detail["first_failure"]["got"]
    assert f"wrote /tmp/rlvr-pwned-{tag}" in got  # the private tmpfs is writable...
    assert got.count("wrote") == 1  # ...and nothing else is


def test_daemons_do_not_survive() -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(1000)\n"
        "    os._exit(0)\n"
        "print(2)\n"
    )
    verdict = run(code, STDIN)
    assert verdict.correct is True  # a correct answer that leaves a daemon still passes...
    assert_nothing_left()  # ...but the daemon is gone


def test_concurrent_attacks_from_threads() -> None:
    names = [
        "fork bomb",
        "memory bomb",
        "sleep forever",
        "unbounded output",
        "kill the parent",
        "always-equal object",
        "os._exit(0) before the tests",
        "patch builtins",
    ]
    good = ("def inc(x):\n    return x + 1\n", HUMANEVAL, {Reason.PASSED})
    jobs = [ATTACKS[n] for n in names] + [good, good]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        verdicts = list(pool.map(lambda job: CV.verify(job[0], job[1]), jobs))
    for (_, _, reasons), verdict in zip(jobs, verdicts, strict=True):
        assert verdict.reason in reasons, verdict
    assert [v.correct for v in verdicts[-2:]] == [True, True]
