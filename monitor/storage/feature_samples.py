"""Bounded, stratified random samples of rows: drift per segment compares each segment of a
window with the same segment of the reference, so each segment needs rows of its own, however
small its share (a uniform sample, ``storage.rowsample``, would give a 1 % segment 1 % of it).

A sample holds at most ``limit`` rows per stratum, drawn uniformly within the stratum.
PostgreSQL first counts each stratum's rows (one scan of the window's index range, skipped
where the caller has the counts: ``stratum_counts``), then keeps each row with probability
``1.2 * limit / count`` (a Bernoulli pass) and, of those, the first ``limit`` in random order
per stratum (``row_number() OVER (PARTITION BY stratum ORDER BY
random())``). Memory is bounded by strata × limit rows however large the window is, and no
part of the window is favoured (a plain ``LIMIT`` would keep the rows scanned first).
``setseed`` makes a re-run with the same seed over the same rows read the same sample.

Without strata the whole set is one stratum. With ``Strata(position, values)`` the strata are
the given values of categorical feature ``position`` and ``__other__`` (every other value and
missing values): what ``monitor.stats.segments`` calls segments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.storage.database import Database
from monitor.storage.drift.colscan import RowSet, driver
from monitor.storage.rowsample import window_counts
from monitor.storage.span import Scope, Span

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]
OVERSAMPLE = 1.2
"""The Bernoulli pass keeps about ``p * count`` rows: ask for a fifth more, then cut."""
OTHER = "__other__"
"""The stratum of every value not named (and of missing values); as ``stats.segments.OTHER``."""


@dataclass(frozen=True)
class Strata:
    """Stratify by categorical feature ``position`` (0-based in ``cat``): ``values`` and
    ``__other__``."""

    position: int
    values: tuple[str, ...]

    def sql(self) -> str:
        return (
            f"CASE WHEN p.cat[{int(self.position) + 1}] = ANY(%(strata)s::text[]) "
            f"THEN p.cat[{int(self.position) + 1}] ELSE '{OTHER}' END"
        )


@dataclass(frozen=True)
class RowSample:
    """Sampled rows: numeric features (NaN = missing) and categorical features (None =
    missing) in schema order, the numeric prediction (NaN where none), each row's stratum, and
    how many rows each stratum has in the set sampled from."""

    num: FloatArray
    cat: ObjectArray
    prediction: FloatArray
    stratum: ObjectArray
    counts: dict[str, int]

    @property
    def rows(self) -> int:
        """Rows in the sample."""
        return int(self.num.shape[0])

    @property
    def population(self) -> int:
        """Rows in the set the sample was drawn from."""
        return sum(self.counts.values())

    def where(self, stratum: str) -> RowSample:
        """The rows of one stratum."""
        keep = self.stratum == stratum
        count = {stratum: self.counts[stratum]} if stratum in self.counts else {}
        return RowSample(
            self.num[keep], self.cat[keep], self.prediction[keep], self.stratum[keep], count
        )


@dataclass(frozen=True)
class VersionRows:
    """A model version with rows in a span, and the active reference it is compared with."""

    reference_id: int
    reference_rows: int
    version: str
    rows: int


def window_rows(model_id: int, version: str, span: Span) -> RowSet:
    """One version's predictions in ``span``."""
    return RowSet.predictions(Scope(model_id, version), ts_from=span.start, ts_to=span.end)


def reference_rows(reference_id: int) -> RowSet:
    return RowSet.reference(reference_id)


def versions_in(
    db: Database, span: Span, counts: Mapping[str, int] | None = None
) -> list[VersionRows]:
    """Per model version with rows in ``span``: its rows and its active reference (its own, or
    the model-wide one); versions without an active reference are left out. ``counts``: each
    version's rows in ``span`` where the caller has them (``rowsample.window_counts``)."""
    with db.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(
            "SELECT id, model_version, row_count FROM reference_sets "
            "WHERE model_id = %(m)s AND active",
            {"m": span.model_id},
        )
        references = {str(v): (int(i), int(n)) for i, v, n in cur.fetchall()}
    if not references:
        return []
    known = window_counts(db, span) if counts is None else counts
    out = []
    for version, n in sorted(known.items()):
        if n <= 0:
            continue
        ref = references.get(version) or references.get("")
        if ref is not None:
            out.append(VersionRows(ref[0], ref[1], version, n))
    return out


