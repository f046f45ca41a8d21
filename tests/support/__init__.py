"""Test support: real Prometheus and Alertmanager processes (``promstack``) and the Grafana 11.6
JSON schemas (``grafana_schema``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]


def grafana_schemas_dir() -> Path:
    """``$MONITOR_GRAFANA_SCHEMAS``, else ``../shared/grafana`` next to the repository (CI)."""
    return Path(os.environ.get("MONITOR_GRAFANA_SCHEMAS", REPO / ".." / "shared" / "grafana"))


def grafana_schema(name: str, definition: str | None = None) -> jsonschema.Draft7Validator:
    """A validator for ``<name>.jsonschema.json``, rooted at ``#/definitions/<definition>``."""
    path = grafana_schemas_dir() / f"{name}.jsonschema.json"
    if not path.exists():
        message = (
            f"Grafana schema {path} not found: set MONITOR_GRAFANA_SCHEMAS to a folder of "
            "Grafana 11.6 JSON schemas (grafana-foundation-sdk's jsonschema/)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has them beside the checkout: never skip there
        pytest.skip(message)
    document = json.loads(path.read_text())
    if definition:
        document = {**document, "$ref": f"#/definitions/{definition}"}
    return jsonschema.Draft7Validator(document)
