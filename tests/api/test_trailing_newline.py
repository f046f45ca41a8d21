"""A name with a trailing newline is refused everywhere a name is checked (Python's ``$`` with
``re.match`` accepted ``"fraud\\n"``): 422 naming the field, nothing stored."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from monitor.ingest.names import feature_name_problem, label_value_problem, model_name_problem
from monitor.services import Services
from monitor.windows import parse_window
from tests.api.helpers import count, record

NL = "\n"


def _label(**over: Any) -> dict[str, Any]:
    return {"prediction_id": "p-0", "model": "fraud", "label": 1, **over}


def _event(**over: Any) -> dict[str, Any]:
    return {"model": "fraud", "event": "deployed", **over}


def _parquet(column: str) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({column: [1.0, 2.0]}), sink)
    return sink.getvalue()


def _cloudevent(**over: Any) -> bytes:
    event = {
        "specversion": "1.0",
        "id": "c1",
        "source": "http://localhost:9081/",
        "type": "org.kubeflow.serving.inference.request",
        "inferenceservicename": "fraud",
        "datacontenttype": "application/json",
        "data": {"instances": [[1.0, 2.0]]},
        **over,
    }
    return orjson.dumps(event)


def _preds(**over: Any) -> bytes:
    return orjson.dumps({"predictions": [record(**over)]})


def _config(**config: Any) -> bytes:
    return orjson.dumps(config)


_JSON = {"content-type": "application/json"}
_CE = "application/cloudevents+json"
_PARQUET = "application/vnd.apache.parquet"
_NDJSON = "application/x-ndjson"
# (method, url, body bytes, content type, field the answer must name)
CASES: list[tuple[str, str, bytes, str, str]] = [
    ("post", "/v1/predictions", _preds(model="fraud\n"), "json", "model"),
    ("post", "/v1/predictions", _preds(model_version="3\n"), "json", "model_version"),
    ("post", "/v1/predictions", _preds(variant="canary\n"), "json", "variant"),
    ("post", "/v1/predictions", _preds(status="ok\n"), "json", "status"),
    ("post", "/v1/predictions", _preds(features={"amount\n": 1.0}), "json", "features.amount\n"),
    ("post", "/v1/predictions", orjson.dumps(record(model="fraud\n")), _NDJSON, "model"),
    ("post", "/v1/labels", orjson.dumps({"labels": [_label(model="fraud\n")]}), "json", "model"),
    ("post", "/v1/events", orjson.dumps(_event(model="fraud\n")), "json", "model"),
    ("post", "/v1/events", orjson.dumps(_event(model_version="3\n")), "json", "model_version"),
    ("post", "/v1/events", orjson.dumps(_event(variant="canary\n")), "json", "variant"),
    ("put", "/v1/models/fraud%0A", b"{}", "json", "model"),
    (
        "put",
        "/v1/models/fraud",
        _config(features=[{"name": "a\n", "kind": "numeric"}]),
        "json",
        "features.0.name",
    ),
    ("put", "/v1/models/fraud", _config(input_names=["a\n"]), "json", "input_names.0"),
    ("put", "/v1/models/fraud", _config(model_version="3\n"), "json", "model_version"),
    ("put", "/v1/models/fraud", _config(windows=["1h\n"]), "json", "windows.0"),
    ("put", "/v1/models/fraud", _config(cost={"currency": "USD\n"}), "json", "cost.currency"),
    ("get", "/v1/models/fraud%0A", b"", "json", "model"),
    ("get", "/v1/models/fraud/drift?window=1h%0A", b"", "json", "window"),
    ("get", "/v1/models/fraud/drift?version=3%0A", b"", "json", "version"),
    ("post", "/v1/models/fraud/reference?version=3%0A", b"amount\n1\n", "text/csv", "version"),
    ("post", "/v1/models/fraud/reference", _parquet("amount\n"), _PARQUET, "amount\n"),
    ("post", "/v1/integrations/kserve?model=fraud%0A", b"{}", "json", "model"),
    ("post", "/v1/integrations/kserve?version=3%0A", b"{}", "json", "version"),
    (
        "post",
        "/v1/integrations/kserve",
        _cloudevent(inferenceservicename="fraud\n"),
        _CE,
        "inferenceservicename",
    ),
    ("post", "/v1/jobs/run?model=fraud%0A", b"", "json", "model"),
    ("get", "/v1/webhooks?model=fraud%0A", b"", "json", "model"),
]


@pytest.mark.parametrize(("method", "url", "body", "kind", "field"), CASES)
def test_a_trailing_newline_is_refused_naming_the_field(
    client: TestClient,
    services: Services,
    method: str,
    url: str,
    body: bytes,
    kind: str,
    field: str,
) -> None:
    assert client.put("/v1/models/fraud", json={"input_names": ["a", "b"]}).status_code == 201
    headers = _JSON if kind == "json" else {"content-type": kind}
    r = client.request(method.upper(), url, content=body or None, headers=headers)
    # a CloudEvents envelope attribute is the envelope's problem: 400 malformed_body, as for
    # every other bad attribute
    assert r.status_code == (400 if kind.startswith("application/cloudevents") else 422), r.text
    named = [d.get("field") for d in r.json()["error"]["details"]]
    assert any(f is not None and (f == field or f.endswith(field)) for f in named), named
    for table in ("predictions", "labels", "events", "reference_sets", "integration_pending"):
        assert count(services.engine, table) == 0, table
    assert count(services.engine, "models") == 1


@pytest.mark.parametrize("check", [model_name_problem, feature_name_problem, label_value_problem])
def test_the_name_checks_refuse_a_trailing_newline(check: Any) -> None:
    assert check("a1") is None
    assert check("a1\n") is not None


def test_a_window_with_a_trailing_newline_is_not_a_window() -> None:
    assert parse_window("1h").total_seconds() == 3600
    with pytest.raises(ValueError, match="window"):
        parse_window("1h\n")


_DOLLAR = re.compile(r"""(\w+)\s*=\s*re\.compile\(\s*r?["'].*\$["']""")


def test_no_module_matches_a_dollar_anchored_pattern_with_match() -> None:
    """``re.match`` / ``search`` with a ``$`` pattern lets a trailing newline through."""
    offenders = []
    for path in Path("monitor").rglob("*.py"):
        source = path.read_text()
        for name in _DOLLAR.findall(source):
            if re.search(rf"\b{name}\.(match|search)\(", source):
                offenders.append(f"{path}: {name}")
        if re.search(r"""re\.(match|search)\(\s*r?["'][^"']*\$["']""", source):
            offenders.append(f"{path}: re.match with a $ pattern")
    assert offenders == []
