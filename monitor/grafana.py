"""Push ml-monitor's datasource, folder, dashboards and alert rules to a Grafana server.

Everything is create-or-update by a fixed uid, so running it again changes nothing but
versions. Errors of grafana-client and of the HTTP transport become:

    MonitorError
     └── GrafanaError              Grafana answered, but not with what we need (4xx)
          ├── GrafanaAuthError     401 / 403: token missing, wrong or without rights
          └── GrafanaUnavailable   not reachable, timed out, or 5xx
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from monitor.alerts.grafana_managed import GROUP, rule_group
from monitor.dashboards import all_dashboards
from monitor.dashboards.panels import PROMETHEUS_NAME, PROMETHEUS_UID
from monitor.errors import MonitorError

T = TypeVar("T")
Client = Any
"""A ``GrafanaApi``; grafana-client has no type annotations, so it is ``Any`` at this boundary."""
DEFAULT_TIMEOUT = 10.0


class GrafanaError(MonitorError):
    """Grafana refused a request ml-monitor needs."""


class GrafanaAuthError(GrafanaError):
    """Grafana did not accept the credentials, or they lack a permission."""


class GrafanaUnavailable(GrafanaError):
    """Grafana could not be reached, timed out or failed (5xx)."""


@contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except GrafanaUnauthorizedError as exc:
        raise GrafanaAuthError(f"{action}: Grafana refused the credentials (401)") from exc
    except GrafanaClientError as exc:
        if exc.status_code == 403:
            raise GrafanaAuthError(f"{action}: forbidden (403): {exc.message}") from exc
        raise GrafanaError(f"{action}: {exc.message}") from exc
    except (GrafanaServerError, GrafanaTimeoutError) as exc:
        raise GrafanaUnavailable(f"{action}: {exc.message}") from exc
    except GrafanaException as exc:
        raise GrafanaUnavailable(f"{action}: cannot reach Grafana: {exc.message}") from exc
    except OSError as exc:  # transport errors grafana-client lets through
        raise GrafanaUnavailable(f"{action}: cannot reach Grafana: {exc}") from exc
    except ValueError as exc:  # an answer that is not JSON
        raise GrafanaError(f"{action}: unexpected answer from Grafana: {exc}") from exc


def _get_or_none(action: str, get: Callable[[], T]) -> T | None:
    """``get()``, or None where Grafana answers 404."""
    with _translated(action):
        try:
            return get()
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise


def folder_uid(title: str) -> str:
    """A stable folder uid from its title: ``ML Monitor`` -> ``ml-monitor``."""
    uid = re.sub(r"[^a-z0-9_-]+", "-", title.lower()).strip("-")[:40]
    if not uid:
        raise GrafanaError(f"folder title {title!r} gives no usable uid")
    return uid


def ensure_datasource(api: Client, prometheus_url: str) -> str:
    body = {
        "uid": PROMETHEUS_UID,
        "name": PROMETHEUS_NAME,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }
    action = f"datasource {PROMETHEUS_UID}"
    found = _get_or_none(action, lambda: api.datasource.get_datasource_by_uid(PROMETHEUS_UID))
    with _translated(action):
        if found is None:
            api.datasource.create_datasource(body)
            return "created"
        api.datasource.update_datasource_by_uid(PROMETHEUS_UID, body)
        return "updated"


def ensure_folder(api: Client, title: str) -> tuple[str, str]:
    uid = folder_uid(title)
    action = f"folder {uid}"
    found: dict[str, Any] | None = _get_or_none(action, lambda: api.folder.get_folder(uid))
    with _translated(action):
        if found is None:
            api.folder.create_folder(title, uid=uid)
            return uid, "created"
        if found.get("title") != title:
            api.folder.update_folder(uid, title=title, overwrite=True)
            return uid, "renamed"
        return uid, "kept"


def push_dashboards(api: Client, folder: str) -> int:
    dashboards = all_dashboards()
    for dashboard in dashboards.values():
        body = {
            "dashboard": dashboard,
            "folderUid": folder,
            "overwrite": True,
            "message": "provisioned by monitor grafana provision",
        }
        with _translated(f"dashboard {dashboard['uid']}"):
            api.dashboard.update_dashboard(body)
    return len(dashboards)


def push_alert_rules(api: Client, folder: str) -> int:
    body = rule_group(folder, PROMETHEUS_UID)
    with _translated(f"alert rule group {GROUP}"):
        api.alertingprovisioning.update_rule_group(folder, GROUP, body)
    return len(body["rules"])


def connect(url: str, token: str | None, timeout: float = DEFAULT_TIMEOUT) -> Client:
    """A client for ``url`` (``http://user:pass@host:3000`` works too) with a bearer ``token``."""
    if not re.match(r"^https?://[^/]", url):
        raise GrafanaError(f"Grafana URL must start with http:// or https://, not {url!r}")
    client: Client = GrafanaApi.from_url
    return client(url, credential=token, timeout=timeout)


def provision(
    url: str,
    token: str | None,
    prometheus_url: str,
    folder: str,
    *,
    api: Client | None = None,
) -> str:
    """Create or update the Prometheus datasource, the folder, every dashboard and the
    Grafana-managed alert rule group; return a one-line summary."""
    api = api or connect(url, token)
    datasource = ensure_datasource(api, prometheus_url)
    uid, folder_state = ensure_folder(api, folder)
    dashboards = push_dashboards(api, uid)
    rules = push_alert_rules(api, uid)
    return (
        f"Grafana {url}: datasource {PROMETHEUS_UID} {datasource}, folder {uid} {folder_state}, "
        f"{dashboards} dashboards saved, {rules} alert rules in group {GROUP}"
    )
