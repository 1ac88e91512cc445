"""Shared fixtures: real Redis servers and real service processes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

# The vLLM-compatible judge test double's fixtures, available to every test.
from tests.judge_double.fixtures import (  # noqa: F401
    dead_judge_url,
    fake_judge,
    fake_judge_pair,
    fake_judge_servers,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS = os.environ.get("VERIFIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """Sum of the `name` samples on the service's /metrics with these labels."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@dataclass
class RedisServer:
    """A redis-server process this test owns (so it can be killed)."""

    port: int
    directory: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        assert wait_until(answers, 10), "redis-server did not start"

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server on a free port, killed at the end."""
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(free_port(), directory)
        server.start()
        try:
            yield server
        finally:
            server.kill()


@pytest.fixture
def shared_redis_url() -> str:
    """The machine's Redis (started by `make test` when none answered)."""
    import redis

    client = redis.Redis.from_url(DEFAULT_REDIS, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"no Redis answers at {DEFAULT_REDIS}; `make test` starts one")
    finally:
        client.close()
    return DEFAULT_REDIS


@dataclass
class ServiceProcess:
    """A real uvicorn server running the app in its own process."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_service(env: dict[str, str], log_dir: Path, http_workers: int = 1) -> ServiceProcess:
    """`rlvr-verifier serve` with these VERIFIER_* settings (and `http_workers`
    uvicorn processes), started and healthy."""
    port = free_port()
    log_path = log_dir / f"service-{port}.log"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")},
        "VERIFIER_WORKERS": "2",
        # No background appeals/canaries unless a test asks: they would add judge calls.
        "VERIFIER_APPEAL_FRACTION": "0",
        "VERIFIER_CANARY_RATE": "0",
        **env,
    }
    handle = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(http_workers),
        ],
        cwd=ROOT,
        env=full_env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    service = ServiceProcess(f"http://127.0.0.1:{port}", process, log_path)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"service exited early:\n{service.log()}")
        try:
            return httpx.get(service.url + "/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(healthy, 60), f"service did not start:\n{service.log()}"
    return service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start real service processes with VERIFIER_* settings; all stopped at the end."""
    started: list[ServiceProcess] = []

    def factory(**settings: str) -> ServiceProcess:
        env = {f"VERIFIER_{k.upper()}": str(v) for k, v in settings.items()}
        service = start_service(env, tmp_path)
        started.append(service)
        return service

    yield factory
    for service in started:
        service.stop()


@pytest.fixture
def unique_prefix() -> str:
    return f"rlvr-test-{uuid.uuid4().hex[:8]}:"
