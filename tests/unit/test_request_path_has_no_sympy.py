"""Every sympy call is bounded because none happens in the serving process:
sympy is only ever imported by worker processes (verifiers/pool.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    r"""
    import asyncio, sys
    from service.settings import Settings
    from service.verification import VerificationService
    from service.schemas import VerifyItem

    async def main():
        service = VerificationService(Settings(workers=1))
        await service.start()
        items = [
            VerifyItem(response="so \\boxed{\\frac{x^2-1}{x-1}}", reference="x+1"),
            VerifyItem(response="The answer is 0.5", reference="\\frac{1}{2}"),
            VerifyItem(response="\\boxed{(1,2) \\cup [3,4)}", reference="x<2"),
        ] + [VerifyItem(response=f"\\boxed{{\\sqrt{{{k*k}}}}}", reference=str(k)) for k in range(70)]
        results = await service.verify_items(items, "test")
        await service.close()
        assert results[0].correct is True and results[1].correct is True, results[:2]
        assert all(r.correct is True for r in results[3:]), [r for r in results[3:] if not r.correct]
        print("sympy" in sys.modules, "latex2sympy2_extended" in sys.modules)

    asyncio.run(main())
    """
)


def test_serving_process_never_imports_sympy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
