"""The file formats README and --help document are the ones ``monitor ingest`` and
``monitor reference`` read: the README's examples load as documented, and every column the
reader knows is named in both places."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from monitor.bulk import ingest_file, load_reference
from monitor.cli import app
from monitor.config import Settings
from monitor.ingest.fields import KNOWN_FIELDS
from monitor.ingest.files import REFERENCE_FIELDS
from monitor.services import Services

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README[README.index("### File formats") :]
SECTION = SECTION[: SECTION.index("\n## ")]
DOCUMENTED_INGEST = KNOWN_FIELDS - {"model", "features"}


def _examples() -> list[str]:
    return re.findall(r"```csv\n(.*?)```", SECTION, flags=re.S)


def test_the_readme_examples_load_as_documented(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    ingest_example, reference_example = _examples()
    logs = tmp_path / "logs.csv"
    logs.write_text(ingest_example)
    assert ingest_file(settings, logs, "fraud") == 2
    training = tmp_path / "training.csv"
    training.write_text(reference_example)
    assert load_reference(settings, training, "fraud") == 2
    with services.engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT prediction_id, model_version, prediction, latency_ms, status, variant "
                "FROM predictions ORDER BY prediction_id"
            )
        ).all()
        reference = conn.execute(
            text("SELECT prediction, label FROM reference_rows ORDER BY prediction DESC")
        ).all()
        features = conn.execute(text("SELECT features FROM models")).scalar_one()
    assert [tuple(r) for r in stored] == [
        ("a-1", "3.2.0", 0.87, 23.4, "ok", "production"),
        ("a-2", "3.2.0", 0.12, 31.0, "error", "canary"),
    ]
    assert [tuple(r) for r in reference] == [(0.87, 1.0), (0.12, 0.0)]
    assert {f["name"]: f["kind"] for f in features} == {
        "amount": "numeric",
        "country": "categorical",
    }


def test_every_column_the_reader_knows_is_documented_in_readme_and_help() -> None:
    runner = CliRunner()
    ingest_help = runner.invoke(app, ["ingest", "--help"], terminal_width=100).output
    reference_help = runner.invoke(app, ["reference", "--help"], terminal_width=100).output
    for column in DOCUMENTED_INGEST:
        assert f"`{column}`" in SECTION, column
        assert column in ingest_help, column
    for column in REFERENCE_FIELDS - {"model", "model_version"}:
        assert f"`{column}`" in SECTION, column
        assert column in reference_help, column
    for extension in (".csv", ".jsonl", ".parquet"):
        assert extension in SECTION
        assert extension in ingest_help


def test_readme_names_both_drift_series_and_the_demo_flags() -> None:
    metrics_row = next(
        ln for ln in README.splitlines() if ln.startswith("| `ml_feature_drift_score`")
    )
    assert 'method="psi"' in metrics_row
    assert "Two series per feature" in metrics_row
    for flag in ("--keep-running", "--no-fresh", "--minutes"):
        assert flag in README, flag
    demo_help = CliRunner().invoke(app, ["demo", "--help"], terminal_width=100).output
    assert "--keep-running" in demo_help
    assert "--no-fresh" in demo_help
