"""Bounded uniform samples of raw rows, for the methods that need rows and not rollups
(estimated performance, the domain classifier, PCA reconstruction).

A sample is an (n, features) matrix in schema order, numeric values as they are and categorical
values as their 32-bit ``hashtext`` (NaN where missing), with the prediction and the label
beside it, numeric and as the ``hashtext`` of their text (a window's label is the delayed label
joined by prediction id, NaN until it arrives), and, when asked for by class, the row's score
of each class (``probabilities``; NaN where the row has none for that class).

Rows are drawn in PostgreSQL: each row is kept with probability ``p`` (``random() < p``, a
Bernoulli sample, so every row is equally likely), ``p`` a little above ``limit / rows`` so
the draw almost never falls short, and the surplus is dropped uniformly in numpy. Only about
``limit`` rows ever leave the database. The draw is seeded (``setseed``, no parallel workers,
no synchronized scans), so a re-run over the same rows picks the same sample.

Sample size and error: a figure measured on a uniform sample of n rows out of N has the
sampling sd of a mean of n values times sqrt(1 - n / N); at the default 50,000 rows a share
such as an accuracy of 0.9 is known to within sqrt(0.9 * 0.1 / 50,000) = 0.0013.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from monitor.ingest.schema import FeatureSchema
from monitor.storage.database import Database
from monitor.storage.drift.colscan import ColumnSpec, driver, text_hashes
from monitor.storage.drift.pgbinary import decode_rows
from monitor.storage.span import Scope, Span

DEFAULT_SAMPLE_ROWS = 50_000
"""Rows per side: a share measured on the sample is within about 0.0013 (1 sd) of the whole."""
SEED = 0.25
"""``setseed`` value: the same rows give the same sample (any value in [-1, 1])."""
FloatArray = npt.NDArray[np.float64]

_EXTRA = 4  # prediction, its text code, label, its text code


@dataclass(frozen=True)
class RowSample:
    """A uniform sample of ``population`` rows, as parallel arrays."""

    features: FloatArray
    """(n, len(names)): numeric values, categorical ones as hashtext codes; NaN = missing."""
    names: tuple[str, ...]
    categorical: tuple[bool, ...]
    prediction: FloatArray
    prediction_code: FloatArray
    """``hashtext`` of the text prediction (NaN where the prediction is a number or missing)."""
    label: FloatArray
    label_code: FloatArray
    population: int
    """Rows the sample was drawn from."""
    scores: FloatArray = field(default_factory=lambda: np.empty((0, 0)))
    """(n, len(classes)): each row's score of each class; NaN = none."""
    classes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return int(self.prediction.size)

    def take(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> RowSample:
        """The sample's rows picked by a mask or indices (same population)."""
        return RowSample(
            self.features[rows],
            self.names,
            self.categorical,
            self.prediction[rows],
            self.prediction_code[rows],
            self.label[rows],
            self.label_code[rows],
            self.population,
            self.scores[rows] if self.classes else self.scores,
            self.classes,
        )


@dataclass(frozen=True)
class ActiveReference:
    """An active reference set and the predictions it is the reference of."""

    reference_id: int
    model_version: str
    """'' for the model-wide reference (every version without one of its own)."""
    scope: Scope
    row_count: int
    created_at: datetime


def active_references(db: Database, model_id: int) -> list[ActiveReference]:
    """The model's active reference sets, each with the scope of versions it covers."""
    with db.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(
            "SELECT id, model_version, row_count, created_at FROM reference_sets "
            "WHERE model_id = %s AND active ORDER BY model_version",
            (model_id,),
        )
        rows = cur.fetchall()
    own = tuple(sorted(str(r[1]) for r in rows if r[1]))
    return [
        ActiveReference(
            int(r[0]),
            str(r[1]),
            Scope(model_id, str(r[1]) or None, () if r[1] else own),
            int(r[2]),
            r[3],
        )
        for r in rows
    ]


def _specs(schema: FeatureSchema) -> list[ColumnSpec]:
    specs: list[ColumnSpec] = []
    for f in schema.features:
        index = schema.num_index if f.kind == "numeric" else schema.cat_index
        specs.append(ColumnSpec(len(specs), f.name, "feature", f.kind, index[f.name] + 1))
    specs.append(ColumnSpec(len(specs), "prediction", "prediction", "numeric"))
    specs.append(ColumnSpec(len(specs), "prediction", "prediction", "categorical"))
    specs.append(ColumnSpec(len(specs), "label", "label", "numeric"))
    specs.append(ColumnSpec(len(specs), "label", "label", "categorical"))
    return specs


def _cell(spec: ColumnSpec) -> str:
    if spec.kind == "numeric":
        return f"coalesce({spec.sql()}, 'NaN'::float8)"
    return f"coalesce(hashtext({spec.sql()})::float8, 'NaN'::float8)"


def _score_cell(k: int) -> str:
    return f"coalesce((p.probabilities ->> %(class_{k})s)::float8, 'NaN'::float8)"


def _row(specs: Sequence[ColumnSpec], classes: int) -> str:
    cells = [*map(_cell, specs), *map(_score_cell, range(classes))]
    return f"array_send(ARRAY[{', '.join(cells)}]::float8[])"


def _class_params(classes: Sequence[str]) -> dict[str, str]:
    return {f"class_{k}": c for k, c in enumerate(classes)}


def keep_share(rows: int, limit: int) -> float:
    """The Bernoulli share that yields at least ``limit`` of ``rows`` all but surely (5 sd)."""
    if rows <= limit:
        return 1.0
    return min(1.0, (limit + 5.0 * float(np.sqrt(limit)) + 10.0) / rows)


def _seeded(conn: Connection) -> None:
    # one process reads the rows, from the table's first block: a synchronized scan would start
    # where the last scan of a big table stopped, and the seeded draw would pick other rows
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    conn.exec_driver_sql("SET LOCAL synchronize_seqscans = off")
    conn.exec_driver_sql(f"SELECT setseed({SEED!r})")


def _read(
    conn: Connection,
    source: str,
    params: dict[str, Any],
    schema: FeatureSchema,
    classes: Sequence[str],
) -> FloatArray:
    specs = _specs(schema)
    width = len(specs) + len(classes)
    sql = f"SELECT string_agg({_row(specs, len(classes))}, ''::bytea) FROM ({source}) p"
    with driver(conn).cursor(binary=True) as cur:
        cur.execute(sql, {**params, **_class_params(classes)})
        row = cur.fetchone()
    data = row[0] if row else None
    return np.empty((0, width)) if data is None else decode_rows(data, width)


def _sample(
    matrix: FloatArray,
    schema: FeatureSchema,
    limit: int,
    population: int,
    classes: Sequence[str],
) -> RowSample:
    if matrix.shape[0] > limit:
        rng = np.random.default_rng(0)
        matrix = matrix[np.sort(rng.choice(matrix.shape[0], limit, replace=False))]
    width = len(schema.features)
    prediction, prediction_code, label, label_code = (
        np.ascontiguousarray(matrix[:, width + k]) for k in range(_EXTRA)
    )
    return RowSample(
        np.ascontiguousarray(matrix[:, :width]),
        tuple(f.name for f in schema.features),
        tuple(f.kind == "categorical" for f in schema.features),
        prediction,
        prediction_code,
        label,
        label_code,
        population,
        np.ascontiguousarray(matrix[:, width + _EXTRA :]),
        tuple(classes),
    )


def reference_sample(
    db: Database,
    reference: ActiveReference,
    schema: FeatureSchema,
    limit: int,
    classes: Sequence[str] = (),
) -> RowSample:
    """Up to ``limit`` rows of the reference set, uniformly drawn (with the score of each of
    ``classes``)."""
    share = keep_share(reference.row_count, limit)
    source = "SELECT * FROM reference_rows WHERE reference_id = %(r)s AND random() < %(share)s"
    params = {"r": reference.reference_id, "share": share}
    with db.begin() as conn:
        _seeded(conn)
        matrix = _read(conn, source, params, schema, classes)
    return _sample(matrix, schema, limit, reference.row_count, classes)


def reference_classes(db: Database, reference: ActiveReference, limit: int) -> tuple[str, ...]:
    """The classes the reference's rows give scores for, most often scored first, at most
    ``limit`` (then sorted by name: the order the sample's score columns take)."""
    with db.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(
            "SELECT k FROM reference_rows r, jsonb_object_keys(r.probabilities) k "
            "WHERE r.reference_id = %s AND r.probabilities IS NOT NULL "
            "GROUP BY k ORDER BY count(*) DESC, k LIMIT %s",
            (reference.reference_id, limit),
        )
        return tuple(sorted(str(r[0]) for r in cur))


_WINDOW = "FROM predictions p WHERE {scope} AND p.ts >= %(ts0)s AND p.ts < %(ts1)s"
# The draw in a subquery of its own: PostgreSQL does not push a volatile filter (random())
# below an outer join, so with the join in the same query every row of the window was joined
# with its label before the draw dropped most of them (2x the time at 1M rows).
_WINDOW_ROWS = (
    "SELECT p.num, p.cat, p.prediction, p.prediction_text, l.label, l.label_text, "
    "p.probabilities FROM ("
    "SELECT p.model_id, p.prediction_id, p.num, p.cat, p.prediction, p.prediction_text, "
    "p.probabilities FROM predictions p "
    "WHERE {scope} AND p.ts >= %(ts0)s AND p.ts < %(ts1)s AND p.model_version = %(v)s "
    "AND random() < %(share)s) p LEFT JOIN labels l "
    "ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id"
)


def window_counts(db: Database, span: Span) -> dict[str, int]:
    """Each model version's rows in ``span`` (a scan of the window's rows: the version is not in
    the ``(model_id, ts)`` index; ``jobs.memo`` shares the answer between a tick's jobs)."""
    where = _WINDOW.format(scope=Scope(span.model_id, None).where())
    params = Scope(span.model_id, None).params(ts0=span.start, ts1=span.end)
    with db.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(f"SELECT p.model_version, count(*) {where} GROUP BY 1 ORDER BY 1", params)
        return {str(v): int(n) for v, n in cur}


def window_samples(
    db: Database,
    scope: Scope,
    span: Span,
    schema: FeatureSchema,
    limit: int,
    classes: Sequence[str] = (),
    counts: Mapping[str, int] | None = None,
) -> dict[str, RowSample]:
    """Per model version of ``scope`` with rows in ``span``, up to ``limit`` of them, uniformly
    drawn, with their delayed labels where they have arrived (and the score of each of
    ``classes``). ``counts``: every version's rows in ``span`` where the caller has them
    (``window_counts``), else they are counted here first."""
    params = scope.params(ts0=span.start, ts1=span.end)
    known = window_counts(db, span) if counts is None else counts
    rows_of = sorted((v, n) for v, n in known.items() if n > 0 and scope.covers(v))
    out: dict[str, RowSample] = {}
    with db.begin() as conn:
        _seeded(conn)
        source = _WINDOW_ROWS.format(scope=scope.where())
        for version, rows in rows_of:
            share = keep_share(rows, limit)
            matrix = _read(conn, source, {**params, "v": version, "share": share}, schema, classes)
            out[version] = _sample(matrix, schema, limit, rows, classes)
    return out


def hash_codes(db: Database, values: Sequence[str]) -> npt.NDArray[np.int64]:
    """PostgreSQL's ``hashtext`` of each value: the code a sample gives that text."""
    with db.connect() as conn:
        return text_hashes(conn, values)


def code_texts(
    db: Database, model_id: int, version: str, span: Span, position: int, codes: Sequence[float]
) -> dict[float, str]:
    """The text of each ``hashtext`` code of categorical feature ``position`` (0-based) among
    one version's rows in ``span``: the first row found with each code (a frequent value's is
    found at once), so a sample's codes can be named without scanning the window."""
    cell = f"p.cat[{int(position) + 1}]"
    with db.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(
            f"SELECT c, (SELECT {cell} FROM predictions p WHERE p.model_id = %(m)s "
            "AND p.model_version = %(v)s AND p.ts >= %(ts0)s AND p.ts < %(ts1)s "
            f"AND hashtext({cell}) = c LIMIT 1) FROM unnest(%(codes)s::int4[]) c",
            {
                "m": model_id,
                "v": version,
                "ts0": span.start,
                "ts1": span.end,
                "codes": [int(c) for c in codes],
            },
        )
        return {float(c): str(t) for c, t in cur if t is not None}
