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


_BOX_GAP_STOP = re.compile(
    r"\n\s*\n|[.!?]\s+[A-Z]|\b(?:wait|but|however|actually|instead|incorrect|not|no|check)\b",
    re.I,
)
_STRONG_MARKER = re.compile(r"final\s+answer\s*(?:is\b|:)", re.I)
_HOPE = re.compile(r"\s*\.?\s*I hope it is correct", re.I)
_ANSWER_MARKER = re.compile(
    r"(?:the\s+final\s+answer\s+is|final\s+answer\s*:|the\s+answer\s+is|\banswer\s*:"
    r"|\banswer\s+is)",
    re.I,
)
_BOLD = re.compile(r"\*\*([^*\n]{1,120})\*\*")
_MATH_SPAN = re.compile(
    r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?")
_TRAILING_FILLER = re.compile(
    r"(?:\s*[.;:,!]+|\s+I hope it is correct|\s+units?|\s*\\?\.)+\s*$", re.I
)
_COPULA = re.compile(r"\b(?:is|are|equals|was|be)\b|=")
_NEW_SENTENCE = re.compile(r"^[\s,.;:]*(?:[.!?]\s+)?[A-Z][a-z]|[.!?]\s+[A-Z][a-z]")
_LEADING_NUMBER = re.compile(r"^(-?\d[\d,]*(?:\.\d+)?%?)\s+[A-Za-z]")
_SENTENCE_WORD = re.compile(r"\b[A-Za-z]{2,}\b")
# Chat-template tokens: what follows the first one is not the response.
_SPECIAL_TOKEN = re.compile(r"<\|(?:im_start|im_end|endoftext|eot_id|end_of_text)\|>")


def strip_think(text: str) -> str | None:
    """Text after the last ``</think>``; None when a ``<think>`` is never closed."""
    end = text.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>") :]
    if "<think>" in text:
        return None
    return text


#: The only tokens that matter for brace matching: an escape of a brace or of a
#: backslash (skipped as a unit), and a bare brace. Any other ``\\x`` escape
#: cannot hide a brace, so scanning these tokens with the regex engine gives
#: the same pairs as a character-by-character walk, at C speed.
_BRACE_TOKEN = re.compile(r"\\[\\{}]|[{}]")


def _brace_pairs(text: str) -> dict[int, int]:
    """Index of every ``{`` mapped to the index of its matching ``}``.

    One linear pass with a stack (backslash escapes skipped), so finding the
    content of many boxes stays linear even when none of them is closed.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for match in _BRACE_TOKEN.finditer(text):
        token = match.group()
        if token == "{":
            stack.append(match.start())
        elif token == "}" and stack:
            pairs[stack.pop()] = match.start()
    return pairs


def _closing_brace(text: str, open_index: int) -> int:
    """Index of the ``}`` matching the ``{`` at `open_index` (which must start
    a token), or -1. Scans only as far as the group reaches; agrees with
    `_brace_pairs` because a stack match depends only on what follows."""
    depth = 0
    for match in _BRACE_TOKEN.finditer(text, open_index):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return match.start()
    return -1


def _box_content(
    text: str, start: int, command: str, pairs: dict[int, int] | None
) -> tuple[str, int] | None:
    """Content of the box command at `start` and the index just after it.

    Without `pairs` the closing brace is found by a local scan (the content
    of a box is short); callers switch to `pairs` once a scan fails, which
    keeps many unclosed boxes linear.
    """
    i = start + len(command)
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i < n and text[i] == "{":
        end = _closing_brace(text, i) if pairs is None else pairs.get(i, -1)
        if end < 0:
            return None
        return text[i + 1 : end], end + 1
    # "\boxed 5" form: one token.
    j = i
    while j < n and j - i < 40 and not text[j].isspace() and text[j] not in "$.,\\":
        j += 1
    if j == i:
        return None
    return text[i:j], j


_BOX_START = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")


def find_boxes(text: str) -> list[tuple[int, int, str]]:
    """All ``\\boxed``/``\\fbox`` boxes as (start, end, content), in order."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return []
    pairs: dict[int, int] | None = None
    boxes: list[tuple[int, int, str]] = []
    position = 0
    for match in _BOX_START.finditer(text):
        start = match.start()
        if start < position:
            continue  # a box inside the previous box
        command = match.group(0)
        found = _box_content(text, start, command, pairs)
        if found is None and pairs is None:
            # An unclosed box: from here on use the one-pass table (linear).
            pairs = _brace_pairs(text)
            found = _box_content(text, start, command, pairs)
        if found is None:
            continue
        content, end = found
        boxes.append((start, end, content))
        position = end
    return boxes


def _join_boxes(contents: list[str]) -> str:
    unique = list(dict.fromkeys(c.strip() for c in contents if c.strip()))
    return ", ".join(unique)


def _last_boxed(text: str, boxes: list[tuple[int, int, str]]) -> str | None:
    """The last box, joined with the boxes that stand right before it
    (``\\boxed{1} and \\boxed{2}``, ``\\boxed{3} for (a), \\boxed{4} for (b)``)."""
    if not boxes:
        return None
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        gap = text[box[1] : group[0][0]]
        if len(gap) > 60 or _BOX_GAP_STOP.search(gap):
            break
        group.insert(0, box)
    return _join_boxes([content for _, _, content in group])


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
    s = answer.replace('\\"', "").replace("``", "").replace("''", "")
    s = strip_math_delimiters(s)
    s = s.strip('* "')
    return s[:MAX_ANSWER_CHARS]


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for match in pattern.finditer(text):
        last = match
    return last


def _words_outside_math(text: str) -> int:
    return len(_SENTENCE_WORD.findall(_MATH_SPAN.sub(" ", text)))


def _from_sentence(sentence: str) -> str | None:
    """The answer inside a sentence such as "The volume of $V$ is 120" or
    "Jane started growing Sphere 3 hours ago"."""
    text = sentence.strip()
    if _words_outside_math(text) < 3:
        return text
    copula = _last_match(_COPULA, _MATH_SPAN.sub(lambda m: " " * len(m.group(0)), text))
    if copula is not None:
        rest = _TRAILING_FILLER.sub("", text[copula.end() :]).strip()
        spans = list(_MATH_SPAN.finditer(rest))
        if spans and not rest[: spans[0].start()].strip():
            return next(g for g in spans[0].groups() if g is not None)
        leading = _LEADING_NUMBER.match(rest)
        if leading and not spans:
            return leading.group(1)  # "there are 12 distinct sequences"
        if rest and _words_outside_math(rest) <= 2:
            return rest
    span = _last_math_span(text)
    if span is not None:
        return span
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].rstrip(",")
    return None


