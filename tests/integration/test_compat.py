"""The /compat routes with the exact bodies OpenRLHF, slime and NeMo-Gym send (real server)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from service.compat_routes import split_openrlhf_query
from tests.conftest import ServiceProcess, start_service

QWEN_PROMPT = (
    "<|im_start|>system\nPut the final answer in \\boxed{}.<|im_end|>\n"
    "<|im_start|>user\nWhat is 1/3 of 36?<|im_end|>\n<|im_start|>assistant\n"
)
STDIN_TESTS = {"kind": "stdin", "cases": [{"input": "1 2\n", "output": "3\n"}]}
ADD_PROGRAM = "```python\nprint(sum(map(int, input().split())))\n```"
#: Rules cannot compare a word with a sentence and no judge is configured: abstain.
ABSTAIN = {"response": "The answer is \\boxed{blue}.", "label": "The sky looks blue at noon"}


@pytest.fixture(scope="module")
def compat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = start_service(
        {"VERIFIER_WORKERS": "1", "VERIFIER_MAX_BATCH_ITEMS": "20"},
        tmp_path_factory.mktemp("compat"),
    )
    yield service
    service.stop()


@pytest.fixture
def client(compat: ServiceProcess) -> Iterator[httpx.Client]:
    with compat.client() as c:
        yield c


# ---------------------------------------------------------------- OpenRLHF
def test_openrlhf_single_sample_as_sent_today(client: httpx.Client) -> None:
    # SingleTurnAgentExecutor._fetch_rewards_via_http: one sample, decode(prompt + action)
    # with special tokens kept, the raw prompt, the dataset label.
    query = QWEN_PROMPT + "A third of 36 is $\\boxed{12}$.<|im_end|>"
    r = client.post(
        "/compat/openrlhf", json={"query": [query], "prompts": [QWEN_PROMPT], "labels": ["12"]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rewards"] == [1.0] and body["scores"] == [1.0]
    assert body["extra_logs"] == {
        "verifier_correct": [1.0],
        "verifier_abstained": [0.0],
        "verifier_cached": [0.0],
        "verifier_prompt_found": [1.0],
    }
    (result,) = body["results"]
    assert result["reason"] == "equal" and result["extracted_answer"] == "12"


def test_openrlhf_batch_keeps_order_and_zeroes_abstentions(client: httpx.Client) -> None:
    prompts = [QWEN_PROMPT] * 4
    queries = [
        QWEN_PROMPT + "So $\\boxed{\\frac{36}{3}}$.<|im_end|>",
        QWEN_PROMPT + "So $\\boxed{13}$.<|im_end|>",
        QWEN_PROMPT + ABSTAIN["response"] + "<|im_end|>",
        QWEN_PROMPT + ADD_PROGRAM + "<|im_end|>",
    ]
    labels = [
        "12",
        "12",
        ABSTAIN["label"],
        json.dumps({"task": "code", "tests": STDIN_TESTS, "language": "python"}),
    ]
    body = client.post(
        "/compat/openrlhf", json={"query": queries, "prompts": prompts, "labels": labels}
    ).json()
    assert body["rewards"] == [1.0, 0.0, 0.0, 1.0]
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["verifier_correct"] == [1.0, 0.0, 0.0, 1.0]
    assert body["extra_logs"]["verifier_abstained"] == [0.0, 0.0, 1.0, 0.0]
    reasons = [r["reason"] for r in body["results"]]
    assert reasons == ["equal", "not_equal", "unparseable", "passed"]
    assert body["results"][2]["correct"] is None
    assert body["results"][3]["stage"] == "code"


def test_openrlhf_label_object_and_numbers(client: httpx.Client) -> None:
    queries = [QWEN_PROMPT + "So $\\boxed{12}$.", QWEN_PROMPT + "So $\\boxed{12}$."]
    labels = [{"answer": "12"}, 12]
    body = client.post(
        "/compat/openrlhf", json={"query": queries, "prompts": [QWEN_PROMPT] * 2, "labels": labels}
    ).json()
    assert body["rewards"] == [1.0, 1.0]


def test_openrlhf_without_prompts_uses_the_assistant_turn(client: httpx.Client) -> None:
    # Older OpenRLHF versions sent only "query"; the system prompt's "\boxed{}" must not count.
    query = QWEN_PROMPT + "A third of 36 is 12, so \\boxed{12}<|im_end|><|endoftext|>"
    body = client.post("/compat/openrlhf", json={"query": [query], "labels": ["12"]}).json()
    assert body["rewards"] == [1.0]
    assert body["extra_logs"]["verifier_prompt_found"] == [0.0]


def test_openrlhf_rejects_mismatched_lists_and_bad_labels(client: httpx.Client) -> None:
    r = client.post("/compat/openrlhf", json={"query": ["a", "b"], "labels": ["1"]})
    assert r.status_code == 422 and "labels" in r.json()["message"]
    r = client.post(
        "/compat/openrlhf", json={"query": ["\\boxed{1}"], "labels": [{"answer": "1", "test": 1}]}
    )
    assert r.status_code == 422
    assert "labels[0]" in r.json()["message"] and "test" in r.json()["message"]
    r = client.post(
        "/compat/openrlhf",
        json={"query": ["\\boxed{1}"], "labels": ['{"task": "code", "tests": {"kind": "x"}}']},
    )
    # malformed test specs are a dataset bug: a 422 naming the sample, as on /v1
    assert r.status_code == 422 and r.json()["message"].startswith("samples[0].tests:")
    r = client.post("/compat/openrlhf", json={"query": ["x"], "labels": ['{"task": "maths"}']})
    assert r.status_code == 422
    assert r.json()["message"].startswith("body.labels[0].task:")
    r = client.post("/compat/openrlhf", json={"query": ["x"] * 21})
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"


def test_split_openrlhf_query() -> None:
    response, found = split_openrlhf_query(QWEN_PROMPT + "so 4<|im_end|>", QWEN_PROMPT)
    assert (response, found) == ("so 4", True)
    llama = "<|start_header_id|>assistant<|end_header_id|>\n\n"
    response, found = split_openrlhf_query("<|begin_of_text|>hi" + llama + "x=2<|eot_id|>", None)
    assert (response, found) == ("x=2", False)
    response, found = split_openrlhf_query("prefix PROMPT answer </s>", "PROMPT")
    assert (response, found) == (" answer", True)
    assert split_openrlhf_query("no markers", "other") == ("no markers", False)
    deepseek = "<｜User｜>q<｜Assistant｜>so 5<｜end▁of▁sentence｜>"
    assert split_openrlhf_query(deepseek, None) == ("so 5", False)


# ---------------------------------------------------------------- slime
def test_slime_remote_rm_body(client: httpx.Client) -> None:
    # slime.rollout.rm_hub.remote_rm: {"prompt": sample.prompt, "response": ..., "label": ...}
    r = client.post(
        "/compat/slime",
        json={
            "prompt": "What is 1/3 of 36?",
            "response": "A third of 36 is $\\boxed{12}$.",
            "label": "12",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reward"] == 1.0 and body["correct"] is True and body["abstained"] is False
    assert body["reason"] == "equal" and body["stage"] == "math"


def test_slime_chat_prompt_dict_label_and_abstain(client: httpx.Client) -> None:
    chat = [{"role": "user", "content": "Add two numbers from stdin."}]
    body = client.post(
        "/compat/slime",
        json={
            "prompt": chat,
            "response": ADD_PROGRAM,
            "label": {"task": "code", "tests": STDIN_TESTS},
        },
    ).json()
    assert body["reward"] == 1.0 and body["reason"] == "passed"
    body = client.post(
        "/compat/slime", json={"prompt": chat, "response": "So \\boxed{13}.", "label": "12"}
    ).json()
    assert body["reward"] == 0.0 and body["correct"] is False and body["abstained"] is False
    body = client.post("/compat/slime", json={"prompt": "q", **ABSTAIN}).json()
    assert body["reward"] == 0.0 and body["correct"] is None and body["abstained"] is True
    assert body["reason"] == "unparseable"


def test_slime_errors(client: httpx.Client) -> None:
    r = client.post("/compat/slime", json={"prompt": "q", "label": "1"})
    assert r.status_code == 422 and "response" in r.json()["message"]
    r = client.post("/compat/slime", json={"response": "x", "label": [1, 2]})
    assert r.status_code == 422 and "label" in r.json()["message"]
    r = client.post("/compat/slime", json={"response": "x" * 1_000_001, "label": "1"})
    assert r.status_code == 413 and r.json()["message"].startswith("sample.response is")
    r = client.post(
        "/compat/slime", json={"response": ADD_PROGRAM, "label": {"task": "code", "language": "x"}}
    )
    assert r.status_code == 422 and r.json()["message"].startswith("sample.tests:")


# ---------------------------------------------------------------- NeMo-Gym
def _nemo_body(text: str, expected: object, **extra: object) -> dict[str, object]:
    return {
        "responses_create_params": {
            "input": [{"role": "user", "content": "What is 1/3 of 36?"}],
            "temperature": 1.0,
        },
        "response": {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "model": "policy",
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "output": [
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "\\boxed{999}"}],
                },
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                },
            ],
        },
        "question": "What is 1/3 of 36?",
        "expected_answer": expected,
        **extra,
    }


def test_nemo_gym_verify_echoes_and_rewards(client: httpx.Client) -> None:
    request = _nemo_body(
        "A third of 36 is $\\boxed{12}$.",
        "12",
        _ng_rollout_id="r-7",
        agent_ref={"name": "simple_agent"},
    )
    r = client.post("/compat/nemo-gym/verify", json=request)
    assert r.status_code == 200, r.text
    body = r.json()
    for key, value in request.items():
        assert body[key] == value, key  # the request comes back, unknown fields included
    assert body["reward"] == 1.0 and body["mask_sample"] is False
    assert body["failure_kind"] is None and body["failure_reason"] is None
    assert body["extracted_answer"] == "12"  # the reasoning item's \boxed{999} is not verified
    assert body["verdict"]["reason"] == "equal"


def test_nemo_gym_abstain_masks_the_sample(client: httpx.Client) -> None:
    body = client.post(
        "/compat/nemo-gym/verify", json=_nemo_body(ABSTAIN["response"], ABSTAIN["label"])
    ).json()
    assert body["reward"] == 0.0 and body["mask_sample"] is True
    assert body["failure_kind"] == "verifier_error"
    assert body["failure_reason"] == "math:unparseable"
    assert body["verdict"]["correct"] is None


def test_nemo_gym_code_spec_and_errors(client: httpx.Client) -> None:
    spec = json.dumps({"task": "code", "tests": STDIN_TESTS})
    body = client.post("/compat/nemo-gym/verify", json=_nemo_body(ADD_PROGRAM, spec)).json()
    assert body["reward"] == 1.0 and body["verdict"]["stage"] == "code"
    wrong = client.post("/compat/nemo-gym/verify", json=_nemo_body("So \\boxed{13}", "12")).json()
    assert wrong["reward"] == 0.0 and wrong["mask_sample"] is False
    bad = _nemo_body("x", "1")
    bad["response"] = {"output": "not a list"}
    r = client.post("/compat/nemo-gym/verify", json=bad)
    assert r.status_code == 422 and "response.output" in r.json()["message"]
    r = client.post("/compat/nemo-gym/verify", json={"response": {"output": []}})
    assert r.status_code == 422 and "responses_create_params" in r.json()["message"]


def test_compat_routes_are_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/compat/openrlhf", "/compat/slime", "/compat/nemo-gym/verify"} <= set(paths)
