"""GPU: dcgm-exporter device metrics and vLLM serving metrics."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from monitor.alerts.promql import (
    FB_FREE,
    FB_RESERVED,
    FB_USED,
    dcgm,
    framebuffer_in_use,
    gpu_instance,
    with_host,
)
from monitor.alerts.rules import RuleSettings
from monitor.catalogue import TIME_TO_FIRST_TOKEN_SECONDS, TOKENS_TOTAL
from monitor.dashboards.panels import new_dashboard, query, query_variable, row, timeseries_panel

BY_GPU = "max by (host, gpu_instance, modelName)"
"""One series per GPU, and per GPU instance under MIG (see ``gpu_instance``)."""
GPU_LEGEND = "{{host}} · GPU {{gpu_instance}} ({{modelName}})"
VLLM = 'model_name=~"$vllm_model"'
LLM = 'model=~"$llm_model"'
LLM_LEGEND = "{{model}} {{model_version}}"
QUANTILES = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))


def by_gpu(metric: str) -> str:
    """``metric`` on the selected hosts, one series per GPU (or MIG instance)."""
    return f"{BY_GPU} ({gpu_instance(dcgm(metric))})"


def _device(dashboard: db.Dashboard, settings: RuleSettings) -> db.Dashboard:

    return (
        dashboard.with_row(row("GPUs (dcgm-exporter)"))
        .with_panel(
            timeseries_panel(
                "GPU utilization",
                "Share of time a kernel was running (DCGM_FI_DEV_GPU_UTIL).",
                "percent",
                [query(by_gpu("DCGM_FI_DEV_GPU_UTIL"), GPU_LEGEND)],
                steps=((None, "green"), (settings.gpu_utilization_percent, "red")),
                threshold_line=True,
                min_value=0,
                max_value=100,
            )
        )
        .with_panel(
            timeseries_panel(
                "Framebuffer used",
                "Share of GPU memory used or reserved, (used + reserved) / (used + free + "
                "reserved), per GPU and MIG instance; dashed line: the alert threshold.",
                "percentunit",
                [query(framebuffer_in_use(by_gpu), GPU_LEGEND)],
                steps=((None, "green"), (settings.gpu_memory_used, "red")),
                threshold_line=True,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Framebuffer used, reserved and free",
                f"GPU memory in use, reserved by the driver and free ({FB_USED}, {FB_RESERVED}, "
                f"{FB_FREE}, MiB); the three add up to the GPU's (or MIG instance's) memory.",
                "mbytes",
                [
                    query(by_gpu(FB_USED), "used · " + GPU_LEGEND),
                    query(by_gpu(FB_RESERVED), "reserved · " + GPU_LEGEND),
                    query(by_gpu(FB_FREE), "free · " + GPU_LEGEND),
                ],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Power draw",
                "Board power draw (DCGM_FI_DEV_POWER_USAGE).",
                "watt",
                [query(by_gpu("DCGM_FI_DEV_POWER_USAGE"), GPU_LEGEND)],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Temperature",
                "GPU temperature (DCGM_FI_DEV_GPU_TEMP).",
                "celsius",
                [query(by_gpu("DCGM_FI_DEV_GPU_TEMP"), GPU_LEGEND)],
                steps=((None, "green"), (80, "orange"), (90, "red")),
            )
        )
        .with_panel(
            timeseries_panel(
                "XID errors",
                "Code of the last XID error each GPU reported (0: none); see NVIDIA's XID "
                "catalogue.",
                "none",
                [query(by_gpu("DCGM_FI_DEV_XID_ERRORS"), GPU_LEGEND)],
                steps=((None, "green"), (1, "red")),
                min_value=0,
            )
        )
    )


def _ttft(q: str) -> str:
    buckets = f"rate(vllm:time_to_first_token_seconds_bucket{{{VLLM}}}[$__rate_interval])"
    return f"histogram_quantile({q}, sum by (le, model_name) ({buckets}))"


def _vllm(dashboard: db.Dashboard, settings: RuleSettings) -> db.Dashboard:
    return (
        dashboard.with_row(row("vLLM"))
        .with_panel(
            timeseries_panel(
                "KV-cache usage",
                "Share of the KV cache in use per server (vllm:kv_cache_usage_perc); when full, "
                "requests queue.",
                "percentunit",
                [
                    query(
                        f"max by (model_name, instance) (vllm:kv_cache_usage_perc{{{VLLM}}})",
                        "{{model_name}} · {{instance}}",
                    )
                ],
                steps=((None, "green"), (settings.kv_cache_usage, "red")),
                threshold_line=True,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries_panel(
                "Requests running and waiting",
                "Requests being generated and requests queued for a slot.",
                "short",
                [
                    query(
                        f"sum by (model_name) (vllm:num_requests_running{{{VLLM}}})",
                        "running · {{model_name}}",
                    ),
                    query(
                        f"sum by (model_name) (vllm:num_requests_waiting{{{VLLM}}})",
                        "waiting · {{model_name}}",
                    ),
                ],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Time to first token",
                "p50, p95 and p99 of the time to first token, from the histogram "
                "vllm:time_to_first_token_seconds.",
                "s",
                [query(_ttft(q), f"{name} · {{{{model_name}}}}") for q, name in QUANTILES],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Generation throughput",
                "Tokens generated per second (vllm:generation_tokens_total).",
                "suffix: tok/s",
                [
                    query(
                        "sum by (model_name) "
                        f"(rate(vllm:generation_tokens_total{{{VLLM}}}[$__rate_interval]))",
                        "{{model_name}}",
                    )
                ],
                min_value=0,
            )
        )
    )


def _received(dashboard: db.Dashboard) -> db.Dashboard:
    """What ml-monitor computed from the LLM calls it received (OTLP spans, SDK, REST)."""
    return (
        dashboard.with_row(row("LLM calls received by ml-monitor"))
        .with_panel(
            timeseries_panel(
                "Time to first token per model version",
                f"p50, p95 and p99 over the last hour of the stored calls' time to first token "
                f"({TIME_TO_FIRST_TOKEN_SECONDS}, from GenAI spans sent to /otlp/v1/traces).",
                "s",
                [
                    query(
                        "max by (model, model_version, quantile) "
                        f'({TIME_TO_FIRST_TOKEN_SECONDS}{{{LLM}, window="1h"}})',
                        "p{{quantile}} · " + LLM_LEGEND,
                    )
                ],
                min_value=0,
            )
        )
        .with_panel(
            timeseries_panel(
                "Tokens per second per model version",
                f"Input and output tokens of the stored calls ({TOKENS_TOTAL}).",
                "suffix: tok/s",
                [
                    query(
                        "sum by (model, model_version, direction) "
                        f"(rate({TOKENS_TOTAL}{{{LLM}}}[$__rate_interval]))",
                        "{{direction}} · " + LLM_LEGEND,
                    )
                ],
                min_value=0,
            )
        )
    )


def gpu() -> db.Dashboard:
    settings = RuleSettings()
    hosts = f"count by (host) ({with_host('DCGM_FI_DEV_GPU_UTIL')})"
    dashboard = (
        new_dashboard(
            "ml-monitor-gpu",
            "ML GPUs & vLLM",
            "GPU devices from NVIDIA dcgm-exporter (either host label spelling) and LLM "
            "serving from vLLM.",
        )
        .with_variable(
            query_variable(
                "host", "Host", f"query_result({hosts})", multi=True, regex='/host="([^"]+)"/'
            )
        )
        .with_variable(
            query_variable(
                "vllm_model",
                "vLLM model",
                "label_values(vllm:num_requests_running, model_name)",
                multi=True,
            )
        )
    )
    dashboard = dashboard.with_variable(
        query_variable(
            "llm_model", "Model (ml-monitor)", f"label_values({TOKENS_TOTAL}, model)", multi=True
        )
    )
    return _received(_vllm(_device(dashboard, settings), settings))
