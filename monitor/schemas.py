"""Wire models for the configuration endpoints (the hot ingest path uses ``ingest.*`` instead)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from monitor.catalogue import DATASET_DRIFT_SHARE
from monitor.ingest.names import (
    FEATURE_NAME,
    LABEL_VALUE,
    MODEL_NAME,
    feature_name_problem,
    label_value_problem,
    model_name_problem,
)
from monitor.ingest.schema import Feature, FeatureSchema
from monitor.windows import WINDOW_PATTERN, parse_window


def _timestamp_text(value: object) -> object:
    # lax pydantic reads 0 or 1.7e9 as Unix seconds; the contract is an ISO 8601 string
    if isinstance(value, int | float):
        raise ValueError("must be an ISO 8601 timestamp string, e.g. 2026-11-23T10:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_timestamp_text), Field(strict=False)]


def _json_number(value: object) -> object:
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number, not a string or boolean")
    return value


# a JSON integer: 5 and 5.0 (JSON Schema counts both as integers), never "5", 5.5 or true
JsonInt = Annotated[int, BeforeValidator(_json_number), Field(strict=False)]
_ROWS = 2**31 - 1  # row counts: bounded, so the document names a range the service can read


class Strict(BaseModel):
    """No unknown keys and no coercion ("5" is not 5, 5.0 is not an int, true is not 1): what
    the OpenAPI document says a field takes is all it takes."""

    model_config = ConfigDict(extra="forbid", strict=True)


class FeatureSpec(Strict):
    name: str = Field(pattern=FEATURE_NAME.pattern)
    kind: Literal["numeric", "categorical"]


class DriftSettings(Strict):
    """Defaults reproduce Evidently's data-drift preset (see SPEC "Drift defaults")."""

    min_samples: JsonInt = Field(
        default=100, ge=1, le=_ROWS, description="no verdict below this many rows"
    )
    large_reference_rows: JsonInt = Field(
        default=1000, ge=1, le=_ROWS, description="above this, distance metrics replace tests"
    )
    dataset_drift_share: float = Field(default=DATASET_DRIFT_SHARE.threshold, gt=0, le=1)
    correction: Literal["none", "bonferroni", "fdr"] = "none"
    methods: dict[str, str] = Field(default_factory=dict, description="feature -> method")
    thresholds: dict[str, float] = Field(default_factory=dict, description="feature -> threshold")
    psi_bins: JsonInt = Field(default=10, ge=2, le=100)


class MultivariateSettings(Strict):
    """Multivariate drift (domain classifier, PCA reconstruction); see docs/drift.md."""

    enabled: bool = True
    sample_rows: JsonInt = Field(
        default=5000,
        ge=100,
        le=100_000,
        description="rows sampled per side (window and reference); the domain classifier's "
        "AUC has a sampling sd of about 0.006 at 5000 + 5000",
    )
    pca_variance: float = Field(
        default=0.65, gt=0, le=1, description="share of reference variance the PCA keeps"
    )
    top_features: JsonInt = Field(
        default=3, ge=1, le=20, description="features named as the domain classifier's evidence"
    )


MAX_SEGMENT_FEATURES = 5


class CostSettings(Strict):
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    gpu_hour_price: float | None = Field(default=None, ge=0)
    gpus: float = Field(default=1.0, ge=0)
    replicas: JsonInt = Field(default=1, ge=0, le=1_000_000)
    gpu_second_price: float | None = Field(default=None, ge=0)
    input_token_price_per_1k: float | None = Field(default=None, ge=0)
    output_token_price_per_1k: float | None = Field(default=None, ge=0)
    monthly_budget_per_million: float | None = Field(default=None, ge=0)


class SloSettings(Strict):
    """Service-level objectives the alert rules burn against."""

    latency_ms: float = Field(default=500.0, gt=0, description="a prediction slower is 'slow'")
    latency_target: float = Field(default=0.99, gt=0, lt=1, description="share not slow")
    availability_target: float = Field(default=0.999, gt=0, lt=1, description="share ok")


QualityMetric = Literal["accuracy", "precision", "recall", "f1", "roc_auc"]
ErrorMetric = Literal["mae", "rmse"]
MAX_SAMPLE_ROWS = 1_000_000


class PerformanceSettings(Strict):
    """Floors of the model's quality and how its performance is estimated without labels."""

    min: dict[QualityMetric, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description="metric -> lowest acceptable value, e.g. {accuracy: 0.9}; "
        "MLEstimatedPerformanceDrop fires when the estimate's upper band is below it",
    )
    max: dict[ErrorMetric, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="error metric -> highest acceptable value, e.g. {mae: 3.5}; the alert "
        "fires when the estimate's lower band is above it",
    )
    estimate: bool = Field(
        default=True, description="estimate performance without labels (CBPE / DLE)"
    )
    sample_rows: JsonInt = Field(
        default=50_000,
        ge=1000,
        le=MAX_SAMPLE_ROWS,
        description="rows sampled from the window and from the reference for the estimate",
    )


