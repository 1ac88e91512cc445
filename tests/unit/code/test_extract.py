"""Code extraction from model responses."""

from __future__ import annotations

from verifiers.code.extract import extract_code, fenced_blocks


def test_last_python_block_wins() -> None:
    text = "First:\n```python\nprint(1)\n```\nBetter:\n```py\nprint(2)\n```\nDone."
    got = extract_code(text)
    assert got.code == "print(2)"
    assert got.language == "python"
    assert got.fenced


def test_example_output_block_after_code_is_skipped() -> None:
    text = "```python\nprint(input())\n```\nExample:\n```\n3\n```"
    assert extract_code(text).code == "print(input())"


def test_bare_block_defaults_to_python() -> None:
    got = extract_code("Here:\n```\nx = 1\nprint(x)\n```")
    assert got == extract_code("Here:\n```\nx = 1\nprint(x)\n```")
    assert got.code == "x = 1\nprint(x)"
    assert got.language == "python"


def test_cpp_fence_sets_language() -> None:
    got = extract_code("```c++\nint main(){}\n```")
    assert got.language == "cpp"
    assert got.code == "int main(){}"


def test_language_parameter_prefers_matching_block() -> None:
    text = "```cpp\nint main(){}\n```\n```python\nprint(1)\n```"
    assert extract_code(text, "cpp").code == "int main(){}"
    assert extract_code(text, "cpp").language == "cpp"
    assert extract_code(text).code == "print(1)"


def test_no_fence_takes_whole_response() -> None:
    got = extract_code("def f(x):\n    return x\n")
    assert got.code == "def f(x):\n    return x"
    assert not got.fenced
    assert got.language == "python"


def test_unclosed_fence_runs_to_end() -> None:
    assert extract_code("```python\nprint(1)\nprint(2)").code == "print(1)\nprint(2)"


def test_unsupported_tag_is_reported_as_such() -> None:
    got = extract_code("```java\nclass A {}\n```")
    assert got.language == "java"


def test_longer_fences_and_crlf() -> None:
    text = "````python\r\nprint('```')\r\n````\r\n"
    assert extract_code(text).code == "print('```')"


def test_fenced_blocks_lists_all() -> None:
    blocks = fenced_blocks("```python\na\n```\ntext\n~~~\nb\n~~~\n")
    assert [(b.tag, b.code) for b in blocks] == [("python", "a"), ("", "b")]
