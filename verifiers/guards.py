"""Deterministic guards against degenerate, invalid and adversarial responses.

The guards run before any other stage and need no model. They carry the
cascade's security guarantee: **even a judge that always says "correct" cannot
be fooled by the known attack families**, because such responses never reach
it (and the judge only ever sees an extracted answer, which `screen_answer`
checks again).

Two entry points:

* `screen_response` - the raw response of the policy.
* `screen_answer` - the final answer extracted from it, just before it is
  compared or shown to the judge.

Both return a `GuardResult`: ``rejection`` is a ready-made
``Verdict.reject(Stage.GUARD, Reason.guard(name))`` when the input must be
rejected, ``flags`` says what was noticed even when nothing was rejected.

Guards (the ``name`` in ``guard:<name>``):

``empty``            nothing visible (whitespace, invisible characters, only markup).
``punctuation``      only punctuation or symbols, e.g. ``.``, ``:``, a lone ``{``.
``master_key``       only reasoning-opener vocabulary ("Thought process:",
                     "Let's solve this problem step by step.", "Solution",
                     "解", "かいせつ", "Respuesta", ...) in any of ~20 languages,
                     or a few words that announce something and stop (``...:``).
``refusal``          a short refusal ("I cannot help with that", "As an AI ...
                     I can't ...") with no answer in it.
``repetition``       the response ends in a loop: one chunk repeated many times.
``truncated``        cut off mid-sentence with no answer given (ends on "the",
                     "of", "=", ",", an unclosed ``\\boxed{``, ...).
``injection``        the response is nothing but an injection aimed at a judge
                     (forged verdict, template continuation, instruction override).
``injection_answer`` (answers only) the extracted answer contains injection text.

Flags (low-cardinality, safe as metric labels): ``injection`` plus one of
``injection:override``, ``injection:verdict``, ``injection:claim``,
``injection:role``, ``injection:delimiter``, ``injection:instruct``;
``refusal``, ``unclosed_think``, ``markup_only``.

Design rules: zero false rejections on normal responses matter more than
catching every odd case, so each rule requires an *absence* of answer content
(no digits or math, no answer marker, no closed ``\\boxed{}``) before it
rejects. Everything is linear in the input: regexes have bounded quantifiers
and no nested repetition, the expensive checks only look at short texts or at
the tail of long ones. Inputs of 1 MB are fine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ahocorasick_rs import AhoCorasick, MatchKind

from verifiers.verdict import Reason, Stage, Verdict

#: Bump when a guard's decision on some input changes (part of cache keys upstream).
GUARDS_VERSION = "2"

#: Only this much of the end of a response is examined by the tail rules.
TAIL_CHARS = 8000
#: Opener-vocabulary rules only apply to texts at most this long (after markup removal).
SHORT_CHARS = 400
SHORT_WORDS = 40


@dataclass(frozen=True, slots=True)
class GuardResult:
    """Outcome of a screen.

    rejection: a `Verdict` (stage ``guard``, reason ``guard:<name>``) when the
        input must be rejected, else None.
    flags: what was noticed, sorted, without duplicates; set even when the
        input was not rejected (e.g. ``("injection", "injection:verdict")``).
    """

    rejection: Verdict | None
    flags: tuple[str, ...]

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    @property
    def guard(self) -> str | None:
        """Name of the guard that rejected (``master_key``, ...), or None."""
        if self.rejection is None:
            return None
        return self.rejection.reason.removeprefix("guard:")


# --------------------------------------------------------------------------
# Text preparation
# --------------------------------------------------------------------------


def _invisible_table() -> dict[int, None]:
    """Code points that render as nothing (format chars, blank fillers)."""
    table: dict[int, None] = {}
    for cp in range(0x10000):
        if unicodedata.category(chr(cp)) == "Cf":
            table[cp] = None
    extra = [
        0x034F,  # combining grapheme joiner
        0x115F,
        0x1160,
        0x3164,
        0xFFA0,  # Hangul fillers (letters that render blank)
        0x2800,  # braille blank
        0x17B4,
        0x17B5,
        0x180E,
        *range(0xFE00, 0xFE10),  # variation selectors
        *range(0xE0000, 0xE0080),  # tag characters
        *range(0xE0100, 0xE01F0),  # variation selectors supplement
        0x1D159,
        *range(0x1D173, 0x1D17B),
        0x110BD,
        0x110CD,
        *range(0x1BCA0, 0x1BCA4),
    ]
    for cp in extra:
        table[cp] = None
    return table


_INVISIBLE = _invisible_table()


def _char_class(code_points: Iterable[int]) -> re.Pattern[str]:
    """A regex matching exactly one of `code_points` (consecutive runs as ranges)."""
    ranges: list[str] = []
    points = sorted(code_points)
    start = previous = points[0]
    for cp in [*points[1:], -1]:
        if cp == previous + 1:
            previous = cp
            continue
        ranges.append(f"\\U{start:08x}" + (f"-\\U{previous:08x}" if previous > start else ""))
        start = previous = cp
    return re.compile("[" + "".join(ranges) + "]")


#: The same characters as `_INVISIBLE`: a scan in C instead of a table lookup per character.
_INVISIBLE_CHARS = _char_class(_INVISIBLE)
_APOSTROPHES = re.compile("[\u2019\u2018\u02bc\uff07]")


def _prepare(text: str) -> str:
    """Drop invisible characters, NFKC-normalise, unify apostrophes, write a
    dotted capital I (U+0130) as ``I`` and a dotted small i as ``i``: lower-
    or case-folded, U+0130 becomes ``i`` plus a combining dot, which splits
    words ("Solut\u0130on", "d\u00fc\u015f\u00fcneli\u0307m")."""
    if text.isascii():
        return text  # no invisible characters, NFKC-stable, no curly quotes
    text = _INVISIBLE_CHARS.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    return _APOSTROPHES.sub("'", text).replace("\u0130", "I").replace("i\u0307", "i")


_THINK_CLOSE = re.compile(r"</think(?:ing)?\s*>", re.I)
_THINK_OPEN = re.compile(r"<think(?:ing)?\s*>", re.I)


def _visible(text: str) -> tuple[str, bool]:
    """The part a reader sees as the answer: after the last ``</think>``.

    Returns (visible text, think-block left unclosed).
    """
    last = None
    for last in _THINK_CLOSE.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is not None:
        return text[last.end() :], False
    if _THINK_OPEN.search(text):
        return text, True
    return text, False


# --------------------------------------------------------------------------
# Markup and tokens
# --------------------------------------------------------------------------

_ALNUM = re.compile(r"[^\W_]")
#: Symbols that are complete answers on their own (infinity, empty set, ``\{\}``).
_MEANINGFUL_SYMBOLS = re.compile(r"[∞∅⌀]|\\\{\s*\\\}")
_HTML_TAG = re.compile(r"</?[A-Za-z][\w:-]{0,30}(?:\s[^<>]{0,200})?/?>")
_LATEX_WRAPPER = re.compile(
    r"\\(?:boxed|fbox|framebox|text|textbf|textit|textrm|textsf|texttt|textnormal|mathrm|"
    r"mathbf|mathit|mathsf|mathtt|mathnormal|emph|mbox|underline|displaystyle|textstyle|"
    r"left|right|quad|qquad|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])|\\[,;:! ]"
)
_MATH_DELIMS = re.compile(r"\$+|\\[()\[\]]")
_MARKDOWN = re.compile(r"[*`~#{}]|__|(?m:^[ \t]*>+)|(?m:^[ \t]*[-+][ \t]+)")
# `_MARKDOWN` split in two for speed. The line-start part only ever matches
# spaces, tabs, ``>``, ``-`` and ``+`` at the start of a line, where the
# character part cannot match, and the character part never matches those
# characters: applying the two one after the other removes exactly what the
# single pass removes.
_MARKDOWN_LINE = re.compile(r"(?m:^[ \t]*(?:>+|[-+][ \t]+))")
_MARKDOWN_LINE_HINT = re.compile(r"(?:^|\n)[ \t]*[>+-]")
_MARKDOWN_CHARS = re.compile(r"[*`~#{}]|__")


def _strip_markup(text: str) -> str:
    """Remove wrappers that carry no content: HTML tags, Markdown emphasis,
    LaTeX text/box wrappers and math delimiters (their content is kept)."""
    # Each substitution is skipped when its pattern cannot match (a C-speed test).
    if "<" in text:
        text = _HTML_TAG.sub(" ", text)
    if "\\" in text:
        text = _LATEX_WRAPPER.sub(" ", text)
    if "$" in text or "\\" in text:
        text = _MATH_DELIMS.sub(" ", text)
    if _MARKDOWN_LINE_HINT.search(text):
        text = _MARKDOWN_LINE.sub(" ", text)
    return _MARKDOWN_CHARS.sub(" ", text)


def _has_content_char(text: str) -> bool:
    return _ALNUM.search(text) is not None or _MEANINGFUL_SYMBOLS.search(text) is not None


#: Digits, math symbols and leftover LaTeX mean "this may be an answer".
_MATHLIKE = re.compile(r"[\d\\^=<>+×÷±√∞∑∏∫≤≥≠≈∈∉⊂⊆∪∩→↦′″°%π]")
#: Letters plus the combining marks of scripts whose words contain them (Devanagari,
#: Thai, Arabic, Hebrew, ...), which Python's ``\\w`` does not count as word characters.
_LETTER = (
    r"(?:[^\W\d_]|[\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
    r"\u06d6-\u06ed\u0900-\u0dff\u0e00-\u0e7f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\u3099\u309a])"
)
_WORD = re.compile(_LETTER + "+(?:'" + _LETTER + "+)*")
_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u1100-\u11ff\u0e00-\u0e7f]"
)


def _is_latin(token: str) -> bool:
    return all(ord(ch) < 0x250 for ch in token)


def _fold_latin(token: str) -> str:
    """Drop accents from a Latin-script token (``réponse`` -> ``reponse``)."""
    decomposed = unicodedata.normalize("NFKD", token)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ѕ": "s",
        "ј": "j",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ο": "o",
        "α": "a",
        "ν": "v",
        "τ": "t",
        "ι": "i",
        "κ": "k",
        "ρ": "p",
        "υ": "u",
    }
)


# --------------------------------------------------------------------------
# Opener vocabulary ("master keys")
# --------------------------------------------------------------------------
# A text made *only* of these words, with at least one STRONG word and no
# digits or math, announces a solution without giving one. Words that could be
# an answer on their own ("yes", "first", "above", "none", ...) are kept out;
# a few that are mostly function words but could end an answer ("a", "it",
# "this", ...) only count when they are not the last word.

_STRONG_WORDS = """
solution solutions solve solving solved answer answers answering step steps stepwise
think thinking thought thoughts process processes reasoning explanation explanations
explain explaining mental proof calculation calculations calculate calculating compute
computing computation working walkthrough hint hints let's lets brainstorm brainstorming
scratchpad deliberation rationale derivation breakdown
respuesta respuestas solución solucion soluciones resolución resolucion resolver resolvamos
resolviendo razonamiento explicación explicacion pensemos pensamiento proceso procedimiento
réponse reponse réponses résolution resolution résolvons résoudre étape etape étapes etapes
raisonnement explication réfléchissons reflechissons pensée pensee processus démonstration
lösung losung lösungen lösungsweg antwort antworten schritt schritte lösen losen rechenweg
gedankengang denkprozess überlegung uberlegung überlegungen erklärung erklarung denken
resposta respostas solução solucao resolução resolucao raciocínio raciocinio explicação
explicacao resolvamos processo pensar
risposta risposte soluzione soluzioni risoluzione risolviamo risolvere ragionamento
spiegazione pensiamo procedimento
ответ ответы решение решения решим решаем давайте рассуждение рассуждения объяснение
подумаем размышление шаг шагом процесс
відповідь розв'язання розв'язок рішення
oplossing antwoord lösning løsning svar rozwiązanie odpowiedź řešení odpověď çözüm cevap
çözümü çözelim düşünelim yanıt jawaban penyelesaian jawapan ratkaisu vastaus megoldás válasz
soluție răspuns
λύση απάντηση פתרון תשובה الحل حل الجواب الإجابة الاجابة اجابة پاسخ جواب هل
उत्तर हल समाधान คำตอบ วิธีทำ giải đáp lời
"""

_WEAK_WORDS = """
the an of to for by with and or then now so here there we us our me my you your will
shall can do does need must should would could going go start begin carefully careful
detailed detail details full complete final following problem problems question questions
task exercise given information experiment analysis analyze analyse approach method methods
strategy plan idea ideas look consider understand understanding break through about figure
find determine examine work works worked okay ok alright well hmm sure certainly firstly
begin let's together quick quickly short brief briefly overview summary is are
try attempt attempting see how what this's let i'll we'll i'm
el la los las un una este esta estos problema pregunta de del y por paso pasos para vamos
veamos primero ahora aquí aqui
le les ce cette problème probleme question par de du des et nous allons commençons
commencons voici voila analyse
der die das ein eine dieses diese problem aufgabe für fur wir lass lasst uns zuerst mal
und zu schauen analyse
o os as um uma este problema questão questao por passo passos vamos primeiro agora
il lo gli questo questa problema domanda di per passo passi vediamo
за по эту этой задачу задача задачи итак сначала разберём разберем анализ
stap voor laten we krok po adım adımlar lời bước langkah
"""

_NONFINAL_WORDS = "a i it in on at out down up this that one it's first"

_CJK_STRONG = """
解 解答 解析 答 答案 解说 解說 解説 解法 详解 詳解 解题 解題 思路 思考 过程 過程 步骤 步驟
推理 证明 證明 回答 一步一步 一步步 逐步 解いて 解く 解き 考えて 考えましょう
かいせつ かいとう こたえ 答え 解き方 考え方 考察 ステップ
풀이 해설 정답 답 해답 답변 해결 단계 생각 คำตอบ วิธีทำ เฉลย
"""

_CJK_WEAK = """
让 讓 我们 我們 我 来 來 地 的 了 吧 这个 這個 这 這 问题 問題 题 題
题目 題目 解决 解決 首先 下面 如下 一下 好 是 看 看看 分析 如何 怎么 怎麼 先 开始 開始 吗
では まず それでは みましょう しましょう ましょう 解いて いきましょう
いきます 順番に 一歩ずつ ずつ を の は が に で と て この 問題 します 見て みます 解く
별로 풀어 봅시다 보겠습니다 보자 해 문제 이 를 을 먼저 차근차근 해보자 해봅시다 으로 로 하자
มา กัน ทีละ ขั้นตอน โจทย์ นี้ ให้ แก้
"""


def _split_words(block: str) -> frozenset[str]:
    """The words of `block`, case-folded, with their accent-free spellings and
    with dotless i written as i (Turkish "ADIM" case-folds to "adim", not "ad\u0131m")."""
    words: set[str] = set()
    for word in block.split():
        word = word.casefold()
        words.add(word)
        if _is_latin(word):
            plain = _fold_latin(word)
            words.update((plain, plain.replace("\u0131", "i")))
    return frozenset(words)


_STRONG = _split_words(_STRONG_WORDS)
_WEAK = _split_words(_WEAK_WORDS) | _STRONG
_NONFINAL = _split_words(_NONFINAL_WORDS)
_CJK_STRONG_SET = _split_words(_CJK_STRONG)
_CJK_ALL = _split_words(_CJK_WEAK) | _CJK_STRONG_SET
_CJK_MAXLEN = max(len(w) for w in _CJK_ALL)


def _segment_cjk(token: str) -> tuple[bool, bool]:
    """Can `token` be split entirely into CJK opener vocabulary?

    Returns (fully covered, contains a strong word). Dynamic programming over
    positions: O(len(token) * longest entry).
    """
    n = len(token)
    # best[i]: None = unreachable, else whether a strong word was used to reach i
    best: list[bool | None] = [None] * (n + 1)
    best[0] = False
    for i in range(n):
        state = best[i]
        if state is None:
            continue
        for j in range(i + 1, min(n, i + _CJK_MAXLEN) + 1):
            piece = token[i:j]
            if piece in _CJK_ALL:
                strong = state or piece in _CJK_STRONG_SET
                if best[j] is None or (strong and not best[j]):
                    best[j] = strong
    final = best[n]
    return final is not None, bool(final)


def _vocab_status(word: str, last: bool) -> tuple[bool, bool]:
    """(is opener vocabulary, is a strong opener word) for one casefolded word."""
    candidates = [word]
    if _is_latin(word):
        candidates.append(_fold_latin(word))
        if "\u0131" in word:  # a dotless i where an i belongs: "solut\u0131on"
            candidates.append(candidates[-1].replace("\u0131", "i"))
    else:
        mapped = word.translate(_CONFUSABLES)
        if mapped != word and _is_latin(mapped):
            candidates.append(mapped)
    for cand in candidates:
        if cand in _STRONG:
            return True, True
        if cand in _WEAK or (not last and cand in _NONFINAL):
            return True, False
    if "'" in word:  # l'analyse, let's -> parts
        parts = [p for p in word.split("'") if p]
        statuses = [_vocab_status(p, last and k == len(parts) - 1) for k, p in enumerate(parts)]
        if statuses and all(s[0] for s in statuses):
            return True, any(s[1] for s in statuses)
    if _CJK.search(word):
        return _segment_cjk(word)
    return False, False


def _is_opener_only(text: str, *, need_strong: bool = True) -> bool:
    """Is `text` (markup already stripped) made only of opener vocabulary?"""
    if len(text) > SHORT_CHARS or _MATHLIKE.search(text):
        return False
    words = _WORD.findall(text.casefold())
    if not words or len(words) > SHORT_WORDS:
        return False
    strong = False
    for k, word in enumerate(words):
        known, is_strong = _vocab_status(word, last=k == len(words) - 1)
        if not known:
            return False
        strong = strong or is_strong
    # Four or more words of pure opener/function vocabulary say nothing either.
    return strong or not need_strong or len(words) >= 4


# --------------------------------------------------------------------------
# Answer signals, truncation, refusal, repetition
# --------------------------------------------------------------------------

_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_MARKER = re.compile(
    r"(?:\bfinal\s+answer\b|\banswer\s*(?:is\b|:|=|would\s+be\b|should\s+be\b)|\banswers\s+are\b"
    r"|####|<answer>|答案|答え|ответ|respuesta|réponse|antwort|resposta|risposta|정답)",
    re.I,
)
_END_WORDS = frozenset(
    """the an of to and or is are was were that which with by from than because since if
    into its their our we equals gives yields let let's thus therefore hence where whose
    for as get obtain find compute calculate has have will can must should would could but
    also these those such between each every via using when while then""".split()  # noqa: SIM905
)
_TERMINAL = ".!?。！？…"
#: Characters that cannot end a finished sentence.
_DANGLING = ",:([{=\\、，：（"


def _last_box_open(text: str) -> re.Match[str] | None:
    """The last match of `_BOX_OPEN` in `text`, found from the end (LaTeX is full
    of backslashes, each of which a forward scan would try)."""
    end = len(text)
    while True:
        at = max(text.rfind("\\boxed", 0, end), text.rfind("\\fbox", 0, end))
        if at < 0:
            return None
        match = _BOX_OPEN.match(text, at)
        if match is not None:
            return match
        end = at  # occurrences cannot overlap: each starts with the only backslash


def _boxed_state(tail: str) -> str:
    """``"none"`` (no box), ``"open"`` (last box never closed), ``"empty"``, ``"ok"``."""
    start = _last_box_open(tail)
    if start is None:
        return "none"
    depth = 0
    i = start.end() - 1
    n = len(tail)
    while i < n:
        ch = tail[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                inner = tail[start.end() : i]
                return "ok" if _has_content_char(inner) else "empty"
        i += 1
    return "open"


def _marker_has_content(tail: str) -> bool:
    """An answer marker followed by something that is not just function words."""
    for match in _ANSWER_MARKER.finditer(tail):
        after = tail[match.end() : match.end() + 200]
        if _MATHLIKE.search(after):
            return True
        for word in _WORD.findall(after.casefold()):
            if word not in _END_WORDS and word not in _WEAK:
                return True
    return False


def _has_answer_signal(tail: str) -> bool:
    return _boxed_state(tail) == "ok" or _marker_has_content(tail)


def _ends_mid_sentence(text: str) -> bool:
    """Does `text` (stripped) stop where a sentence cannot end?"""
    if not text:
        return False
    last = text[-1]
    if last in _DANGLING:
        return True
    if last in "+-*/×÷−" and len(text) >= 2 and text[-2].isspace():
        return True  # "x^2 +" but not "B+" / "O-"
    words = _WORD.findall(text[-60:].casefold())
    if words and text[-1].isalpha():
        return words[-1] in _END_WORDS
    return False


_REFUSAL_BODY = re.compile(
    r"\s*(?:"
    r"(?:i'?m|i\s+am)\s+(?:sorry|afraid)[^.\n]{0,60}?\b(?:i|we)\s*(?:can'?t|cannot|can\s+not|"
    r"won'?t|will\s+not|am\s+unable|'m\s+unable|am\s+not\s+able|'m\s+not\s+able|must\s+decline)"
    r"|(?:sorry|unfortunately|apologies)[,.!]?\s+(?:but\s+)?(?:i|we)\s*(?:can'?t|cannot|"
    r"can\s+not|won'?t|will\s+not|am\s+unable|'m\s+unable|am\s+not\s+able|'m\s+not\s+able)"
    r"|(?:i|we)\s*(?:can'?t|cannot|can\s+not|won'?t|will\s+not|am\s+unable\s+to|'m\s+unable\s+to|"
    r"am\s+not\s+able\s+to|'m\s+not\s+able\s+to|must\s+decline\s+to|refuse\s+to)\s+"
    r"(?:help|assist|provide|answer|solve|comply|fulfill|complete|respond|engage|support|"
    r"continue|generate|give|share|do\s+that|do\s+this)\b"
    r"|as\s+an?\s+(?:ai|artificial\s+intelligence|(?:large\s+)?language\s+model|llm|"
    r"ai\s+(?:language\s+model|assistant))\b[^.\n]{0,80}?\b(?:can'?t|cannot|can\s+not|unable|"
    r"not\s+able|don'?t|do\s+not|won'?t|will\s+not)\b"
    r"|lo\s+siento,?\s+(?:pero\s+)?no\s+puedo|désolé,?\s+(?:mais\s+)?je\s+ne\s+peux"
    r"|(?:抱歉|对不起|很抱歉|對不起)[，,]?\s*(?:我)?(?:无法|不能|無法)"
    r")",
    re.I,
)
#: Where a refusal may start: the beginning, or right after ``.``, ``!``, ``?`` or a newline -
#: and only where, past any whitespace, the first letter of one of its phrases follows.
_SENTENCE_START = re.compile(r"[.!?\n](?=\s*[iuswald抱对很對])", re.I)


def _has_refusal(text: str) -> bool:
    """Does a refusal phrase start `text` or one of its sentences or lines?

    The same as searching ``(?:^|(?<=[.!?\\n]))`` + `_REFUSAL_BODY`, but the body
    is only tried where a sentence can start instead of at every position.
    """
    if _REFUSAL_BODY.match(text):
        return True
    return any(_REFUSAL_BODY.match(text, m.end()) for m in _SENTENCE_START.finditer(text))


#: A refusal is only rejected when the whole response is about this short.
_REFUSAL_MAX_CHARS = 600


def _repetition(text: str) -> bool:
    """Does `text` end in a loop (one chunk repeated many times)?

    Cheap pre-filter: the last 16 characters must occur several times in the
    tail (C-speed ``str.count``); only then candidate periods are taken from
    the positions of earlier occurrences and checked with slice comparisons.
    """
    tail = text[-TAIL_CHARS:]
    n = len(tail)
    probe_len = 16
    if n < 200:
        return False
    probe = tail[-probe_len:]
    if tail.count(probe) < 3:
        return False
    pos = n - probe_len
    tried: set[int] = set()
    for _ in range(16):
        prev = tail.rfind(probe, 0, pos + probe_len - 1)
        if prev < 0:
            break
        period = (n - probe_len) - prev
        pos = prev
        if period in tried or period <= 0:
            continue
        tried.add(period)
        length = _periodic_suffix(tail, period)
        repeats = length / period
        needed = 6 if period < 50 else 4
        if length >= 200 and repeats >= needed:
            return True
    return False


def _periodic_suffix(text: str, period: int) -> int:
    """Length of the longest suffix of `text` with the given period (binary search)."""
    n = len(text)

    def periodic(length: int) -> bool:
        start = n - length
        return text[start : n - period] == text[start + period : n]

    lo, hi = period, n  # periodic(period) is trivially true
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if periodic(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


# --------------------------------------------------------------------------
# Injection
# --------------------------------------------------------------------------
# Strong patterns never occur in honest answers; weak ones ("the answer is
# correct") can appear in a self-checking chain of thought, so they only flag -
# unless nothing else is left.

_ROLE_NAMES = r"(?:assistant|human|user|judge|grader|evaluator)"
#: (kind, pattern, strong, keywords): one of the lowercase literal keywords must occur in
#: the text for the pattern to match, so a C-speed ``in`` test skips most regexes.
_INJECTION_SPECS: list[tuple[str, str, bool, tuple[str, ...]]] = [
    (
        "override",
        r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|my|every|"
        r"previous|prior|above|preceding|earlier|former|original|system|of|these|those|other|"
        r"grading|judging)\s+){0,4}(?:instructions?|prompts?|rules?|directions?|guidelines?|"
        r"commands?|constraints?|system\s+(?:prompt|message)|rubric)\b",
        True,
        ("ignore", "disregard", "forget", "override", "bypass"),
    ),
    (
        "override",
        r"\b(?:ignore|disregard|forget)\s+(?:all\s+(?:of\s+)?)?(?:the\s+|everything\s+|"
        r"what\s+(?:is|was)\s+)?(?:above|previous|prior|preceding)\b(?=\s*(?:[.,;:!\n]|and\b|$))",
        True,
        ("ignore", "disregard", "forget"),
    ),
    (
        "override",
        r"\b(?:new|updated|real|actual|revised)\s+instructions?\s*:",
        True,
        ("instruction",),
    ),
    (
        "override",
        r"\byou\s+(?:are|must|should|will)\s+now\s+(?:act|be|respond|output|answer|grade|judge|"
        r"an?\s+(?:\w+\s+){0,2}(?:grader|judge|evaluator|assistant|model))\b",
        True,
        ("now",),
    ),
    (
        "instruct",
        r"\b(?:grade|mark|judge|rate|score|evaluate|label|classify)\s+(?:this|it|me|the\s+"
        r"(?:answer|response|solution)|my\s+(?:answer|response|solution))\s+(?:as\s+)?"
        r"(?:correct|right|true|valid|full\s+marks|[\"'\[(]*(?-i:A)\b)",
        True,
        ("grade", "mark", "judge", "rate", "score", "evaluate", "label", "classify"),
    ),
    (
        "instruct",
        r"\b(?:respond|reply|output)\s+(?:only\s+)?(?:with\s+)?(?:the\s+(?:letter|token|"
        r"word)\s+)?[\"'\[(]*(?:(?-i:A)|correct)[\"'\])]*(?=\s*(?:[.!,;\n]|$))",
        False,
        ("respond", "reply", "output"),
    ),
    (
        "verdict",
        r"\b(?:final\s+|overall\s+)?(?:judge?ment|verdict|grade|grading|evaluation|assessment|"
        r"rating)\s*(?:is\s*)?[:=]\s*[\[(\"'*]{0,4}\s*(?:(?-i:[ABC])(?!\w)|correct|incorrect|"
        r"right|wrong|true|false|pass(?:ed)?\b|fail(?:ed)?\b|accept(?:ed)?\b|reject(?:ed)?\b|"
        r"valid|invalid|equivalent)",
        True,
        ("judgment", "judgement", "verdict", "grad", "evaluation", "assessment", "rating"),
    ),
    (
        "verdict",
        r"\[\[\s*(?:(?-i:[ABC])|correct|incorrect|yes|no|true|false)\s*\]\]",
        True,
        ("[[",),
    ),
    (
        "verdict",
        r"\[\s*(?:correct|incorrect|right|wrong|pass|fail|accepted|rejected|verified|"
        r"equivalent|valid|invalid)\s*\]",
        True,
        ("[",),
    ),
    (
        "claim",
        r"\b(?:the|this|my|candidate'?s?|student'?s?|model'?s?|your|response'?s?)\s+(?:final\s+)?"
        r"(?:answer|response|solution)\s+(?:is|was)\s+(?:definitely\s+|absolutely\s+|fully\s+|"
        r"completely\s+|entirely\s+)?(?:correct\b|equivalent\s+to\s+the\s+(?:reference|ground\s+"
        r"truth|correct|standard|expected|gold))",
        False,
        ("correct", "equivalent"),
    ),
    (
        "claim",
        r"\b(?:same\s+as|identical\s+to|matches|equivalent\s+to)\s+(?:the\s+)?(?:reference|"
        r"ground[\s-]truth|gold|expected|standard|official)\s+(?:answer|solution|result)\b",
        False,
        ("same", "identical", "matches", "equivalent"),
    ),
    ("role", r"<\s*\|[^|<>\n]{1,40}\|\s*>|<｜[^｜<>\n]{1,40}｜>", True, ("<",)),
    (
        "role",
        r"\[/?INST\]|<</?SYS>>|</s>|<start_of_turn>|<end_of_turn>",
        True,
        ("[inst]", "[/inst]", "<<sys>>", "<</sys>>", "</s>", "<start_of_turn>", "<end_of_turn>"),
    ),
    (
        "role",
        r"(?m:^[ \t]*#{1,4}[ \t]*(?:response|instruction|input|assistant|human|user|system|"
        r"judge?ment|verdict)[ \t]*:?[ \t]*$)",
        True,
        ("#",),
    ),
    (
        "role",
        r"(?m:^[ \t]*" + _ROLE_NAMES + r"[ \t]*:)",
        True,
        ("assistant", "human", "user", "judge", "grader", "evaluator"),
    ),
    (
        "role",
        r"<\s*/?\s*(?:judge|judge?ment|verdict|grade|grading|evaluation|score|rating|system|"
        r"assistant|user|human|instruction|im_start|im_end)\s*>",
        True,
        ("<",),
    ),
    (
        "delimiter",
        r"<\s*/?\s*(?:reference_answer|candidate_answer|reference|candidate|question)\b"
        r"[^<>\n]{0,80}>?",
        True,
        ("<",),
    ),
    ("delimiter", r"\b(?:reference|candidate)[ _]answer\b", False, ("reference", "candidate")),
]


_INJECTION_REGEXES = [re.compile(spec[1], re.I) for spec in _INJECTION_SPECS]

#: Fast necessary conditions for the specs whose keywords are common words
#: ("now", "rate", "correct", "same", "[", ...): (spec index, anchor, the words
#: one of which starts every match of the anchor). Each anchor is a piece (or a
#: relaxation) of its spec's pattern, so every match of the spec contains a
#: match of the anchor; it is tried only where one of its start words occurs.
#: Anchors run without IGNORECASE on the lowercased text, which is much faster
#: and exactly equivalent: the text is first folded (`_fold_to_ascii`: the
#: non-ASCII characters that ``re.I`` equates with ASCII letters, U+0130,
#: U+0131, U+017F, U+212A), after which lower-casing keeps every character's
#: place, its whitespace and its word-character status.
_INJECTION_ANCHOR_SOURCES: dict[str, list[tuple[int, str, tuple[str, ...]]]] = {
    "override": [
        (3, r"now\s+(?:act|be|respond|output|answer|grade|judge|an?\s)", ("now",)),
    ],
    "instruct": [
        (
            4,
            r"(?:grade|mark|judge|rate|score|evaluate|label|classify)\s+(?:this|it|me|the|my)\s",
            ("grade", "mark", "judge", "rate", "score", "evaluate", "label", "classify"),
        ),
        (5, r"(?:respond|reply|output)\s", ("respond", "reply", "output")),
    ],
    "verdict": [
        (
            6,
            r"(?:judge?ment|verdict|grade|grading|evaluation|assessment|rating)\s*(?:is\s*)?[:=]",
            ("judgement", "judgment", "verdict", "grad", "evaluation", "assessment", "rating"),
        ),
        (
            8,
            r"\[\s*(?:correct|incorrect|right|wrong|pass|fail|accepted|rejected|verified|"
            r"equivalent|valid|invalid)\s*\]",
            ("[",),
        ),
    ],
    "claim": [
        (
            9,
            r"(?:answer|response|solution)\s+(?:is|was)\s+(?:\w+\s+)?(?:correct|equivalent)",
            ("answer", "response", "solution"),
        ),
        (
            10,
            r"(?:reference|ground[\s-]truth|gold|expected|standard|official)\s+"
            r"(?:answer|solution|result)",
            ("reference", "ground", "gold", "expected", "standard", "official"),
        ),
    ],
}
#: Every keyword and anchor start word once (several specs share some).
_INJECTION_KEYWORDS = tuple(dict.fromkeys(k for spec in _INJECTION_SPECS for k in spec[3]))
_ANCHOR_WORDS = [w for group in _INJECTION_ANCHOR_SOURCES.values() for *_, ws in group for w in ws]
_SEARCH_WORDS = tuple(dict.fromkeys([*_INJECTION_KEYWORDS, *_ANCHOR_WORDS]))
#: All the words in one pass (Aho-Corasick, overlapping matches: every occurrence
#: of every word); 60 separate scans cost several times as much.
_WORD_SEARCH = AhoCorasick(list(_SEARCH_WORDS), matchkind=MatchKind.Standard)
_CASE_FOLDS_TO_ASCII = re.compile("[\u0130\u0131\u017f\u212a]")
_ASCII_FOLD = {"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"}


def _fold_to_ascii(text: str) -> str:
    """`text` with each non-ASCII letter that re.I equates with an ASCII one replaced by it."""
    return _CASE_FOLDS_TO_ASCII.sub(lambda match: _ASCII_FOLD[match.group()], text)


_INJECTION_ANCHORS: list[tuple[re.Pattern[str], tuple[str, ...]] | None] = [None] * len(
    _INJECTION_SPECS
)
for _kind, _anchors in _INJECTION_ANCHOR_SOURCES.items():
    for _index, _source, _starts in _anchors:
        assert _INJECTION_SPECS[_index][0] == _kind, "anchor table out of step with the specs"
        _INJECTION_ANCHORS[_index] = (re.compile(_source), _starts)


@dataclass(frozen=True, slots=True)
class _Injection:
    kinds: frozenset[str]
    strong: bool
    remainder: str  # the text with every injection span removed


def _word_starts(low: str) -> dict[str, list[int]]:
    """Where each of `_SEARCH_WORDS` occurs in `low` (already lower-cased): every
    start, overlapping occurrences included; words that do not occur are absent."""
    starts: dict[str, list[int]] = {}
    try:
        matches = _WORD_SEARCH.find_matches_as_indexes(low, overlapping=True)
    except UnicodeError:  # lone surrogates cannot cross into Rust: the plain scan
        for word in _SEARCH_WORDS:
            at = low.find(word)
            while at >= 0:
                starts.setdefault(word, []).append(at)
                at = low.find(word, at + 1)
        return starts
    for index, start, _ in matches:
        starts.setdefault(_SEARCH_WORDS[index], []).append(start)
    return starts


def _anchor_matches(
    anchor: re.Pattern[str], words: tuple[str, ...], low: str, starts: dict[str, list[int]]
) -> bool:
    """`anchor.search(low) is not None`, trying only where a start word occurs."""
    return any(anchor.match(low, at) for word in words for at in starts.get(word, ()))


def _find_injection(text: str) -> _Injection | None:
    # The text as re.I sees it, in lower case: "verd\u0130ct" is "verdict".
    low = (text if text.isascii() else _fold_to_ascii(text)).lower()
    starts = _word_starts(low)
    if not starts:
        return None
    kinds: set[str] = set()
    strong = False
    spans: list[tuple[int, int]] = []
    for (kind, _, is_strong, keywords), regex, anchor in zip(
        _INJECTION_SPECS, _INJECTION_REGEXES, _INJECTION_ANCHORS, strict=True
    ):
        if starts.keys().isdisjoint(keywords):
            continue
        if anchor is not None and not _anchor_matches(*anchor, low, starts):
            continue
        for match in regex.finditer(text):
            kinds.add(kind)
            strong = strong or is_strong
            spans.append(match.span())
    if not kinds:
        return None
    return _Injection(frozenset(kinds), strong, _without_spans(text, spans))


def _without_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with every (possibly overlapping) span cut out, the pieces joined by spaces."""
    pieces: list[str] = []
    cursor = 0
    for start, end in sorted(spans):
        if start > cursor:
            pieces.append(text[cursor:start])
        cursor = max(cursor, end)
    pieces.append(text[cursor:])
    return " ".join(pieces)


