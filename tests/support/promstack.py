"""Real Prometheus and Alertmanager processes for tests, on free loopback ports in a tmp dir.

    with start_alertmanager(tmp_path, alertmanager_yaml) as am:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "ml-monitor", "static_configs": [{"targets": [svc]}]}],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am.address]}]}]},
        }
        with start_prometheus(tmp_path, config, [rules_file]) as prom:
            prom.query("up")                      # instant query -> result list
            am.get("/api/v2/alerts").json()
    # or: handle = start_alertmanager(...); request.addfinalizer(handle.stop)

Every start waits (bounded) until ``/-/ready`` answers and kills the process if it does not;
``Handle.stop()`` terminates, then kills, and is safe to call twice. A missing binary skips the
test with a loud reason (``require``); CI installs them, so there they always run.

Binaries are found on PATH under their upstream or Debian names, or through the environment:
``PROMETHEUS_BIN``, ``PROMTOOL_BIN``, ``ALERTMANAGER_BIN``, ``AMTOOL_BIN``.

Also here: ``backfill_openmetrics`` (``promtool tsdb create-blocks-from openmetrics``) and
``synthetic_openmetrics``, a few hours of every series ml-monitor, dcgm-exporter and vLLM export,
so PromQL can be checked against data with ``start_prometheus(..., storage=...)``.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

_NAMES = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("alertmanager", "prometheus-alertmanager"),
    "amtool": ("amtool",),
}
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def binary(name: str) -> str | None:
    """Path of ``prometheus``, ``promtool``, ``alertmanager`` or ``amtool``, or None."""
    override = os.environ.get(f"{name.upper()}_BIN")
    if override:
        return override
    for candidate in _NAMES[name]:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def require(name: str) -> str:
    """The binary's path, or skip the calling test, saying loudly what is missing."""
    found = binary(name)
    if found is None:
        pytest.skip(
            f"!!! {name} NOT INSTALLED: this test needs the real binary "
            f"(apt-get install prometheus prometheus-alertmanager, or set {name.upper()}_BIN)"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Handle:
    """A running server: its base ``url``, its ``workdir`` and log, and ``stop()``."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log_path: Path
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, timeout=10.0)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as Prometheus' ``alerting`` and scrape configs want it."""
        return self.url.removeprefix("http://")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._client.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self._client.post(path, **kwargs)

    def query(self, expr: str, at: float | None = None) -> list[Any]:
        """Prometheus instant query at ``at`` (default now): the result list; a failed query
        fails the test with Prometheus' error."""
        params: dict[str, Any] = {"query": expr} if at is None else {"query": expr, "time": at}
        return _result(expr, self.get("/api/v1/query", params=params))

    def query_range(self, expr: str, start: float, end: float, step: float = 60) -> list[Any]:
        """Prometheus range query: the result list (matrix)."""
        params = {"query": expr, "start": start, "end": end, "step": step}
        return _result(expr, self.get("/api/v1/query_range", params=params))

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        self._client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _result(expr: str, response: httpx.Response) -> list[Any]:
    body = response.json()
    if body.get("status") != "success":
        pytest.fail(f"Prometheus could not evaluate {expr}:\n{body}")
    result: list[Any] = body["data"]["result"]
    return result


def _wait_ready(handle: Handle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            break
        try:
            if handle.get("/-/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    handle.stop()
    raise RuntimeError(f"{handle.url} did not become ready in {timeout}s:\n{handle.logs()[-4000:]}")


def _start(
    workdir: Path, command: Callable[[int], list[str]], timeout: float, attempts: int = 3
) -> Handle:
    """Start on a free port; retry on another port if the first one was taken meanwhile."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    for attempt in range(attempts):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command(port), cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )
        handle = Handle(f"http://127.0.0.1:{port}", process, workdir, log_path)
        try:
            _wait_ready(handle, timeout)
        except RuntimeError:
            if attempt == attempts - 1 or "address already in use" not in handle.logs():
                raise
            continue
        return handle
    raise AssertionError("unreachable")


def _config_text(config: str | Mapping[str, Any]) -> dict[str, Any]:
    loaded = yaml.safe_load(config) if isinstance(config, str) else dict(config)
    return dict(loaded or {})


def start_prometheus(
    tmp_path: Path,
    config: str | Mapping[str, Any] | None = None,
    rule_files: Sequence[Path] = (),
    *,
    storage: Path | None = None,
    alert_resend_delay: str = "1s",
    extra_args: Sequence[str] = (),
    timeout: float = READY_TIMEOUT,
) -> Handle:
    """Prometheus on 127.0.0.1 with ``config`` (YAML text or a mapping; ``rule_files`` are
    appended to its ``rule_files``) and ``storage`` as TSDB (default: an empty dir).

    Prometheus finds its Alertmanagers a few seconds after start and drops alerts until then;
    ``alert_resend_delay`` (Prometheus' default is 1m) makes it send them again soon after."""
    exe = require("prometheus")
    workdir = tmp_path / f"prometheus-{free_port()}"
    workdir.mkdir(parents=True)
    settings = _config_text(config or {})
    settings["rule_files"] = [*settings.get("rule_files", []), *map(str, rule_files)]
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(settings))
    data = storage or workdir / "data"

    def command(port: int) -> list[str]:
        return [
            exe,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            f"--rules.alert.resend-delay={alert_resend_delay}",
            *extra_args,
        ]

    return _start(workdir, command, timeout)


def start_alertmanager(
    tmp_path: Path,
    config: str | Mapping[str, Any],
    *,
    extra_args: Sequence[str] = (),
    timeout: float = READY_TIMEOUT,
) -> Handle:
    """Alertmanager on 127.0.0.1 with ``config`` (YAML text or mapping), clustering off."""
    exe = require("alertmanager")
    workdir = tmp_path / f"alertmanager-{free_port()}"
    workdir.mkdir(parents=True)
    config_path = workdir / "alertmanager.yml"
    text = config if isinstance(config, str) else yaml.safe_dump(dict(config))
    config_path.write_text(text)

    def command(port: int) -> list[str]:
        return [
            exe,
            f"--config.file={config_path}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            *extra_args,
        ]

    return _start(workdir, command, timeout)


def run_tool(name: str, *args: str, cwd: Path | None = None, timeout: float = 60) -> str:
    """Run ``promtool``/``amtool``; fail the test with its output if it exits non-zero."""
    result = subprocess.run(
        [require(name), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{name} {' '.join(args)} exited {result.returncode}:\n{output}")
    return output


def backfill_openmetrics(tmp_path: Path, text: str) -> Path:
    """A TSDB directory holding ``text`` (OpenMetrics, ending ``# EOF``), for ``storage=``."""
    source = tmp_path / "backfill.om"
    source.write_text(text)
    data = tmp_path / "tsdb"
    run_tool("promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data))
    return data


# --- synthetic series --------------------------------------------------------------------------

SYNTHETIC_START = 1_735_689_600  # 2025-01-01T00:00:00Z
SYNTHETIC_MINUTES = 180
SYNTHETIC_QUERY_TIME = SYNTHETIC_START + (SYNTHETIC_MINUTES - 5) * 60
"""A time inside the synthetic range where every series has recent samples."""
Labels = Mapping[str, str]
Value = Callable[[int], float | None]
"""Value of a series at minute i of the synthetic range; None: no sample then."""


class _OpenMetrics:
    """OpenMetrics text, one family at a time, one sample per minute."""

    def __init__(self, start: int, minutes: int) -> None:
        self.start, self.minutes = start, minutes
        self.lines: list[str] = []

    def family(self, name: str, kind: str, series: Sequence[tuple[Labels, Value]]) -> None:
        self.lines.append(f"# TYPE {name} {kind}")
        sample = f"{name}_total" if kind == "counter" else name
        for labels, value in series:
            for minute in range(self.minutes):
                v = value(minute)
                if v is not None:
                    self.lines.append(f"{sample}{_render(labels)} {v:.10g} {self._ts(minute)}")

    def histogram(self, name: str, labels: Labels, per_minute: Mapping[str, float]) -> None:
        """Cumulative buckets (``le`` -> new observations per minute, ``+Inf`` last)."""
        self.lines.append(f"# TYPE {name} histogram")
        for minute in range(1, self.minutes):
            cumulative = 0.0
            for le, count in per_minute.items():
                cumulative += count * minute
                bucket = _render({**labels, "le": le})
                self.lines.append(f"{name}_bucket{bucket} {cumulative:g} {self._ts(minute)}")
            self.lines.append(f"{name}_count{_render(labels)} {cumulative:g} {self._ts(minute)}")
            self.lines.append(
                f"{name}_sum{_render(labels)} {0.3 * cumulative:g} {self._ts(minute)}"
            )

    def _ts(self, minute: int) -> int:
        return self.start + 60 * minute

    def text(self) -> str:
        return "\n".join([*self.lines, "# EOF", ""])


def _render(labels: Labels) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


@dataclass(frozen=True)
class _Version:
    model: str
    version: str
    first: int  # first minute with data
    last: int  # last minute with data
    variants: tuple[str, ...]
    drifted: bool

    @property
    def labels(self) -> dict[str, str]:
        return {"model": self.model, "model_version": self.version}

    def at(self, value: float | Callable[[int], float]) -> Value:
        def sample(minute: int) -> float | None:
            if not self.first <= minute <= self.last:
                return None
            return value(minute) if callable(value) else value

        return sample

    def counter(self, per_second: float) -> Value:
        return self.at(lambda minute: per_second * 60 * (minute - self.first))


# fraud 3.2.0 replaces 3.1.0 an hour in (and drifts); llm runs a canary next to production.
VERSIONS = (
    _Version("fraud", "3.1.0", 0, 120, ("production",), drifted=False),
    _Version("fraud", "3.2.0", 60, SYNTHETIC_MINUTES, ("production",), drifted=True),
    _Version("llm", "7b-v2", 0, SYNTHETIC_MINUTES, ("production", "canary"), drifted=False),
)
WINDOWS = ("1h", "24h")
PERFORMANCE = {
    "accuracy": 0.91,
    "precision": 0.88,
    "recall": 0.8,
    "f1": 0.84,
    "roc_auc": 0.95,
    "log_loss": 0.3,
    "mae": 1.2,
    "rmse": 1.9,
    "mape": 0.12,
}
GPUS = (
    {"gpu": "0", "UUID": "GPU-0a", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "node-a"},
    {"gpu": "1", "UUID": "GPU-1a", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "node-a"},
    {"gpu": "0", "UUID": "GPU-0b", "modelName": "NVIDIA L4", "hostname": "node-b"},
)
# An A100 split into two 3g.40gb MIG instances (40192 MiB each), with dcgm-exporter's label set
# and the Kubernetes pod mapping; instance 1 is full (38900 of 40192 MiB used or reserved).
MIG_GPU = {
    "gpu": "0",
    "UUID": "GPU-0c",
    "pci_bus_id": "00000000:3B:00.0",
    "device": "nvidia0",
    "modelName": "NVIDIA A100-SXM4-80GB",
    "Hostname": "node-c",
    "DCGM_FI_DRIVER_VERSION": "550.54.15",
    "GPU_I_PROFILE": "3g.40gb",
    "namespace": "serving",
    "container": "triton",
}
MIG_INSTANCES = {
    # GPU_I_ID: (used, reserved, free) MiB
    "1": (38500.0, 400.0, 1292.0),
    "2": (5000.0, 400.0, 34792.0),
}
VLLM_SERVERS = ({"model_name": "llama-3-8b", "instance": "vllm-0:8000"},)


def _wave(base: float, amplitude: float, period: int = 60) -> Callable[[int], float]:
    return lambda minute: base + amplitude * math.sin(2 * math.pi * minute / period)


def _per_feature(level: float) -> Callable[[_Version, dict[str, str]], list[tuple[Labels, Value]]]:
    def build(v: _Version, base: dict[str, str]) -> list[tuple[Labels, Value]]:
        return [
            ({**base, "feature": f}, v.at(_wave(level, level / 2))) for f in ("amount", "country")
        ]

    return build


def _load_time(*, reloaded: bool) -> Callable[[int], float]:
    return lambda minute: 41.0 if reloaded and minute >= 90 else 35.0


def _model_quality(om: _OpenMetrics) -> None:
    def per_window(
        build: Callable[[_Version, dict[str, str]], list[tuple[Labels, Value]]],
    ) -> list[tuple[Labels, Value]]:
        return [s for v in VERSIONS for w in WINDOWS for s in build(v, {**v.labels, "window": w})]

    def drift(v: _Version, base: dict[str, str]) -> list[tuple[Labels, Value]]:
        amount = 0.3 if v.drifted else 0.04
        return [
            ({**base, "feature": "amount", "method": "wasserstein"}, v.at(_wave(amount, 0.02))),
            ({**base, "feature": "country", "method": "jensenshannon"}, v.at(_wave(0.05, 0.01))),
            ({**base, "feature": "amount", "method": "psi"}, v.at(_wave(amount / 2, 0.01))),
        ]

    om.family("ml_feature_drift_score", "gauge", per_window(drift))
    om.family(
        "ml_feature_drift_pvalue",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "feature": "amount", "method": "ks"}, v.at(0.001 if v.drifted else 0.4))
            ]
        ),
    )
    om.family(
        "ml_feature_drift_detected",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "feature": "amount", "method": "wasserstein"}, v.at(float(v.drifted))),
                ({**base, "feature": "country", "method": "jensenshannon"}, v.at(0.0)),
            ]
        ),
    )
    om.family(
        "ml_dataset_drift_share",
        "gauge",
        per_window(lambda v, base: [(base, v.at(0.5 if v.drifted else 0.0))]),
    )
    om.family(
        "ml_prediction_drift_score",
        "gauge",
        per_window(lambda v, base: [({**base, "method": "psi"}, v.at(_wave(0.08, 0.02)))]),
    )
    for name, level in (("missing", 0.01), ("out_of_range", 0.002), ("new_category", 0.004)):
        om.family(
            f"ml_feature_{name}_ratio",
            "gauge",
            per_window(_per_feature(level)),
        )
    om.family(
        "ml_model_performance",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "metric": m}, v.at(value * (0.9 if v.drifted else 1.0)))
                for m, value in PERFORMANCE.items()
            ]
        ),
    )
    _estimated_performance(om, per_window)
    om.family(
        "ml_window_samples",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "metric": m}, v.at(n))
                for m, n in (
                    ("drift", 5000),
                    ("reference", 20000),
                    ("performance", 800),
                    ("serving", 5000),
                    ("estimated_performance", 5000),
                    ("multivariate", 5000),
                )
            ]
        ),
    )
    om.family(
        "ml_multivariate_drift_score",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "method": "domain_classifier"}, v.at(0.81 if v.drifted else 0.51)),
                ({**base, "method": "pca_reconstruction"}, v.at(_wave(1.4, 0.05))),
            ]
        ),
    )
    om.family(
        "ml_multivariate_drift_threshold",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "method": "domain_classifier"}, v.at(0.55)),
                ({**base, "method": "pca_reconstruction"}, v.at(1.5)),
            ]
        ),
    )
    om.family(
        "ml_multivariate_drift_detected",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "method": "domain_classifier"}, v.at(float(v.drifted))),
                ({**base, "method": "pca_reconstruction"}, v.at(0.0)),
            ]
        ),
    )
    segments = ("country=DE", "country=FR", "country=__other__")

    def per_segment(value: Callable[[_Version, str], float]) -> Any:
        return lambda v, base: [
            ({**base, "segment": s, "feature": "amount", "method": "ks"}, v.at(value(v, s)))
            for s in segments
        ]

    def drifted_de(v: _Version, segment: str) -> float:
        return float(v.drifted and segment == "country=DE")

    om.family(
        "ml_segment_drift_score",
        "gauge",
        per_window(per_segment(lambda v, s: 0.2 if drifted_de(v, s) else 0.03)),
    )
    om.family(
        "ml_segment_drift_pvalue",
        "gauge",
        per_window(per_segment(lambda v, s: 0.001 if drifted_de(v, s) else 0.6)),
    )
    om.family("ml_segment_drift_detected", "gauge", per_window(per_segment(drifted_de)))
    om.family(
        "ml_segment_window_samples",
        "gauge",
        per_window(lambda v, base: [({**base, "segment": s}, v.at(1000.0)) for s in segments]),
    )
    om.family(
        "ml_cost_per_million_predictions",
        "gauge",
        per_window(
            lambda v, base: [
                ({**base, "currency": "USD"}, v.at(250.0 if v.model == "llm" else 40.0))
            ]
        ),
    )


