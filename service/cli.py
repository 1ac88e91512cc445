"""``rlvr-verifier``: the same verbs as the API, for people.

rlvr-verifier serve [--host H] [--port P]
rlvr-verifier verify --response R --reference G
rlvr-verifier eval FILE.jsonl [--json] [--no-judge] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

EVAL_CHUNK = 256


def _serve(args: argparse.Namespace) -> int:
    import tempfile

    import uvicorn

    from service.settings import Settings

    if args.workers > 1 and not Settings().redis_url:
        print(
            f"warning: {args.workers} worker processes without VERIFIER_REDIS_URL: jobs, "
            "feedback records and caches stay inside the process that made them, so a job "
            "polled on another process is not found; set VERIFIER_REDIS_URL to share them",
            file=sys.stderr,
        )
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus-client's multiprocess mode: every worker writes here and
        # /metrics aggregates, so counters are not per-process.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rlvr-metrics-")

    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        workers=args.workers,
        timeout_graceful_shutdown=10,
        # closes connections whose request headers do not arrive in time (slowloris)
        http="service.httpserver:GuardedHttpToolsProtocol",
    )
    return 0


def _make_service(no_judge: bool) -> Any:
    from service.settings import Settings
    from service.verification import VerificationService

    overrides: dict[str, Any] = {"judge_url": ""} if no_judge else {}
    return VerificationService(Settings(**overrides))


async def _verify_one(args: argparse.Namespace) -> dict[str, Any]:
    from service.schemas import VerifyItem, VerifyOptions

    service = _make_service(args.no_judge)
    await service.start()
    try:
        item = VerifyItem(
            response=args.response,
            reference=args.reference,
            question=args.question,
            task=args.task,
            options=VerifyOptions(judge=args.judge),
        )
        (result,) = await service.verify_items([item], "cli")
        return result.model_dump()
    finally:
        await service.close()


def _verify(args: argparse.Namespace) -> int:
    result = asyncio.run(_verify_one(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, json.loads(line)


async def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from service.schemas import VerifyItem

    rows = list(_read_jsonl(Path(args.file)))
    items: list[VerifyItem] = []
    expected: list[bool | None] = []
    for number, row in rows:
        try:
            items.append(
                VerifyItem(
                    id=str(row.get("id", number)),
                    response=str(row["response"]),
                    reference=str(row.get("reference", "")),
                    question=row.get("question"),
                    task=row.get("task", "auto"),
                    tests=row.get("tests"),
                )
            )
        except (KeyError, ValidationError) as exc:
            raise SystemExit(f"{args.file}:{number}: invalid line: {exc}") from exc
        value = row.get("expected")
        expected.append(None if value is None else bool(value))

    service = _make_service(args.no_judge)
    await service.start()
    started = time.perf_counter()
    results = []
    try:
        with tqdm(
            total=len(items),
            file=sys.stderr,
            disable=args.json and not sys.stderr.isatty(),
            unit="item",
        ) as bar:
            for offset in range(0, len(items), EVAL_CHUNK):
                chunk = items[offset : offset + EVAL_CHUNK]
                results.extend(await service.verify_items(chunk, "cli"))
                bar.update(len(chunk))
    finally:
        await service.close()
    seconds = time.perf_counter() - started

    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            for result, want in zip(results, expected, strict=True):
                out.write(json.dumps({**result.model_dump(), "expected": want}) + "\n")

    labelled = [(r, e) for r, e in zip(results, expected, strict=True) if e is not None]
    positives = [r for r, e in labelled if e]
    negatives = [r for r, e in labelled if not e]
    right = sum(1 for r, e in labelled if (r.correct is True) == e)
    return {
        "n": len(results),
        "labelled": len(labelled),
        "accuracy": right / len(labelled) if labelled else None,
        "false_negative_rate": (
            sum(1 for r in positives if r.correct is not True) / len(positives)
            if positives
            else None
        ),
        "false_positive_rate": (
            sum(1 for r in negatives if r.correct is True) / len(negatives) if negatives else None
        ),
        "abstain_rate": sum(1 for r in results if r.correct is None) / len(results)
        if results
        else 0.0,
        "seconds": round(seconds, 3),
    }


def _eval(args: argparse.Namespace) -> int:
    report = asyncio.run(_evaluate(args))
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            print(f"{key:>20}: {shown}")
    return 0


def _batch_item(row: dict[str, Any]) -> dict[str, Any]:
    """An input line: a VerifyItem, or an OpenAI Batch line (`custom_id` + `body`)."""
    if "body" in row and "custom_id" in row:
        return {**row["body"], "id": str(row["custom_id"])}
    return row


def _finished_lines(out: Path) -> int:
    """Complete result lines already in `out`; a torn last line is cut off."""
    if not out.exists():
        return 0
    data = out.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        with out.open("r+b") as handle:
            handle.truncate(complete)
    return data[:complete].count(b"\n")


async def _run_batch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.schemas import VerifyItem

    source, out = Path(args.file), Path(args.out)
    rows = [_batch_item(row) for _, row in _read_jsonl(source)]
    done = _finished_lines(out)
    if done > len(rows):
        raise SystemExit(
            f"{out} has {done} lines but {source} only {len(rows)}: wrong output file?"
        )
    for number, row in enumerate(rows, 1):
        try:
            VerifyItem.model_validate(row)
        except ValidationError as exc:
            raise SystemExit(f"{source}:{number}: invalid item: {exc}") from exc

    async def verify_local(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert service is not None
        items = [VerifyItem.model_validate(row) for row in chunk]
        return [r.model_dump() for r in await service.verify_items(items, "cli")]

    async def verify_remote(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for attempt in range(5):
            try:
                response = await http.post("/v1/verify/batch", json={"items": chunk})
                if response.status_code < 500:
                    response.raise_for_status()
                    results: list[dict[str, Any]] = response.json()["results"]
                    return results
            except httpx.TransportError:
                if attempt == 4:
                    raise
            await asyncio.sleep(0.5 * 2**attempt)
        response.raise_for_status()
        raise AssertionError("unreachable")

    import httpx

    service = None
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    http = httpx.AsyncClient(base_url=args.url or "http://unused", timeout=600, headers=headers)
    if args.url is None:
        service = _make_service(args.no_judge)
        await service.start()
    verify = verify_local if service is not None else verify_remote
    try:
        with (
            out.open("a", encoding="utf-8") as sink,
            tqdm(total=len(rows), initial=done, file=sys.stderr, unit="item") as bar,
        ):
            for offset in range(done, len(rows), args.chunk):
                chunk = rows[offset : offset + args.chunk]
                for result in await verify(chunk):
                    sink.write(json.dumps(result, ensure_ascii=False) + "\n")
                sink.flush()
                bar.update(len(chunk))
    finally:
        await http.aclose()
        if service is not None:
            await service.close()
    return 0


def _batch(args: argparse.Namespace) -> int:
    return asyncio.run(_run_batch(args))


def build_judge_command(args: argparse.Namespace) -> list[str]:
    """The `vllm serve` command line the judge client relies on.

    Prefix caching (every request shares the system prompt), enough
    ``--max-logprobs`` for the client's ``top_logprobs``, a served model name
    matching ``VERIFIER_JUDGE_MODEL``, and no chain-of-thought: the client
    asks for one constrained token via ``structured_outputs``.
    """
    command = [
        "vllm",
        "serve",
        args.model,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--served-model-name",
        args.served_model_name or args.model,
        "--enable-prefix-caching",
        "--max-logprobs",
        str(args.max_logprobs),
        "--max-model-len",
        str(args.max_model_len),
        "--gpu-memory-utilization",
        str(args.gpu_memory_utilization),
        "--tensor-parallel-size",
        str(args.tensor_parallel_size),
        "--generation-config",
        "vllm",
    ]
    if args.api_key:
        command += ["--api-key", args.api_key]
    extra = list(args.extra)
    return command + (extra[1:] if extra[:1] == ["--"] else extra)


def _judge_server(args: argparse.Namespace) -> int:
    import shutil

    command = build_judge_command(args)
    if args.dry_run:
        print(" ".join(command))
        return 0
    if shutil.which("vllm") is None:
        print(
            "vLLM is not installed here. On a GPU machine: pip install 'rlvr-verifier[judge]'",
            file=sys.stderr,
        )
        return 2
    os.execvp(command[0], command)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlvr-verifier",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True)

    serve = verbs.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    verify = verbs.add_parser("verify", help="verify one response, print the verdict as JSON")
    verify.add_argument("--response", required=True)
    verify.add_argument("--reference", required=True)
    verify.add_argument("--question")
    verify.add_argument("--task", default="auto", choices=["auto", "math", "code", "judge"])
    verify.add_argument("--judge", choices=["off", "fallback", "appeal", "always"])
    verify.add_argument("--no-judge", action="store_true", help="ignore VERIFIER_JUDGE_URL")
    verify.set_defaults(run=_verify)

    evaluate = verbs.add_parser("eval", help="accuracy / FN / FP on a labelled JSONL file")
    evaluate.add_argument("file", help="lines of {response, reference, expected, question?, task?}")
    evaluate.add_argument("--json", action="store_true", help="print exactly one JSON object")
    evaluate.add_argument("--no-judge", action="store_true", help="rules only")
    evaluate.add_argument("--out", help="write per-line results here (JSONL)")
    evaluate.set_defaults(run=_eval)

    batch = verbs.add_parser(
        "batch", help="verify a JSONL file; resumes an interrupted run without redoing lines"
    )
    batch.add_argument(
        "file", help="lines of verify items, or OpenAI Batch lines (custom_id, body)"
    )
    batch.add_argument("-o", "--out", required=True, help="results, one JSON line per input line")
    batch.add_argument("--url", help="a running service; default: verify in this process")
    batch.add_argument("--api-key", default=os.environ.get("VERIFIER_API_KEY"))
    batch.add_argument("--chunk", type=int, default=256, help="items per request")
    batch.add_argument("--no-judge", action="store_true", help="in-process: ignore the judge URL")
    batch.set_defaults(run=_batch)

    judge = verbs.add_parser("judge-server", help="start a vLLM judge server (needs a GPU)")
    judge.add_argument("--model", required=True, help="e.g. opencompass/CompassVerifier-7B")
    judge.add_argument("--served-model-name", help="name clients use (VERIFIER_JUDGE_MODEL)")
    judge.add_argument("--host", default="0.0.0.0")
    judge.add_argument("--port", type=int, default=8001)
    judge.add_argument("--max-logprobs", type=int, default=20)
    judge.add_argument("--max-model-len", type=int, default=8192)
    judge.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    judge.add_argument("--tensor-parallel-size", type=int, default=1)
    judge.add_argument("--api-key", default=os.environ.get("VERIFIER_JUDGE_API_KEY"))
    judge.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    judge.add_argument("extra", nargs=argparse.REMAINDER, help="passed on to `vllm serve`")
    judge.set_defaults(run=_judge_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
