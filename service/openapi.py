"""Print the OpenAPI document of the app (``make openapi`` commits it)."""

from __future__ import annotations

import json
import sys

from service.app import create_app
from service.settings import Settings


def document() -> dict[str, object]:
    """The OpenAPI document for default settings (no pools are started)."""
    return create_app(Settings()).openapi()


def main() -> None:
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
