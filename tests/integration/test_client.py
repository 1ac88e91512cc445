"""rlvr_client against a real service: sync, async, batching, retries, timeouts, adapters."""

from __future__ import annotations

import asyncio
import http.server
import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rlvr_client import (
    AsyncVerifierClient,
    LabelError,
    TRLRewardFunction,
    VerifierClient,
    VerifierHTTPError,
    VerifierUnavailable,
    compute_score,
    compute_score_async,
    compute_score_batch,
    compute_score_batch_async,
    make_item,
    parse_label,
    trl_reward_func,
)
from rlvr_client.integrations import completion_text
from tests.conftest import ROOT, ServiceProcess, free_port, start_service, wait_until

KEY = "client-test-key"
STDIN_TESTS = {"kind": "stdin", "cases": [{"input": "1 2\n", "output": "3\n"}]}
ADD_PROGRAM = "```python\nprint(sum(map(int, input().split())))\n```"
ABSTAIN = ("The answer is \\boxed{blue}.", "The sky looks blue at noon")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {"VERIFIER_WORKERS": "1", "VERIFIER_API_KEYS": KEY, "VERIFIER_MAX_BATCH_ITEMS": "8"},
        tmp_path_factory.mktemp("client"),
    )
    yield service
    service.stop()


@pytest.fixture
def client(api: ServiceProcess) -> Iterator[VerifierClient]:
    with VerifierClient(api.url, api_key=KEY, retries=1, backoff_s=0.05) as c:
        yield c


def math_items(n: int) -> list[dict[str, Any]]:
    """Item k answers k; the reference is k for even k and k+1 for odd k."""
    return [
        make_item(f"so \\boxed{{{k}}}", str(k if k % 2 == 0 else k + 1), id=f"i{k}")
        for k in range(n)
    ]


# ---------------------------------------------------------------- sync client
def test_verify_correct_incorrect_abstain(client: VerifierClient) -> None:
    result = client.verify("... so the answer is $\\boxed{\\frac{1}{3}}$.", "12/36", id="a")
    assert result.id == "a" and result.correct is True and result.reward == 1.0
    assert result.stage == "math" and result.reason == "equal" and not result.abstained
    assert result.extracted_answer == "\\frac{1}{3}" and result.latency_ms >= 0
    wrong = client.verify("The answer is 4.", "5")
    assert wrong.correct is False and wrong.reward == 0.0 and wrong.reason == "not_equal"
    unsure = client.verify(*ABSTAIN)
    assert unsure.abstained and unsure.reward == 0.0 and unsure.reason == "unparseable"
    assert client.verify_item(make_item(ADD_PROGRAM, tests=STDIN_TESTS)).reason == "passed"
    assert client.retries_done == 0


def test_client_errors_are_not_retried(api: ServiceProcess) -> None:
    with VerifierClient(api.url, retries=3, backoff_s=0.05) as anonymous:
        with pytest.raises(VerifierHTTPError) as caught:
            anonymous.verify("\\boxed{1}", "1")
        assert caught.value.status == 401 and caught.value.error == "unauthorized"
        assert anonymous.retries_done == 0
        assert anonymous.health()["status"] == "ok"  # health stays open
    with VerifierClient(api.url, api_key=KEY, retries=3, backoff_s=0.05) as keyed:
        with pytest.raises(VerifierHTTPError) as caught:
            keyed.verify_item({"reference": "1"})
        assert caught.value.status == 422 and "response" in caught.value.message
        assert keyed.retries_done == 0


