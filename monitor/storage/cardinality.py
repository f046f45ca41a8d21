"""What the cardinality guard reads and records: model count, each model's versions/variants."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

KINDS = ("version", "variant")


def count_models(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM models")).scalar_one())


def known_labels(conn: Connection, model_id: int) -> dict[str, set[str]]:
    rows = conn.execute(
        text("SELECT kind, value FROM model_labels WHERE model_id = :model_id"),
        {"model_id": model_id},
    )
    known: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for kind, value in rows:
        known[kind].add(value)
    return known


def add_labels(conn: Connection, model_id: int, labels: Iterable[tuple[str, str]]) -> None:
    """Remember (kind, value) pairs of a model; those known already are left as they are."""
    pairs = sorted(labels)
    conn.execute(
        text(
            "INSERT INTO model_labels (model_id, kind, value) "
            "SELECT :model_id, k, v FROM unnest(CAST(:kinds AS text[]), CAST(:values AS text[])) "
            "AS u(k, v) ON CONFLICT DO NOTHING"
        ),
        {"model_id": model_id, "kinds": [k for k, _ in pairs], "values": [v for _, v in pairs]},
    )
