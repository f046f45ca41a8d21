"""Per-time-bucket rollups of current data on a profile's frozen bins, kept incrementally.

For every profile (reference set), ``drift_rollups`` holds, per model version, column and hour
bucket (and again per day bucket), what the rows of that bucket add up to: for a numeric column
the count, sum and sum of squares per fine bin and the missing count; for a categorical column
the count per category. Rollups add up, so a window is the sum of a few dozen rows whatever its
length: whole days, then whole hours, then the partial hours at both ends read from the raw rows
(``plan_window``).

Which rows are in the rollups is one invariant, stored with the profile:
``received_at < watermark AND ts >= covered_from``. A run moves the watermark forward and reads
only rows that arrived in between (by ``received_at``, BRIN-indexed), whatever their ``ts`` -
so rows that arrive late for an old bucket are added to that bucket. The new watermark never
passes the start of a transaction still running in the database (``safe_watermark``): such a
transaction's rows carry its start time as ``received_at`` and become visible only at commit.
A window that reaches before ``covered_from`` is first backfilled by ``ts``, an hour at a time.
Everything happens under a per-profile advisory lock in one transaction, so concurrent runs
neither double-count nor see half an update, and a failed run leaves nothing behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from monitor.stats.binned import Rollup
from monitor.storage.colscan import (
    DAY,
    HOUR,
    RowSet,
    category_counts,
    driver,
    numeric_groups,
    numpy_cursor,
    unknown_feature_counts,
)
from monitor.storage.pgbinary import float8_array, int4_array, int8_array
from monitor.storage.profiles import MAX_CATEGORIES, ColumnProfile, Profile

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOCK_NAMESPACE = 7_391_040
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the origin of date_bin in colscan
# A transaction this recent may not have written yet but still will (with its start time as
# received_at); older ones only count once they hold a transaction id (have written).
_YOUNG_TRANSACTION_SECONDS = 60


@dataclass
class NumericRollup:
    """Counts, sums and sums of squares per fine bin, plus the missing values."""

    n_missing: int
    counts: IntArray
    sums: FloatArray
    sumsq: FloatArray

    @classmethod
    def empty(cls, n_bins: int) -> NumericRollup:
        return cls(0, np.zeros(n_bins, np.int64), np.zeros(n_bins), np.zeros(n_bins))

    @classmethod
    def of(cls, values: FloatArray, edges: FloatArray) -> NumericRollup:
        """Bin raw values (NaN = missing) on ``edges`` as PostgreSQL's width_bucket would."""
        present = values[~np.isnan(values)]
        index = np.searchsorted(edges, present, side="right")
        size = edges.size + 1
        return cls(
            int(values.size - present.size),
            np.bincount(index, minlength=size).astype(np.int64),
            np.bincount(index, weights=present, minlength=size).astype(np.float64),
            np.bincount(index, weights=present * present, minlength=size).astype(np.float64),
        )

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def add(self, other: NumericRollup, sign: int = 1) -> None:
        self.n_missing += sign * other.n_missing
        self.counts += sign * other.counts
        self.sums += sign * other.sums
        self.sumsq += sign * other.sumsq

    def stats(self) -> Rollup:
        return Rollup(self.counts.astype(np.float64), self.sums.copy(), self.sumsq.copy())


@dataclass
class CategoryRollup:
    """Count per category (the most frequent ``MAX_CATEGORIES``), the rest, and missing."""

    n_missing: int
    counts: dict[str, int] = field(default_factory=dict)
    n_other: int = 0

    @property
    def n(self) -> int:
        return sum(self.counts.values()) + self.n_other

    def add(self, other: CategoryRollup, sign: int = 1) -> None:
        self.n_missing += sign * other.n_missing
        self.n_other += sign * other.n_other
        merged = Counter(self.counts)
        for key, value in other.counts.items():
            merged[key] += sign * value
        self.counts = {k: v for k, v in merged.items() if v != 0}
        self._cap()

    def _cap(self) -> None:
        if len(self.counts) <= MAX_CATEGORIES and min(self.counts.values(), default=0) >= 0:
            return
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [(k, v) for k, v in ranked[:MAX_CATEGORIES] if v > 0]
        self.n_other += sum(v for _, v in ranked) - sum(v for _, v in kept)
        self.counts = dict(kept)


