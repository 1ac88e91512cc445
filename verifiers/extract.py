"""Final-answer extraction from chain-of-thought responses.

`extract_final_answer` finds the answer a response commits to, trying the
most explicit markers first:

1. only text after the last ``</think>`` counts (an unclosed ``<think>`` means
   the response never reached an answer);
2. the last ``\\boxed{}`` / ``\\fbox{}`` (nested braces; several boxes joined
   when they stand together at the end, as in ``\\boxed{1} and \\boxed{2}``);
3. Minerva's ``Final Answer: The final answer is X. I hope it is correct.``;
4. "the (final) answer is X", "Answer: X" (also Markdown-bold forms);
5. a bold answer ``**X**`` near the end;
6. the last math span (``$...$``, ``\\(...\\)``, ``\\[...\\]``) of the last
   paragraph;
7. the last line when it is a few words at most, else the last number in it.

Everything here is linear in the input and never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Answers longer than this are cut (an answer is a formula, not an essay).
MAX_ANSWER_CHARS = 2000
#: Marker rules only look at the end of a response, which keeps every regex
#: below linear in practice even on hostile input.
TAIL_CHARS = 8000


@dataclass(frozen=True, slots=True)
class Extraction:
    """An extracted final answer and the rule that found it."""

    answer: str
    method: str


_BOX_COMMANDS = ("\\boxed", "\\fbox")
_BOX_CONNECTOR = re.compile(
    r"^(?:\s|\$|,|;|\\quad|\\qquad|\\,|\\;|\\text\{\s*(?:and|or|,)?\s*\}|\band\b|\bor\b|\\\\)*$"
)
_MINERVA = re.compile(r"final answer is\s*(.+?)\s*\.?\s*I hope it is correct", re.I | re.S)
_ANSWER_MARKER = re.compile(
    r"(?:the\s+final\s+answer\s+is|final\s+answer\s*:|the\s+answer\s+is|\banswer\s*:"
    r"|\banswer\s+is)",
    re.I,
)
_BOLD = re.compile(r"\*\*([^*\n]{1,120})\*\*")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_TRAILING_FILLER = re.compile(
    r"(?:\s*[.;:,!]+|\s+I hope it is correct|\s+units?|\s*\\?\.)+\s*$", re.I
)


def strip_think(text: str) -> str | None:
    """Text after the last ``</think>``; None when a ``<think>`` is never closed."""
    end = text.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>") :]
    if "<think>" in text:
        return None
    return text


def _matching_brace(text: str, open_index: int) -> int:
    """Index of the ``}`` matching ``text[open_index] == '{'``, or -1."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _box_content(text: str, start: int, command: str) -> tuple[str, int] | None:
    """Content of the box command at `start` and the index just after it."""
    i = start + len(command)
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i < n and text[i] == "{":
        end = _matching_brace(text, i)
        if end < 0:
            return None
        return text[i + 1 : end], end + 1
    # "\boxed 5" form: one token.
    j = i
    while j < n and not text[j].isspace() and text[j] not in "$.,":
        j += 1
    if j == i:
        return None
    return text[i:j], j


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """All ``\\boxed``/``\\fbox`` boxes as (start, end, content), in order."""
    boxes: list[tuple[int, int, str]] = []
    i = 0
    while True:
        positions = [p for p in (text.find(c, i) for c in _BOX_COMMANDS) if p >= 0]
        if not positions:
            break
        start = min(positions)
        command = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
        after = start + len(command)
        if after < len(text) and text[after].isalpha():  # e.g. \boxedtext: not a box
            i = after
            continue
        found = _box_content(text, start, command)
        if found is None:
            i = after
            continue
        content, end = found
        boxes.append((start, end, content))
        i = end
    return boxes


def _last_boxed(text: str) -> str | None:
    boxes = find_boxes(text)
    if not boxes:
        return None
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : group[0][0]]
        if len(gap) > 40 or not _BOX_CONNECTOR.match(gap):
            break
        group.insert(0, box)
    return ", ".join(content.strip() for _, _, content in group)