def _injection_flags(found: _Injection) -> list[str]:
    return ["injection", *(f"injection:{kind}" for kind in found.kinds)]


def _thin(text: str) -> bool:
    """Is there (almost) nothing left that could be an answer?

    True when the text has no content characters, or is a dozen words at most
    with no digits or math, no closed ``\\boxed{}`` and no answer marker.
    """
    stripped = _strip_markup(text)
    if not _has_content_char(stripped):
        return True
    if len(stripped) > SHORT_CHARS or _MATHLIKE.search(stripped):
        return False
    tail = text[-TAIL_CHARS:]
    return len(_ALNUM_RUN.findall(stripped)) <= 12 and not _has_answer_signal(tail)


_ALNUM_RUN = re.compile(r"[^\W_]+")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _result(name: str | None, flags: Iterable[str]) -> GuardResult:
    ordered = tuple(sorted(set(flags)))
    if name is None:
        return GuardResult(None, ordered)
    verdict = Verdict.reject(Stage.GUARD, Reason.guard(name), flags=ordered, detail={"guard": name})
    return GuardResult(verdict, ordered)


_DIGIT = re.compile(r"\d")


def _plainly_substantial(text: str) -> bool:
    """A cheap sufficient condition for `_degenerate` to find nothing.

    Markup removal (`_strip_markup`) only deletes digits inside HTML tags and
    only ever inserts spaces. So when no HTML tag matches and a digit follows
    the last ``:`` (or there is no ``:``), that digit survives: the stripped
    text has content, has a math-like character (so it is not opener-only),
    and does not end with ``:``. Most real responses pass this test, which
    spares a full markup removal over long texts.
    """
    if "<" in text and _HTML_TAG.search(text) is not None:
        return False
    return _DIGIT.search(text, text.rfind(":") + 1) is not None


