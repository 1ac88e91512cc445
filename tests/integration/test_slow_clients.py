"""Slow, stalled and silent clients against a real server (raw sockets).

A body that does not arrive within VERIFIER_BODY_TIMEOUT_S gets a 408 and a
closed connection; a connection that never completes its request headers
(silent, or trickling a header now and then) is closed after the same
bound; other clients are served meanwhile and nothing is left open.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ServiceProcess, start_service, wait_until

TIMEOUT = 1.5
SLACK = 2.5
ITEM = b'{"response": "\\\\boxed{\\\\frac{1}{2}}", "reference": "0.5"}'


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {"VERIFIER_BODY_TIMEOUT_S": str(TIMEOUT), "VERIFIER_ACCESS_LOG": "false"},
        tmp_path_factory.mktemp("slow"),
    )
    yield service
    service.stop()


def connect(api: ServiceProcess) -> socket.socket:
    parts = urlsplit(api.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT + SLACK + 5)
    return sock


def headers(length: int | None, *, chunked: bool = False) -> bytes:
    lines = [b"POST /v1/verify HTTP/1.1", b"Host: test", b"Content-Type: application/json"]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(b"Content-Length: " + str(length).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a content-length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


def open_fds(api: ServiceProcess) -> int:
    return len(os.listdir(f"/proc/{api.process.pid}/fd"))


def verify_fast(api: ServiceProcess) -> float:
    started = time.monotonic()
    with httpx.Client(base_url=api.url, timeout=10) as client:
        response = client.post(
            "/v1/verify", content=ITEM, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200 and response.json()["correct"] is True
    return time.monotonic() - started


def test_stalled_body_gets_408_and_a_closed_connection(api: ServiceProcess) -> None:
    with connect(api) as sock:
        started = time.monotonic()
        sock.sendall(headers(len(ITEM)) + ITEM[:10])  # then nothing
        # other clients are served while this one stalls
        assert verify_fast(api) < TIMEOUT
        reply = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"request_timeout" in reply and b"connection: close" in reply.lower()
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK


def test_trickled_body_gets_408_at_the_deadline(api: ServiceProcess) -> None:
    """One byte every 0.2 s would never trip a per-read timeout; the deadline
    covers the whole body."""
    with connect(api) as sock:
        started = time.monotonic()
        sock.sendall(headers(len(ITEM)))
        sock.settimeout(0.2)
        reply = b""
        for byte in ITEM:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # the server closed the connection
                break
            try:
                reply += sock.recv(65536)
            except TimeoutError:
                continue
            if reply:
                break
        sock.settimeout(SLACK)
        with contextlib.suppress(OSError):
            reply += read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert elapsed < TIMEOUT + SLACK


def test_stalled_chunked_body_gets_408(api: ServiceProcess) -> None:
    with connect(api) as sock:
        sock.sendall(headers(None, chunked=True) + b"10\r\n" + ITEM[:16] + b"\r\n")
        reply = read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]


def test_slow_but_timely_body_is_served(api: ServiceProcess) -> None:
    with connect(api) as sock:
        sock.sendall(headers(len(ITEM)))
        for start in range(0, len(ITEM), 20):
            time.sleep(0.15)
            sock.sendall(ITEM[start : start + 20])
        reply = read_response(sock)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"correct":true' in reply


def test_silent_connection_is_closed(api: ServiceProcess) -> None:
    """Connect and send nothing: uvicorn alone would keep this open forever."""
    with connect(api) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < TIMEOUT + SLACK


def test_trickled_headers_are_cut_off(api: ServiceProcess) -> None:
    """Slowloris: a header line every 0.3 s, never the blank line."""
    with connect(api) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: test\r\n")
        closed = False
        for k in range(40):
            time.sleep(0.3)
            try:
                sock.sendall(f"X-Slow-{k}: {k}\r\n".encode())
            except OSError:
                closed = True
                break
        if not closed:
            sock.settimeout(1)
            try:
                closed = sock.recv(1) == b""
            except OSError:
                closed = True
        assert closed
        assert time.monotonic() - started < TIMEOUT + SLACK + 1


def test_idle_keep_alive_connection_is_closed(api: ServiceProcess) -> None:
    with connect(api) as sock:
        sock.sendall(headers(len(ITEM)) + ITEM)
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < TIMEOUT + SLACK


def test_many_stalled_clients_do_not_starve_others_or_leak(api: ServiceProcess) -> None:
    baseline = open_fds(api)
    sockets = []
    try:
        for k in range(60):
            sock = connect(api)
            if k % 3 == 0:
                sock.sendall(headers(len(ITEM)) + ITEM[:5])  # stalled body
            elif k % 3 == 1:
                sock.sendall(b"POST /v1/verify HTTP/1.1\r\n")  # stalled headers
            sockets.append(sock)  # k % 3 == 2: silent
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            latencies = list(pool.map(lambda _: verify_fast(api), range(20)))
        assert max(latencies) < TIMEOUT, latencies
        assert wait_until(lambda: open_fds(api) <= baseline + 2, TIMEOUT + SLACK + 3)
    finally:
        for sock in sockets:
            sock.close()
    assert verify_fast(api) < TIMEOUT
