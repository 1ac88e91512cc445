"""rlvr_client stays light: importing it pulls in the standard library and httpx only."""

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


def test_import_pulls_only_stdlib_and_httpx() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert not loaded & FORBIDDEN, loaded & FORBIDDEN
    third_party = {
        name
        for name in loaded - set(sys.stdlib_module_names) - HTTPX_STACK - {"rlvr_client"}
        if not name.startswith("_") and name not in sys.builtin_module_names
    }
    assert not third_party, f"rlvr_client imported {sorted(third_party)}"
