"""Plan assert-style tests on the host: split them into setup and case statements.

The launcher runs each top-level statement separately: definitions, imports
and assignments are *setup*; every statement that contains an ``assert`` or
calls ``check(...)`` is one *case* (so MBPP's three assert lines are three
cases). HumanEval-style code that defines ``check(candidate)`` without calling
it gets a final ``check(<entry_point>)`` case. The plan also lists the free
names the tests read that the solution must provide (the entry point and
helpers such as HumanEval's ``poly``); built-in names are never taken from the
solution, so it cannot swap ``abs`` or ``isinstance`` under the tests.

Parsing happens here rather than in the sandbox to keep `ast` off the
sandbox's start-up path; plans are cached because RL asks for the same tests
many times.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from verifiers.code.spec import TestSpecError


@dataclass(frozen=True, slots=True)
class AssertPlan:
    """Statements as (kind, source) pairs, in order, and the names to import."""

    statements: tuple[tuple[str, str], ...]
    names: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(1 for kind, _ in self.statements if kind == "case")

    def guest(self) -> dict[str, Any]:
        """The plan in the launcher's wire format."""
        return {"statements": [list(s) for s in self.statements], "names": list(self.names)}


def _segment(lines: list[str], node: ast.stmt) -> str:
    decorators = getattr(node, "decorator_list", [])
    if decorators:  # a decorator sits on its own line: start at the '@'
        first, col = min(d.lineno for d in decorators) - 1, 0
    else:
        first, col = node.lineno - 1, node.col_offset
    last, end_col = (node.end_lineno or node.lineno) - 1, node.end_col_offset or 0
    if first == last:
        return lines[first].encode()[col:end_col].decode()
    parts = [lines[first].encode()[col:].decode(), *lines[first + 1 : last]]
    parts.append(lines[last].encode()[:end_col].decode())
    return "\n".join(parts)


def _is_case(node: ast.stmt) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assert):
            return True
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id == "check":
            return True
    return False


def _bindings(tree: ast.Module) -> set[str]:
    """Every name the test code binds anywhere (globals, locals, parameters)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound


@lru_cache(maxsize=4096)
def plan_assert_tests(code: str, entry_point: str | None) -> AssertPlan:
    """Split assert-style test `code` into setup and case statements.

    Raises `TestSpecError` when the code does not compile or contains no
    ``assert`` and no ``check(...)`` call (and no entry point to call
    ``check`` with).
    """
    try:
        tree = ast.parse(code, "<tests>")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise TestSpecError(f"invalid tests spec: test code does not parse: {exc}") from None
    lines = code.splitlines()
    statements = [("case" if _is_case(s) else "setup", _segment(lines, s)) for s in tree.body]
    defines_check = any(
        isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "check"
        for s in tree.body
    )
    if defines_check and entry_point and not any(k == "case" for k, _ in statements):
        statements.append(("case", f"check({entry_point})"))
    if not any(k == "case" for k, _ in statements):
        raise TestSpecError("invalid tests spec: test code has no assert and no check() call")
    for _, src in statements:
        try:
            compile(src, "<tests>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise TestSpecError(f"invalid tests spec: test code does not compile: {exc}") from None
    loads = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }
    names = loads - _bindings(tree) - set(dir(builtins))
    if entry_point:
        names.add(entry_point)
    return AssertPlan(tuple(statements), tuple(sorted(names)))
