"""Output and return-value comparison (runs on the host, never in the sandbox)."""

from __future__ import annotations

import math

from verifiers.code.compare import stdout_matches, tokens_equal, values_equal


def test_whitespace_and_line_endings_are_normalised() -> None:
    assert stdout_matches("1 2\n3\n", "1  2\r\n3   \n\n")
    assert stdout_matches("", "\n\n")


def test_order_matters() -> None:
    assert not stdout_matches("1 2 3", "3 2 1")
    assert not stdout_matches("YES\nNO", "NO\nYES")


def test_token_count_matters() -> None:
    assert not stdout_matches("1 2", "1 2 2")
    assert not stdout_matches("1 2", "1")


def test_floats_within_tolerance() -> None:
    assert stdout_matches("0.3333333", "0.33333331", tol=1e-6)
    assert not stdout_matches("0.3333", "0.3334", tol=1e-6)
    assert stdout_matches("1e6", "1000000.5", tol=1e-6)  # relative for big values
    assert stdout_matches("2.50", "2.5")


def test_integers_compare_exactly() -> None:
    assert not tokens_equal("100000000000000000001", "100000000000000000000", 1e-6)
    assert tokens_equal("007", "7", 1e-6)
    assert not stdout_matches("3", "3.0000001", tol=1e-9)


def test_non_numbers_are_not_floats() -> None:
    assert not tokens_equal("nan", "NaN", 1e-6)
    assert not tokens_equal("1_000", "1000", 1e-6)
    assert not tokens_equal("inf", "infinity", 1e-6)


def test_case_sensitivity_option() -> None:
    assert not stdout_matches("YES", "yes")
    assert stdout_matches("YES", "yes", case_sensitive=False)


def test_values_lists_and_tuples_interchangeable() -> None:
    assert values_equal([1, [2, 3]], (1, (2, 3)))
    assert not values_equal([1, 2], [2, 1])


def test_values_floats_and_ints() -> None:
    assert values_equal(0.1 + 0.2, 0.3)
    assert values_equal(2, 2.0)
    assert not values_equal(2, 3)
    assert values_equal(math.nan, math.nan)
    assert not values_equal(1.0, 1.1)


def test_values_bool_is_not_int() -> None:
    assert not values_equal(True, 1)
    assert not values_equal(0, False)
    assert values_equal(True, True)
    assert not values_equal(None, 0)


def test_values_sets_match_in_any_order() -> None:
    assert values_equal([1, 2, 3], {3, 2, 1})
    assert values_equal({1, 2}, frozenset({2, 1}))
    assert not values_equal([1, 2, 2], {1, 2})


def test_values_dict_keys_as_json() -> None:
    assert values_equal({"1": [1]}, {1: (1,)})
    assert not values_equal({"a": 1}, {"a": 1, "b": 2})


def test_values_strings_strict() -> None:
    assert values_equal("abc", "abc")
    assert not values_equal("1", 1)
    assert not values_equal("abc", ["a", "b", "c"])
