"""`service.httpserver.CoalescingTransport` over a real socket transport: a
response written in pieces within one loop iteration leaves in one write."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from service.httpserver import CoalescingTransport


class _Counted:
    """The real transport, with its `write` calls recorded (and passed on)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _with_pair(
    body: Callable[[CoalescingTransport, _Counted, socket.socket], Awaitable[None]],
) -> None:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    counted = _Counted(transport)
    try:
        await body(CoalescingTransport(counted, loop), counted, peer)  # type: ignore[arg-type]
    finally:
        transport.close()
        peer.close()


async def _read(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await asyncio.wait_for(loop.sock_recv(peer, size - len(data)), 5)
        if not chunk:
            break
        data += chunk
    return data


def test_writes_in_one_loop_iteration_leave_as_one() -> None:
    async def body(coalescing: CoalescingTransport, counted: _Counted, peer: socket.socket) -> None:
        coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        coalescing.write(b"{}")
        assert counted.writes == []  # gathered until the loop moves on
        assert coalescing.get_write_buffer_size() == 40
        assert await _read(peer, 40) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
        assert counted.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]

    asyncio.run(_with_pair(body))


def test_writes_in_later_iterations_leave_separately_and_in_order() -> None:
    async def body(coalescing: CoalescingTransport, counted: _Counted, peer: socket.socket) -> None:
        coalescing.write(b"one ")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        coalescing.write(b"two")
        assert await _read(peer, 7) == b"one two"
        assert counted.writes == [b"one ", b"two"]

    asyncio.run(_with_pair(body))


def test_close_sends_what_was_gathered_and_abort_drops_it() -> None:
    async def closing(
        coalescing: CoalescingTransport, counted: _Counted, peer: socket.socket
    ) -> None:
        coalescing.write(b"last words")
        coalescing.close()
        assert await _read(peer, 64) == b"last words"  # then end of stream
        assert coalescing.is_closing()

    async def aborting(
        coalescing: CoalescingTransport, counted: _Counted, peer: socket.socket
    ) -> None:
        coalescing.write(b"never sent")
        coalescing.abort()
        await asyncio.sleep(0.05)
        assert await _read(peer, 64) == b""
        assert counted.writes == []

    asyncio.run(_with_pair(closing))
    asyncio.run(_with_pair(aborting))


def test_a_long_stream_is_handed_on_before_the_iteration_ends() -> None:
    # Beyond 64 KiB the real transport gets the data at once, so its flow
    # control (pause_writing at its high-water mark) can hold a producer back.
    async def body(coalescing: CoalescingTransport, counted: _Counted, peer: socket.socket) -> None:
        chunk = b"x" * 40_000
        coalescing.write(chunk)
        assert counted.writes == []
        coalescing.write(chunk)
        assert counted.writes == [chunk + chunk]
        coalescing.write(b"tail")
        assert coalescing.get_write_buffer_size() >= 4
        assert await _read(peer, 80_004) == chunk + chunk + b"tail"

    asyncio.run(_with_pair(body))
