"""Read a set of rows column-wise: numeric columns as one numpy matrix, categories as counts.

The drift job never asks for rows one by one. Numeric values come back as one ``string_agg`` of
``array_send`` rows per group, decoded with one ``numpy.frombuffer`` (missing values as NaN);
categorical values come back already counted by PostgreSQL (``GROUPING SETS``, one per column);
unknown features (``extra->'unknown_features'``) are counted by name.

Groups are (model version, hour bucket) for ``predictions`` and a single group for
``reference_rows``. Both tables are read under the alias ``p``; which rows is a ``RowSet``, made
from typed values by its constructors (``RowSet.predictions``, ``RowSet.reference``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import Connection, Engine, text

from monitor.storage.drift.pgbinary import decode_rows, register_numpy_arrays
from monitor.storage.span import Scope

Role = Literal["feature", "prediction", "label", "schema"]
ColumnKind = Literal["numeric", "categorical"]

SCAN_WORKERS = 2
"""Scans of one refresh run on this many connections at once: PostgreSQL reads rows on one
core while numpy bins the previous batch on another (both release the GIL)."""
HOUR = 3600
DAY = 86_400
BUCKET_ORIGIN = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
_HOUR_BUCKET = f"date_bin('1 hour', p.ts, {BUCKET_ORIGIN})"


@dataclass(frozen=True)
class ColumnSpec:
    """Where a profiled column's values live in a row."""

    col: int
    name: str
    role: Role
    kind: ColumnKind
    position: int | None = None  # 1-based index in num / cat for features

    def sql(self) -> str:
        """The column's value in a row of ``predictions`` or ``reference_rows`` (alias p)."""
        if self.role == "feature":
            array = "num" if self.kind == "numeric" else "cat"
            return f"p.{array}[{int(self.position or 0)}]"
        if self.role in ("prediction", "label"):
            return f"p.{self.role}" if self.kind == "numeric" else f"p.{self.role}_text"
        raise ValueError(f"column {self.name!r} ({self.role}) has no value in a row")


@dataclass(frozen=True)
class RowSet:
    """Which rows: ``table`` with alias p, a WHERE clause over p, its psycopg parameters.

    Made by ``predictions`` and ``reference`` from typed values, never from a caller's SQL.
    ``bucket`` says that every row lies in that hour bucket (no per-row bucketing needed);
    ``sample_percent`` reads that share of the table's blocks (``TABLESAMPLE SYSTEM``).
    """

    table: Literal["predictions", "reference_rows"]
    where: str
    params: Mapping[str, Any]
    bucket: datetime | None = None
    sample_percent: float | None = None

    @classmethod
    def predictions(
        cls,
        scope: Scope,
        *,
        ts_from: datetime | None = None,
        ts_to: datetime | None = None,
        received: tuple[datetime, datetime] | None = None,
        received_before: datetime | None = None,
    ) -> RowSet:
        """Rows of ``scope`` with ``ts_from <= ts < ts_to`` and ``received_at`` in ``received``
        [from, to) or before ``received_before`` (each bound only where given)."""
        clauses = [scope.where()]
        bounds: dict[str, Any] = {}
        for name, sql, value in (
            ("ts0", "p.ts >= %(ts0)s", ts_from),
            ("ts1", "p.ts < %(ts1)s", ts_to),
            ("rx0", "p.received_at >= %(rx0)s", received[0] if received else None),
            ("rx1", "p.received_at < %(rx1)s", received[1] if received else received_before),
        ):
            if value is not None:
                clauses.append(sql)
                bounds[name] = value
        return cls("predictions", " AND ".join(clauses), scope.params(**bounds))

    @classmethod
    def reference(
        cls,
        reference_id: int,
        *,
        blocks: tuple[int, int] | None = None,
        share: float | None = None,
        sample_percent: float | None = None,
    ) -> RowSet:
        """A reference set's rows: those in table ``blocks`` [first, stop) (a TID range scan),
        a random ``share`` of the rows, or ``sample_percent`` of the table's blocks."""
        where = "p.reference_id = %(r)s"
        params: dict[str, Any] = {"r": reference_id}
        if blocks is not None:
            where += " AND p.ctid >= %(lo)s::tid AND p.ctid < %(hi)s::tid"
            params |= {"lo": f"({blocks[0]},0)", "hi": f"({blocks[1]},0)"}
        if share is not None:
            where += " AND random() < %(share)s"
            params["share"] = share
        return cls("reference_rows", where, params, sample_percent=sample_percent)

    def naming_unknown(self, columns: Mapping[int, tuple[ColumnSpec, Sequence[str]]]) -> RowSet:
        """The rows where any of ``columns`` (col -> spec, known categories) holds a value
        outside its known categories."""
        params = dict(self.params)
        tests = []
        for col, (spec, known) in columns.items():
            params[f"known_{col}"] = list(known)
            tests.append(f"NOT ({spec.sql()} = ANY(%(known_{col})s::text[]))")
        where = f"{self.where} AND ({' OR '.join(tests)})"
        return RowSet(self.table, where, params, self.bucket, self.sample_percent)

    @property
    def grouped(self) -> bool:
        return self.table == "predictions"

    def source(self) -> str:
        if self.sample_percent is None:
            return f"{self.table} p"
        return f"{self.table} p TABLESAMPLE SYSTEM ({float(self.sample_percent)!r}) REPEATABLE (0)"

    def group_sql(self) -> tuple[str, str]:
        """(version expression, bucket expression)."""
        if not self.grouped:
            return "''::text", "NULL::timestamptz"
        if self.bucket is not None:
            return "p.model_version", "%(_bucket)s::timestamptz"
        return "p.model_version", _HOUR_BUCKET

    def all_params(self) -> dict[str, Any]:
        return {**self.params, "_bucket": self.bucket}