def _estimated_performance(
    om: _OpenMetrics,
    per_window: Callable[
        [Callable[[_Version, dict[str, str]], list[tuple[Labels, Value]]]],
        list[tuple[Labels, Value]],
    ],
) -> None:
    """CBPE / DLE estimates a little off the realized figures, with a band of +-0.03 (x2 for
    the error metrics); the drifted version's estimate falls like its realized quality."""
    metrics = ("accuracy", "precision", "recall", "f1", "roc_auc", "mae", "rmse")

    def figure(offset: float) -> Callable[[_Version, dict[str, str]], list[tuple[Labels, Value]]]:
        def build(v: _Version, base: dict[str, str]) -> list[tuple[Labels, Value]]:
            out = []
            for m in metrics:
                level = PERFORMANCE[m] * (0.9 if v.drifted else 1.0) - 0.01
                width = offset * (20 if m in ("mae", "rmse") else 1)
                out.append(({**base, "metric": m}, v.at(level + width)))
            return out

        return build

    om.family("ml_estimated_performance", "gauge", per_window(figure(0.0)))
    om.family("ml_estimated_performance_lower", "gauge", per_window(figure(-0.03)))
    om.family("ml_estimated_performance_upper", "gauge", per_window(figure(0.03)))
    segments = ("country=DE", "country=FR", "country=__other__")

    def per_segment(
        offset: float,
    ) -> Callable[[_Version, dict[str, str]], list[tuple[Labels, Value]]]:
        def build(v: _Version, base: dict[str, str]) -> list[tuple[Labels, Value]]:
            rows = figure(offset)(v, base)
            return [({**labels, "segment": s}, value) for s in segments for labels, value in rows]

        return build

    om.family("ml_segment_estimated_performance", "gauge", per_window(per_segment(0.0)))
    om.family("ml_segment_estimated_performance_lower", "gauge", per_window(per_segment(-0.05)))
    om.family("ml_segment_estimated_performance_upper", "gauge", per_window(per_segment(0.05)))
    om.family(
        "ml_estimated_performance_error",
        "gauge",
        per_window(lambda v, base: [({**base, "metric": m}, v.at(0.01)) for m in metrics]),
    )
    # model-wide (no model_version), like the job writes them
    floors: list[tuple[Labels, Value]] = [
        ({"model": "fraud", "window": w, "metric": m}, lambda minute, t=t: t)
        for w in WINDOWS
        for m, t in (("accuracy", 0.85), ("f1", 0.75))
    ]
    om.family("ml_performance_floor", "gauge", floors)
    ceilings: list[tuple[Labels, Value]] = [
        ({"model": "fraud", "window": w, "metric": "mae"}, lambda minute: 2.0) for w in WINDOWS
    ]
    om.family("ml_performance_ceiling", "gauge", ceilings)


