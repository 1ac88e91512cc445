"""The wire codec between sandbox and host: plain data only."""

from __future__ import annotations

import math

import pytest

from verifiers.code.guest.codec import CodecError, decode_value, encode_value, from_json, to_json

CAP = 1 << 20


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**80),
        2**200,
        1.5,
        "héllo\n\x00",
        [1, [2, (3, 4)]],
        (),
        {1: "a", (1, 2): [3], "k": None},
        {1, 2, 3},
        frozenset({"a"}),
        b"\x00\xff",
        complex(1, -2),
    ],
)
def test_round_trip(value: object) -> None:
    back = decode_value(encode_value(value, CAP))
    assert back == value
    assert type(back) is type(value)


def test_non_finite_floats() -> None:
    assert decode_value(encode_value(math.inf, CAP)) == math.inf
    assert math.isnan(decode_value(encode_value(math.nan, CAP)))


def test_subclasses_arrive_as_plain_builtins() -> None:
    class Liar(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    class Sneaky(list):  # type: ignore[type-arg]
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter([42])

    back = decode_value(encode_value([Liar(3), Sneaky([1, 2])], CAP))
    assert back == [3, [1, 2]]
    assert type(back[0]) is int
    assert back[0] != 4


def test_iterators_and_views_arrive_as_lists() -> None:
    values = [map(abs, [-1, 2]), (x for x in "ab"), range(3), {1: 2}.keys(), {1: 2}.items()]
    assert decode_value(encode_value(values, CAP)) == [[1, 2], ["a", "b"], [0, 1, 2], [1], [(1, 2)]]


def test_custom_objects_are_rejected() -> None:
    class AlwaysEqual:
        def __eq__(self, other: object) -> bool:
            return True

    with pytest.raises(CodecError):
        encode_value(AlwaysEqual(), CAP)
    with pytest.raises(CodecError):
        encode_value([lambda: 1], CAP)


def test_cycles_and_depth_are_rejected() -> None:
    cyc: list[object] = []
    cyc.append(cyc)
    with pytest.raises(CodecError):
        encode_value(cyc, CAP)


def test_size_cap() -> None:
    with pytest.raises(CodecError):
        encode_value("x" * 1000, 100)
    with pytest.raises(CodecError):
        encode_value(list(range(1000)), 100)


@pytest.mark.parametrize(
    "text", ["", "[", '{"zz": 1}', '{"t": 1}', '{"s": [[1]]}', '{"i": "xyz"}', "NaN", "[1] 2"]
)
def test_malformed_wire_text(text: str) -> None:
    with pytest.raises(CodecError):
        decode_value(text)


def test_json_helpers() -> None:
    assert to_json({"a": [1, 2.5, "é"], "b": None}) == '{"a":[1,2.5,"\\u00e9"],"b":null}'
    assert from_json(b' {"a": [true]} ') == {"a": [True]}
    with pytest.raises(ValueError):
        to_json({"x": math.nan})