def test_api_key_from_the_environment(api: ServiceProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLVR_VERIFIER_URL", api.url)
    monkeypatch.setenv("RLVR_VERIFIER_API_KEY", KEY)
    with VerifierClient() as c:
        assert c.base_url == api.url
        assert c.verify("\\boxed{2}", "2").correct is True


def test_batch_in_order_across_chunks(api: ServiceProcess) -> None:
    items = math_items(19)
    with VerifierClient(api.url, api_key=KEY, batch_size=5) as c:
        results = c.verify_batch(items)
    assert [r.id for r in results] == [f"i{k}" for k in range(19)]
    assert [r.correct for r in results] == [k % 2 == 0 for k in range(19)]


def test_oversized_chunks_are_split(api: ServiceProcess) -> None:
    # The server takes at most 8 items per batch: a 413 batch_too_large is split, not fatal.
    items = math_items(21)
    with VerifierClient(api.url, api_key=KEY, batch_size=100, retries=0) as c:
        results = c.verify_batch(items)
    assert [r.id for r in results] == [f"i{k}" for k in range(21)]
    assert [r.correct for r in results] == [k % 2 == 0 for k in range(21)]


def test_item_too_large_is_not_split(api: ServiceProcess) -> None:
    huge = make_item("x" * 1_000_001, "1")
    with (
        VerifierClient(api.url, api_key=KEY, retries=0) as c,
        pytest.raises(VerifierHTTPError) as e,
    ):
        c.verify_batch([huge, huge])
    assert e.value.status == 413 and e.value.error == "item_too_large"


# ---------------------------------------------------------------- async client
async def test_async_verify_and_concurrent_batches(api: ServiceProcess) -> None:
    async with AsyncVerifierClient(api.url, api_key=KEY, batch_size=3, max_concurrency=2) as c:
        one = await c.verify("so \\boxed{7}", "7")
        assert one.correct is True
        items = math_items(17)
        results, health = await asyncio.gather(c.verify_batch(items), c.health())
        assert health["status"] == "ok"
        assert [r.id for r in results] == [f"i{k}" for k in range(17)]
        assert [r.correct for r in results] == [k % 2 == 0 for k in range(17)]
        async with AsyncVerifierClient(api.url, api_key=KEY, batch_size=50) as big:
            split = await big.verify_batch(items)  # 413 from the server: split and resent
        assert [r.id for r in split] == [r.id for r in results]
        assert c.retries_done == 0


async def test_async_http_errors(api: ServiceProcess) -> None:
    async with AsyncVerifierClient(api.url, retries=2, backoff_s=0.05) as c:
        with pytest.raises(VerifierHTTPError) as caught:
            await c.verify("\\boxed{1}", "1")
    assert caught.value.status == 401 and c.retries_done == 0


# ---------------------------------------------------------------- retries and timeouts
def _serve_on(port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    """A real service on a chosen port (the fixture's helper picks its own port)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    env["VERIFIER_WORKERS"] = "1"
    log = (log_dir / f"late-{port}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def test_retries_until_a_late_server_answers(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: connection refused
    started: list[subprocess.Popen[bytes]] = []
    timer = threading.Timer(0.5, lambda: started.append(_serve_on(port, tmp_path)))
    timer.start()
    try:
        with VerifierClient(
            f"http://127.0.0.1:{port}", retries=40, backoff_s=0.1, max_backoff_s=0.4
        ) as c:
            began = time.monotonic()
            result = c.verify("so \\boxed{3}", "3")
            assert result.correct is True
            assert c.retries_done >= 1  # the first attempts met a closed port
            assert time.monotonic() - began < 30
    finally:
        timer.cancel()
        for process in started:
            process.terminate()
            process.wait(timeout=15)


def test_closed_port_gives_up_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with VerifierClient(url, retries=2, backoff_s=0.01) as c, pytest.raises(VerifierUnavailable):
        c.verify("\\boxed{1}", "1")
    assert c.retries_done == 2
    with VerifierClient(url) as c, pytest.raises(VerifierUnavailable):
        c.ready()


async def test_async_closed_port_gives_up() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    c = AsyncVerifierClient(url, retries=1, backoff_s=0.01)
    with pytest.raises(VerifierUnavailable, match="2 attempts"):
        await c.verify("\\boxed{1}", "1")
    await c.aclose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_read_timeout_is_bounded(silent_port: int) -> None:
    with VerifierClient(
        f"http://127.0.0.1:{silent_port}", timeout=0.3, retries=1, backoff_s=0.01
    ) as c:
        began = time.monotonic()
        with pytest.raises(VerifierUnavailable, match="ReadTimeout"):
            c.verify("\\boxed{1}", "1")
        assert time.monotonic() - began < 3
        assert c.retries_done == 1


async def test_async_read_timeout_is_bounded(silent_port: int) -> None:
    async with AsyncVerifierClient(f"http://127.0.0.1:{silent_port}", timeout=0.3, retries=0) as c:
        began = time.monotonic()
        with pytest.raises(VerifierUnavailable, match="ReadTimeout"):
            await c.verify("\\boxed{1}", "1")
        assert time.monotonic() - began < 2


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 503 (Retry-After: 0) to the first two POSTs, then forwards to the real service."""

    calls = 0
    upstream = ""

    def do_POST(self) -> None:
        type(self).calls += 1
        body = self.rfile.read(int(self.headers["content-length"]))
        if type(self).calls <= 2:
            self.send_response(503)
            self.send_header("retry-after", "0")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        reply = httpx.post(
            self.upstream + self.path,
            content=body,
            headers={"content-type": "application/json", "authorization": f"Bearer {KEY}"},
        )
        self.send_response(reply.status_code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    def log_message(self, *args: Any) -> None:
        pass


def test_503_is_retried(api: ServiceProcess) -> None:
    _Flaky.calls, _Flaky.upstream = 0, api.url
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with VerifierClient(url, retries=3, backoff_s=0.01) as c:
            assert c.verify_batch(math_items(2))[1].correct is False
            assert c.retries_done == 2 and _Flaky.calls == 3
        _Flaky.calls = 0
        with (
            VerifierClient(url, retries=1, backoff_s=0.01) as c,
            pytest.raises(VerifierHTTPError) as caught,
        ):
            c.verify("\\boxed{1}", "1")
        assert caught.value.status == 503
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- labels
def test_parse_label() -> None:
    assert parse_label("12/36") == {"reference": "12/36"}
    assert parse_label(None) == {"reference": ""}
    assert parse_label(42) == {"reference": "42"}
    assert parse_label("{1, 2}") == {"reference": "{1, 2}"}  # a set answer, not JSON
    assert parse_label('{"x": 1}') == {"reference": '{"x": 1}'}  # no known key: plain text
    assert parse_label({"answer": 3, "question": "q"}) == {"reference": "3", "question": "q"}
    spec = {"task": "code", "tests": STDIN_TESTS, "language": "python"}
    assert parse_label(json.dumps(spec)) == spec
    for bad in (True, [1, 2], {"answer": "1", "test": {}}, {"x": 1}, {"answer": "1", "label": "2"}):
        with pytest.raises(LabelError):
            parse_label(bad)


# ---------------------------------------------------------------- TRL
def test_completion_text_formats() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "x"}]) == "x"
    parts = [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        }
    ]
    assert completion_text(parts) == "ab"
    turns = [
        {"role": "assistant", "content": "call tool"},
        {"role": "tool", "content": "42"},
        {"role": "assistant", "content": "final \\boxed{42}"},
    ]
    assert completion_text(turns) == "final \\boxed{42}"


