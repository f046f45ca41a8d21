from fastapi.testclient import TestClient


def test_round_trip(client: TestClient) -> None:
    body = {
        "predictions": [
            {
                "prediction_id": "a1",
                "model": "fraud",
                "model_version": "3.2.0",
                "timestamp": "2026-11-23T10:00:00Z",
                "features": {"amount": 12.5, "country": "DE"},
                "prediction": 0.87,
                "latency_ms": 23.4,
                "status": "ok",
                "variant": "canary",
                "gpu_seconds": 0.004,
                "tokens_in": 812,
                "tokens_out": 96,
            }
        ]
    }
    r = client.post("/v1/predictions", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1, "stored": 1, "duplicates": 0}
    r = client.post("/v1/predictions", json=body)
    assert r.json() == {"received": 1, "stored": 0, "duplicates": 1}
    r = client.get("/v1/models/fraud")
    assert r.status_code == 200, r.text
    print(r.json())
