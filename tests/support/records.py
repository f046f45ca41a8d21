"""Recording-rule names replaced by their expressions, for PromQL run on backfilled data.

The synthetic TSDB holds raw series only (rules never ran over it), so a query that reads a
record is checked by evaluating what the rule would have computed: every record name becomes
its expression (with the labels the rule adds), again and again until none is left, since
records read other records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from monitor.alerts.rules import Record, groups

RECORDS: tuple[Record, ...] = tuple(
    rule for group in groups() for rule in group.rules if isinstance(rule, Record)
)


def _labelled(record: Record) -> str:
    expr = f"({record.expr})"
    for key, value in record.labels.items():
        expr = f'label_replace({expr}, "{key}", "{value}", "", "")'
    return expr


_MATCHER = re.compile(r'\s*(\w+)\s*=\s*"([^"]*)"\s*')


def _filtered(expr: str, selector: str) -> str:
    """``expr`` limited to the series a ``{a="b", ...}`` selector on the record would keep
    (equality matchers, the ones dashboards put on records)."""
    inner = selector.strip("{}").strip()
    if not inner:
        return expr
    wanted = "vector(1)"
    labels = []
    for part in inner.split(","):
        matcher = _MATCHER.fullmatch(part)
        assert matcher, f"only equality matchers can be put on an inlined record: {selector}"
        label, value = matcher.groups()
        wanted = f'label_replace({wanted}, "{label}", "{value}", "", "")'
        labels.append(label)
    return f"({expr} and on ({', '.join(labels)}) {wanted})"


def inline_records(expr: str, records: Sequence[Record] = RECORDS) -> str:
    by_name: dict[str, list[Record]] = {}
    for record in records:
        by_name.setdefault(record.record, []).append(record)
    names = "|".join(re.escape(n) for n in sorted(by_name, key=lambda n: -len(n)))
    pattern = re.compile(rf"(?<![\w:])({names})(?![\w:])(\{{[^}}]*\}})?")

    def one(match: re.Match[str]) -> str:
        inlined = "(" + " or ".join(_labelled(r) for r in by_name[match.group(1)]) + ")"
        return _filtered(inlined, match.group(2) or "")

    for _ in range(len(by_name) + 1):
        inlined = pattern.sub(one, expr)
        if inlined == expr:
            return expr
        expr = inlined
    raise AssertionError(f"recording rules refer to each other in a cycle: {expr[:500]}")