def _serving(om: _OpenMetrics) -> None:
    def per_variant(window: bool) -> list[tuple[_Version, dict[str, str]]]:
        return [
            (v, {**v.labels, "variant": variant, **({"window": w} if window else {})})
            for v in VERSIONS
            for variant in v.variants
            for w in (WINDOWS if window else ("",))
        ]

    om.family(
        "ml_prediction_latency_seconds",
        "gauge",
        [
            ({**base, "quantile": q}, v.at(_wave(scale, scale / 10)))
            for v, base in per_variant(True)
            for q, scale in (("0.5", 0.05), ("0.95", 0.2), ("0.99", 0.45))
        ],
    )
    om.family(
        "ml_predictions_per_second",
        "gauge",
        [(b, v.at(_wave(10, 3))) for v, b in per_variant(True)],
    )
    om.family(
        "ml_prediction_error_ratio",
        "gauge",
        [(b, v.at(_wave(0.01, 0.005))) for v, b in per_variant(True)],
    )
    # A reload of the llm canary at minute 90: the "Model loads" annotation must find it.
    om.family(
        "ml_model_load_seconds",
        "gauge",
        [(b, v.at(_load_time(reloaded=b["variant"] == "canary"))) for v, b in per_variant(False)],
    )
    # fraud keeps the default objectives, llm promises less
    targets = {"fraud": (0.999, 0.99), "llm": (0.99, 0.95)}
    om.family(
        "ml_slo_objective",
        "gauge",
        [
            ({"model": m, "window": w, "slo": slo}, lambda minute, t=t: t)
            for m, (availability, latency) in targets.items()
            for w in WINDOWS
            for slo, t in (("availability", availability), ("latency", latency))
        ],
    )
    om.family(
        "ml_predictions",
        "counter",
        [
            ({**v.labels, "status": status}, v.counter(rate))
            for v in VERSIONS
            for status, rate in (("ok", 10.0), ("timeout", 0.1), ("error:oom", 0.02))
        ],
    )
    om.family(
        "ml_predictions_over_latency_slo",
        "counter",
        [(v.labels, v.counter(0.05)) for v in VERSIONS],
    )
    # llm's canary against production: a little slower, as often wrong, predicting alike
    canaries = [(v, b) for v, b in per_variant(True) if b["variant"] == "canary"]
    # and fraud 3.2.0 shadowed by 3.3.0 (only the comparison figures)
    shadow = _Version("fraud", "3.3.0", 60, SYNTHETIC_MINUTES, ("shadow",), drifted=False)
    canaries += [(shadow, {**shadow.labels, "variant": "shadow", "window": w}) for w in WINDOWS]
    for name, value in (
        ("ml_variant_latency_p95_delta_seconds", 0.02),
        ("ml_variant_error_ratio_delta", 0.001),
    ):
        om.family(name, "gauge", [(b, v.at(value)) for v, b in canaries])
    for name, value in (
        ("ml_variant_prediction_drift_score", 0.05),
        ("ml_variant_prediction_drift_detected", 0.0),
    ):
        om.family(name, "gauge", [({**b, "method": "ks"}, v.at(value)) for v, b in canaries])
    # fraud 3.2.0 deployed when it first served (minute 60); the llm canary reloaded at 90
    events = [
        ({"model": "fraud", "model_version": "3.2.0", "variant": "production"}, "deployed", 60),
        ({"model": "llm", "model_version": "7b-v2", "variant": "canary"}, "model_loaded", 90),
    ]
    om.family(
        "ml_deployment_event_timestamp_seconds",
        "gauge",
        [
            (
                {**labels, "window": w, "event": kind},
                lambda m, at=at: SYNTHETIC_START + 60.0 * at if m >= at else None,
            )
            for labels, kind, at in events
            for w in WINDOWS
        ],
    )
    llm = [v for v in VERSIONS if v.model == "llm"]
    om.family(
        "ml_time_to_first_token_seconds",
        "gauge",
        [
            ({**b, "quantile": q}, v.at(_wave(scale, scale / 10)))
            for v, b in per_variant(True)
            if v in llm
            for q, scale in (("0.5", 0.12), ("0.95", 0.4), ("0.99", 0.9))
        ],
    )
    om.family(
        "ml_tokens",
        "counter",
        [
            ({**v.labels, "direction": d}, v.counter(rate))
            for v in llm
            for d, rate in (("in", 800.0), ("out", 120.0))
        ],
    )