def _marker_answer(tail: str) -> str | None:
    """The answer in the text right after an answer marker."""
    tail = tail.lstrip(" \t*:_")
    if tail.startswith("\n"):
        tail = tail.lstrip()
    hope = _HOPE.search(tail)
    line = tail[: hope.start()] if hope else tail.partition("\n")[0]
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
            line = _from_sentence(line) or line
    else:
        # Plain text: stop at the end of the sentence (". " not inside a number).
        cut = re.search(r"\.(?:\s|$)", line)
        if cut:
            line = line[: cut.start()]
        line = _from_sentence(line) or line
    line = _TRAILING_FILLER.sub("", line)
    answer = _clean(line)
    return answer or None


def _after_marker(text: str, strong_only: bool = False) -> tuple[str, int] | None:
    """The answer following the last "answer is"/"Answer:" marker, and where
    the marker starts."""
    last = _last_match(_STRONG_MARKER if strong_only else _ANSWER_MARKER, text)
    if last is None:
        return None
    answer = _marker_answer(text[last.end() :])
    return (answer, last.start()) if answer else None


def _last_math_span(paragraph: str) -> str | None:
    last = _last_match(_MATH_SPAN, paragraph)
    if last is None:
        return None
    return next(g for g in last.groups() if g is not None)


def _last_span_or_later_number(paragraph: str) -> str | None:
    """The last math span; or a number in a sentence after it ("$$...$$
    Therefore, the error increases by 100%.")."""
    last = _last_match(_MATH_SPAN, paragraph)
    if last is None:
        return None
    after = paragraph[last.end() :]
    if _NEW_SENTENCE.search(after):
        numbers = _NUMBER.findall(after)
        if numbers:
            return numbers[-1].rstrip(",")
    return next(g for g in last.groups() if g is not None)


