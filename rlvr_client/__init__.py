"""Python client and trainer adapters for the rlvr-verifier service.

Imports only the standard library and httpx, so it installs cleanly next to
any trainer::

    from rlvr_client import VerifierClient
    with VerifierClient("http://verifier:8000") as client:
        client.verify("... so the answer is $\\boxed{\\frac{1}{3}}$.", "12/36").correct  # True

Trainer adapters live in `rlvr_client.integrations`: `TRLRewardFunction` /
`trl_reward_func` for TRL's ``GRPOTrainer`` and `compute_score` /
`compute_score_batch` (and async twins) for verl.
"""

from rlvr_client.client import (
    AsyncVerifierClient,
    RetryPolicy,
    VerifierClient,
    VerifierError,
    VerifierHTTPError,
    VerifierUnavailable,
    VerifyResult,
    make_item,
)
from rlvr_client.integrations import (
    TRLRewardFunction,
    compute_score,
    compute_score_async,
    compute_score_batch,
    compute_score_batch_async,
    trl_reward_func,
)
from rlvr_client.labels import LabelError, parse_label

__all__ = [
    "AsyncVerifierClient",
    "LabelError",
    "RetryPolicy",
    "TRLRewardFunction",
    "VerifierClient",
    "VerifierError",
    "VerifierHTTPError",
    "VerifierUnavailable",
    "VerifyResult",
    "compute_score",
    "compute_score_async",
    "compute_score_batch",
    "compute_score_batch_async",
    "make_item",
    "parse_label",
    "trl_reward_func",
]
