"""verl custom reward function backed by the verification service.

Point verl at this file (naive reward manager, or the reward loop):

    custom_reward_function.path=examples/verl_compute_score.py
    custom_reward_function.name=compute_score
    +custom_reward_function.reward_kwargs.url=http://verifier:8000

For ``reward_model.reward_manager=batch`` use ``custom_reward_function.name=compute_score_batch``
(verl then calls it with ``data_sources=``, ``solution_strs=``, ``ground_truths=``,
``extra_infos=``). The async twins (``compute_score_async``, ``compute_score_batch_async``)
are awaited on verl's reward loop instead of running in a thread.

``reward_model.ground_truth`` may be the plain answer or a JSON task spec, e.g.
``{"task": "code", "tests": {"kind": "stdin", "cases": [...]}}``. Every sample gets a
dict: ``score`` (0.0 when the verifier abstained), ``acc``, ``abstained``, ``cached``,
``reason``, ``stage``; verl logs the extra keys as ``reward_extra_info``.

Run directly, it scores three samples against a live service (no verl needed):

    RLVR_VERIFIER_URL=http://127.0.0.1:8000 python examples/verl_compute_score.py
"""

from __future__ import annotations

import json

from rlvr_client.integrations import (
    compute_score,
    compute_score_async,
    compute_score_batch,
    compute_score_batch_async,
)

__all__ = [
    "compute_score",
    "compute_score_async",
    "compute_score_batch",
    "compute_score_batch_async",
]


def main() -> None:
    # Exactly how verl's naive reward manager calls it (keywords, plus its own extras).
    single = compute_score(
        data_source="openai/gsm8k",
        solution_str="Natalia sold 48 + 24 = 72 clips, so the answer is $\\boxed{72}$.",
        ground_truth="72",
        extra_info={"split": "train", "index": 0},
    )
    print(json.dumps(single))
    # And how the batch reward manager calls the batch form.
    batch = compute_score_batch(
        data_sources=["lighteval/MATH", "codecontests"],
        solution_strs=[
            "So the probability is \\boxed{\\frac{1}{3}}.",
            "```python\nprint(sum(map(int, input().split())))\n```",
        ],
        ground_truths=[
            "12/36",
            json.dumps(
                {
                    "task": "code",
                    "tests": {"kind": "stdin", "cases": [{"input": "1 2\n", "output": "3\n"}]},
                }
            ),
        ],
        extra_infos=[{}, {}],
    )
    for row in batch:
        print(json.dumps(row))
    scores = [single["score"], *(row["score"] for row in batch)]
    if scores != [1.0, 1.0, 1.0]:
        raise SystemExit(f"unexpected scores {scores}")


if __name__ == "__main__":
    main()