def _degenerate(text: str, flags: list[str]) -> str | None:
    """Shared by both screens: empty / punctuation / master_key, or None."""
    if _plainly_substantial(text):
        return None
    if not text.strip():
        return "empty"
    if _MEANINGFUL_SYMBOLS.search(text) and not _ALNUM.search(text):
        return None  # "∞", "\\{\\}": a whole answer made of symbols
    if not _has_content_char(text):
        return "punctuation"
    stripped = _strip_markup(text)
    if not _has_content_char(stripped):
        flags.append("markup_only")
        return "empty" if not stripped.strip() else "punctuation"
    if _is_opener_only(stripped):
        return "master_key"
    short = stripped.strip()
    if (
        len(short) <= 80
        and short[-1:] == ":"
        and len(_ALNUM_RUN.findall(short)) <= 6
        and _WORD.search(short) is not None
    ):
        return "master_key"  # "Analysis:", "Lời giải:", "Here is my answer:" - and nothing after
    return None


def screen_response(response: str) -> GuardResult:
    """Screen a raw policy response before any other stage sees it.

    Promises: never raises; deterministic; linear time; rejects only
    responses that carry no answer (empty, symbols, opener words, refusals,
    loops, mid-sentence cut-offs, pure injection) and never a short plain
    answer such as ``5``, ``\\boxed{5}``, ``x=2``, ``(1,2)``, ``B``, ``Paris``,
    or a chain of thought that ends in an answer. Injection attempts inside an
    otherwise normal response are flagged, not rejected.
    """
    if not isinstance(response, str):
        return _result("empty", ())
    flags: list[str] = []
    text = _prepare(response)
    visible, unclosed = _visible(text)
    if unclosed:
        flags.append("unclosed_think")

    found = _find_injection(text)
    if found is not None:
        flags.extend(_injection_flags(found))

    name = _degenerate(visible, flags)
    if name is not None:
        return _result(name, flags)

    stripped = visible.strip()
    tail = stripped[-TAIL_CHARS:]
    answered = _has_answer_signal(tail)

    if found is not None:
        rest = _visible(found.remainder)[0]
        rest_plain = _strip_markup(rest)
        if (
            (found.strong and _thin(rest))
            or not _has_content_char(rest_plain)
            or _is_opener_only(rest_plain, need_strong=False)
        ):
            return _result("injection", flags)

    if _repetition(text.rstrip()):
        return _result("repetition", flags)

    if _has_refusal(stripped[:400]):
        flags.append("refusal")
        if len(stripped) <= _REFUSAL_MAX_CHARS and not answered and not _last_line_has_math(tail):
            return _result("refusal", flags)

    if _boxed_state(tail) == "open":
        return _result("truncated", flags)
    if not answered and _truncated(stripped, tail):
        return _result("truncated", flags)
    return _result(None, flags)


