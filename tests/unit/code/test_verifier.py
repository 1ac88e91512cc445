"""CodeVerifier end to end, through the real bubblewrap sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from verifiers.code import (
    CodeVerifier,
    SandboxLimits,
    TestSpecError,
    sandbox_available,
    supported_languages,
)
from verifiers.code import verifier as verifier_module
from verifiers.verdict import Reason, Stage

AVAILABLE, WHY = sandbox_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"no sandbox: {WHY}")
HAS_CPP = "cpp" in supported_languages()

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4, total_wall_seconds=20)


@pytest.fixture(scope="module")
def cv() -> CodeVerifier:
    return CodeVerifier(LIMITS)


def stdin_tests(*pairs: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"kind": "stdin", "cases": [{"input": i, "output": o} for i, o in pairs], **extra}


SUM = stdin_tests(("1 2\n", "3\n"), ("10 -4\n", "6\n"), ("0 0\n", "0\n"))


def test_stdin_correct(cv: CodeVerifier) -> None:
    v = cv.verify("```python\na, b = map(int, input().split())\nprint(a + b)\n```", SUM)
    assert v.correct is True and v.reward == 1.0 and v.reason == Reason.PASSED
    assert v.stage == Stage.CODE
    assert v.detail["passed"] == 3 and v.detail["total"] == 3
    assert v.detail["first_failure"] is None
    assert v.extracted_answer == "a, b = map(int, input().split())\nprint(a + b)"
    json.dumps(v.to_dict())


def test_stdin_partial_credit_and_first_failure(cv: CodeVerifier) -> None:
    v = cv.verify("a, b = map(int, input().split())\nprint(a + b if b >= 0 else a - b)", SUM)
    assert v.correct is False
    assert v.reward == pytest.approx(2 / 3)
    assert v.reason == Reason.WRONG_ANSWER
    ff = v.detail["first_failure"]
    assert ff["case"] == 1 and ff["expected"] == "6\n" and ff["got"] == "14\n"
    json.dumps(v.to_dict())


def test_all_or_nothing_stops_at_first_failure(cv: CodeVerifier) -> None:
    v = cv.verify("print(0)", SUM, all_or_nothing=True)
    assert v.correct is False and v.reward == 0.0
    assert v.detail["passed"] == 0
    assert sum(v.detail["reason_counts"].values()) < 3  # the rest never ran


def test_stdin_floats_and_runtime_error(cv: CodeVerifier) -> None:
    tests = stdin_tests(("", "0.3333333333\n"), float_tolerance=1e-6)
    assert cv.verify("print(1/3)", tests).correct is True
    assert cv.verify("print(0.34)", tests).reason == Reason.WRONG_ANSWER
    v = cv.verify("raise ValueError('boom')", tests)
    assert v.reason == Reason.RUNTIME_ERROR and v.correct is False
    assert "boom" in v.detail["first_failure"]["stderr"]


def test_python_syntax_error_is_compile_error(cv: CodeVerifier) -> None:
    v = cv.verify("```python\ndef f(:\n```", SUM)
    assert v.reason == Reason.COMPILE_ERROR and v.correct is False and v.reward == 0.0
    assert "SyntaxError" in v.detail["first_failure"]["stderr"]


def test_empty_response_is_not_run(cv: CodeVerifier) -> None:
    v = cv.verify("   ", SUM)
    assert v.correct is False and v.reason == Reason.COMPILE_ERROR


def test_unsupported_fence_language(cv: CodeVerifier) -> None:
    v = cv.verify("```java\nclass Main {}\n```", SUM)
    assert v.correct is False and v.reason == Reason.COMPILE_ERROR


def test_bad_specs_raise(cv: CodeVerifier) -> None:
    with pytest.raises(TestSpecError):
        cv.verify("print(1)", {"kind": "stdin", "cases": []})
    with pytest.raises(TestSpecError):
        cv.verify("print(1)", SUM, language="brainfuck")


FUNCTIONAL = {
    "kind": "functional",
    "fn_name": "twoSum",
    "cases": [
        {"input": [[2, 7, 11, 15], 9], "output": [0, 1]},
        {"input": [[3, 2, 4], 6], "output": [1, 2]},
    ],
}


def test_functional_top_level_function(cv: CodeVerifier) -> None:
    code = (
        "def twoSum(nums, target):\n"
        "    seen = {}\n"
        "    for i, x in enumerate(nums):\n"
        "        if target - x in seen:\n"
        "            return (seen[target - x], i)\n"  # tuple vs list: still equal
        "        seen[x] = i\n"
    )
    v = cv.verify(code, FUNCTIONAL)
    assert v.correct is True, v.detail


def test_functional_solution_class_and_wrong_answer(cv: CodeVerifier) -> None:
    code = (
        "```python\nfrom typing import List\n\nclass Solution:\n"
        "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
        "        return [0, 1]\n```"
    )
    v = cv.verify(code, FUNCTIONAL)
    assert v.correct is False and v.reward == 0.5 and v.reason == Reason.WRONG_ANSWER
    assert v.detail["first_failure"]["case"] == 1
    assert v.detail["first_failure"]["got"] == "[0, 1]"


def test_functional_missing_function_and_exception(cv: CodeVerifier) -> None:
    v = cv.verify("def other(): pass", FUNCTIONAL)
    assert v.reason == Reason.RUNTIME_ERROR and v.correct is False
    v = cv.verify("def twoSum(n, t):\n    return n[100]", FUNCTIONAL)
    assert v.reason == Reason.RUNTIME_ERROR
    assert "IndexError" in v.detail["first_failure"]["stderr"]


def test_functional_main_guard_does_not_block(cv: CodeVerifier) -> None:
    code = "def twoSum(n, t):\n    return [0, 1]\nif __name__ == '__main__':\n    input()\n"
    tests = {**FUNCTIONAL, "cases": FUNCTIONAL["cases"][:1]}
    assert cv.verify(code, tests).correct is True


def test_functional_float_tolerance(cv: CodeVerifier) -> None:
    tests = {"kind": "functional", "fn_name": "f", "cases": [{"input": [], "output": 0.3}]}
    assert cv.verify("def f(): return 0.1 + 0.2", tests).correct is True
    assert cv.verify("def f(): return 0.31", tests).correct is False


HUMANEVAL_0 = {
    "kind": "assert",
    "entry_point": "has_close_elements",
    "code": (
        "METADATA = {'author': 'jt'}\n\n\n"
        "def check(candidate):\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
        "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n"
        "    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n"
        "    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 1.0) == True\n"
    ),
}

HUMANEVAL_0_SOLUTION = """```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
```"""


def test_humaneval_correct_and_wrong(cv: CodeVerifier) -> None:
    v = cv.verify(HUMANEVAL_0_SOLUTION, HUMANEVAL_0)
    assert v.correct is True and v.reward == 1.0, v.detail
    v = cv.verify(HUMANEVAL_0_SOLUTION.replace("< threshold", "> threshold"), HUMANEVAL_0)
    assert v.correct is False and v.reason == Reason.WRONG_ANSWER


def test_humaneval_helper_from_prompt_and_mutation() -> None:
    cv = CodeVerifier(LIMITS)
    tests = {
        "kind": "assert",
        "entry_point": "find_zero",
        "code": (
            "def check(candidate):\n"
            "    coeffs = [-6, 11, -6, 1]\n"
            "    x = candidate(coeffs)\n"
            "    assert abs(poly(coeffs, x)) < 1e-4\n"
        ),
    }
    code = (
        "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\n"
        "def find_zero(xs):\n"
        "    lo, hi = -100.0, 100.0\n"
        "    while hi - lo > 1e-10:\n"
        "        mid = (lo + hi) / 2\n"
        "        if poly(xs, mid) * poly(xs, lo) > 0:\n"
        "            lo = mid\n"
        "        else:\n"
        "            hi = mid\n"
        "    return lo\n"
    )
    assert cv.verify(code, tests).correct is True
    mutate = {
        "kind": "assert",
        "code": "xs = [3, 1, 2]\nsort_in_place(xs)\nassert xs == [1, 2, 3]\n",
    }
    assert cv.verify("def sort_in_place(a):\n    a.sort()\n", mutate).correct is True


def test_mbpp_partial_credit(cv: CodeVerifier) -> None:
    tests = {
        "kind": "assert",
        "code": (
            "import math\n"
            "assert square_area(2) == 4\n"
            "assert square_area(3) == 9\n"
            "assert math.isclose(square_area(0.5), 0.25)\n"
        ),
    }
    assert cv.verify("def square_area(a):\n    return a * a\n", tests).correct is True
    v = cv.verify("def square_area(a):\n    return 4 if a == 2 else 0\n", tests)
    assert v.correct is False and v.reward == pytest.approx(1 / 3)
    assert v.detail["total"] == 3 and v.detail["first_failure"]["case"] == 1


def test_expected_exceptions_propagate(cv: CodeVerifier) -> None:
    tests = {
        "kind": "assert",
        "code": "try:\n    f(-1)\n    assert False\nexcept ValueError:\n    pass\n",
    }
    assert cv.verify("def f(x):\n    raise ValueError('neg')\n", tests).correct is True
    assert cv.verify("def f(x):\n    return 1\n", tests).correct is False


@pytest.mark.skipif(not HAS_CPP, reason="g++ not installed")
def test_cpp(cv: CodeVerifier) -> None:
    good = (
        "```cpp\n#include <bits/stdc++.h>\nint main(){long long a,b;std::cin>>a>>b;"
        'std::cout<<a+b<<"\\n";}\n```'
    )
    v = cv.verify(good, SUM)
    assert v.correct is True and v.detail["language"] == "cpp", v.detail
    v = cv.verify(good.replace("a+b", "a-b"), SUM)
    assert v.correct is False and v.reason == Reason.WRONG_ANSWER
    v = cv.verify("```cpp\nint main( { return 0; }\n```", SUM)
    assert v.reason == Reason.COMPILE_ERROR and "error" in v.detail["first_failure"]["stderr"]
    with pytest.raises(TestSpecError):
        cv.verify(good, FUNCTIONAL, language="cpp")


def test_missing_sandbox_abstains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "sandbox_available", lambda: (False, "bwrap missing"))
    v = CodeVerifier(LIMITS).verify("print(1)", SUM)
    assert v.correct is None and v.reason == Reason.SANDBOX_ERROR
    assert "bwrap missing" in v.detail["error"]
    assert not v.cacheable


def test_unconfined_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier_module, "sandbox_available", lambda: (False, "bwrap missing"))
    cv = CodeVerifier(LIMITS, allow_unconfined=True)
    v = cv.verify("a, b = map(int, input().split())\nprint(a + b)", SUM)
    assert v.correct is True and v.detail["sandbox"] == "unconfined"


def test_humaneval_style_helper_round_trip(cv: CodeVerifier) -> None:
    # HumanEval/38-like: check() imports inside, shadows `str`, and calls the
    # prompt's encode_cyclic (from the solution) 100 times.
    tests = {
        "kind": "assert",
        "entry_point": "decode_cyclic",
        "code": (
            "def check(candidate):\n"
            "    from random import randint, choice\n"
            "    import string\n"
            "    letters = string.ascii_lowercase\n"
            "    for _ in range(100):\n"
            "        str = ''.join(choice(letters) for i in range(randint(10, 20)))\n"
            "        encoded_str = encode_cyclic(str)\n"
            "        assert candidate(encoded_str) == str\n"
        ),
    }
    code = (
        "def encode_cyclic(s: str):\n"
        "    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]\n"
        "    groups = [(g[1:] + g[0]) if len(g) == 3 else g for g in groups]\n"
        '    return "".join(groups)\n\n'
        "def decode_cyclic(s: str):\n"
        "    return encode_cyclic(encode_cyclic(s))\n"
    )
    assert cv.verify(code, tests).correct is True
    wrong = code.replace("return encode_cyclic(encode_cyclic(s))", "return encode_cyclic(s)")
    assert cv.verify(wrong, tests).correct is False


def test_infrastructure_failure_abstains(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(verifier_module, "run_guest", broken)
    v = CodeVerifier(LIMITS).verify("print(1)", SUM)
    assert v.correct is None and v.reason == Reason.SANDBOX_ERROR
    assert "no space left" in v.detail["error"]