def schema_rollup(rows: int, with_any: int, names: Mapping[str | None, int]) -> CategoryRollup:
    """The unknown-features column: rows carrying each unknown name, and the rows with none as
    missing. A row can carry several names, so ``n_other`` (<= 0) brings ``n`` back to the rows
    with any, keeping ``n + n_missing`` the bucket's row count as for every column."""
    present = {k: v for k, v in names.items() if k is not None}
    return CategoryRollup(rows - with_any, present, with_any - sum(present.values()))


ColumnRollup = NumericRollup | CategoryRollup
Columns = dict[int, ColumnRollup]
Deltas = dict[tuple[str, datetime], Columns]  # (model version, hour bucket) -> col -> rollup


def _empty_like(rollup: ColumnRollup) -> ColumnRollup:
    if isinstance(rollup, NumericRollup):
        return NumericRollup.empty(rollup.counts.size)
    return CategoryRollup(0)


def add_columns(into: Columns, other: Mapping[int, ColumnRollup], sign: int = 1) -> None:
    """``into += sign * other``, column by column."""
    for col, rollup in other.items():
        target = into.get(col)
        if target is None:
            target = into[col] = _empty_like(rollup)
        if isinstance(target, NumericRollup) != isinstance(rollup, NumericRollup):
            raise TypeError(f"column {col} is numeric on one side only")
        target.add(rollup, sign)  # type: ignore[arg-type]


# --- scanning raw rows into deltas ----------------------------------------------------------


def _binned_columns(profile: Profile) -> list[ColumnProfile]:
    return [c for c in profile.by_kind("numeric") if c.edges is not None]


def scan(conn: Connection, profile: Profile, rows: RowSet) -> Deltas:
    """The rollups of a set of ``predictions`` rows, per (model version, hour bucket)."""
    deltas: Deltas = {}
    totals: dict[tuple[str, datetime], int] = {}
    numeric = _binned_columns(profile)
    for (version, bucket), matrix in numeric_groups(conn, rows, [c.spec for c in numeric]):
        assert bucket is not None
        out = deltas.setdefault((version, bucket), {})
        totals[(version, bucket)] = matrix.shape[0]
        for j, column in enumerate(numeric):
            assert column.edges is not None
            out[column.spec.col] = NumericRollup.of(matrix[:, j], column.edges)
    categorical = profile.by_kind("categorical")
    for (version, bucket), per_col in category_counts(
        conn, rows, [c.spec for c in categorical]
    ).items():
        assert bucket is not None
        out = deltas.setdefault((version, bucket), {})
        for col, counts in per_col.items():
            present = {k: v for k, v in counts.items() if k is not None}
            rollup = CategoryRollup(counts.get(None, 0), present)
            rollup.add(CategoryRollup(0))  # applies the category cap
            out[col] = rollup
            totals[(version, bucket)] = rollup.n + rollup.n_missing
    _add_unknown_features(conn, profile, rows, deltas, totals)
    return deltas


def _add_unknown_features(
    conn: Connection,
    profile: Profile,
    rows: RowSet,
    deltas: Deltas,
    totals: Mapping[tuple[str, datetime], int],
) -> None:
    schema_cols = profile.of_role("schema")
    if not schema_cols or not totals:
        return
    col = schema_cols[0].spec.col
    unknown = unknown_feature_counts(conn, rows)
    for key, total in totals.items():
        names = unknown.get(key, {})
        with_any = names.get(None, 0)
        deltas[key][col] = schema_rollup(total, with_any, names)