Group = tuple[str, datetime | None]
T = TypeVar("T")


def run_parallel(engine: Engine, tasks: Sequence[Callable[[Connection], T]]) -> list[T]:
    """Run read-only tasks, each on a connection of its own (``SCAN_WORKERS`` at a time).

    They see every row committed before they start, so a caller that fixed a rollup watermark
    first reads the same rows whichever connection reads them.
    """

    def run(task: Callable[[Connection], T]) -> T:
        with engine.connect() as conn:
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            return task(conn)

    if len(tasks) <= 1:
        return [run(t) for t in tasks]
    with ThreadPoolExecutor(max_workers=SCAN_WORKERS, thread_name_prefix="scan") as pool:
        return list(pool.map(run, tasks))


def driver(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw


def numpy_cursor(conn: Connection) -> psycopg.Cursor[Any]:
    cur = driver(conn).cursor(binary=True)
    register_numpy_arrays(cur)
    return cur


def _cell(spec: ColumnSpec) -> str:
    if spec.role == "schema":  # 1 if the row carries unknown features (predictions only)
        return "CASE WHEN p.extra ? 'unknown_features' THEN 1::float8 ELSE 0::float8 END"
    if spec.kind == "numeric":
        return f"coalesce({spec.sql()}, 'NaN'::float8)"
    return f"coalesce(hashtext({spec.sql()})::float8, 'NaN'::float8)"


def _leading_features(specs: Sequence[ColumnSpec]) -> int:
    """How many specs are the numeric features at positions 1, 2, ... (the whole num array)."""
    k = 0
    while k < len(specs) and specs[k].role == "feature" and specs[k].kind == "numeric":
        if specs[k].position != k + 1:
            break
        k += 1
    return k


def _row(specs: Sequence[ColumnSpec]) -> str:
    """One float8[] per row: numeric values, and the 32-bit ``hashtext`` of categorical ones
    (missing: NaN). When the specs start with the whole ``num`` array, that part of the row is
    the stored array itself (NULL elements replaced) unless the row's array has another length.
    """
    k = _leading_features(specs)
    rest = [_cell(s) for s in specs[k:]]
    if k < 2:
        return f"array_send(ARRAY[{', '.join(_cell(s) for s in specs)}]::float8[])"
    picked = ", ".join(_cell(s) for s in specs[:k])
    head = (
        f"CASE WHEN cardinality(p.num) = {k} THEN array_replace(p.num, NULL, 'NaN'::float8) "
        f"ELSE ARRAY[{picked}]::float8[] END"
    )
    tail = f" || ARRAY[{', '.join(rest)}]::float8[]" if rest else ""
    return f"array_send({head}{tail})"


def numeric_groups(
    conn: Connection, rows: RowSet, specs: Sequence[ColumnSpec]
) -> Iterator[tuple[Group, npt.NDArray[np.float64]]]:
    """Per group, an (n, len(specs)) matrix of the columns: numeric values, or the hashtext
    codes of categorical values; NaN where missing."""
    if not specs:
        return
    version, bucket = rows.group_sql()
    group_by = "GROUP BY 1, 2" if rows.grouped else ""
    sql = (
        f"SELECT {version}, {bucket}, string_agg({_row(specs)}, ''::bytea) "
        f"FROM {rows.source()} WHERE {rows.where} {group_by}"
    )
    with numpy_cursor(conn) as cur:
        cur.execute(sql, rows.all_params())
        for v, b, data in cur:
            if data is not None:
                yield (v, b), decode_rows(data, len(specs))


def text_hashes(conn: Connection, values: Sequence[str]) -> npt.NDArray[np.int64]:
    """PostgreSQL's ``hashtext`` of each value, in order."""
    if not values:
        return np.empty(0, dtype=np.int64)
    with driver(conn).cursor() as cur:
        cur.execute(
            "SELECT hashtext(x) FROM unnest(%s::text[]) WITH ORDINALITY AS u(x, i) ORDER BY i",
            (list(values),),
        )
        return np.array([r[0] for r in cur], dtype=np.int64)


def category_counts(
    conn: Connection, rows: RowSet, specs: Sequence[ColumnSpec]
) -> dict[Group, dict[int, dict[str | None, int]]]:
    """Per group and column, the count of each value (None: missing)."""
    if not specs:
        return {}
    version, bucket = rows.group_sql()
    names = [f"c{i}" for i in range(len(specs))]
    inner = ", ".join(f"{s.sql()} AS {n}" for s, n in zip(specs, names, strict=True))
    flags = ", ".join(f"GROUPING({n})" for n in names)
    sets = ", ".join(f"(v, b, {n})" for n in names)
    sql = (
        f"SELECT v, b, {flags}, {', '.join(names)}, count(*) FROM "
        f"(SELECT {version} AS v, {bucket} AS b, {inner} FROM {rows.source()} "
        f"WHERE {rows.where}) s GROUP BY GROUPING SETS ({sets})"
    )
    out: dict[Group, dict[int, dict[str | None, int]]] = {}
    width = len(specs)
    with driver(conn).cursor() as cur:
        cur.execute(sql, rows.all_params())
        for row in cur:
            flag_values = row[2 : 2 + width]
            i = flag_values.index(0)
            per_col = out.setdefault((row[0], row[1]), {})
            per_col.setdefault(specs[i].col, {})[row[2 + width + i]] = int(row[-1])
    return out


def unknown_feature_counts(conn: Connection, rows: RowSet) -> dict[Group, dict[str | None, int]]:
    """Per group, rows carrying each unknown feature name, and (key None) rows with any."""
    version, bucket = rows.group_sql()
    sql = (
        "SELECT v, b, k, count(*), count(*) FILTER (WHERE o = 1) FROM "
        f"(SELECT {version} AS v, {bucket} AS b, u.k, u.o FROM {rows.source()} "
        "CROSS JOIN LATERAL jsonb_object_keys(p.extra->'unknown_features') "
        f"WITH ORDINALITY AS u(k, o) WHERE {rows.where} "
        "AND jsonb_typeof(p.extra->'unknown_features') = 'object') s "
        "GROUP BY GROUPING SETS ((v, b, k), (v, b))"
    )
    out: dict[Group, dict[str | None, int]] = {}
    with driver(conn).cursor() as cur:
        cur.execute(sql, rows.all_params())
        for v, b, name, keys, first_keys in cur:
            out.setdefault((v, b), {})[name] = int(keys if name is not None else first_keys)
    return out
