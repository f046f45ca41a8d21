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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, text

from monitor.storage.drift.bins import (
    CategoryRollup,
    ColumnRollup,
    Columns,
    Deltas,
    NumericRollup,
    add_columns,
)
from monitor.storage.drift.colscan import (
    DAY,
    HOUR,
    RowSet,
    driver,
    numpy_cursor,
)
from monitor.storage.drift.pgbinary import float8_array, int4_array, int8_array
from monitor.storage.drift.profiles import ColumnProfile, Profile
from monitor.storage.drift.rowscan import scan, scan_each
from monitor.storage.span import Scope

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_LOCK_NAMESPACE = 7_391_040
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the origin of date_bin in colscan
# A transaction this recent may not have written yet but still will (with its start time as
# received_at); older ones only count once they hold a transaction id (have written).
_YOUNG_TRANSACTION_SECONDS = 60


# --- the watermark and coverage ------------------------------------------------------------


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
            "AND backend_type = 'client backend' "
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
    start = floor_to(needed_from, HOUR)
    row_sets: list[RowSet] = []
    if old_mark is None or state[1] is None:
        covered_from = start
        row_sets += _backfill(conn, scope, start, None, new_mark)
    else:
        covered_from = state[1]
        new_mark = max(new_mark, old_mark)
        if new_mark > old_mark:
            row_sets.append(
                RowSet.predictions(scope, ts_from=covered_from, received=(old_mark, new_mark))
            )
        if start < covered_from:
            row_sets += _backfill(conn, scope, start, covered_from, new_mark)
            covered_from = start
    store(conn, profile, scan(conn.engine, profile, row_sets) if row_sets else {})
    conn.execute(
        text("UPDATE drift_profiles SET watermark = :w, covered_from = :c WHERE reference_id = :r"),
        {"w": new_mark, "c": covered_from, "r": profile.reference_id},
    )
    return Coverage(new_mark, covered_from)


def _backfill(
    conn: Connection, scope: Scope, start: datetime, end: datetime | None, mark: datetime
) -> list[RowSet]:
    """Rows with ``start <= ts < end`` (end None: all later ones) received before ``mark``, an
    hour per row set so that no query holds more than an hour of rows at once."""
    with driver(conn).cursor() as cur:
        cur.execute(
            f"SELECT max(p.ts) FROM predictions p WHERE {scope.where()} AND p.ts >= %(start)s",
            scope.params(start=start),
        )
        last = cur.fetchone()[0]  # type: ignore[index]
    if last is None:
        return []
    stop = end if end is not None else floor_to(last, HOUR) + timedelta(seconds=HOUR)
    hours = int((stop - start).total_seconds() // HOUR)
    return [
        RowSet.predictions(
            scope,
            ts_from=start + timedelta(seconds=HOUR * i),
            ts_to=start + timedelta(seconds=HOUR * (i + 1)),
            received_before=mark,
        )
        for i in range(hours)
    ]


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
    raw = [
        RowSet.predictions(scope, ts_from=first, ts_to=stop, received_before=coverage.watermark)
        for first, stop, _sign in plan.raw
    ]
    for (_first, _stop, sign), deltas in zip(
        plan.raw, scan_each(conn.engine, profile, raw), strict=True
    ):
        for (version, _hour), cols in deltas.items():
            add_columns(out.setdefault(version, {}), cols, sign)
    return out
