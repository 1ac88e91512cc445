"""Pull the program out of a model response."""

from __future__ import annotations

import re
from dataclasses import dataclass

from verifiers.code.languages import canonical_name

_OPEN = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_KNOWN = ("python", "cpp")


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """One fenced block: its canonical language tag ("" when bare) and body."""

    tag: str
    code: str


@dataclass(frozen=True, slots=True)
class ExtractedCode:
    """The code to run and the language it is in."""

    code: str
    language: str
    fenced: bool


def fenced_blocks(text: str) -> list[CodeBlock]:
    """All fenced code blocks in `text`, in order; an unclosed last fence runs to the end."""
    blocks: list[CodeBlock] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group("fence")
        info = m.group("info").strip().split()
        tag = canonical_name(info[0]) if info else ""
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[i])
            i += 1
        blocks.append(CodeBlock(tag=tag, code="\n".join(body)))
        i += 1
    return blocks


def extract_code(response: str, language: str | None = None) -> ExtractedCode:
    """The program in `response` and its language.

    Takes the last fenced block in the requested `language` (or, without one,
    the last block tagged with a runnable language), else the last bare block,
    else the last block of any kind; with no fences, the whole response. The
    language is `language` when given, else the chosen block's tag, else
    "python".
    """
    wanted = canonical_name(language) if language else None
    blocks = fenced_blocks(response)
    if not blocks:
        return ExtractedCode(code=response.strip("\n"), language=wanted or "python", fenced=False)
    targets = (wanted,) if wanted else _KNOWN
    chosen = next((b for b in reversed(blocks) if b.tag in targets), None)
    if chosen is None:
        chosen = next((b for b in reversed(blocks) if not b.tag), blocks[-1])
    lang = wanted or chosen.tag or "python"
    return ExtractedCode(code=chosen.code, language=lang, fenced=True)
