"""Random identifiers (request ids, verdict ids) from a buffered entropy pool.

`os.urandom` is a system call, and a slow one in some virtual machines; one
per request showed up in profiles of single-item traffic. Reading 4 KiB at a
time makes an id cost a slice instead. The bytes are the kernel's CSPRNG
output either way.
"""

from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_offset = 0


def random_hex(nbytes: int = 16) -> str:
    """`nbytes` fresh random bytes as lower-case hex (2 * `nbytes` characters)."""
    global _pool, _offset
    if nbytes > _POOL_BYTES:
        return os.urandom(nbytes).hex()
    with _lock:
        if _offset + nbytes > len(_pool):
            _pool, _offset = os.urandom(_POOL_BYTES), 0
        start = _offset
        _offset += nbytes
        return _pool[start : start + nbytes].hex()


def _reset_after_fork() -> None:
    """A forked child must not hand out the same ids as its parent."""
    global _pool, _offset, _lock
    _pool, _offset, _lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)