def test_trl_sync_reward_function(api: ServiceProcess) -> None:
    reward = TRLRewardFunction(api.url, api_key=KEY, name="verifier")
    assert reward.__name__ == "verifier"  # TRL logs rewards under reward_func.__name__
    assert not inspect.iscoroutinefunction(reward)
    extra: dict[str, list[Any]] = {}
    metrics: dict[str, float] = {}
    prompts = [[{"role": "user", "content": "1/3 of 36?"}]] * 4
    completions = [
        [{"role": "assistant", "content": "So $\\boxed{12}$."}],
        [{"role": "assistant", "content": "So $\\boxed{13}$."}],
        [{"role": "assistant", "content": ABSTAIN[0]}],
        [{"role": "assistant", "content": ADD_PROGRAM}],
    ]
    # Exactly how GRPOTrainer._calculate_rewards calls a custom reward function.
    rewards = reward(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2], [3], [4], [5]],
        answer=["12", "12", ABSTAIN[1], json.dumps({"task": "code", "tests": STDIN_TESTS})],
        source=["gsm8k"] * 4,
        trainer_state=object(),
        log_extra=lambda column, values: extra.__setitem__(column, list(values)),
        log_metric=lambda name, value: metrics.__setitem__(name, value),
    )
    assert rewards == [1.0, 0.0, None, 1.0]
    assert extra["verifier_verdict"] == ["correct", "incorrect", "abstain", "correct"]
    assert extra["verifier_reason"] == ["equal", "not_equal", "unparseable", "passed"]
    assert metrics["verifier/abstain_rate"] == 0.25
    reward.close()


def test_trl_standard_format_columns_and_abstain_reward(api: ServiceProcess) -> None:
    reward = trl_reward_func(
        api.url, api_key=KEY, reference_column="solution", abstain_reward=0.0, name="acc"
    )
    rewards = reward(
        prompts=["Add the numbers.", "Capital?", "2+2?"],
        completions=[ADD_PROGRAM, ABSTAIN[0], "it is \\boxed{4}"],
        completion_ids=[[1], [2], [3]],
        solution=["", ABSTAIN[1], "4"],
        tests=[STDIN_TESTS, None, None],
        trainer_state=None,
    )
    assert rewards == [1.0, 0.0, 1.0]
    with pytest.raises(KeyError, match="reference"):
        reward(prompts=["p"], completions=["c"], completion_ids=[[1]], other=["x"])


def test_trl_unreachable_service() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    strict = TRLRewardFunction(url, retries=0)
    with pytest.raises(VerifierUnavailable):
        strict(prompts=["p"], completions=["\\boxed{1}"], completion_ids=[[1]], answer=["1"])
    lenient = TRLRewardFunction(url, retries=0, on_error="none")
    assert lenient(prompts=["p"], completions=["x"], completion_ids=[[1]], answer=["1"]) == [None]


