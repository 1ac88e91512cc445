"""Code sandbox stage: run a response's program against test cases.

Public surface::

    from verifiers.code import (
        CodeVerifier, SandboxLimits, TestSpecError, supported_languages, sandbox_available,
    )

* `CodeVerifier.verify(response, tests, language=None, *, all_or_nothing=False)`
  -> `Verdict` (stage "code"). Test formats: ``stdin`` (stdin/stdout cases),
  ``functional`` (``fn_name`` called with argument lists, also as a method of
  ``class Solution``) and ``assert`` (HumanEval ``check(candidate)`` with an
  ``entry_point``, or MBPP-style assert lines).
* `SandboxLimits` - CPU/wall time per case, memory, processes, output, file
  size, open files, and a cap on the whole submission.
* `TestSpecError` (a ValueError) - malformed tests or unsupported language.
* `supported_languages()` - "python", plus "cpp" when g++ is installed.
* `sandbox_available()` - (ok, detail): whether bubblewrap works here.
"""

from verifiers.code.languages import supported_languages
from verifiers.code.limits import SandboxLimits
from verifiers.code.sandbox import sandbox_available
from verifiers.code.spec import TestSpecError
from verifiers.code.verifier import CodeVerifier

__all__ = [
    "CodeVerifier",
    "SandboxLimits",
    "TestSpecError",
    "sandbox_available",
    "supported_languages",
]
