"""Which strings PostgreSQL can store: no NUL character, no lone surrogate.

``text`` and ``JSONB`` cannot hold U+0000 (a JSON ``"\\u0000"`` decodes to it), and a lone
surrogate (U+D800-U+DFFF, which Python's ``json`` reads from ``"\\ud800"``) has no UTF-8 form, so
either made the driver fail and the request a 500. Every path that stores a caller's string
checks it here, as the caller's 422 naming the record and field: the field rules
(``ingest.rules``, fast and slow path alike), feature values (``ingest.columns``,
``ingest.predictions``), ``extra`` (``ingest.fields``), reference files, CloudEvents, and every
JSON body a route declares (configs, events, Alertmanager notifications:
``api.routing.MonitorRoute``, before pydantic, which cannot read a lone surrogate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from monitor.errors import Problem, ValidationFailed

NUL = "\x00"
_NUL_PROBLEM = "must not contain the NUL character (U+0000)"
_SURROGATE_PROBLEM = "must not contain a lone surrogate (U+D800-U+DFFF)"


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store ``value``, or None."""
    if NUL in value:
        return _NUL_PROBLEM
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE_PROBLEM
    return None


def all_storable(values: Iterable[str | None]) -> bool:
    """Every string of a column storable: one join and one encode, for the column-wise path."""
    joined = "".join(v for v in values if v is not None)
    return text_problem(joined) is None


def json_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(path, problem)`` of the first key or string of a JSON value that cannot be stored;
    the path is dotted (``a.b.0``), prefixed with ``path``."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (path, problem) if problem else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            problem = text_problem(key) if isinstance(key, str) else None
            found = (where, f"key {problem}") if problem else json_problem(item, where)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = json_problem(item, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


def require_storable(doc: Any) -> None:
    """Refuse a whole JSON body (a model config, an event, an Alertmanager notification) that
    holds a string PostgreSQL cannot store, naming its path; checked before pydantic sees it
    (pydantic cannot even read a lone surrogate)."""
    found = json_problem(doc)
    if found:
        where, problem = found
        raise ValidationFailed(
            f"{where or 'body'} {problem}; nothing was stored", [Problem(problem, field=where)]
        )