def strip_math_delimiters(answer: str) -> str:
    """Remove ``$``, ``\\(\\)``, ``\\[\\]`` wrappers and trailing sentence punctuation."""
    s = answer.strip()
    s = s.replace("\\$", "").replace("$", "")
    changed = True
    while changed:
        changed = False
        for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) >= 4:
                s = s[2:-2].strip()
                changed = True
    s = s.replace("\\(", " ").replace("\\)", " ").replace("\\[", " ").replace("\\]", " ")
    s = s.strip()
    while s and s[-1] in ".;:" and not s.endswith("\\;") and not s.endswith("\\:"):
        s = s[:-1].rstrip()
    return s.strip()


def _clean(answer: str) -> str:
    s = strip_math_delimiters(answer)
    s = s.strip("* ")
    return s[:MAX_ANSWER_CHARS]


def _after_marker(text: str) -> str | None:
    """The answer following the last "answer is"/"Answer:" marker."""
    last = None
    for match in _ANSWER_MARKER.finditer(text):
        last = match
    if last is None:
        return None
    tail = text[last.end() :]
    tail = tail.lstrip(" \t*:_")
    if tail.startswith("\n"):
        tail = tail.lstrip()
    line, _, _ = tail.partition("\n")
    line = line.strip()
    if line.startswith("$$") or line.startswith("\\["):
        # Display math starting on the marker line may span lines.
        span = _MATH_SPAN.match(tail.lstrip())
        if span:
            line = span.group(0)
    spans = list(_MATH_SPAN.finditer(line))
    if spans:
        first = spans[0]
        prefix = line[: first.start()].strip().lower()
        if prefix in ("", "(", "\\(", "**", "that", "therefore", "thus"):
            line = next(g for g in first.groups() if g is not None)
    else:
        # Plain text: stop at the end of the sentence (". " not inside a number).
        cut = re.search(r"\.(?:\s|$)", line)
        if cut:
            line = line[: cut.start()]
    line = _TRAILING_FILLER.sub("", line)
    answer = _clean(line)
    return answer or None


def _last_math_span(paragraph: str) -> str | None:
    last = None
    for match in _MATH_SPAN.finditer(paragraph):
        last = match
    if last is None:
        return None
    return next(g for g in last.groups() if g is not None)


def extract_final_answer(text: str) -> Extraction | None:
    """Find the final answer of a response; None when it commits to none.

    Never raises; linear in the length of `text`.
    """
    body = strip_think(text)
    if body is None:
        return None
    body = body.strip()
    if not body:
        return None

    boxed = _last_boxed(body)
    if boxed is not None:
        answer = _clean(boxed)
        if answer:
            return Extraction(answer, "boxed")

    body = body[-TAIL_CHARS:]
    minerva = None
    for minerva in _MINERVA.finditer(body):
        pass
    if minerva is not None:
        answer = _clean(minerva.group(1))
        if answer:
            return Extraction(answer, "final_answer")

    marked = _after_marker(body)
    if marked:
        return Extraction(marked, "answer_is")

    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    last_paragraph = paragraphs[-1] if paragraphs else body
    lines = [line.strip() for line in last_paragraph.splitlines() if line.strip()]

    bold = None
    for bold in _BOLD.finditer("\n".join(lines[-3:])):
        pass
    if bold is not None:
        answer = _clean(bold.group(1))
        if answer:
            return Extraction(answer, "bold")

    span = _last_math_span(last_paragraph)
    if span is not None:
        answer = _clean(span)
        if answer:
            return Extraction(answer, "last_math")

    last_line = lines[-1] if lines else ""
    if last_line and len(last_line) <= 80 and len(last_line.split()) <= 3:
        answer = _clean(last_line)
        if answer:
            return Extraction(answer, "last_line")
    numbers = _NUMBER.findall(last_line)
    if numbers:
        return Extraction(numbers[-1].rstrip(","), "last_number")
    return None


def extract_reference(reference: str) -> str:
    """The answer inside a reference, which may be a bare answer or a full solution."""
    s = reference.strip()
    if "\\boxed" in s or "\\fbox" in s or len(s) > 200 or "answer" in s.lower():
        found = extract_final_answer(s)
        if found is not None:
            return found.answer
    return _clean(s)
