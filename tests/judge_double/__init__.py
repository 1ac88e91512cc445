"""Test doubles for the LLM judge: `FakeVLLMJudge`, a real HTTP server that
speaks vLLM's OpenAI-compatible wire format (see `server`), and pytest
fixtures that run it (see `fixtures`)."""

from tests.judge_double.server import FakeVLLMJudge, ParsedPrompt, RecordedRequest, free_port_url

__all__ = ["FakeVLLMJudge", "ParsedPrompt", "RecordedRequest", "free_port_url"]
