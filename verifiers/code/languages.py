"""Languages the sandbox can run, and how to build and start each."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

SANDBOX_PYTHON = "/usr/bin/python3"


@dataclass(frozen=True, slots=True)
class Language:
    """How to turn a source file into a running program inside the sandbox."""

    name: str
    aliases: tuple[str, ...]
    source_name: str
    run: tuple[str, ...]
    compile: tuple[str, ...] | None = None


PYTHON = Language(
    name="python",
    aliases=("python", "py", "python3", "py3"),
    source_name="solution.py",
    run=(SANDBOX_PYTHON, "-I", "-S", "solution.py"),
)


def _cpp() -> Language:
    gxx = os.path.realpath(shutil.which("g++") or "/usr/bin/g++")
    return Language(
        name="cpp",
        aliases=("cpp", "c++", "cc", "cxx", "cplusplus"),
        source_name="main.cpp",
        run=("./a.out",),
        compile=(gxx, "-std=c++17", "-O2", "-pipe", "-o", "a.out", "main.cpp"),
    )


def cpp_available() -> bool:
    """True when a g++ usable inside the sandbox (under /usr) is on PATH."""
    gxx = shutil.which("g++")
    return gxx is not None and os.path.realpath(gxx).startswith("/usr/")


def supported_languages() -> list[str]:
    """Language names `CodeVerifier.verify` accepts: "python" always, "cpp" with g++."""
    return ["python", "cpp"] if cpp_available() else ["python"]


def get_language(name: str) -> Language | None:
    """The supported `Language` called `name` (or an alias of it), else None."""
    key = name.strip().lower()
    if key in PYTHON.aliases:
        return PYTHON
    if cpp_available():
        cpp = _cpp()
        if key in cpp.aliases:
            return cpp
    return None


def canonical_name(tag: str) -> str:
    """Map a fence tag or alias to a canonical language name ("python", "cpp", or itself)."""
    key = tag.strip().lower()
    if key in PYTHON.aliases:
        return "python"
    if key in ("cpp", "c++", "cc", "cxx", "cplusplus"):
        return "cpp"
    return key