SECRET_MASK = "***"  # noqa: S105 (the mask shown instead of a secret)


class WebhookSettings(Strict):
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=8, description="write-only: reads show it as '***'")
    cooldown_seconds: JsonInt = Field(default=86_400, ge=0, le=10 * 365 * 86_400)


def without_secrets(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored model configuration as a read may show it: the webhook secret masked."""
    shown = dict(config)
    webhook = shown.get("webhook")
    if isinstance(webhook, Mapping) and "secret" in webhook:
        shown["webhook"] = {**webhook, "secret": SECRET_MASK}
    return shown


class ModelConfig(Strict):
    task: Literal["classification", "regression", "llm", "ranking", "other"] = "classification"
    features: list[FeatureSpec] | None = None
    prediction_kind: Literal["numeric", "categorical"] | None = None
    unknown_features: Literal["store", "reject"] = Field(
        default="store",
        description="store: keep unknown features in `extra` and count them as schema "
        "violations; reject: answer 422",
    )
    positive_class: str | None = None
    input_names: list[Annotated[str, Field(pattern=FEATURE_NAME.pattern)]] | None = Field(
        default=None,
        description="feature order of positional inputs (KServe V1 lists, V2 2-D tensors); "
        "defaults to the order of `features`",
        json_schema_extra={"uniqueItems": True},
    )
    model_version: str | None = Field(
        default=None,
        description="version stored for payloads that carry none (KServe/Seldon, OTLP)",
        pattern=LABEL_VALUE.pattern,
    )
    windows: list[Annotated[str, Field(pattern=WINDOW_PATTERN)]] | None = Field(
        default=None, description="e.g. ['1h', '24h']"
    )
    drift: DriftSettings = Field(default_factory=DriftSettings)
    multivariate: MultivariateSettings = Field(default_factory=MultivariateSettings)
    segments: list[Annotated[str, Field(pattern=FEATURE_NAME.pattern)]] = Field(
        default_factory=list,
        max_length=MAX_SEGMENT_FEATURES,
        description="categorical features whose values get drift and quality per segment; "
        "each must be a categorical feature of the model's schema (the body's features, else "
        "the stored ones), or the request is a 409",
        json_schema_extra={"uniqueItems": True},
    )
    segment_top_k: JsonInt = Field(
        default=10,
        ge=1,
        le=50,
        description="segment values with their own series (by volume); the rest is __other__",
    )
    segment_sample_rows: JsonInt = Field(
        default=1000,
        ge=100,
        le=10_000,
        description="rows sampled per segment and side for drift per segment",
    )
    cost: CostSettings = Field(default_factory=CostSettings)
    slo: SloSettings = Field(default_factory=SloSettings)
    performance: PerformanceSettings = Field(default_factory=PerformanceSettings)
    webhook: WebhookSettings | None = None

    @field_validator("input_names")
    @classmethod
    def _input_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not FEATURE_NAME.fullmatch(name):
                raise ValueError(f"{name!r}: {feature_name_problem(name)}")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("input_names must not repeat a name")
        return value

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("segments must not repeat a feature")
        return value

    @field_validator("model_version")
    @classmethod
    def _model_version(cls, value: str | None) -> str | None:
        if value is not None and label_value_problem(value):
            raise ValueError(label_value_problem(value))
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        for w in value or []:
            parse_window(w)
        return value

    def feature_schema(self) -> FeatureSchema | None:
        if self.features is None:
            return None
        return FeatureSchema(tuple(Feature(f.name, f.kind) for f in self.features))

    def stored_config(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude={"task", "features", "prediction_kind"})


def segment_problems(segments: list[str], schema: FeatureSchema) -> list[str]:
    """What is wrong with ``segments`` for a model with ``schema``: each must be a declared
    categorical feature."""
    categorical = set(schema.categorical_names)
    return [
        f"segment {name!r} is not a declared categorical feature"
        + (" (it is numeric)" if name in schema.names else "")
        for name in segments
        if name not in categorical
    ]


class EventIn(Strict):
    model: str = Field(pattern=MODEL_NAME.pattern)
    event: Literal["deployed", "rolled_back", "model_loaded"]
    model_version: str = Field(default="", pattern=LABEL_VALUE.pattern)
    variant: str | None = Field(default=None, pattern=LABEL_VALUE.pattern)
    timestamp: Timestamp | None = None
    load_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    details: dict[str, object] | None = None

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        problem = model_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("model_version", "variant")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and label_value_problem(value):
            raise ValueError(label_value_problem(value))
        return value


class WindowRef(Strict):
    """Freeze a production window as the reference: ``{"from": ts, "to": ts}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: Timestamp = Field(alias="from")
    end: Timestamp = Field(alias="to")
