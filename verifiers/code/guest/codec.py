"""Tagged JSON codec for values that cross the sandbox boundary.

Plain JSON loses distinctions that tests care about (tuple vs list, set,
non-string dict keys, NaN, big integers), so every JSON object in the wire
format is a one-key tag:

* ``{"t": [...]}`` tuple, ``{"s": [...]}`` set, ``{"fs": [...]}`` frozenset,
  ``{"d": [[k, v], ...]}`` dict, ``{"b": "<hex>"}`` bytes,
  ``{"c": [re, im]}`` complex, ``{"f": "nan" | "inf" | "-inf"}`` float,
  ``{"i": "<hex>"}`` integer too large for a JSON number.

Iterators (generators, ``map``), ranges and dict views are sent as the list
they would produce. Encoding reads values through the *base* type's methods, so a subclass that
overrides ``__iter__`` or ``__eq__`` cannot change what is sent, and the
receiver only ever rebuilds plain built-in objects: no user-defined type, and
therefore no user-defined ``__eq__``, survives the trip.

This module is inlined into the sandbox guest scripts (minus its
``from __future__`` line, which they carry themselves), so it may import only
the standard library, and nothing slow: not even `typing` at run time. It talks
JSON through the C accelerator ``_json`` directly: importing `json` pulls in
`re` and costs several milliseconds on every sandbox start.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing costs ~25 ms to import on the sandbox start-up path
if TYPE_CHECKING:
    from typing import Any

try:
    import _json

    class _ScanContext:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        memo: dict[str, Any] = {}  # noqa: RUF012 - attribute the C scanner reads

        @staticmethod
        def parse_constant(name: str) -> Any:
            raise ValueError(f"non-standard JSON constant {name}")

    def _no_default(obj: Any) -> Any:
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    _scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
    _encode = _json.make_encoder(
        None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, False
    )

    def to_json(obj: Any) -> str:
        """Compact, ASCII-only JSON text for plain data (no NaN/Infinity)."""
        return "".join(_encode(obj, 0))

    def from_json(text: str | bytes) -> Any:
        """Parse one JSON document; raises ValueError when malformed."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        text = text.strip(" \t\r\n")
        try:
            obj, end = _scan(text, 0)
        except StopIteration:
            raise ValueError("malformed JSON") from None
        if end != len(text):
            raise ValueError("extra data after JSON document")
        return obj

except ImportError:  # pragma: no cover - non-CPython
    import json as _json_module

    def to_json(obj: Any) -> str:
        """Compact, ASCII-only JSON text for plain data (no NaN/Infinity)."""
        return _json_module.dumps(obj, separators=(",", ":"), allow_nan=False)

    def from_json(text: str | bytes) -> Any:
        """Parse one JSON document; raises ValueError when malformed."""
        return _json_module.loads(text)


MAX_DEPTH = 200
_VIEWS = frozenset({"dict_keys", "dict_values", "dict_items"})
_SMALL_INT = 1 << 53


class CodecError(ValueError):
    """A value cannot be encoded, or a wire text is not valid."""


def encode_value(value: Any, max_bytes: int) -> str:
    """Encode `value` as wire text of at most `max_bytes` bytes.

    Raises `CodecError` for unsupported types, cycles, nesting deeper than
    `MAX_DEPTH` and results larger than `max_bytes`.
    """
    budget = [max_bytes]
    text = to_json(_enc(value, 0, budget))
    if len(text) > max_bytes:
        raise CodecError(f"encoded value exceeds {max_bytes} bytes")
    return text


def _charge(budget: list[int], n: int) -> None:
    budget[0] -= n
    if budget[0] < 0:
        raise CodecError("encoded value too large")


def _enc(v: Any, depth: int, budget: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError("value nested too deeply (or cyclic)")
    _charge(budget, 2)
    if v is None or v is True or v is False:
        return v
    if isinstance(v, int):
        n = int.__int__(v)
        if -_SMALL_INT < n < _SMALL_INT:
            return n
        digits = format(n, "x")
        _charge(budget, len(digits))
        return {"i": digits}
    if isinstance(v, float):
        x = float.__float__(v)
        if math.isfinite(x):
            return x
        return {"f": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
    if isinstance(v, str):
        s = str.__str__(v)
        _charge(budget, len(s))
        return s
    d = depth + 1
    if isinstance(v, list):
        return [_enc(x, d, budget) for x in list.__iter__(v)]
    if isinstance(v, tuple):
        return {"t": [_enc(x, d, budget) for x in tuple.__iter__(v)]}
    if isinstance(v, dict):
        return {"d": [[_enc(k, d, budget), _enc(x, d, budget)] for k, x in dict.items(v)]}
    if isinstance(v, frozenset):
        return {"fs": [_enc(x, d, budget) for x in frozenset.__iter__(v)]}
    if isinstance(v, set):
        return {"s": [_enc(x, d, budget) for x in set.__iter__(v)]}
    if isinstance(v, (bytes, bytearray)):
        raw = bytes(v) if isinstance(v, bytearray) else bytes.__bytes__(v)
        _charge(budget, 2 * len(raw))
        return {"b": raw.hex()}
    if isinstance(v, complex):
        c = complex.__complex__(v)
        return {"c": [_enc(c.real, d, budget), _enc(c.imag, d, budget)]}
    if isinstance(v, range) or type(v).__name__ in _VIEWS or hasattr(type(v), "__next__"):
        # map/filter/generator results and dict views: what `list(result)` would see
        return [_enc(x, d, budget) for x in v]
    raise CodecError(f"cannot serialise a value of type {type(v).__name__}")


def decode_value(text: str | bytes) -> Any:
    """Rebuild plain built-in objects from wire text.

    Raises `CodecError` on malformed or too deeply nested input.
    """
    try:
        raw = from_json(text)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"malformed wire value: {exc}") from None
    return _dec(raw, 0)


def _hashable(x: Any) -> Any:
    if isinstance(x, (list, dict, set)):
        raise CodecError("unhashable value used as a key or set member")
    return x


def _dec(v: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError("wire value nested too deeply")
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    d = depth + 1
    if isinstance(v, list):
        return [_dec(x, d) for x in v]
    if isinstance(v, dict) and len(v) == 1:
        ((tag, body),) = v.items()
        try:
            if tag == "t":
                return tuple(_dec(x, d) for x in body)
            if tag == "s":
                return {_hashable(_dec(x, d)) for x in body}
            if tag == "fs":
                return frozenset(_hashable(_dec(x, d)) for x in body)
            if tag == "d":
                return {_hashable(_dec(k, d)): _dec(x, d) for k, x in body}
            if tag == "i":
                return int(body, 16)
            if tag == "f":
                return float(body)
            if tag == "b":
                return bytes.fromhex(body)
            if tag == "c":
                return complex(_dec(body[0], d), _dec(body[1], d))
        except CodecError:
            raise
        except (TypeError, ValueError, IndexError) as exc:
            raise CodecError(f"malformed {tag!r} value: {exc}") from None
    raise CodecError(f"malformed wire value of type {type(v).__name__}")
