"""A rejected chunk of a file, told in the file's terms: row number, column, problem."""

from __future__ import annotations

from monitor.errors import Problem, ValidationFailed

SHOWN = 20


def _column(field: str | None) -> str:
    if field is None:
        return "(the row)"
    return field.removeprefix("features.")


def _line(p: Problem, first_row: int) -> str:
    where = f"row {first_row + p.index + 1}" if p.index is not None else "file"
    return f"  {where}, column {_column(p.field)}: {p.problem}"


def in_file_terms(
    exc: ValidationFailed, path: str, *, first_row: int = 0, stored_before: int = 0
) -> ValidationFailed:
    """``exc`` (indices into one chunk that starts at data row ``first_row``) renumbered as rows
    of the file (1-based, the header not counted) with the first ``SHOWN`` problems listed."""
    problems = [
        Problem(p.problem, first_row + p.index if p.index is not None else None, _column(p.field))
        for p in exc.details
    ]
    lines = [f"{path}: {exc.message}"]
    lines += [_line(p, first_row) for p in exc.details[:SHOWN]]
    if len(exc.details) > SHOWN:
        lines.append(f"  … and {len(exc.details) - SHOWN} more problem(s)")
    if stored_before:
        lines.append(
            f"rows 1-{stored_before} went in before this chunk; fix the file and run it again "
            "(rows with a prediction_id are not stored twice)"
        )
    return ValidationFailed("\n".join(lines), problems)
