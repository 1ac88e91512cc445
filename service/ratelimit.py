"""Per-key rate limits: a token bucket per API key, in process, before the body is read.

Off by default (`VERIFIER_RATE_LIMIT_PER_S` = 0). When on, every request to a
non-public path takes one token from its bucket; an empty bucket means 429
with ``Retry-After``. The bucket is the API key's when the request carries a
valid one, else the client address's (requests without a valid key get their
401 from the route, but cannot flood it either). Buckets are bounded in
number, so random keys cannot grow memory. Each replica limits on its own.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from service import metrics
from service.middleware import bearer_token, valid_token
from service.schemas import ErrorResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BUCKETS = 10_000
#: Scope key set by whoever already took the request's token (the verify fast path).
RATE_CHECKED = "rlvr.rate_checked"


class TokenBuckets:
    """`rate` tokens per second up to `burst`, one bucket per key (LRU-bounded)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_buckets: int = MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)
        return wait


def make_buckets(rate: float, burst: int) -> TokenBuckets:
    """The app's buckets: `burst` 0 means two seconds' worth of requests."""
    return TokenBuckets(rate, burst or max(1, math.ceil(2 * rate)))


def bucket_key(scope: Scope, keys: Collection[bytes]) -> str:
    """The request's bucket: its valid API key's (as a digest), else its address's."""
    authorization = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
    token = bearer_token(authorization)
    if valid_token(token, keys):
        # a digest, so the key itself is never kept in another place
        return "key:" + hashlib.sha256(token).hexdigest()
    client = scope.get("client")
    return "addr:" + (str(client[0]) if client else "unknown")


class RateLimitMiddleware:
    """429 with ``Retry-After`` once a key's (or address's) bucket is empty."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        buckets: TokenBuckets,
        keys: Collection[str],
        exempt: Collection[str],
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.keys = tuple(key.encode() for key in keys)
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("path") in self.exempt
            or scope.pop(RATE_CHECKED, False)
        ):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(bucket_key(scope, self.keys))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        metrics.RATE_LIMITED.inc()
        retry_after = max(1, math.ceil(wait))
        body = ErrorResponse(
            error="rate_limited",
            message=f"rate limit of {self.buckets.rate:g} requests/s exceeded; "
            f"retry after {retry_after} s",
            detail={"retry_after_s": retry_after},
        ).model_dump_json()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