def test_trl_async_reward_function_on_a_trainer_loop(api: ServiceProcess) -> None:
    reward = trl_reward_func(api.url, api_key=KEY, asynchronous=True, name="verifier_async")
    # TRL (old and new) decides the async path with these checks.
    assert inspect.iscoroutinefunction(reward) and asyncio.iscoroutinefunction(reward)
    assert reward.__name__ == "verifier_async"
    # GRPOTrainer runs async reward functions on a loop in a daemon thread.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        for _ in range(2):  # the client is reused across steps on the same loop
            future = asyncio.run_coroutine_threadsafe(
                reward(
                    prompts=["q"] * 3,
                    completions=["\\boxed{1}", "\\boxed{2}", ABSTAIN[0]],
                    completion_ids=[[1], [2], [3]],
                    answer=[1, "1", ABSTAIN[1]],
                    trainer_state=None,
                ),
                loop,
            )
            assert future.result(timeout=30) == [1.0, 0.0, None]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


# ---------------------------------------------------------------- verl
def test_verl_compute_score_as_the_naive_manager_calls_it(api: ServiceProcess) -> None:
    kwargs = {"url": api.url, "api_key": KEY}  # custom_reward_function.reward_kwargs
    score = compute_score(
        data_source="openai/gsm8k",
        solution_str="48 + 24 = 72, so $\\boxed{72}$.",
        ground_truth="72",
        extra_info={"split": "train", "index": 3, "num_turns": None, "rollout_reward_scores": {}},
        reward_router_address=None,
        **kwargs,
    )
    assert score == {
        "score": 1.0,
        "acc": 1.0,
        "abstained": 0.0,
        "cached": score["cached"],
        "reason": "equal",
        "stage": "math",
    }
    unsure = compute_score(
        data_source="x", solution_str=ABSTAIN[0], ground_truth=ABSTAIN[1], **kwargs
    )
    assert unsure["score"] == 0.0 and unsure["abstained"] == 1.0 and unsure["acc"] == 0.0
    assert all(value is not None for value in unsure.values())
    code = compute_score(
        data_source="codecontests",
        solution_str=ADD_PROGRAM,
        ground_truth=json.dumps({"tests": STDIN_TESTS}),
        **kwargs,
    )
    assert code["score"] == 1.0 and code["stage"] == "code"
    by_info = compute_score(
        data_source="codecontests",
        solution_str=ADD_PROGRAM,
        ground_truth="",
        extra_info={"verifier": {"tests": STDIN_TESTS}},
        **kwargs,
    )
    assert by_info["reason"] == "passed"


def test_verl_batch_manager_signature(api: ServiceProcess) -> None:
    rows = compute_score_batch(
        data_sources=["a", "b", "c"],
        solution_strs=["\\boxed{1}", "\\boxed{2}", ABSTAIN[0]],
        ground_truths=["1", "1", ABSTAIN[1]],
        extra_infos=[{}, {}, {}],
        url=api.url,
        api_key=KEY,
    )
    assert [r["score"] for r in rows] == [1.0, 0.0, 0.0]
    assert [r["abstained"] for r in rows] == [0.0, 0.0, 1.0]
    assert len({tuple(sorted(r)) for r in rows}) == 1  # same keys on every sample


async def test_verl_async_variants(api: ServiceProcess) -> None:
    assert inspect.iscoroutinefunction(compute_score_async)
    one = await compute_score_async(
        data_source="x", solution_str="\\boxed{5}", ground_truth=5, url=api.url, api_key=KEY
    )
    assert one["score"] == 1.0
    rows = await compute_score_batch_async(
        data_sources=None,
        solution_strs=["\\boxed{5}", "\\boxed{6}"],
        ground_truths=["5", "5"],
        url=api.url,
        api_key=KEY,
    )
    assert [r["acc"] for r in rows] == [1.0, 0.0]


def test_verl_error_policy() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(VerifierUnavailable):
        compute_score(solution_str="x", ground_truth="1", url=url, retries=0)
    zero = compute_score(solution_str="x", ground_truth="1", url=url, retries=0, on_error="zero")
    assert zero["score"] == 0.0 and zero["reason"] == "client_error:VerifierUnavailable"
    rows = compute_score_batch(
        solution_strs=["x", "y"], ground_truths=["1", "2"], url=url, retries=0, on_error="zero"
    )
    assert [r["abstained"] for r in rows] == [1.0, 1.0]


def test_verl_example_runs_against_a_live_service(api: ServiceProcess) -> None:
    env = {
        **os.environ,
        "RLVR_VERIFIER_URL": api.url,
        "RLVR_VERIFIER_API_KEY": KEY,
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "verl_compute_score.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["score"] for r in rows] == [1.0, 1.0, 1.0]


def test_ready_reports_components(client: VerifierClient) -> None:
    assert wait_until(lambda: client.ready().get("ready") is True, 10)
