"""A plain-ASGI fast path for the two hot routes, `POST /v1/verify` and
`POST /v1/verify/batch`.

Trainers call these thousands of times per training step. FastAPI's
generic machinery (its middleware layers, request objects, dependency
solving, exception-handler wrappers, response re-validation) costs several
times what verifying a cached item does, so `VerifierApp` hands these two
routes to `VerifyFastPath` before any of it runs. The fast path does what the
middleware stack would: request id (``X-Request-ID``), HTTP metrics and the
access log, the per-key rate limit, the body size limit and the body
deadline (408).

It serves only the *ordinary* request: a valid key, a JSON body that parses
and validates, items within the limits. Anything else - a missing key,
malformed JSON, a validation error, a size limit, a non-JSON content type,
an empty rate-limit bucket, an unexpected exception - goes to the full
FastAPI application with the body bytes already read replayed, so there is
exactly one implementation of every error response and of the OpenAPI
description.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from service import logs
from service.errors import STORE_RETRY_AFTER_S, ApiError, store_unavailable
from service.middleware import (
    REQUEST_ID_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    bearer_token,
    body_timeout_message,
    observe,
    request_id_of,
    send_error,
    valid_token,
)
from service.ratelimit import RATE_CHECKED, TokenBuckets, bucket_key
from service.schemas import BatchRequest, BatchResponse, VerifyItem, VerifyResult
from service.settings import Settings
from service.validation import check_items
from service.verification import VerificationService

log = logging.getLogger("rlvr_verifier.fast_path")

VERIFY_PATH = "/v1/verify"
BATCH_PATH = "/v1/verify/batch"
_RESULT = TypeAdapter(VerifyResult)
_BATCH_RESULT = TypeAdapter(BatchResponse)


def is_json(content_type: bytes | None) -> bool:
    """The content types FastAPI parses as JSON: application/json and application/*+json
    (a body without a content type is not parsed: the route answers 422)."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def replay(chunks: list[bytes], complete: bool, receive: Receive) -> Receive:
    """A `receive` that yields the body `chunks` already read, then defers to
    the original (which still holds the rest of the body unless `complete`)."""
    pending = list(chunks) or [b""]

    async def replayed() -> Message:
        if pending:
            body = pending.pop(0)
            more = bool(pending) or not complete
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed


class VerifyFastPath:
    """Serves ordinary verify requests; hands everything else to the full app."""

    def __init__(
        self,
        service: VerificationService,
        settings: Settings,
        *,
        buckets: TokenBuckets | None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.keys = [k.encode() for k in settings.api_key_set]
        self.buckets = buckets
        self.max_bytes = settings.max_body_bytes
        self.timeout_s = settings.body_timeout_s
        self.access = settings.access_log

    @staticmethod
    def wants(scope: Scope) -> bool:
        """Whether `scope` is a request of one of the two routes."""
        path = scope.get("path")
        return (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and path in (VERIFY_PATH, BATCH_PATH)
        )

    async def serve(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Answer the request, or pass it (body replayed) to the full `app`."""
        began = time.perf_counter()
        # The first occurrence of each header, as Starlette reads them.
        content_type = authorization = length = None
        unusual = False
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value if content_type is None else content_type
            elif name == b"authorization":
                unusual = unusual or authorization is not None or not value.isascii()
                authorization = value if authorization is None else authorization
            elif name == b"content-length" and length is None:
                length = value
        try:
            declared = int(length) if length is not None else 0
        except ValueError:  # malformed, or beyond int()'s digit limit: the app decides
            declared = self.max_bytes + 1
        if (
            unusual  # repeated or non-ASCII credentials: the route's rules apply
            or declared > self.max_bytes
            or not is_json(content_type)
            or not self._authorized(authorization)
            or (self.buckets is not None and self._rate_limited(scope))
        ):
            await app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        scope[REQUEST_ID_KEY] = request_id  # a hand-over to the app keeps this id
        token = logs.REQUEST_ID.set(request_id)
        try:
            await self._serve(scope, receive, send, app, began, request_id)
        finally:
            logs.REQUEST_ID.reset(token)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        began: float,
        request_id: str,
    ) -> None:
        path: str = scope["path"]
        id_header = (b"x-request-id", request_id.encode())
        chunks: list[bytes] = []
        seen = 0
        more = True
        try:
            async with asyncio.timeout(self.timeout_s):
                while more and seen <= self.max_bytes:
                    message = await receive()
                    if message["type"] != "http.request":
                        return  # the client went away before its body arrived
                    chunk = message.get("body", b"")
                    chunks.append(chunk)
                    seen += len(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            message_text = body_timeout_message(self.timeout_s)
            await send_error(
                send, 408, "request_timeout", message_text, close=True, headers=[id_header]
            )
            observe(path, scope, 408, began, self.access)
            return
        if seen > self.max_bytes:  # the app's body limit answers (413)
            await app(scope, replay(chunks, not more, receive), send)
            return
        body = b"".join(chunks)
        try:
            content = await self._answer(path, body)
        except RedisError as exc:  # as the app's handler: the store is down, retry later
            retry = str(STORE_RETRY_AFTER_S).encode()
            extra = [id_header, (b"retry-after", retry)]
            await send_error(send, 503, "store_unavailable", store_unavailable(exc), headers=extra)
            observe(path, scope, 503, began, self.access)
            return
        except Exception:
            log.exception("verification failed")
            error = "verification failed"
            await send_error(send, 500, "internal_error", error, headers=[id_header])
            observe(path, scope, 500, began, self.access)
            return
        if content is None:
            await app(scope, replay([body], True, receive), send)
            return
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            id_header,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        observe(path, scope, 200, began, self.access)

    def _rate_limited(self, scope: Scope) -> bool:
        """Take this request's token. When there was one, the app's rate limiter
        will not take another (should the request still go to the app); when
        there was none, the app's limiter answers the 429."""
        assert self.buckets is not None
        if self.buckets.take(bucket_key(scope, self.keys)) > 0:
            return True
        scope[RATE_CHECKED] = True
        return False

    def _authorized(self, authorization: bytes | None) -> bool:
        return not self.keys or valid_token(bearer_token(authorization), self.keys)

    async def _answer(self, path: str, body: bytes) -> bytes | None:
        """The response body, or None when the full app should answer instead.

        Raises what verification raised: once it has started, handing the
        request over would run it (and its side effects) a second time."""
        try:
            items = self._parse(path, body)
        except (ValueError, ValidationError, ApiError, RecursionError):
            return None  # the route answers with the error response
        if items is None:
            return None
        if path == VERIFY_PATH:
            (result,) = await self.service.verify_items(items, "verify")
            return _RESULT.dump_json(result, by_alias=True)
        results = await self.service.verify_items(items, "batch")
        response = BatchResponse.model_construct(results=results)
        return _BATCH_RESULT.dump_json(response, by_alias=True)

    def _parse(self, path: str, body: bytes) -> list[VerifyItem] | None:
        """The validated items, or None when the route should answer instead.

        Raises what the route turns into a 4xx (malformed JSON, invalid fields,
        sizes); the route then produces that response itself."""
        data = orjson.loads(body)  # stricter than json.loads: NaN, > 64-bit ints -> the route
        if path == VERIFY_PATH:
            items = [VerifyItem.model_validate(data)]
        else:
            items = BatchRequest.model_validate(data).items
            if len(items) > self.settings.max_batch_items:
                return None
        check_items(items, self.settings)
        return items


class VerifierApp(FastAPI):
    """FastAPI with `VerifyFastPath` in front of its middleware stack."""

    fast_path: VerifyFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_path
        if fast is not None and fast.wants(scope):
            await fast.serve(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)
