"""Is the port free? Checked before anything starts, so a clash is one line, not a traceback."""

from __future__ import annotations

import errno
import socket

from monitor.errors import ConfigError


class PortInUse(ConfigError):
    """Another process listens on the address ``monitor serve`` or ``monitor demo`` wants."""


def ensure_port_free(host: str, port: int, *, option: str = "--port") -> None:
    """Raise ``PortInUse`` when ``host:port`` cannot be bound (bound like uvicorn binds it)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            raise PortInUse(
                f"port {port} on {host} is already in use; choose another with {option} PORT"
            ) from exc
