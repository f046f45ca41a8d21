"""Without a reference: per model version, how many rows carry each feature and each unknown one.

The quality job's one scan of a window's rows when there are no rollups to read (no active
reference): ``count(num[i])`` / ``count(cat[j])`` per version, and the unknown feature names
(``extra->'unknown_features'``) counted by ``colscan.unknown_feature_counts``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from monitor.ingest.schema import FeatureSchema
from monitor.storage.database import Database
from monitor.storage.drift.colscan import RowSet, driver, unknown_feature_counts
from monitor.storage.span import Scope, Span


@dataclass(frozen=True)
class VersionPresence:
    """One version's rows in the window: ``present[name]`` rows have the feature; ``unknown``
    counts the rows carrying each unknown feature (key None: rows carrying any)."""

    version: str
    rows: int
    present: dict[str, int]
    unknown: Counter[str | None] = field(default_factory=Counter)


def feature_presence(db: Database, span: Span, schema: FeatureSchema) -> list[VersionPresence]:
    numeric, categorical = schema.numeric_names, schema.categorical_names
    counts = [f"count(p.num[{i + 1}])" for i in range(len(numeric))]
    counts += [f"count(p.cat[{i + 1}])" for i in range(len(categorical))]
    rows = RowSet.predictions(Scope(span.model_id, None), ts_from=span.start, ts_to=span.end)
    with db.connect() as conn:
        with driver(conn).cursor() as cur:
            cur.execute(
                f"SELECT p.model_version, count(*) {''.join(', ' + c for c in counts)} "
                f"FROM predictions p WHERE {rows.where} GROUP BY 1",
                rows.params,
            )
            groups = cur.fetchall()
        unknown: dict[str, Counter[str | None]] = {}
        for (version, _hour), names in unknown_feature_counts(conn, rows).items():
            unknown.setdefault(version, Counter()).update(names)
    features = [*numeric, *categorical]
    return [
        VersionPresence(
            version,
            int(total),
            dict(zip(features, map(int, present), strict=True)),
            unknown.get(version, Counter()),
        )
        for version, total, *present in groups
    ]
