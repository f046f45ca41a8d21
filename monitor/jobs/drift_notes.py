"""Why drift figures are missing, said in words: no reference set, no reference predictions.

Without these, ``monitor jobs run`` printed ``drift ok 0`` for a model with no reference and
``GET /drift`` answered ``"prediction": null``, both of which read as "no drift".
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.catalogue import PREDICTION_DRIFT_SCORE
from monitor.storage.database import Database
from monitor.storage.models import ModelRecord
from monitor.storage.reference_coverage import ReferenceCoverage, coverage_of

NO_REFERENCE = "no reference set"
NO_REFERENCE_PREDICTIONS = "no reference predictions"


def drift_notes(model: str, references: Sequence[ReferenceCoverage]) -> list[str]:
    """Plain-language notes for ``model`` given its active references (empty: nothing missing)."""
    if not references:
        return [
            f"{NO_REFERENCE} for model {model!r}: drift is not computed until one is "
            f"(monitor reference FILE --model {model}, or POST /v1/models/{model}/reference)"
        ]
    lacking = [r for r in references if not r.has_predictions]
    if not lacking:
        return []
    which = ", ".join(
        repr(r.model_version) if r.model_version else "every version" for r in lacking
    )
    return [
        f"{NO_REFERENCE_PREDICTIONS} for model {model!r} ({which}): the reference has no "
        f"'prediction' column, so prediction drift ({PREDICTION_DRIFT_SCORE}) is not computed"
    ]


def notes_for(db: Database, models: Sequence[ModelRecord]) -> list[str]:
    coverage = coverage_of(db, [m.id for m in models])
    return [n for m in models for n in drift_notes(m.name, coverage[m.id])]
