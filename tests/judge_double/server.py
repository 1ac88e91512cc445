"""FakeVLLMJudge: a test double of a vLLM OpenAI-compatible judge server.

It is a real HTTP server (uvicorn on 127.0.0.1, a free port, in a background
thread) that speaks vLLM's wire format:

* ``POST /v1/chat/completions`` with vLLM's request validation (model name,
  messages, ``logprobs``/``top_logprobs`` rules and the 20-logprob maximum,
  ``max_tokens``, ``temperature``, the choice constraint) and vLLM's reply
  shape (``choices[0].message.content``, ``choices[0].logprobs.content[0]
  .top_logprobs[j] = {token, logprob, bytes}``, ``finish_reason``,
  ``usage``), and ``{"error": {"message", "type", "param", "code"}}`` bodies.
* The choice constraint is honoured the way a given vLLM release does it:
  ``api="structured_outputs"`` (>= 0.12: ``structured_outputs.choice`` only;
  ``guided_choice`` is an unknown field and is ignored), ``api="guided_choice"``
  (< 0.10.2: the reverse) or ``api="both"`` (0.10.2 - 0.11). An unconstrained
  request gets free text, as a real model would produce.
* ``GET /v1/models`` and ``GET /health``.

Behaviour is scripted per test: `always` (A / B / C), `by_rule` (a callable
on the parsed prompt), `fail` (HTTP errors, N times or forever), `slow`
(a delay), `garbage` (a body that is not a judge reply). Every request is
recorded (`requests`) so tests can assert exactly what the judge saw, and
the server tracks how many requests were in flight at once.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

Api = Literal["structured_outputs", "guided_choice", "both"]
Garbage = Literal["text", "html", "empty", "wrong_shape", "no_content", "bad_label", "truncated"]
#: A rule returns a letter, or an HTTP status to fail with.
Rule = Callable[["ParsedPrompt"], "str | int"]

MAX_LOGPROBS = 20  # vLLM's default --max-logprobs

_SECTION = re.compile(
    r'<(question|reference_answer|candidate_answer) id="([0-9a-f]+)">\n(.*?)\n</\1 id="\2">',
    re.S,
)


@dataclass(frozen=True)
class ParsedPrompt:
    """What the judge was shown, parsed from our prompt's sections."""

    system: str
    user: str
    question: str | None
    reference: str | None
    answer: str | None
    item_id: str | None
    body: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything the model would read (all message contents)."""
        return "\n".join(
            str(m.get("content", "")) for m in self.body.get("messages", []) if isinstance(m, dict)
        )


def parse_prompt(body: dict[str, Any]) -> ParsedPrompt:
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")
    user = next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    sections: dict[str, str] = {}
    ids: set[str] = set()
    for match in _SECTION.finditer(user):
        sections.setdefault(match.group(1), match.group(3))
        ids.add(match.group(2))
    return ParsedPrompt(
        system=system,
        user=user,
        question=sections.get("question"),
        reference=sections.get("reference_answer"),
        answer=sections.get("candidate_answer"),
        item_id=ids.pop() if len(ids) == 1 else None,
        body=body,
    )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    received_at: float
    prompt: ParsedPrompt | None = None


@dataclass
class _Script:
    rule: Rule = field(default=lambda _p: "A")
    probabilities: dict[str, float] | None = None
    distractors: dict[str, float] = field(default_factory=lambda: {"The": 0.01, "**": 0.005})
    failures_left: int = 0  # -1: forever
    failure_status: int = 500
    delay_s: float = 0.0
    garbage: Garbage | None = None


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def _bad_request(message: str, param: str | None = None) -> JSONResponse:
    return _error(400, message, "BadRequestError", param)


def _token_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


class FakeVLLMJudge:
    """A scriptable, recording, vLLM-compatible judge server (test double)."""

    def __init__(
        self,
        model: str = "fake-judge-model",
        *,
        api: Api = "structured_outputs",
        api_key: str | None = None,
    ) -> None:
        self.model = model
        self.api: Api = api
        self.api_key = api_key
        self._lock = threading.Lock()
        self._script = _Script()
        self.requests: list[RecordedRequest] = []
        self.inflight = 0
        self.max_inflight = 0
        # Requests that arrived before the last reset() are neither recorded nor counted.
        self._generation = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
            ]
        )

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeVLLMJudge:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="FakeVLLMJudge", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("FakeVLLMJudge did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeVLLMJudge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL (``http://127.0.0.1:PORT``); the API lives under ``/v1``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1_url(self) -> str:
        return self.url + "/v1"

    # ------------------------------------------------------------ scripting
    def reset(
        self,
        *,
        model: str | None = None,
        api: Api = "structured_outputs",
        api_key: str | None = None,
    ) -> None:
        """Back to: always "A", no failures, no delay, nothing recorded."""
        with self._lock:
            if model is not None:
                self.model = model
            self.api = api
            self.api_key = api_key
            self._script = _Script()
            self.requests = []
            self._generation += 1
            self.inflight = 0
            self.max_inflight = 0

    def always(self, label: str, probabilities: dict[str, float] | None = None) -> None:
        """Answer `label` to everything, with these first-token probabilities
        (default: 0.9 on the label, 0.04 on each other letter)."""
        self.by_rule(lambda _p: label, probabilities)

    def always_correct(self) -> None:
        self.always("A")

    def always_incorrect(self) -> None:
        self.always("B")

    def always_invalid(self) -> None:
        self.always("C")

    def by_rule(self, rule: Rule, probabilities: dict[str, float] | None = None) -> None:
        """Answer ``rule(parsed_prompt)``: a letter, or an int HTTP status to fail with."""
        with self._lock:
            self._script.rule = rule
            self._script.probabilities = probabilities
            self._script.garbage = None

    def distractors(self, tokens: dict[str, float]) -> None:
        """Non-choice tokens in top_logprobs (vLLM reports raw, unmasked logprobs)."""
        with self._lock:
            self._script.distractors = dict(tokens)

    def fail(self, status: int = 500, times: int | None = None) -> None:
        """Fail with `status` `times` times (None: until told otherwise), then
        go back to the current rule."""
        with self._lock:
            self._script.failure_status = status
            self._script.failures_left = -1 if times is None else times

    def recover(self) -> None:
        with self._lock:
            self._script.failures_left = 0

    def slow(self, delay_s: float) -> None:
        """Wait `delay_s` before answering every request."""
        with self._lock:
            self._script.delay_s = delay_s

    def garbage(self, kind: Garbage = "text") -> None:
        """Answer with a 200 whose body is not a usable judge reply."""
        with self._lock:
            self._script.garbage = kind

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/chat/completions"]

    @property
    def prompts(self) -> list[ParsedPrompt]:
        return [r.prompt for r in self.chat_requests if r.prompt is not None]

    # ------------------------------------------------------------ handlers
    def _record(
        self,
        request: Request,
        body: Any,
        status: int,
        prompt: ParsedPrompt | None,
        generation: int | None = None,
    ) -> None:
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self.requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    status=status,
                    received_at=time.monotonic(),
                    prompt=prompt,
                )
            )

    def _authorized(self, request: Request) -> bool:
        if not self.api_key:
            return True
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def _health(self, request: Request) -> Response:
        self._record(request, None, 200, None)
        return Response(status_code=200)

    async def _models(self, request: Request) -> Response:
        if not self._authorized(request):
            self._record(request, None, 401, None)
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        self._record(request, None, 200, None)
        created = int(time.time())
        card = {
            "id": self.model,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": self.model,
            "parent": None,
            "max_model_len": 32768,
            "permission": [
                {
                    "id": f"modelperm-{uuid.uuid4().hex}",
                    "object": "model_permission",
                    "created": created,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
        }
        return JSONResponse({"object": "list", "data": [card]})

    async def _chat(self, request: Request) -> Response:
        with self._lock:
            generation = self._generation
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return await self._chat_inner(request, generation)
        finally:
            with self._lock:
                if generation == self._generation:
                    self.inflight -= 1

    async def _chat_inner(self, request: Request, generation: int) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            self._record(request, raw.decode("utf-8", "replace"), 400, None, generation)
            return _bad_request("Request body is not valid JSON.")
        if not self._authorized(request):
            self._record(request, body, 401, None, generation)
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        invalid = self._validate(body)
        if invalid is not None:
            self._record(request, body, invalid.status_code, None, generation)
            return invalid
        prompt = parse_prompt(body)
        with self._lock:
            script = self._script
            delay = script.delay_s
            failing = script.failures_left != 0
            if script.failures_left > 0:
                script.failures_left -= 1
        if delay:
            await asyncio.sleep(delay)
        if failing:
            self._record(request, body, script.failure_status, prompt, generation)
            return _error(script.failure_status, "Injected failure.", "InternalServerError")
        if script.garbage is not None:
            self._record(request, body, 200, prompt, generation)
            return self._garbage(script.garbage)
        outcome = script.rule(prompt)
        if isinstance(outcome, int):
            self._record(request, body, outcome, prompt, generation)
            return _error(outcome, "Injected failure.", "InternalServerError")
        self._record(request, body, 200, prompt, generation)
        return JSONResponse(self._completion(body, prompt, outcome, script))

    # ------------------------------------------------------------ vLLM rules
    def _validate(self, body: Any) -> JSONResponse | None:
        if not isinstance(body, dict):
            return _bad_request("Request body must be a JSON object.")
        model = body.get("model")
        if model is not None and model != self.model:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _bad_request("`messages` must be a non-empty list.", "messages")
        for message in messages:
            if (
                not isinstance(message, dict)
                or message.get("role") not in ("system", "user", "assistant", "developer", "tool")
                or not isinstance(message.get("content"), str)
            ):
                return _bad_request("Invalid message.", "messages")
        top = body.get("top_logprobs")
        if top is not None:
            if not isinstance(top, int) or isinstance(top, bool) or top < 0:
                return _bad_request("`top_logprobs` must be a positive value.", "top_logprobs")
            if top > 0 and not body.get("logprobs"):
                return _bad_request(
                    "when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs"
                )
            if top > MAX_LOGPROBS:
                return _bad_request(
                    f"Requested sample logprobs of {top}, which is greater than max allowed: "
                    f"{MAX_LOGPROBS}",
                    "top_logprobs",
                )
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            return _bad_request(f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens")
        temperature = body.get("temperature")
        if temperature is not None and (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or temperature < 0
        ):
            return _bad_request("temperature must be non-negative.", "temperature")
        if body.get("stream"):
            return _bad_request("This test double does not stream.", "stream")
        if self.api in ("structured_outputs", "both") and "structured_outputs" in body:
            spec = body["structured_outputs"]
            if not isinstance(spec, dict):
                return _bad_request("`structured_outputs` must be an object.", "structured_outputs")
            kinds = [k for k in ("json", "regex", "choice", "grammar") if spec.get(k) is not None]
            if len(kinds) > 1:
                return _bad_request(
                    "You can only use one kind of structured outputs constraint.",
                    "structured_outputs",
                )
            if "choice" in spec and not _valid_choices(spec["choice"]):
                return _bad_request("`choice` must be a non-empty list of strings.", "choice")
        if (
            self.api in ("guided_choice", "both")
            and "guided_choice" in body
            and not _valid_choices(body["guided_choice"])
        ):
            return _bad_request("`guided_choice` must be a non-empty list of strings.")
        return None

    def _choices(self, body: dict[str, Any]) -> list[str] | None:
        """The choice constraint this server version honours, if any."""
        if self.api in ("structured_outputs", "both"):
            spec = body.get("structured_outputs")
            if isinstance(spec, dict) and spec.get("choice") is not None:
                return list(spec["choice"])
        if self.api in ("guided_choice", "both") and body.get("guided_choice") is not None:
            return list(body["guided_choice"])
        return None

    def _completion(
        self, body: dict[str, Any], prompt: ParsedPrompt, label: str, script: _Script
    ) -> dict[str, Any]:
        choices = self._choices(body)
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens")) or 16
        if choices is None:
            # Unconstrained: a chatty model starts a sentence.
            words = f"The candidate answer is {label}.".split(" ")
            content = " ".join(words[:max_tokens])
            sampled = words[0]
            candidates = {sampled: 0.6, "A": 0.2, "B": 0.1, "C": 0.05}
            finish = "length" if max_tokens < len(words) else "stop"
        else:
            if label not in choices:
                label = choices[0]
            content = sampled = label
            probs = script.probabilities or {
                c: (0.9 if c == label else 0.1 / max(1, len(choices) - 1)) for c in choices
            }
            candidates = {**script.distractors, **probs}
            finish = "stop" if max_tokens > 1 else "length"
        logprobs = None
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            ranked = sorted(candidates.items(), key=lambda kv: -kv[1])[:k]
            top = [_token_entry(t, _ln(p)) for t, p in ranked]
            logprobs = {
                "content": [
                    {
                        **_token_entry(sampled, _ln(candidates.get(sampled, 1.0))),
                        "top_logprobs": top,
                    }
                ]
            }
        prompt_tokens = max(1, len(prompt.text) // 4)
        completion_tokens = 1 if choices is not None else len(content.split(" "))
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "annotations": None,
                        "audio": None,
                        "function_call": None,
                        "tool_calls": [],
                        "reasoning_content": None,
                    },
                    "logprobs": logprobs,
                    "finish_reason": finish,
                    "stop_reason": None,
                }
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens": completion_tokens,
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None,
            "kv_transfer_params": None,
        }

    @staticmethod
    def _garbage(kind: Garbage) -> Response:
        if kind == "text":
            return PlainTextResponse("upstream says hello")
        if kind == "html":
            return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        if kind == "empty":
            return Response(b"", media_type="application/json")
        if kind == "wrong_shape":
            return JSONResponse({"result": "A"})
        if kind == "no_content":
            return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant"}}]})
        if kind == "bad_label":
            return JSONResponse(
                {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"}}]}
            )
        return Response(b'{"choices": [{"index": 0, "mess', media_type="application/json")


def _valid_choices(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def _ln(p: float) -> float:
    return math.log(p) if p > 0 else -9999.0


def free_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
