"""What a model, feature, variant or version name may look like.

Names end up in URLs, Prometheus label values and Grafana variables, so they are kept to a
conservative alphabet; nothing here is ever interpolated into SQL.

Patterns are matched with ``fullmatch``: with ``re.match``, Python's ``$`` also matches before a
trailing newline, so ``"fraud\\n"`` passed. The pattern text keeps ``^...$`` because it is also
the OpenAPI ``pattern`` (ECMA-262) and pydantic's (Rust ``regex``), where ``$`` is the end of
the text.
"""

from __future__ import annotations

import re

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
FEATURE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-:/]{0,127}$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.\-+:/]{0,64}$")


def model_name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return "must be a string"
    if not MODEL_NAME.fullmatch(name):
        return (
            "must be 1-128 characters of letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return None


def feature_name_problem(name: str) -> str | None:
    if not FEATURE_NAME.fullmatch(name):
        return "feature names must be 1-128 characters of letters, digits, '_', '.', '-', ':', '/'"
    return None


def label_value_problem(value: str) -> str | None:
    """For model_version, variant and status: they become Prometheus label values."""
    if not LABEL_VALUE.fullmatch(value):
        return "must be at most 64 characters of letters, digits, '_', '.', '-', '+', ':', '/'"
    return None