def _service(om: _OpenMetrics) -> None:
    def counter(per_second: float) -> Value:
        return lambda minute: per_second * 60 * minute

    # Two jobs as scraped with honor_labels: false (exported_job), three with it true.
    jobs = [{"job": "ml-monitor", "exported_job": j} for j in ("drift", "quality")]
    jobs += [{"job": j} for j in ("performance", "serving", "cost")]
    om.family(
        "monitor_ingest_rows",
        "counter",
        [({"kind": k}, counter(10)) for k in ("predictions", "labels")],
    )
    om.family("monitor_ingest_rejected", "counter", [({"reason": "validation"}, counter(0.1))])
    om.family(
        "monitor_webhook_deliveries",
        "counter",
        [
            ({"outcome": o}, counter(r))
            for o, r in (("delivered", 0.01), ("retry", 0.002), ("dead", 0.0))
        ],
    )
    om.family("monitor_job_failures", "counter", [(j, counter(0.001)) for j in jobs])
    om.family("monitor_job_duration_seconds", "gauge", [(j, _wave(2.0, 0.5)) for j in jobs])
    om.family(
        "monitor_job_last_success_timestamp_seconds",
        "gauge",
        [(j, lambda minute: SYNTHETIC_START + 60 * minute - 30) for j in jobs],
    )
    om.family(
        "up", "gauge", [({"job": "ml-monitor", "instance": "ml-monitor:8000"}, lambda m: 1.0)]
    )