def extract_final_answer(text: str) -> Extraction | None:
    """Find the final answer of a response; None when it commits to none.

    Never raises; linear in the length of `text`.
    """
    body = strip_think(text)
    if body is None:
        return None
    special = _SPECIAL_TOKEN.search(body)
    if special is not None:
        body = body[: special.start()]
    body = body.strip()
    if not body:
        return None

    boxes = find_boxes(body)
    tail_start = max(0, len(body) - TAIL_CHARS)
    tail = body[tail_start:]
    if boxes:
        # "\boxed{255} ... Final Answer: The final answer is $10,455$." - a
        # Minerva-style statement after the last box is the later commitment.
        last_end = boxes[-1][1]
        if last_end > tail_start:
            strong = _after_marker(body[last_end:], strong_only=True)
        else:
            strong = _after_marker(tail, strong_only=True)
            if strong is not None and strong[1] + tail_start < last_end:
                strong = None
        if strong is not None:
            return Extraction(strong[0], "final_answer")
        boxed = _last_boxed(body, boxes)
        if boxed is not None:
            answer = _clean(boxed)
            if answer:
                return Extraction(answer, "boxed")

    body = tail
    marked = _after_marker(body)
    if marked:
        return Extraction(marked[0], "answer_is")

    hope = _last_match(_HOPE, body)
    if hope is not None:
        # "... there are 12 sequences. I hope it is correct."
        before = body[: hope.start()].rstrip(" .")
        sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z])|\n", before)[-1]
        found = _from_sentence(sentence)
        if found:
            answer = _clean(found)
            if answer:
                return Extraction(answer, "final_answer")

    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    last_paragraph = paragraphs[-1] if paragraphs else body
    lines = [line.strip() for line in last_paragraph.splitlines() if line.strip()]

    bold = _last_match(_BOLD, "\n".join(lines[-3:]))
    if bold is not None:
        answer = _clean(bold.group(1))
        if answer:
            return Extraction(answer, "bold")

    span = _last_span_or_later_number(last_paragraph)
    if span is not None:
        answer = _clean(span)
        if answer:
            return Extraction(answer, "last_math")

    last_line = lines[-1] if lines else ""
    if last_line and len(last_line) <= 80 and len(last_line.split()) <= 3:
        answer = _clean(last_line)
        if answer:
            return Extraction(answer, "last_line")
    if last_line and len(last_line) <= 300 and _COPULA.search(last_line):
        # "The area is pi*r**2."
        found = _from_sentence(_TRAILING_FILLER.sub("", last_line))
        if found and _words_outside_math(found) <= 2:
            answer = _clean(found)
            if answer:
                return Extraction(answer, "last_line")
    numbers = _NUMBER.findall(last_line)
    if numbers:
        return Extraction(numbers[-1].rstrip(",")[:MAX_ANSWER_CHARS], "last_number")
    return None


def extract_reference(reference: str) -> str:
    """The answer inside a reference, which may be a bare answer or a full solution.

    Every box of a reference counts (``\\boxed{1} and \\boxed{-2}`` -> ``1, -2``).
    """
    s = reference.strip()
    body = strip_think(s) or s
    boxes = find_boxes(body)
    if boxes:
        joined = _clean(_last_boxed(body, boxes) or "")
        if joined:
            return joined
    if len(s) > 200 or "answer" in s.lower():
        found = extract_final_answer(s)
        if found is not None:
            return found.answer
    return _clean(s)