# --- the watermark and coverage ------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The rows a profile covers: one model, and its versions (one version's own reference, or
    the model-wide reference for every version without one)."""

    model_id: int
    version: str | None  # None: every version not in ``excluded``
    excluded: tuple[str, ...] = ()

    def where(self) -> str:
        clause = "p.model_id = %(model_id)s"
        if self.version is not None:
            return clause + " AND p.model_version = %(version)s"
        if self.excluded:
            return clause + " AND p.model_version <> ALL(%(excluded)s)"
        return clause

    def params(self, **more: Any) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "version": self.version,
            "excluded": list(self.excluded),
            **more,
        }


def floor_to(ts: datetime, seconds: int) -> datetime:
    offset = (ts - _EPOCH).total_seconds()
    return ts - timedelta(seconds=offset % seconds)


def ceil_to(ts: datetime, seconds: int) -> datetime:
    floor = floor_to(ts, seconds)
    return floor if floor == ts else floor + timedelta(seconds=seconds)


def safe_watermark(conn: Connection) -> datetime:
    """The latest ``received_at`` below which every row that will ever exist is visible now.

    Read before the rows themselves (a later snapshot sees all it promises).
    """
    mark: datetime = conn.execute(
        text(
            "SELECT least(clock_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND xact_start IS NOT NULL AND (backend_xid IS NOT NULL "
            "OR xact_start > clock_timestamp() - make_interval(secs => :young))))"
        ),
        {"young": _YOUNG_TRANSACTION_SECONDS},
    ).scalar_one()
    return mark


@dataclass(frozen=True)
class Coverage:
    watermark: datetime
    covered_from: datetime


def lock(conn: Connection, reference_id: int) -> None:
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :r)"), {"ns": _LOCK_NAMESPACE, "r": reference_id}
    )


def refresh(conn: Connection, profile: Profile, scope: Scope, needed_from: datetime) -> Coverage:
    """Bring the profile's rollups up to date and covering ``needed_from``; call under ``lock``.

    Reads only rows that arrived since the last refresh, plus (once) the rows of a window
    reaching before what is covered.
    """
    state = conn.execute(
        text("SELECT watermark, covered_from FROM drift_profiles WHERE reference_id = :r"),
        {"r": profile.reference_id},
    ).one()
    old_mark: datetime | None = state[0]
    new_mark = safe_watermark(conn)
    deltas: Deltas = {}
    start = floor_to(needed_from, HOUR)
    if old_mark is None or state[1] is None:
        covered_from = start
        _backfill(conn, profile, scope, start, None, new_mark, deltas)
    else:
        covered_from = state[1]
        new_mark = max(new_mark, old_mark)
        if new_mark > old_mark:
            rows = RowSet(
                "predictions",
                f"{scope.where()} AND p.received_at >= %(w0)s AND p.received_at < %(w1)s "
                "AND p.ts >= %(since)s",
                scope.params(w0=old_mark, w1=new_mark, since=covered_from),
            )
            _merge(deltas, scan(conn, profile, rows))
        if start < covered_from:
            _backfill(conn, profile, scope, start, covered_from, new_mark, deltas)
            covered_from = start
    store(conn, profile, deltas)
    conn.execute(
        text("UPDATE drift_profiles SET watermark = :w, covered_from = :c WHERE reference_id = :r"),
        {"w": new_mark, "c": covered_from, "r": profile.reference_id},
    )
    return Coverage(new_mark, covered_from)


def _merge(into: Deltas, more: Deltas) -> None:
    for key, columns in more.items():
        add_columns(into.setdefault(key, {}), columns)


def _backfill(
    conn: Connection,
    profile: Profile,
    scope: Scope,
    start: datetime,
    end: datetime | None,
    mark: datetime,
    deltas: Deltas,
) -> None:
    """Scan rows with ``start <= ts < end`` (end None: all later ones) received before ``mark``,
    one hour per query so neither side holds more than an hour of rows at once."""
    with driver(conn).cursor() as cur:
        cur.execute(
            f"SELECT max(p.ts) FROM predictions p WHERE {scope.where()} AND p.ts >= %(start)s",
            scope.params(start=start),
        )
        last = cur.fetchone()[0]  # type: ignore[index]
    if last is None:
        return
    stop = end if end is not None else floor_to(last, HOUR) + timedelta(seconds=HOUR)
    hour = start
    while hour < stop:
        rows = RowSet(
            "predictions",
            f"{scope.where()} AND p.ts >= %(a)s AND p.ts < %(b)s AND p.received_at < %(mark)s",
            scope.params(a=hour, b=hour + timedelta(seconds=HOUR), mark=mark),
        )
        _merge(deltas, scan(conn, profile, rows))
        hour += timedelta(seconds=HOUR)


# --- stored rows -----------------------------------------------------------------------------

_ROW = (
    "model_version, span_seconds, bucket, col, n, n_missing, bins, counts, sums, sumsq, "
    "categories, n_other"
)
Key = tuple[str, int, datetime]  # model version, span seconds, bucket


def _decode(row: Sequence[Any], columns: Mapping[int, ColumnProfile]) -> ColumnRollup:
    (_v, _s, _b, col, _n, n_missing, bins, counts, sums, sumsq, categories, n_other) = row
    profile = columns[col]
    if profile.numeric:
        out = NumericRollup.empty(profile.n_bins)
        out.n_missing = int(n_missing)
        out.counts[bins] = counts
        out.sums[bins] = sums
        out.sumsq[bins] = sumsq
        return out
    return CategoryRollup(
        int(n_missing), dict(zip(categories, counts.tolist(), strict=True)), int(n_other)
    )


def _encode(reference_id: int, key: Key, col: int, rollup: ColumnRollup) -> tuple[Any, ...]:
    if isinstance(rollup, NumericRollup):
        bins = np.flatnonzero(rollup.counts)
        return (
            reference_id,
            *key,
            col,
            rollup.n,
            rollup.n_missing,
            int4_array(bins),
            int8_array(rollup.counts[bins]),
            float8_array(rollup.sums[bins]),
            float8_array(rollup.sumsq[bins]),
            None,
            0,
        )
    names = sorted(rollup.counts)
    return (
        reference_id,
        *key,
        col,
        rollup.n,
        rollup.n_missing,
        None,
        int8_array([rollup.counts[k] for k in names]),
        None,
        None,
        names,
        rollup.n_other,
    )


def store(conn: Connection, profile: Profile, deltas: Deltas) -> None:
    """Add ``deltas`` to the stored hour and day rollups."""
    if not deltas:
        return
    touched: dict[Key, Columns] = {}
    for (version, hour), columns in deltas.items():
        for key in ((version, HOUR, hour), (version, DAY, floor_to(hour, DAY))):
            add_columns(touched.setdefault(key, {}), columns)
    stored = _load(conn, profile, list(touched))
    params = []
    for key, columns in touched.items():
        current = stored.get(key, {})
        add_columns(current, columns)
        params += [_encode(profile.reference_id, key, col, r) for col, r in current.items()]
    with numpy_cursor(conn) as cur:
        cur.executemany(
            f"INSERT INTO drift_rollups (reference_id, {_ROW}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (reference_id, model_version, span_seconds, bucket, col) DO UPDATE SET "
            "n = excluded.n, n_missing = excluded.n_missing, bins = excluded.bins, "
            "counts = excluded.counts, sums = excluded.sums, sumsq = excluded.sumsq, "
            "categories = excluded.categories, n_other = excluded.n_other",
            params,
        )


def _load(conn: Connection, profile: Profile, keys: Sequence[Key]) -> dict[Key, Columns]:
    columns = {c.spec.col: c for c in profile.columns}
    out: dict[Key, Columns] = {}
    with numpy_cursor(conn) as cur:
        cur.execute(
            f"SELECT {_ROW} FROM drift_rollups WHERE reference_id = %s AND "
            "(model_version, span_seconds, bucket) IN (SELECT * FROM unnest(%s::text[], "
            "%s::int4[], %s::timestamptz[]))",
            (
                profile.reference_id,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
            ),
        )
        for row in cur:
            out.setdefault((row[0], row[1], row[2]), {})[row[3]] = _decode(row, columns)
    return out


def prune(conn: Connection, reference_id: int, before: datetime) -> None:
    """Drop buckets that start before ``before`` (retention); ``before`` should be day-aligned."""
    conn.execute(
        text("DELETE FROM drift_rollups WHERE reference_id = :r AND bucket < :b"),
        {"r": reference_id, "b": before},
    )


# --- windows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowPlan:
    """A window [start, end) as stored buckets plus raw edges, each with a sign (+1 / -1)."""

    buckets: tuple[tuple[int, datetime, datetime, int], ...]  # (span, first, stop, sign)
    raw: tuple[tuple[datetime, datetime, int], ...]  # (ts from, ts to, sign)


def plan_window(start: datetime, end: datetime, now: datetime) -> WindowPlan:
    """Whole days and hours from the rollups; partial hours at the ends read raw, as the rows
    inside the window or as the hour's rollup minus the rows outside, whichever spans less
    time (rows after ``now`` cannot exist yet, so that part of the last hour counts as empty).
    """
    hour = timedelta(seconds=HOUR)
    h0, h1 = floor_to(start, HOUR), floor_to(end, HOUR)
    if h0 == h1:
        return WindowPlan((), ((start, end, 1),) if start < end else ())
    raw: list[tuple[datetime, datetime, int]] = []
    first, stop = h0, h1
    if start > h0:
        if h0 + hour - start <= start - h0:
            raw.append((start, h0 + hour, 1))
            first = h0 + hour
        else:
            raw.append((h0, start, -1))
    if end > h1:
        outside = max(timedelta(0), min(h1 + hour, now) - end)
        if end - h1 <= outside:
            raw.append((h1, end, 1))
        else:
            raw.append((end, h1 + hour, -1))
            stop = h1 + hour
    buckets: list[tuple[int, datetime, datetime, int]] = []
    d0, d1 = ceil_to(first, DAY), floor_to(stop, DAY)
    if d0 < d1:
        buckets += [(HOUR, first, d0, 1), (DAY, d0, d1, 1), (HOUR, d1, stop, 1)]
    else:
        buckets.append((HOUR, first, stop, 1))
    return WindowPlan(tuple(b for b in buckets if b[1] < b[2]), tuple(raw))


def window_rollups(
    conn: Connection,
    profile: Profile,
    scope: Scope,
    plan: WindowPlan,
    coverage: Coverage,
) -> dict[str, Columns]:
    """Per model version, the rollup of every column over the planned window."""
    out: dict[str, Columns] = {}
    columns = {c.spec.col: c for c in profile.columns}
    if plan.buckets:
        clauses = " OR ".join(
            "(span_seconds = %s AND bucket >= %s AND bucket < %s)" for _ in plan.buckets
        )
        params: list[Any] = [profile.reference_id]
        for span, first, stop, _sign in plan.buckets:
            params += [span, first, stop]
        with numpy_cursor(conn) as cur:
            cur.execute(
                f"SELECT {_ROW} FROM drift_rollups WHERE reference_id = %s AND ({clauses})",
                params,
            )
            for row in cur:
                add_columns(out.setdefault(row[0], {}), {row[3]: _decode(row, columns)})
    for first, stop, sign in plan.raw:
        rows = RowSet(
            "predictions",
            f"{scope.where()} AND p.ts >= %(a)s AND p.ts < %(b)s AND p.received_at < %(mark)s",
            scope.params(a=first, b=stop, mark=coverage.watermark),
        )
        for (version, _hour), cols in scan(conn, profile, rows).items():
            add_columns(out.setdefault(version, {}), cols, sign)
    return out