#: Markup removed before looking at how a response ends (braces are kept: code ends in ``}``).
_END_MARKUP = re.compile(r"[*`~#]+")


def _last_line_has_math(tail: str) -> bool:
    lines = [line for line in tail.splitlines() if line.strip()]
    return bool(lines) and _MATHLIKE.search(lines[-1]) is not None


def _truncated(stripped: str, tail: str) -> bool:
    """Cut off mid-sentence (called only when no answer was given)."""
    plain = _END_MARKUP.sub(" ", _MATH_DELIMS.sub(" ", _HTML_TAG.sub(" ", tail))).rstrip()
    if len(_ALNUM_RUN.findall(plain[-400:])) >= 3 and _ends_mid_sentence(plain):
        return True
    if len(stripped) < 1500 or tail[-1:] in _TERMINAL:
        return False
    lines = [line for line in tail.splitlines() if line.strip()]
    last_line = lines[-1] if lines else ""
    # A long response whose last line is a long, number-free sentence without
    # an end: the generation ran out mid-thought. A line that concludes
    # ("... hence the claim holds") is a finished answer missing its period.
    words = _WORD.findall(last_line.casefold())
    return (
        len(words) > 8
        and not _MATHLIKE.search(last_line)
        and last_line.rstrip()[-1:].isalpha()
        and not _CONCLUDING.intersection(words)
    )


