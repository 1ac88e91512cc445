"""Compatibility routes take the API key as a query parameter too (trainers
that only accept a URL); /v1 routes do not."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import ServiceProcess


def test_compat_routes_accept_the_key_in_the_url(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    api = service_factory(api_keys="k-secret-1")
    slime = {"prompt": "1+1?", "response": "\\boxed{2}", "label": "2"}
    with api.client() as client:
        assert client.post("/compat/slime", json=slime).status_code == 401
        assert client.post("/compat/slime?api_key=wrong", json=slime).status_code == 401
        ok = client.post("/compat/slime?api_key=k-secret-1", json=slime)
        assert ok.status_code == 200 and ok.json()["reward"] == 1.0
        header = client.post(
            "/compat/slime", json=slime, headers={"Authorization": "Bearer k-secret-1"}
        )
        assert header.status_code == 200
        openrlhf = {"query": ["Q: 1+1? A: \\boxed{2}"], "prompts": ["Q: 1+1? A:"], "labels": ["2"]}
        rewarded = client.post("/compat/openrlhf?api_key=k-secret-1", json=openrlhf)
        assert rewarded.status_code == 200 and rewarded.json()["rewards"] == [1.0]
        # the query-parameter form is only for the compatibility routes
        item = {"response": "\\boxed{2}", "reference": "2"}
        assert client.post("/v1/verify?api_key=k-secret-1", json=item).status_code == 401
    assert "k-secret-1" not in api.log()
