"""The math workers' start-up warm-up (verifiers/math/warm_up.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from verifiers.math.compare import DEFAULT_TOLERANCE, EQUAL, compare_answers
from verifiers.math.parse import Text, parse_answer
from verifiers.math.warm_up import WARM_UP_ANSWERS, WARM_UP_PAIRS
from verifiers.pool import WorkerPool


@pytest.mark.parametrize("answer", WARM_UP_ANSWERS)
def test_every_warm_up_answer_reaches_the_parser(answer: str) -> None:
    # An answer that fell back to text would warm nothing.
    assert not isinstance(parse_answer(answer), Text)


@pytest.mark.parametrize(("answer", "reference"), WARM_UP_PAIRS)
def test_warm_up_pairs_are_equal(answer: str, reference: str) -> None:
    # Equal pairs go through the whole comparison (probing, simplification).
    assert compare_answers(answer, reference, DEFAULT_TOLERANCE).outcome == EQUAL


_DFA_STATES = """
import json
from latex2sympy2_extended.antlr_parser import PSParser
def states():
    return sum(len(dfa.states) for dfa in PSParser.decisionsToDFA)
before = states()
from verifiers.math.warm_up import warm_up
warm_up()
print(json.dumps([before, states()]))
"""


def test_warm_up_fills_the_latex_parsers_prediction_tables() -> None:
    # In a fresh interpreter: the tables start empty and the warm-up builds them,
    # which is the cost the first real answers of each shape would otherwise pay.
    out = subprocess.run(
        [sys.executable, "-c", _DFA_STATES], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    before, after = json.loads(out)
    assert before == 0
    assert after >= 200


def test_a_worker_preloading_the_warm_up_starts_and_serves() -> None:
    with WorkerPool(1, task_timeout=30, preload=["verifiers.math.warm_up"]) as pool:
        outcome = pool.run_sync(parse_answer, "\\frac{1}{2}")
    assert outcome.ok, outcome.error
