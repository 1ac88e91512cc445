"""Scripts that run *inside* the sandbox, and the codec they share with the host.

`launcher.py` (trusted, pid 1 of the sandbox) and `runner.py` (hosts the
solution) are plain standard-library scripts. They are passed to
``python3 -I -S -c`` as source text, with `codec.py` inlined in place of their
``# guest-inline`` import line, so nothing from this package has to be
readable or importable inside the sandbox.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent
_INLINE_MARK = "  # guest-inline"


def _inline(name: str) -> str:
    source = (_HERE / name).read_text(encoding="utf-8")
    codec = (_HERE / "codec.py").read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    marked = [i for i, line in enumerate(lines) if line.rstrip().endswith(_INLINE_MARK)]
    if len(marked) != 1:
        raise RuntimeError(f"{name}: expected exactly one guest-inline import")
    lines[marked[0]] = codec + "\n"
    return "".join(lines)


@cache
def launcher_source() -> str:
    """Source of the launcher script, codec inlined."""
    return _inline("launcher.py")


@cache
def runner_source() -> str:
    """Source of the runner script, codec inlined."""
    return _inline("runner.py")