def _gpus(om: _OpenMetrics) -> None:
    device = {
        "DCGM_FI_DEV_GPU_UTIL": _wave(70, 25),
        "DCGM_FI_DEV_FB_USED": _wave(60000, 9000),
        "DCGM_FI_DEV_FB_FREE": _wave(20000, 9000),
        "DCGM_FI_DEV_POWER_USAGE": _wave(300, 50),
        "DCGM_FI_DEV_GPU_TEMP": _wave(65, 8),
        "DCGM_FI_DEV_XID_ERRORS": lambda m: 79.0 if m >= 150 else 0.0,
    }
    mig = {i: {**MIG_GPU, "GPU_I_ID": i, "pod": f"triton-{i}"} for i in MIG_INSTANCES}
    framebuffer = ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_FB_FREE")
    device["DCGM_FI_DEV_FB_RESERVED"] = lambda m: 512.0
    for name, value in device.items():
        instances: list[tuple[Labels, Value]] = []
        if name in framebuffer:
            position = framebuffer.index(name)
            instances = [(mig[i], lambda m, v=mib[position]: v) for i, mib in MIG_INSTANCES.items()]
        om.family(name, "gauge", [*((gpu, value) for gpu in GPUS), *instances])
    om.family("vllm:kv_cache_usage_perc", "gauge", [(s, _wave(0.7, 0.25)) for s in VLLM_SERVERS])
    om.family("vllm:num_requests_running", "gauge", [(s, _wave(12, 4)) for s in VLLM_SERVERS])
    om.family("vllm:num_requests_waiting", "gauge", [(s, _wave(2, 2)) for s in VLLM_SERVERS])
    om.family(
        "vllm:generation_tokens", "counter", [(s, lambda m: 60 * 900.0 * m) for s in VLLM_SERVERS]
    )
    for server in VLLM_SERVERS:
        om.histogram(
            "vllm:time_to_first_token_seconds",
            server,
            {"0.05": 30, "0.1": 60, "0.25": 40, "0.5": 10, "1": 5, "+Inf": 1},
        )


def synthetic_openmetrics(start: int = SYNTHETIC_START, minutes: int = SYNTHETIC_MINUTES) -> str:
    """Every series the dashboards and rules read, one sample per minute from ``start``."""
    om = _OpenMetrics(start, minutes)
    for part in (_model_quality, _serving, _service, _gpus):
        part(om)
    return om.text()


def start_synthetic_prometheus(tmp_path: Path, rule_files: Sequence[Path] = ()) -> Handle:
    """Prometheus over :func:`synthetic_openmetrics` (query it at ``SYNTHETIC_QUERY_TIME``)."""
    data = backfill_openmetrics(tmp_path, synthetic_openmetrics())
    config = {"global": {"scrape_interval": "1m", "evaluation_interval": "1m"}}
    return start_prometheus(tmp_path, config, rule_files, storage=data)
