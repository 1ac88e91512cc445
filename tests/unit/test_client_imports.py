"""rlvr_client stays light: importing it pulls in the standard library and httpx only
(and orjson when it happens to be installed; the client works without it)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

#: httpx and what it imports; anything else third-party would be a new dependency.
HTTPX_STACK = {
    "httpx",
    "httpcore",
    "h11",
    "h2",
    "hpack",
    "hyperframe",
    "anyio",
    "sniffio",
    "certifi",
    "idna",
    "exceptiongroup",
    "typing_extensions",
    "brotli",
    "brotlicffi",
    "zstandard",
    "socksio",
    # httpx imports its optional CLI (httpx[cli]) when these happen to be installed
    "click",
    "pygments",
    "rich",
    "markdown_it",
    "mdurl",
}
#: Used when installed, never required.
OPTIONAL = {"orjson"}
FORBIDDEN = {
    "sympy",
    "fastapi",
    "starlette",
    "pydantic",
    "service",
    "verifiers",
    "redis",
    "uvicorn",
}

PROBE = """
import json, sys
sys.path.insert(0, {root!r})
import rlvr_client, rlvr_client.client, rlvr_client.integrations, rlvr_client.labels
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def _fresh_python(script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (formatted with the repository root) in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-c", script.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def test_import_pulls_only_stdlib_and_httpx() -> None:
    done = _fresh_python(PROBE)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert not loaded & FORBIDDEN, loaded & FORBIDDEN
    third_party = {
        name
        for name in loaded - set(sys.stdlib_module_names) - HTTPX_STACK - OPTIONAL - {"rlvr_client"}
        if not name.startswith("_") and name not in sys.builtin_module_names
    }
    assert not third_party, f"rlvr_client imported {sorted(third_party)}"


WITHOUT_ORJSON = """
import json, sys
sys.modules["orjson"] = None  # as if it were not installed
sys.path.insert(0, {root!r})
import httpx
from rlvr_client import client
assert client._orjson is None
payload = {{"items": [{{"response": "\u00e9 boxed", "reference": "2"}}]}}
expected = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
assert client._body(payload)["content"] == expected
request = httpx.Request("GET", "http://x")
reply = httpx.Response(200, content=b'{{"correct": true}}', request=request)
assert client._json(reply) == {{"correct": True}}
print("ok")
"""


def test_the_client_works_without_orjson() -> None:
    done = _fresh_python(WITHOUT_ORJSON)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_body_is_the_same_json_httpx_would_send() -> None:
    from rlvr_client import client

    payloads = [
        {"items": [{"response": "é \\boxed{2}", "reference": "2", "id": None}]},
        {"response": "x", "reference": "1", "options": {"tolerance": 1e-6}},
        {"big": 2**70},
    ]
    for payload in payloads:
        content = client._body(payload)["content"]
        assert json.loads(content) == payload  # the same JSON value (1e-6 may read 1e-06)
        assert b"\\u00e9" not in content  # UTF-8 text, as httpx sends it
    lone = {"response": "\ud800 \\boxed{1}", "reference": "1"}  # a broken model output
    assert json.loads(client._body(lone)["content"]) == lone  # sent escaped, not an error
    try:
        client._body({"tolerance": float("nan")})
    except ValueError:
        pass
    else:
        raise AssertionError("NaN must be refused, as httpx's json= does")
