"""Payloads as the formats' own documentation and sources show them (written out here).

KServe: the sklearn iris examples of the KServe docs (V1 and V2 inference) and the ``ce-*``
attributes set by ``pkg/logger/worker.go``; MLServer: the response headers of
``mlserver/cloudevents.py`` and the pandas-codec request of its docs; Seldon Core 1: the request
logger's ``{"data": {"names", "ndarray"}}`` body.
"""

from __future__ import annotations

from typing import Any

V1_IRIS_REQUEST: dict[str, Any] = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
V1_IRIS_RESPONSE: dict[str, Any] = {"predictions": [1, 1]}
IRIS_INPUT_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

V2_IRIS_REQUEST: dict[str, Any] = {
    "inputs": [
        {
            "name": "input-0",
            "shape": [2, 4],
            "datatype": "FP32",
            "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]],
        }
    ]
}
V2_IRIS_RESPONSE: dict[str, Any] = {
    "model_name": "sklearn-v2-iris",
    "model_version": None,
    "id": "823248cc-d770-4a51-9606-16803395569c",
    "parameters": None,
    "outputs": [
        {"name": "predict", "shape": [2], "datatype": "INT32", "parameters": None, "data": [1, 1]}
    ],
}

# MLServer's pandas codec: one tensor per column
MLSERVER_PD_REQUEST: dict[str, Any] = {
    "parameters": {"content_type": "pd"},
    "inputs": [
        {
            "name": "First Name",
            "datatype": "BYTES",
            "parameters": {"content_type": "str"},
            "shape": [2],
            "data": ["Joanne", "Michael"],
        },
        {"name": "Age", "datatype": "INT32", "shape": [2], "data": [34, 22]},
    ],
}
MLSERVER_IRIS_RESPONSE: dict[str, Any] = {
    "model_name": "iris_1",
    "model_version": "1",
    "id": "e621cc3b-c488-46f8-bb5a-4fde4b02dcb9",
    "parameters": {"content_type": None, "headers": None},
    "outputs": [
        {"name": "predict", "shape": [1], "datatype": "INT64", "parameters": None, "data": [2]}
    ],
}

SELDON_REQUEST: dict[str, Any] = {"data": {"names": ["a", "b"], "ndarray": [[1, 2], [3, 4]]}}
SELDON_RESPONSE: dict[str, Any] = {
    "data": {"names": ["proba"], "ndarray": [[0.43782349911420193]]},
    "meta": {},
}


def kserve_headers(
    ce_id: str,
    half: str,
    *,
    service: str = "sklearn-iris",
    endpoint: str = "default",
    time: str | None = None,
) -> dict[str, str]:
    """The binary-mode headers KServe's logger sends (cloudevents sdk-go, spec 1.0)."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-type": f"org.kubeflow.serving.inference.{half}",
        "ce-source": "http://localhost:9081/",
        "ce-inferenceservicename": service,
        "ce-namespace": "default",
        "ce-component": "predictor",
        "ce-endpoint": endpoint,
        "ce-metadata": "{}",
        "content-type": "application/json",
    }
    if time is not None:
        headers["ce-time"] = time
    return headers


def mlserver_headers(request_id: str, half: str, *, model: str = "iris_1") -> dict[str, str]:
    """What ``mlserver/cloudevents.py`` sets (spec 0.3, Ce-Requestid, Ce-Modelid)."""
    return {
        "Ce-Id": request_id,
        "Ce-Specversion": "0.3",
        "Ce-Source": "io.seldon.serving.deployment.mlserver.default",
        "Ce-Type": f"io.seldon.serving.inference.{half}",
        "Ce-Requestid": request_id,
        "Ce-Modelid": model,
        "Ce-Inferenceservicename": "mlserver",
        "Ce-Namespace": "default",
        "Ce-Endpoint": model,
        "Content-Type": "application/json",
    }