def top_values(db: Database, rows: RowSet, position: int, k: int) -> list[tuple[str, int]]:
    """The ``k`` most frequent values of categorical feature ``position`` in ``rows``, with
    their counts (ties broken by value), read without holding every distinct value."""
    if k < 1:
        raise ValueError("k must be at least 1")
    value = f"p.cat[{int(position) + 1}]"
    with db.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(
            f"SELECT {value}, count(*) FROM {rows.source()} WHERE {rows.where} "
            f"AND {value} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(k)s",
            {**rows.params, "k": int(k)},
        )
        return [(str(v), int(n)) for v, n in cur.fetchall()]


def stratum_counts(top: Sequence[tuple[str, int]], total: int) -> dict[str, int]:
    """Each stratum's rows from ``top_values``' counts and the set's row count: what ``sample``
    would count for ``Strata`` of those values, without scanning the rows once more."""
    counts = dict(top)
    rest = total - sum(counts.values())
    if rest > 0:
        counts[OTHER] = rest
    return counts


def sample(
    db: Database,
    rows: RowSet,
    *,
    limit: int,
    n_num: int,
    n_cat: int,
    strata: Strata | None = None,
    seed: float = 0.0,
    counts: Mapping[str, int] | None = None,
) -> RowSample:
    """At most ``limit`` rows per stratum of ``rows``, uniformly at random within it.

    ``n_num`` / ``n_cat``: the schema's numeric and categorical feature counts (rows written
    under an older, shorter schema are padded with missing values). ``counts``: each stratum's
    rows where the caller knows them (``stratum_counts``), else they are counted here first
    (a scan of the rows: a third of the time at 1M rows).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    stratum = strata.sql() if strata is not None else "''"
    params: dict[str, Any] = {**rows.params, "strata": list(strata.values) if strata else []}
    with db.begin() as conn, driver(conn).cursor() as cur:
        cur.execute("SELECT setseed(%(s)s)", {"s": _seed(seed)})
        if counts is None:
            cur.execute(
                f"SELECT {stratum}, count(*) FROM {rows.source()} WHERE {rows.where} GROUP BY 1",
                params,
            )
            counts = {str(s): int(n) for s, n in cur.fetchall()}
        known = {s: n for s, n in counts.items() if n > 0}
        if not known:
            return _empty(n_num, n_cat)
        names = sorted(known)
        shares = [min(1.0, OVERSAMPLE * limit / known[s]) for s in names]
        params |= {"names": names, "shares": shares, "most": max(shares), "limit": int(limit)}
        # kept with probability most * (share / most) = share; the first, cheap draw spares
        # most rows the stratum expression
        cur.execute(
            "SELECT s, num, cat, prediction FROM ("
            f"SELECT {stratum} AS s, p.num, p.cat, p.prediction, "
            f"row_number() OVER (PARTITION BY {stratum} ORDER BY random()) AS k "
            f"FROM {rows.source()} WHERE {rows.where} AND random() < %(most)s "
            "AND random() * %(most)s < "
            f"(%(shares)s::float8[])[array_position(%(names)s::text[], {stratum})]"
            ") t WHERE k <= %(limit)s ORDER BY s, k",
            params,
        )
        fetched = cur.fetchall()
    return _arrays(fetched, known, n_num, n_cat)


def _seed(seed: float) -> float:
    """``setseed`` takes [-1, 1]."""
    return float(np.clip(seed, -1.0, 1.0))


def seed_of(end: datetime, *keys: object) -> float:
    """A seed in [-1, 1] from a window end and keys (model, version): a re-run for the same
    window end draws the same sample."""
    text = "|".join([end.isoformat(), *map(str, keys)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") / 2**64) * 2.0 - 1.0


def _empty(n_num: int, n_cat: int) -> RowSample:
    return RowSample(
        np.empty((0, n_num)),
        np.empty((0, n_cat), dtype=object),
        np.empty(0),
        np.empty(0, dtype=object),
        {},
    )


def _arrays(
    fetched: Sequence[tuple[Any, Any, Any, Any]], counts: dict[str, int], n_num: int, n_cat: int
) -> RowSample:
    n = len(fetched)
    num = np.full((n, n_num), np.nan)
    cat = np.full((n, n_cat), None, dtype=object)
    prediction = np.full(n, np.nan)
    stratum = np.empty(n, dtype=object)
    for i, (s, nums, cats, pred) in enumerate(fetched):
        stratum[i] = s
        if nums:
            values = [np.nan if v is None else v for v in nums[:n_num]]
            num[i, : len(values)] = values
        if cats:
            cat[i, : min(len(cats), n_cat)] = cats[:n_cat]
        if pred is not None:
            prediction[i] = pred
    return RowSample(num, cat, prediction, stratum, counts)