_CONCLUDING = frozenset(
    """therefore thus hence so consequently proved proven holds hold complete completes
    completed qed conclude concludes concluded follows true false answer result""".split()  # noqa: SIM905
)


def screen_answer(answer: str) -> GuardResult:
    """Screen an extracted final answer before it is compared or judged.

    Promises: never raises; deterministic; rejects an answer that is empty,
    only symbols, only opener/function words (``Solution``, ``the``), or that
    contains injection text aimed at a judge (forged verdicts, role markers,
    our prompt's delimiters, "the answer is correct", ...) - reason
    ``guard:injection_answer``. Plain answers (``5``, ``B``, ``True``,
    ``correct``, ``Paris``, ``x \\in (0, 1]``) pass.
    """
    if not isinstance(answer, str):
        return _result("empty", ())
    flags: list[str] = []
    text = _prepare(answer)
    found = _find_injection(text)
    if found is not None:
        flags.extend(_injection_flags(found))
        return _result("injection_answer", flags)
    name = _degenerate(text, flags)
    if name is not None:
        return _result(name, flags)
    stripped = _strip_markup(text).strip()
    words = _WORD.findall(stripped.casefold())
    if len(words) >= 2 and _is_opener_only(stripped, need_strong=False):
        return _result("master_key", flags)  # "of the", "the final" - function words only
    return _result(None, flags)


__all__ = ["GUARDS_VERSION", "GuardResult", "screen_answer", "screen_response"]
