"""rlvr-verifier: the verification library (no HTTP, no Redis).

Public surface:

* `Verdict`, `Stage`, `Reason` - the result type shared by every stage.
* `extract_final_answer` - final answer from a chain-of-thought response.
* `math` - normalisation and equivalence of math answers.
* `WorkerPool` - bounded, killable worker processes for untrusted parsing.
"""

from verifiers.verdict import VERIFIER_VERSION, Reason, Stage, Verdict

__all__ = ["VERIFIER_VERSION", "Reason", "Stage", "Verdict"]
