"""Pytest fixtures that run `FakeVLLMJudge` servers.

Servers start once per session (each takes ~50 ms) and are reset before
every test. Import the fixtures explicitly::

    from tests.judge_double.fixtures import fake_judge  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.judge_double.server import FakeVLLMJudge, free_port_url


@pytest.fixture(scope="session")
def fake_judge_servers() -> Iterator[tuple[FakeVLLMJudge, FakeVLLMJudge]]:
    """Two running servers for the whole session (use the function fixtures)."""
    first = FakeVLLMJudge().start()
    second = FakeVLLMJudge().start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


@pytest.fixture
def fake_judge(fake_judge_servers: tuple[FakeVLLMJudge, FakeVLLMJudge]) -> FakeVLLMJudge:
    """A running fake judge, reset: always answers "A", records requests."""
    server = fake_judge_servers[0]
    server.reset()
    return server


@pytest.fixture
def fake_judge_pair(
    fake_judge_servers: tuple[FakeVLLMJudge, FakeVLLMJudge],
) -> tuple[FakeVLLMJudge, FakeVLLMJudge]:
    """Two running fake judges (replicas of one model), both reset."""
    for server in fake_judge_servers:
        server.reset()
    return fake_judge_servers


@pytest.fixture
def dead_judge_url() -> str:
    """A base URL where nothing listens."""
    return free_port_url()
