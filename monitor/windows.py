"""Window names (``15m``, ``1h``, ``24h``, ``7d``, ``2w``): the Prometheus ``window`` label."""

from __future__ import annotations

import re
from datetime import timedelta

_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([mhdw])$")
WINDOW_PATTERN = _WINDOW.pattern  # for OpenAPI / JSON Schema
_UNIT = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def parse_window(name: str) -> timedelta:
    match = _WINDOW.fullmatch(name)
    if not match:
        raise ValueError(f"window {name!r} must look like 15m, 1h, 24h, 7d or 2w")
    return int(match.group(1)) * _UNIT[match.group(2)]
