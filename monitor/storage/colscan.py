"""Read a set of rows column-wise: numeric columns as one numpy matrix, categories as counts.

The drift job never asks for rows one by one. Numeric values come back as one ``string_agg`` of
``array_send`` rows per group, decoded with one ``numpy.frombuffer`` (missing values as NaN);
categorical values come back already counted by PostgreSQL (``GROUPING SETS``, one per column);
unknown features (``extra->'unknown_features'``) are counted by name.

Groups are (model version, hour bucket) for ``predictions`` and a single group for
``reference_rows``. Both tables are read under the alias ``p``; callers pass the WHERE clause.
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

from monitor.storage.pgbinary import decode_rows, register_numpy_arrays

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
    """Which rows: ``table`` with alias p, a WHERE clause over p, its psycopg parameters."""

    table: Literal["predictions", "reference_rows"]
    where: str
    params: Mapping[str, Any]

    @property
    def grouped(self) -> bool:
        return self.table == "predictions"

    def group_sql(self) -> tuple[str, str]:
        """(version expression, bucket expression)."""
        if self.grouped:
            return "p.model_version", _HOUR_BUCKET
        return "''::text", "NULL::timestamptz"


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


def _numeric_row(specs: Sequence[ColumnSpec]) -> str:
    cells = ", ".join(f"coalesce({s.sql()}, 'NaN'::float8)" for s in specs)
    return f"array_send(ARRAY[{cells}]::float8[])"


def numeric_groups(
    conn: Connection, rows: RowSet, specs: Sequence[ColumnSpec]
) -> Iterator[tuple[Group, npt.NDArray[np.float64]]]:
    """Per group, an (n, len(specs)) matrix of the numeric columns, NaN where missing."""
    if not specs:
        return
    version, bucket = rows.group_sql()
    group_by = "GROUP BY 1, 2" if rows.grouped else ""
    sql = (
        f"SELECT {version}, {bucket}, string_agg({_numeric_row(specs)}, ''::bytea) "
        f"FROM {rows.table} p WHERE {rows.where} {group_by}"
    )
    with numpy_cursor(conn) as cur:
        cur.execute(sql, dict(rows.params))
        for v, b, data in cur:
            if data is not None:
                yield (v, b), decode_rows(data, len(specs))


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
        f"(SELECT {version} AS v, {bucket} AS b, {inner} FROM {rows.table} p "
        f"WHERE {rows.where}) s GROUP BY GROUPING SETS ({sets})"
    )
    out: dict[Group, dict[int, dict[str | None, int]]] = {}
    width = len(specs)
    with driver(conn).cursor() as cur:
        cur.execute(sql, dict(rows.params))
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
        f"(SELECT {version} AS v, {bucket} AS b, u.k, u.o FROM predictions p "
        "CROSS JOIN LATERAL jsonb_object_keys(p.extra->'unknown_features') "
        f"WITH ORDINALITY AS u(k, o) WHERE {rows.where} "
        "AND jsonb_typeof(p.extra->'unknown_features') = 'object') s "
        "GROUP BY GROUPING SETS ((v, b, k), (v, b))"
    )
    out: dict[Group, dict[str | None, int]] = {}
    with driver(conn).cursor() as cur:
        cur.execute(sql, dict(rows.params))
        for v, b, name, keys, first_keys in cur:
            out.setdefault((v, b), {})[name] = int(keys if name is not None else first_keys)
    return out
