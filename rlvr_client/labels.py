"""Turn a trainer's label (a plain answer or a JSON task spec) into item fields.

Trainers carry one "label" / "ground truth" value per prompt. It is either the
plain reference answer (``"12/36"``, ``42``) or a JSON object that selects the
task and carries what the task needs::

    {"reference": "4"}
    {"task": "code", "tests": {"kind": "stdin", "cases": [...]}, "language": "python"}
    {"answer": "Paris", "question": "Capital of France?", "task": "judge"}

Standard library only: the service parses compat-route labels with the same
function, so a label means the same thing on both sides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Item fields a label object may set (everything but the response itself).
SPEC_KEYS = frozenset(
    {"reference", "task", "tests", "language", "question", "domain", "options", "id"}
)
#: Other names datasets use for the reference answer.
REFERENCE_ALIASES = frozenset({"answer", "ground_truth", "expected_answer", "solution", "label"})


class LabelError(ValueError):
    """A label that is neither a plain answer nor a valid task spec."""


def _is_spec(candidate: Mapping[str, Any]) -> bool:
    return any(key in SPEC_KEYS or key in REFERENCE_ALIASES for key in candidate)


def _from_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    unknown = sorted(
        str(key) for key in spec if key not in SPEC_KEYS and key not in REFERENCE_ALIASES
    )
    if unknown:
        raise LabelError(
            f"unknown label key(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(SPEC_KEYS | REFERENCE_ALIASES))}"
        )
    aliases = [key for key in spec if key in REFERENCE_ALIASES]
    if len(aliases) + ("reference" in spec) > 1:
        raise LabelError("the label names the reference more than once")
    for key, value in spec.items():
        name = "reference" if key in REFERENCE_ALIASES else str(key)
        if name == "reference":
            value = _reference_text(value)
        fields[name] = value
    return fields


def _reference_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise LabelError("a reference must be text or a number, not a boolean")
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise LabelError(f"a reference must be text or a number, not {type(value).__name__}")


def parse_label(label: Any) -> dict[str, Any]:
    """Item fields for a label; never contains ``response``.

    * ``None`` -> ``{"reference": ""}``.
    * A number -> its text as the reference.
    * A mapping, or a string holding a JSON object, with at least one known key
      (`SPEC_KEYS`, or a reference alias such as ``answer``) -> those fields;
      an unknown key next to known ones raises `LabelError` (a typo such as
      ``test`` must not silently turn a code task into a math one).
    * Any other string (including ``{1, 2}`` or a JSON object with no known
      key) -> the plain reference answer, unchanged.

    Raises `LabelError` for booleans, lists and unusable mappings.
    """
    if label is None:
        return {"reference": ""}
    if isinstance(label, str):
        text = label.strip()
        if text.startswith("{") and text.endswith("}"):
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict) and _is_spec(decoded):
                return _from_spec(decoded)
        return {"reference": label}
    if isinstance(label, Mapping):
        if not _is_spec(label):
            raise LabelError(
                "a label object needs at least one of: "
                f"{', '.join(sorted(SPEC_KEYS | REFERENCE_ALIASES))}"
            )
        return _from_spec(label)
    return {"reference": _reference_text(label)}
