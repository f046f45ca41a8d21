"""The multivariate section of ``monitor report``: the multivariate drift job's evaluation of
the report's window (its own bounded samples), as an HTML block after Evidently's report.

Per version: each method's score, threshold and verdict, the sample sizes behind it and, for the
domain classifier, the features it relies on most (the explanation of a drift).
"""

from __future__ import annotations

from html import escape

from monitor.jobs.base import Window
from monitor.jobs.multivariate import VersionMultivariate, evaluate_multivariate
from monitor.storage.database import Database
from monitor.storage.models import ModelRecord

SECTION_ID = "ml-monitor-multivariate"
_STYLE = "font-family: sans-serif; margin: 24px; border-collapse: collapse"
_CELL = 'style="border: 1px solid #ccc; padding: 4px 8px"'


def _cell(value: object) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    return f"<td {_CELL}>{escape(str(value))}</td>"


def _rows(v: VersionMultivariate) -> list[str]:
    out = []
    for m in v.methods:
        top = ", ".join(
            f"{f['feature']} ({f['importance']:.3g})" for f in m.details.get("top_features", [])
        )
        verdict = "drift" if m.detected else "no drift"
        cells = (v.model_version or "(all)", m.method, m.score, m.threshold, verdict, top or "—")
        out.append("<tr>" + "".join(_cell(c) for c in cells) + "</tr>")
    if not v.methods:
        note = f"too few rows ({v.sampled_window} in the window sample): no verdict"
        out.append(
            f"<tr>{_cell(v.model_version or '(all)')}<td {_CELL} colspan=5>{escape(note)}</td></tr>"
        )
    return out


def multivariate_html(db: Database, model: ModelRecord, window: Window, version: str = "") -> str:
    """The section as an HTML fragment (empty when the model has no reference or it is off)."""
    versions = [
        v
        for v in evaluate_multivariate(db, model, window)
        if not version or v.model_version == version
    ]
    if not versions:
        return ""
    sizes = ", ".join(
        f"{v.model_version or '(all)'}: {v.sampled_window} of {v.window_rows} window rows, "
        f"{v.sampled_reference} of {v.reference_rows} reference rows"
        for v in versions
    )
    header = "".join(
        f"<th {_CELL}>{h}</th>"
        for h in ("version", "method", "score", "threshold", "verdict", "top features")
    )
    rows = "".join(r for v in versions for r in _rows(v))
    return (
        f'<section id="{SECTION_ID}" style="{_STYLE}">'
        f"<h2>Multivariate drift ({escape(window.name)} window)</h2>"
        "<p>Domain classifier: cross-validated ROC AUC of telling window rows from reference "
        "rows (0.5 = no drift; threshold 0.5 + 4 sd of the AUC under no drift, at least 0.55). "
        "PCA reconstruction: mean distance of the window's rows from the reference's principal "
        "subspace (threshold: the reference band's upper end). "
        f"Samples: {escape(sizes)}.</p>"
        f'<table style="{_STYLE}"><tr>{header}</tr>{rows}</table></section>'
    )
