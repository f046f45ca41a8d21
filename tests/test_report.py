"""The Evidently HTML report: written by ``monitor report`` and served by the API, on bounded
samples of the window and of the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from monitor.config import Settings
from monitor.reports import sample, write_report
from monitor.services import Services
from tests.jobs.drift_data import (
    insert_predictions,
    make_model,
    now,
    set_reference,
    spread,
    window,
)


def _model(services: Services, n_ref: int = 400, n_cur: int = 300) -> None:
    rng = np.random.default_rng(3)
    model = make_model(services, "fraud", ["amount_eur"], ["country_code"])
    set_reference(
        services,
        model,
        rng.normal(size=(n_ref, 1)),
        rng.choice(["DE", "FR"], size=(n_ref, 1)).astype(object),
        prediction=rng.uniform(size=n_ref).tolist(),
    )
    insert_predictions(
        services,
        model,
        spread(now(), n_cur, 5, rng),
        rng.normal(1, 1, size=(n_cur, 1)),
        rng.choice(["DE", "FR"], size=(n_cur, 1)).astype(object),
        prediction=rng.uniform(size=n_cur).tolist(),
    )


def test_report_writes_valid_html_naming_the_features(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    _model(services)
    out = write_report(
        settings, model="fraud", window="24h", version="", output=tmp_path / "r.html"
    )
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith(("<!doctype html", "<html"))
    assert html.rstrip().lower().endswith("</html>")
    for name in ("amount_eur", "country_code", "prediction"):
        assert name in html


def test_samples_are_bounded(services: Services) -> None:
    _model(services, n_ref=2000, n_cur=1500)
    model = services.models.require("fraud")
    samples = sample(services, model, window("24h", now()), limit=200)
    assert 0 < len(samples.reference) <= 200
    assert 0 < len(samples.current) <= 200
    assert samples.numeric == ["amount_eur", "prediction"]
    assert samples.categorical == ["country_code"]


def test_report_over_http(client: TestClient, services: Services) -> None:
    _model(services)
    r = client.get("/v1/models/fraud/report", params={"window": "24h"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "amount_eur" in r.text
    assert client.get("/v1/models/fraud/report", params={"window": "x"}).status_code == 422
    assert client.get("/v1/models/none/report").status_code == 404


def test_report_has_an_estimated_performance_section(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    model = make_model(services, "churn", ["tenure"], performance={"min": {"accuracy": 0.8}})
    x = rng.normal(size=(1500, 1))
    p = 1 / (1 + np.exp(-3 * x[:, 0]))
    y = (rng.random(1500) < p).astype(float)
    set_reference(services, model, x, prediction=p.tolist(), label=y.tolist())
    insert_predictions(
        services, model, spread(now(), 400, 5, rng), x[:400], prediction=p[:400].tolist()
    )
    out = write_report(
        settings, model="churn", window="24h", version="", output=tmp_path / "e.html"
    )
    html = out.read_text(encoding="utf-8")
    section = html[html.index('<section id="estimated-performance"') :]
    assert section.index("</section>") < section.lower().index("</body>")
    assert "Estimated performance (24h window" in section
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert f"<td>{metric}</td>" in section
    accuracy_row = section[section.index("<td>accuracy</td>") :].split("</tr>")[0]
    assert "<td>0.8</td>" in accuracy_row  # the floor
    estimate = float(accuracy_row.split("<td>")[2].removesuffix("</td>"))
    assert 0.7 < estimate < 0.95


def test_report_says_why_there_is_no_estimate(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    _model(services)  # a reference without labels
    html = write_report(
        settings, model="fraud", window="24h", version="", output=tmp_path / "n.html"
    ).read_text(encoding="utf-8")
    assert "No estimate: the model needs a reference with predictions and labels" in html


def test_report_has_the_multivariate_section_with_its_top_features(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    model = make_model(services, "pair", ["a", "b", "c"])
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])
    flipped = cov * np.array([[1, -1, 1], [-1, 1, 1], [1, 1, 1]])
    set_reference(services, model, rng.multivariate_normal(np.zeros(3), cov, 1500))
    current = rng.multivariate_normal(np.zeros(3), flipped, 1500)
    insert_predictions(services, model, spread(now(), 1500, 5, rng), current)
    out = write_report(settings, model="pair", window="24h", version="", output=tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    section = html[html.index('id="ml-monitor-multivariate"') :]
    assert section.index("</section>") < section.lower().index("</body>")
    for text in ("domain_classifier", "pca_reconstruction", ">drift<", "1500 of 1500 window"):
        assert text in section, text
    top = section[section.index("domain_classifier") :].split("</tr>")[0]
    assert "a (" in top
    assert "b (" in top
