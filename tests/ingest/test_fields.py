"""The field table and the named row: every column filled once, COPY types as the table has."""

from __future__ import annotations

from sqlalchemy import Engine, text

from monitor.ingest.fields import FIELDS, KNOWN_FIELDS, OTHER_COLUMNS
from monitor.services import Services
from monitor.storage.rows import (
    PREDICTION_COLUMNS,
    PREDICTION_TYPES,
    REFERENCE_COLUMNS,
    REFERENCE_TYPES,
    PredictionRow,
)


def _udt(pg: str) -> str:
    """information_schema's name of a type: arrays are the element type with a leading _."""
    return f"_{pg[:-2]}" if pg.endswith("[]") else pg


def test_the_field_table_fills_every_row_column_exactly_once() -> None:
    filled = [c for f in FIELDS for c in f.columns] + list(OTHER_COLUMNS)
    assert sorted(filled) == sorted(PredictionRow._fields)
    assert len(filled) == len(set(filled))


def test_known_fields_are_the_table_keys_plus_model_and_features() -> None:
    assert {f.key for f in FIELDS} | {"model", "features"} == KNOWN_FIELDS


def _column_types(engine: Engine, table: str) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = :t"
            ),
            {"t": table},
        )
        return {name: udt for name, udt in rows}


def test_copy_types_are_the_types_of_the_migrated_tables(services: Services) -> None:
    db_engine = services.engine
    predictions = _column_types(db_engine, "predictions")
    for column, pg in zip(PREDICTION_COLUMNS, PREDICTION_TYPES, strict=True):
        assert predictions[column] == _udt(pg), column
    references = _column_types(db_engine, "reference_rows")
    for column, pg in zip(REFERENCE_COLUMNS, REFERENCE_TYPES, strict=True):
        assert references[column] == _udt(pg), column
