"""Items with `tests` go through the same endpoints into the sandbox."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServiceProcess, start_service

ADD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
STDIN = {
    "kind": "stdin",
    "cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 7\n", "output": "12"}],
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {"VERIFIER_CODE_CPU_S": "1", "VERIFIER_CODE_WALL_S": "3"}, tmp_path_factory.mktemp("code")
    )
    yield service
    service.stop()


@pytest.fixture
def client(api: ServiceProcess) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c


def test_stdin_functional_and_assert_formats(client: httpx.Client) -> None:
    passed = client.post("/v1/verify", json={"response": ADD, "tests": STDIN}).json()
    assert passed["stage"] == "code" and passed["correct"] is True and passed["reason"] == "passed"
    assert passed["reward"] == 1.0

    wrong = "```python\na, b = map(int, input().split())\nprint(a * b if a == 5 else a + b)\n```"
    half = client.post("/v1/verify", json={"response": wrong, "tests": STDIN}).json()
    assert half["correct"] is False and half["reason"] == "wrong_answer" and half["reward"] == 0.5
    strict = client.post(
        "/v1/verify", json={"response": wrong, "tests": STDIN, "options": {"all_or_nothing": True}}
    ).json()
    assert strict["reward"] == 0.0

    functional = {
        "kind": "functional",
        "fn_name": "add",
        "cases": [{"input": [1, 2], "output": 3}, {"input": [[1], [2]], "output": [1, 2]}],
    }
    fn = client.post(
        "/v1/verify", json={"response": "def add(a, b):\n    return a + b", "tests": functional}
    ).json()
    assert fn["correct"] is True

    human_eval = {
        "kind": "assert",
        "code": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n",
        "entry_point": "square",
    }
    exit_early = "import sys\nsys.exit(0)\ndef square(x):\n    return x * x"
    cheat = client.post("/v1/verify", json={"response": exit_early, "tests": human_eval}).json()
    assert cheat["correct"] is False
    good = client.post(
        "/v1/verify", json={"response": "def square(x):\n    return x * x", "tests": human_eval}
    ).json()
    assert good["correct"] is True


def test_attacks_under_concurrent_load_keep_the_service_healthy(client: httpx.Client) -> None:
    spec = {"kind": "stdin", "cases": [{"input": "", "output": "ok"}]}
    attacks = {
        "fork_bomb": "import os\nwhile True:\n    os.fork()",
        "memory_bomb": "x = bytearray(1 << 34)",
        "infinite_loop": "while True:\n    pass",
        "output_flood": "while True:\n    print('x' * 10000)",
        "network": "import socket\nsocket.create_connection(('127.0.0.1', 6379), timeout=1)\nprint('ok')",
        "fake_pass": "print('ok')\nprint('PASSED')\nimport os\nos._exit(0)",  # prints 'ok' plus junk
    }
    items = [{"id": name, "response": code, "tests": spec} for name, code in attacks.items()]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        math = pool.submit(
            client.post, "/v1/verify", json={"response": "\\boxed{2}", "reference": "2"}
        )
        batch = client.post("/v1/verify/batch", json={"items": items}, timeout=120)
        assert math.result().json()["correct"] is True
    results = {r["id"]: r for r in batch.json()["results"]}
    assert all(r["correct"] is False for r in results.values()), results
    assert results["infinite_loop"]["reason"] == "timeout"
    assert results["output_flood"]["reason"] in ("output_limit", "timeout")
    assert results["network"]["reason"] == "runtime_error"
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz").json()
    assert ready["components"]["sandbox"]["status"] == "up"
    assert "python" in ready["components"]["sandbox"]["detail"]["languages"]


def test_sandbox_results_are_cached_but_not_timeouts(client: httpx.Client) -> None:
    first = client.post("/v1/verify", json={"response": ADD, "tests": STDIN}).json()
    again = client.post("/v1/verify", json={"response": ADD, "tests": STDIN}).json()
    assert again["cached"] is True and again["correct"] == first["correct"]
    loop = {"response": "while True:\n    pass", "tests": STDIN}
    timed_out = client.post("/v1/verify", json=loop).json()
    assert timed_out["reason"] == "timeout"
    # a timeout may come from load rather than the program: never cached (DESIGN.md)
    assert client.post("/v1/verify", json=loop).json()["cached"] is False


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"response": "x", "tests": {"kind": "telepathy"}}, "items[0].tests"),
        ({"response": "x", "tests": {"kind": "stdin"}}, "items[0].tests"),
        ({"response": "x", "tests": {"kind": "functional", "cases": []}}, "items[0].tests"),
        ({"response": "x", "task": "code"}, "items[0].tests"),
        ({"response": "x", "tests": STDIN, "language": "cobol"}, "items[0].language"),
    ],
)
def test_bad_test_specs_get_422(
    client: httpx.Client, item: dict[str, object], message: str
) -> None:
    response = client.post("/v1/verify", json=item)
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(message)
    job = client.post("/v1/jobs", json={"items": [item]})
    assert job.status_code == 422
