"""`rlvr-verifier judge-server` builds the vLLM command the judge client relies on."""

from __future__ import annotations

import shutil

import pytest

from service.cli import build_judge_command, build_parser, main


def command_for(*argv: str) -> list[str]:
    return build_judge_command(build_parser().parse_args(["judge-server", *argv]))


def test_command_has_the_settings_the_client_needs() -> None:
    command = command_for("--model", "Qwen/Qwen2.5-7B-Instruct", "--port", "9001")
    assert command[:3] == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    assert "--enable-prefix-caching" in command
    assert command[command.index("--max-logprobs") + 1] == "20"
    assert command[command.index("--port") + 1] == "9001"
    assert command[command.index("--served-model-name") + 1] == "Qwen/Qwen2.5-7B-Instruct"


def test_served_name_api_key_and_extra_arguments() -> None:
    command = command_for(
        "--model",
        "/models/judge",
        "--served-model-name",
        "judge",
        "--api-key",
        "s3cret",
        "--tensor-parallel-size",
        "2",
        "--",
        "--dtype",
        "bfloat16",
    )
    assert command[command.index("--served-model-name") + 1] == "judge"
    assert command[command.index("--api-key") + 1] == "s3cret"
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    assert command[-2:] == ["--dtype", "bfloat16"] and "--" not in command


def test_dry_run_prints_and_missing_vllm_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["judge-server", "--model", "m", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("vllm serve m ")
    if shutil.which("vllm") is None:
        assert main(["judge-server", "--model", "m"]) == 2
        assert "not installed" in capsys.readouterr().err
