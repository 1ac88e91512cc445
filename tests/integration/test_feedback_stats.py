"""Online FN/FP estimation end to end: feedback, stats, corrected rewards,
replicas sharing Redis, Redis outages, and appeal / canary accounting against
the vLLM test double - all through real service processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import RedisServer, ServiceProcess, wait_until
from tests.judge_double.server import FakeVLLMJudge, ParsedPrompt
from verifiers.estimate import estimate_rate, rule_fn_from_appeals

Factory = Callable[..., ServiceProcess]

# id -> (response, reference, domain); verdicts noted beside.
ITEMS: dict[str, tuple[str, str, str | None]] = {
    "a1": ("so \\boxed{\\frac{2}{4}}", "1/2", "algebra"),  # math, correct
    "a2": ("\\boxed{0.5}", "1/2", "algebra"),  # math, correct
    "a3": ("\\boxed{7}", "1/2", "algebra"),  # math, rejected
    "g1": ("\\boxed{12}", "12", "geometry"),  # math, correct
    "g2": ("\\boxed{x+1}", "x+2", "geometry"),  # math, rejected
    "n1": ("The answer is 4", "4", None),  # math, correct
    "k1": ("Thought process:", "4", None),  # guard, rejected
}
# Ground truth the client learned later: a2 was wrong (a rule FP), g2 right (an FN).
TRUTH = {"a1": True, "a2": False, "a3": False, "g1": True, "g2": True, "n1": True, "k1": False}


def verify_all(client: httpx.Client, **options: Any) -> dict[str, dict[str, Any]]:
    items = [
        {"id": key, "response": r, "reference": ref, "domain": d, "options": options}
        for key, (r, ref, d) in ITEMS.items()
    ]
    response = client.post("/v1/verify/batch", json={"items": items})
    assert response.status_code == 200, response.text
    return {result["id"]: result for result in response.json()["results"]}


def group(stats: dict[str, Any], source: str, stage: str, domain: str | None) -> dict[str, Any]:
    for entry in stats["groups"]:
        if (entry["source"], entry["stage"], entry["domain"]) == (source, stage, domain):
            return entry
    raise AssertionError(f"no group {(source, stage, domain)} in {stats['groups']}")


def assert_rate(rate: dict[str, Any], errors: int, samples: int) -> None:
    expected = estimate_rate(errors, samples)
    assert (rate["errors"], rate["samples"]) == (errors, samples)
    assert rate["value"] == expected.value
    assert rate["lower"] == pytest.approx(expected.lower)
    assert rate["upper"] == pytest.approx(expected.upper)


def metric_value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


# ------------------------------------------------------------------ feedback, in-process
def test_feedback_builds_confusion_counts_per_stage_and_domain(
    service_factory: Factory,
) -> None:
    service = service_factory(workers="1", correction_min_samples="1", estimator_refresh_s="0")
    with service.client() as client:
        results = verify_all(client)
        said = {key: result["correct"] for key, result in results.items()}
        assert said == {
            "a1": True,
            "a2": True,
            "a3": False,
            "g1": True,
            "g2": False,
            "n1": True,
            "k1": False,
        }
        assert results["k1"]["stage"] == "guard"

        labels = [{"id": key, "correct": value} for key, value in TRUTH.items()]
        labels += [{"id": "never-seen", "correct": True}, {"id": "a1", "correct": True}]
        response = client.post("/v1/feedback", json={"labels": labels})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["recorded"] == 7
        assert report["counts"] == {"tp": 3, "fp": 1, "tn": 2, "fn": 1, "abstain": 0}
        assert report["unknown"] == ["never-seen"]
        assert report["duplicate"] == ["a1"]
        again = client.post("/v1/feedback", json={"labels": [{"id": "a3", "correct": False}]})
        assert again.json() == {
            "recorded": 0,
            "counts": {"tp": 0, "fp": 0, "tn": 0, "fn": 0, "abstain": 0},
            "unknown": [],
            "duplicate": ["a3"],
        }

        stats = client.get("/v1/stats").json()
        assert (stats["backend"], stats["backend_state"]) == ("memory", "disabled")
        math_all = group(stats, "feedback", "math", None)
        # math: tp a1 g1 n1, fp a2, tn a3, fn g2
        assert math_all["counts"] == {"fn": 1, "fp": 1, "tn": 1, "tp": 3}
        assert_rate(math_all["false_negative"], 1, 4)
        assert_rate(math_all["false_positive"], 1, 2)
        assert math_all["j"]["value"] == pytest.approx(1 - 0.5 - 0.25)
        assert math_all["j"]["lower"] == pytest.approx(
            1 - math_all["false_positive"]["upper"] - math_all["false_negative"]["upper"]
        )
        algebra = group(stats, "feedback", "math", "algebra")
        assert algebra["counts"] == {"fp": 1, "tn": 1, "tp": 1}
        geometry = group(stats, "feedback", "math", "geometry")
        assert geometry["counts"] == {"fn": 1, "tp": 1}
        assert group(stats, "feedback", "guard", None)["counts"] == {"tn": 1}
        # the rule stage's own counts (appeal population): positives and soft negatives
        appeal = group(stats, "appeal", "math", None)["counts"]
        assert appeal == {"hard_negatives": 1, "rule_negatives": 1, "rule_positives": 4}

        stage = next(s for s in stats["stages"] if s["stage"] == "math")
        assert (stage["false_negative_source"], stage["false_positive_source"]) == (
            "feedback",
            "feedback",
        )
        assert stage["corrects_rewards"] is True

        metrics = client.get("/metrics").text
        labels_ = {"stage": "math", "source": "feedback"}
        assert metric_value(metrics, "verifier_false_negative_rate", **labels_) == 0.25
        assert metric_value(metrics, "verifier_false_positive_rate", **labels_) == 0.5
        upper = metric_value(metrics, "verifier_false_negative_rate_upper", **labels_)
        assert upper == pytest.approx(estimate_rate(1, 4).upper)
        assert metric_value(metrics, "verifier_false_negative_samples", **labels_) == 4
        assert metric_value(metrics, "verifier_youden_j", stage="math") == pytest.approx(0.25)

        # reward: corrected -> (y - FP) / (1 - FP - FN) with FP 1/2, FN 1/4 (J = 1/4)
        corrected = verify_all(client, reward="corrected")
        assert corrected["a1"]["reward"] == pytest.approx((1 - 0.5) / 0.25)
        assert corrected["a3"]["reward"] == pytest.approx((0 - 0.5) / 0.25)
        assert corrected["a1"]["correct"] is True  # the raw verdict stays
        assert corrected["a1"]["detail"]["raw_reward"] == 1.0
        assert corrected["a1"]["detail"]["correction"]["applied"] is True
        # the guard stage: FP 0 of 1 (its one label was a true negative), no FN data
        assert corrected["k1"]["reward"] == 0.0
        assert corrected["k1"]["detail"]["correction"]["fp_source"] == "feedback"
        assert corrected["k1"]["detail"]["correction"]["fn_source"] is None
        raw = verify_all(client)
        assert raw["a1"]["reward"] == 1.0 and "raw_reward" not in raw["a1"]["detail"]


def test_feedback_validation_and_request_ids(service_factory: Factory) -> None:
    service = service_factory(workers="1", verdict_ttl_s="0")
    with service.client() as client:
        verify_all(client)
        # a TTL of 0 keeps nothing: every id is unknown, nothing is an error
        report = client.post("/v1/feedback", json={"labels": [{"id": "a1", "correct": True}]})
        assert report.status_code == 200
        assert report.json()["unknown"] == ["a1"]
        bad = client.post("/v1/feedback", json={"labels": [{"id": "a1", "correct": "maybe"}]})
        assert bad.status_code == 422 and "labels.0.correct" in bad.json()["message"]
        assert client.post("/v1/feedback", json={"labels": [{"id": ""}]}).status_code == 422
        echoed = client.get("/v1/stats", headers={"x-request-id": "trainer-step-7"})
        assert echoed.headers["x-request-id"] == "trainer-step-7"
        generated = client.get("/v1/stats", headers={"x-request-id": "not a safe id"})
        assert len(generated.headers["x-request-id"]) == 32
    service.stop()
    log = service.log()
    assert '"request_id":"trainer-step-7"' in log and '"path":"/v1/stats"' in log


# ------------------------------------------------------------------ replicas on one Redis
def test_two_replicas_aggregate_through_redis(
    service_factory: Factory, shared_redis_url: str, unique_prefix: str
) -> None:
    common = {"workers": "1", "redis_url": shared_redis_url, "redis_prefix": unique_prefix}
    first = service_factory(**common)
    second = service_factory(**common)
    with first.client() as a, second.client() as b:
        verify_all(a)
        # labels for the first replica's verdicts, posted to the second
        labels = [{"id": key, "correct": value} for key, value in TRUTH.items()]
        half = len(labels) // 2
        report_b = b.post("/v1/feedback", json={"labels": labels[:half]}).json()
        report_a = a.post("/v1/feedback", json={"labels": labels}).json()
        assert report_b["recorded"] == half and report_b["unknown"] == []
        assert report_a["recorded"] == len(labels) - half
        assert sorted(report_a["duplicate"]) == sorted(label["id"] for label in labels[:half])

        stats_a, stats_b = a.get("/v1/stats").json(), b.get("/v1/stats").json()
        assert stats_a["backend"] == "redis" and stats_a["backend_state"] == "up"
        assert stats_a["groups"] == stats_b["groups"]
        math_all = group(stats_a, "feedback", "math", None)
        assert math_all["counts"] == {"fn": 1, "fp": 1, "tn": 1, "tp": 3}
        # both replicas' rule counts add up
        verify_all(b)
        appeal = group(b.get("/v1/stats").json(), "appeal", "math", None)["counts"]
        assert appeal["rule_positives"] == 8


def test_redis_outage_degrades_to_in_process(
    service_factory: Factory, own_redis: RedisServer, unique_prefix: str
) -> None:
    service = service_factory(
        workers="1", redis_url=own_redis.url, redis_prefix=unique_prefix, redis_retry_s="60"
    )
    with service.client() as client:
        verify_all(client)
        client.post("/v1/feedback", json={"labels": [{"id": "a1", "correct": True}]})
        own_redis.kill()
        results = verify_all(client)
        assert results["g2"]["correct"] is False
        report = client.post(
            "/v1/feedback", json={"labels": [{"id": "g2", "correct": True}]}
        ).json()
        assert report["recorded"] == 1 and report["counts"]["fn"] == 1
        stats = client.get("/v1/stats").json()
        assert stats["backend_state"] == "down"
        assert group(stats, "feedback", "math", None)["counts"] == {"fn": 1}
        assert client.get("/metrics").status_code == 200


# ------------------------------------------------------------------ appeals and canaries
def wait_for_counts(
    client: httpx.Client, source: str, predicate: Callable[[dict[str, int]], bool]
) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    def ready() -> bool:
        nonlocal latest
        latest = client.get("/v1/stats").json()
        try:
            counts = group(latest, source, {"appeal": "math", "canary": "judge"}[source], None)
        except AssertionError:
            return False
        return predicate(counts["counts"])

    assert wait_until(ready, 20, interval=0.1), [
        (g["domain"], g["counts"]) for g in latest["groups"]
    ]
    return latest


def test_appeals_recheck_rule_negatives_in_the_background(
    service_factory: Factory, fake_judge: FakeVLLMJudge
) -> None:
    # The judge overturns x+1 and x+3 (pretend the rule missed an equivalence).
    def rule(prompt: ParsedPrompt) -> str:
        return "A" if prompt.answer in ("x+1", "x+3") else "B"

    fake_judge.by_rule(rule)
    fake_judge.slow(1.0)
    service = service_factory(
        workers="1",
        judge_url=fake_judge.url,
        judge_model=fake_judge.model,
        appeal_fraction="1",
        canary_rate="0",
        judge_calibration_fp="0.05",
        judge_calibration_fn="0.1",
    )
    items = [
        {"response": f"\\boxed{{{answer}}}", "reference": "x+2", "domain": "alg"}
        for answer in ("x+1", "x+4", "x+5", "2+x", "x + 2", "7")
    ]
    with service.client() as client:
        began = time.perf_counter()
        results = client.post("/v1/verify/batch", json={"items": items}).json()["results"]
        elapsed = time.perf_counter() - began
        assert [r["correct"] for r in results] == [False, False, False, True, True, False]
        assert all(r["stage"] == "math" for r in results)
        assert elapsed < 0.9, "appeals must not delay the request (the judge takes 1 s)"
        # a rule negative the judge decides in the request (judge: appeal) is its own appeal
        inline = client.post(
            "/v1/verify",
            json={"response": "\\boxed{x+3}", "reference": "x+2", "options": {"judge": "appeal"}},
        ).json()
        assert inline["stage"] == "judge" and inline["correct"] is True

        stats = wait_for_counts(client, "appeal", lambda c: c.get("appeals", 0) == 5)
        counts = group(stats, "appeal", "math", None)["counts"]
        # "7" vs "x+2" is not a hard negative (a symbol is involved): appealed too
        assert counts == {
            "appeals": 5,
            "overturned": 2,
            "upheld": 3,
            "rule_negatives": 5,
            "rule_positives": 2,
        }
        answers = sorted(p.answer or "" for p in fake_judge.prompts)
        assert answers == ["7", "x+1", "x+3", "x+4", "x+5"]
        expected = rule_fn_from_appeals(2, 5, 5, 2, judge_fp=0.05, judge_fn=0.1)
        fn = group(stats, "appeal", "math", None)["false_negative"]
        assert fn["value"] == pytest.approx(expected.value)
        assert (fn["lower"], fn["upper"]) == pytest.approx((expected.lower, expected.upper))
        assert group(stats, "appeal", "math", "alg")["counts"]["appeals"] == 4
        metrics = client.get("/metrics").text
        value = metric_value(metrics, "verifier_false_negative_rate", stage="math", source="appeal")
        assert value == pytest.approx(expected.value)
        assert (
            metric_value(
                metrics, "verifier_estimator_probes_total", source="appeal", outcome="overturned"
            )
            == 2
        )


def test_canaries_measure_judge_acceptance_of_known_wrong_answers(
    service_factory: Factory, fake_judge: FakeVLLMJudge
) -> None:
    fake_judge.always_correct()  # a judge that accepts anything it is shown
    service = service_factory(
        workers="1",
        judge_url=fake_judge.url,
        judge_model=fake_judge.model,
        appeal_fraction="0",
        canary_rate="1",
    )
    # far apart, so that no near miss of one is another's reference
    references = [str(1000 * k + 7) for k in range(1, 13)]
    items = [{"task": "judge", "response": f"\\boxed{{{r}}}", "reference": r} for r in references]
    with service.client() as client:
        results = client.post("/v1/verify/batch", json={"items": items}).json()["results"]
        assert all(r["stage"] == "judge" and r["correct"] for r in results)
        stats = wait_for_counts(client, "canary", lambda c: c.get("probes", 0) == len(items))
        entry = group(stats, "canary", "judge", None)
        counts = entry["counts"]
        canary_answers = [p.answer for p in fake_judge.prompts if p.answer not in references]
        # Near misses reach the judge and fool it; attack strings are stopped by the
        # answer guards (canaries are screened like real traffic).
        assert counts["accepted"] == len(canary_answers)
        assert counts["rejected"] == counts.get("attack_probes", 0)
        assert counts.get("attack_accepted", 0) == 0
        assert counts["accepted"] + counts["rejected"] == len(items)
        for answer in canary_answers:
            assert answer is not None and answer.lstrip("-").isdigit()
            assert answer not in references
        assert_rate(entry["false_positive"], counts["accepted"], len(items))
        # cached judge results are not judge traffic: no new canaries
        client.post("/v1/verify/batch", json={"items": items})
        time.sleep(0.3)
        again = group(client.get("/v1/stats").json(), "canary", "judge", None)["counts"]
        assert again["probes"] == len(items)
        metrics = client.get("/metrics").text
        value = metric_value(
            metrics, "verifier_false_positive_rate", stage="judge", source="canary"
        )
        assert value == pytest.approx(counts["accepted"] / len(items))


def test_verdicts_expire_after_their_ttl(
    service_factory: Factory, shared_redis_url: str, unique_prefix: str
) -> None:
    service = service_factory(
        workers="1", redis_url=shared_redis_url, redis_prefix=unique_prefix, verdict_ttl_s="1"
    )
    with service.client() as client:
        verify_all(client)
        fresh = client.post("/v1/feedback", json={"labels": [{"id": "a1", "correct": True}]})
        assert fresh.json()["recorded"] == 1
        time.sleep(3.2)  # TTL 1 s, stored in buckets of 1/12 TTL (at least 1 s) + one bucket
        stale = client.post("/v1/feedback", json={"labels": [{"id": "a2", "correct": True}]})
        assert stale.json()["unknown"] == ["a2"]
