"""Scripts that run *inside* the sandbox, and the codec they share with the host.

`launcher.py` (trusted, pid 1 of the sandbox) and `runner.py` (hosts the
solution) are plain standard-library scripts with `codec.py` inlined in place
of their ``from verifiers.code.guest.codec import ...`` statement, so nothing
from this package has to be importable inside the sandbox. They are compiled
once to .pyc files in a read-only directory that is bind-mounted into each
sandbox (falling back to ``python3 -c <source>``).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import threading
from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent
_CODEC_IMPORT = re.compile(
    r"^from verifiers\.code\.guest\.codec import (?:\([^)]*\)|[^\n]*)[^\n]*\n", re.M
)


def _inline(name: str) -> str:
    source = (_HERE / name).read_text(encoding="utf-8")
    codec = (_HERE / "codec.py").read_text(encoding="utf-8")
    codec = codec.replace("from __future__ import annotations\n", "", 1)
    inlined, count = _CODEC_IMPORT.subn(lambda _: codec + "\n", source)
    if count != 1:
        raise RuntimeError(f"{name}: expected exactly one codec import to inline")
    return inlined


@cache
def launcher_source() -> str:
    """Source of the launcher script, codec inlined."""
    return _inline("launcher.py")


@cache
def runner_source() -> str:
    """Source of the runner script, codec inlined."""
    return _inline("runner.py")


GUEST_MOUNT = "/guest"
_SCRIPTS = {"launcher": launcher_source, "runner": runner_source}
_PY_COMPILE = (
    "import py_compile, sys\n"
    "for f in sys.argv[1:]:\n"
    "    py_compile.compile(f, cfile=f + 'c', dfile=f.rsplit('/', 1)[-1], doraise=True)\n"
)
_lock = threading.Lock()
_compiled: dict[str, str | None] = {}


def compiled_dir(python: str) -> str | None:
    """A root-owned, world-readable directory with launcher.pyc and runner.pyc.

    Compiled once per process by `python` itself (so the bytecode matches the
    interpreter that runs it); saves compiling ~40 kB of source on every
    sandbox start. None if that fails; callers then pass source with ``-c``.
    Rebuilt if it disappears (e.g. a /tmp cleaner).
    """
    with _lock:
        if python in _compiled:
            directory = _compiled[python]
            if directory is None or os.path.isfile(os.path.join(directory, "runner.pyc")):
                return directory
        # first use, or a tmp cleaner removed it: (re)build; a failure is final
        directory = _compiled[python] = _compile(python)
        return directory


def _compile(python: str) -> str | None:
    directory = tempfile.mkdtemp(prefix="rlvr-guest-")
    atexit.register(shutil.rmtree, directory, True)
    paths = []
    try:
        for name, source in _SCRIPTS.items():
            path = os.path.join(directory, f"{name}.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(source())
            paths.append(path)
        subprocess.run(
            [python, "-I", "-S", "-c", _PY_COMPILE, *paths],
            check=True,
            capture_output=True,
            timeout=60,
        )
        os.chmod(directory, 0o755)
        for path in paths:
            os.chmod(path + "c", 0o644)
    except (OSError, subprocess.SubprocessError):
        shutil.rmtree(directory, ignore_errors=True)
        return None
    return directory


def script_command(python: str, name: str, confined: bool) -> list[str]:
    """Command that runs guest script `name` ("launcher" or "runner").

    `confined`: paths as seen inside the sandbox, where `compiled_dir` is
    mounted read-only at `GUEST_MOUNT`.
    """
    directory = compiled_dir(python)
    if directory is None:
        return [python, "-I", "-S", "-c", _SCRIPTS[name]()]
    base = GUEST_MOUNT if confined else directory
    return [python, "-I", "-S", f"{base}/{name}.pyc"]
