"""Rollups: incremental runs equal one run over everything, re-runs change nothing, late rows
count, in-flight transactions are waited for, windows are covered exactly, and statistics from
rollups match the statistics of the raw samples within their stated bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from scipy import stats as scipy_stats

from monitor.jobs.drift import evaluate_drift
from monitor.services import Services
from monitor.stats import drift
from monitor.storage.drift import window as drift_window
from monitor.storage.drift.bins import NumericRollup
from monitor.storage.drift.colscan import ColumnSpec, driver
from monitor.storage.drift.profiles import QUANTILE_BINS, numeric_profile
from monitor.storage.drift.rollups import plan_window
from monitor.storage.engine import libpq_url
from tests.jobs.drift_data import insert_predictions, make_model, now, set_reference, window

HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _rollups_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small test windows would take the exact path; these tests are about the rollups."""
    monkeypatch.setattr(drift_window, "EXACT_MAX_ROWS", 0)


def _rollup_rows(services: Services, model_id: int) -> list[tuple[Any, ...]]:
    with services.engine.connect() as conn, driver(conn).cursor() as cur:
        cur.execute(
            "SELECT r.model_version, r.span_seconds, r.bucket, r.col, r.n, r.n_missing, "
            "r.bins, r.counts, r.sums, r.categories, r.n_other FROM drift_rollups r "
            "JOIN drift_profiles d USING (reference_id) WHERE d.model_id = %s "
            "ORDER BY 1, 2, 3, 4",
            (model_id,),
        )
        return cur.fetchall()


def _same_rollups(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[:8] == y[:8]  # keys, counts, missing, bins and counts exactly
        if x[8] is not None:
            np.testing.assert_allclose(x[8], y[8], rtol=1e-12, atol=1e-9)
        assert x[9:] == y[9:]


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    num = np.column_stack([rng.normal(size=n), rng.exponential(size=n)])
    num[rng.random(n) < 0.05, 1] = np.nan
    cat = rng.choice(
        np.array(["a", "b", "c", None], dtype=object), p=[0.5, 0.3, 0.15, 0.05], size=(n, 1)
    )
    return num, cat


def _scores(services: Services, name: str, end: datetime) -> dict[str, tuple[float, int]]:
    ev = evaluate_drift(
        services.context, services.models.require(name), window("24h", end), now=end
    )
    (version,) = ev.versions
    return {f.name: (f.score, f.n_cur) for f in version.features}


def _rows(services: Services, name: str, end: datetime) -> int:
    ev = evaluate_drift(
        services.context, services.models.require(name), window("24h", end), now=end
    )
    return sum(v.rows for v in ev.versions)


def test_incremental_runs_equal_one_run_over_everything(services: Services) -> None:
    rng = np.random.default_rng(7)
    end = now().replace(minute=0, second=0, microsecond=0) + timedelta(minutes=30)
    ref_num, ref_cat = _data(rng, 2000)
    batches = []
    for hours_back in (20, 6, 12):  # the last batch arrives late: older than the one before
        num, cat = _data(rng, 700)
        ts = [end - timedelta(hours=float(h)) for h in rng.uniform(0, hours_back, size=700)]
        batches.append((ts, num, cat))
    models = {}
    for name in ("incremental", "at_once"):
        models[name] = make_model(services, name, ["x", "y"], ["c"])
        set_reference(services, models[name], ref_num, ref_cat)
    for ts, num, cat in batches:
        insert_predictions(services, models["incremental"], ts, num, cat)
        _scores(services, "incremental", end)
    for ts, num, cat in batches:
        insert_predictions(services, models["at_once"], ts, num, cat)
    incremental, at_once = _scores(services, "incremental", end), _scores(services, "at_once", end)
    assert incremental.keys() == at_once.keys() == {"x", "y", "c"}
    for name in incremental:
        assert incremental[name][1] == at_once[name][1]
        assert incremental[name][0] == pytest.approx(at_once[name][0], rel=1e-9, abs=1e-12)
    _same_rollups(
        _rollup_rows(services, models["incremental"].id),
        _rollup_rows(services, models["at_once"].id),
    )


def test_rerun_changes_nothing(services: Services) -> None:
    rng = np.random.default_rng(3)
    end = now()
    model = make_model(services, "m", ["x", "y"], ["c"])
    set_reference(services, model, *_data(rng, 1500))
    num, cat = _data(rng, 1200)
    insert_predictions(
        services,
        model,
        [end - timedelta(minutes=float(m)) for m in rng.uniform(1, 600, 1200)],
        num,
        cat,
    )
    first = _scores(services, "m", end)
    rows = _rollup_rows(services, model.id)
    assert _scores(services, "m", end) == first
    _same_rollups(_rollup_rows(services, model.id), rows)
    assert first["x"][1] == 1200


def test_late_rows_are_counted_in_their_old_bucket(services: Services) -> None:
    rng = np.random.default_rng(5)
    end = now()
    model = make_model(services, "m", ["x", "y"], ["c"])
    set_reference(services, model, *_data(rng, 1000))
    num, cat = _data(rng, 500)
    insert_predictions(services, model, [end - timedelta(minutes=5)] * 500, num, cat)
    assert _scores(services, "m", end)["x"][1] == 500
    late_num, late_cat = _data(rng, 300)
    insert_predictions(services, model, [end - timedelta(hours=15)] * 300, late_num, late_cat)
    assert _scores(services, "m", end)["x"][1] == 800


def test_rows_of_an_open_transaction_wait_for_its_commit(services: Services, db_url: str) -> None:
    rng = np.random.default_rng(9)
    end = now() + timedelta(minutes=1)
    model = make_model(services, "m", ["x", "y"], ["c"])
    set_reference(services, model, *_data(rng, 1000))
    services.partitions.ensure({end.date(), (end - HOUR).date()})
    with psycopg.connect(libpq_url(db_url)) as writer:
        writer.execute(  # received_at = now() = this transaction's start
            "INSERT INTO predictions (model_id, ts, num, cat) SELECT %s, %s, ARRAY[1.0, 2.0], "
            "ARRAY['a'] FROM generate_series(1, 200)",
            (model.id, end - timedelta(minutes=30)),
        )
        num, cat = _data(rng, 100)
        insert_predictions(services, model, [end - timedelta(minutes=20)] * 100, num, cat)
        assert _rows(services, "m", end) == 0  # the later commit waits for the open one
        writer.commit()
    assert _rows(services, "m", end) == 300


@pytest.mark.parametrize(
    "length",
    [
        timedelta(minutes=15),
        HOUR,
        timedelta(minutes=97),
        timedelta(hours=24),
        timedelta(days=7),
        timedelta(days=30),
    ],
)
def test_window_plan_covers_the_window_exactly(length: timedelta) -> None:
    rng = np.random.default_rng(int(length.total_seconds()))
    base = datetime(2026, 11, 23, tzinfo=UTC)
    for _ in range(20):
        end = base + timedelta(seconds=float(rng.choice([0, rng.uniform(0, 86_400)])))
        start = end - length
        now_ = end + timedelta(seconds=float(rng.uniform(-600, 600)))
        plan = plan_window(start, end, now_)
        probes = [
            start - timedelta(days=2) + timedelta(seconds=float(s))
            for s in np.sort(rng.uniform(0, (length + timedelta(days=4)).total_seconds(), 3000))
        ]
        probes += [start, end, start - timedelta(microseconds=1)]
        for t in probes:
            covered = sum(sign for _, a, b, sign in plan.buckets if a <= t < b)
            covered += sum(sign for a, b, sign in plan.raw if a <= t < b)
            assert covered == (1 if start <= t < end else 0), (t, plan)
        for span, a, b, _sign in plan.buckets:
            assert a.timestamp() % span == 0
            assert b.timestamp() % span == 0
        stored = sum(int((b - a).total_seconds() // span) for span, a, b, _ in plan.buckets)
        assert stored <= 48 + length.days
        # rows read raw: at most half an hour at each end (nothing exists after ``now``)
        raw = sum(max(0.0, (min(b, now_) - a).total_seconds()) for a, b, _ in plan.raw)
        assert raw <= 3600


def test_profile_of_a_small_reference_gives_every_value_its_own_bin() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=800)
    spec = ColumnSpec(0, "x", "feature", "numeric", 1)
    profile = numeric_profile(spec, ref, psi_bins=10)
    assert profile.exact_values
    cur = rng.normal(0.2, 1.1, size=20_000)
    rollup = NumericRollup.of(cur, profile.edges)  # type: ignore[arg-type]
    from monitor.stats import binned

    exact = scipy_stats.ks_2samp(ref, cur, method="asymp")
    binned_ks = binned.ks(profile.rollup(), rollup.stats())
    assert binned_ks.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert binned_ks.pvalue == pytest.approx(exact.pvalue, rel=1e-9)
    psi_ref = np.add.reduceat(profile.rollup().counts, profile.psi_groups())
    psi_cur = np.add.reduceat(rollup.stats().counts, profile.psi_groups())
    edges = drift.psi_bins(ref, 10)
    assert drift.psi(psi_ref, psi_cur) == pytest.approx(
        drift.psi(drift.bin_counts(ref, edges), drift.bin_counts(cur, edges)), rel=1e-12
    )


def test_wasserstein_from_rollups_is_within_its_bound() -> None:
    from monitor.stats import binned

    rng = np.random.default_rng(2)
    spec = ColumnSpec(0, "x", "feature", "numeric", 1)
    for shift, scale in [(0.0, 1.0), (0.05, 1.0), (0.3, 1.5), (1.0, 0.5)]:
        ref = rng.lognormal(size=50_000)
        cur = rng.lognormal(shift, scale, size=40_000)
        profile = numeric_profile(spec, ref, psi_bins=10)
        assert profile.n_bins <= QUANTILE_BINS + 20
        rollup = NumericRollup.of(cur, profile.edges)  # type: ignore[arg-type]
        approx = binned.wasserstein_normed(profile.rollup(), rollup.stats())
        bound = binned.wasserstein_error_bound(profile.rollup(), rollup.stats())
        exact = drift.wasserstein_normed(ref, cur)
        assert abs(approx - exact) <= bound
        assert abs(approx - exact) < 0.005


def test_a_large_reference_is_counted_row_by_row_on_edges_from_a_sample(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.storage.drift import profile_build

    monkeypatch.setattr(profile_build, "SAMPLE_ROWS", 400)
    monkeypatch.setattr(profile_build, "CHUNK_BLOCKS", 16)  # several chunks, read in parallel
    rng = np.random.default_rng(12)
    num, cat = _data(rng, 5000)
    model = make_model(services, "m", ["x", "y"], ["c"])
    ref_id = set_reference(services, model, num, cat)
    profile = profile_build.build_profile(services.engine, ref_id, model.id, model.schema, None, 10)
    x, y, c = profile.columns[:3]
    for column, values in ((x, num[:, 0]), (y, num[:, 1])):
        present = values[~np.isnan(values)]
        assert column.edges is not None
        expected = NumericRollup.of(values, column.edges)
        np.testing.assert_array_equal(column.counts, expected.counts)
        np.testing.assert_allclose(column.sums, expected.sums, rtol=1e-12)  # type: ignore[arg-type]
        assert column.n == present.size
        assert column.n_missing == values.size - present.size
        assert (column.min, column.max) == (present.min(), present.max())
        assert column.mean == pytest.approx(present.mean(), rel=1e-12)
        assert column.std == pytest.approx(present.std(), rel=1e-9)
        assert column.psi_edges is not None
        assert column.psi_edges.size == 9
        assert not column.exact_values
    assert c.category_map() == {k: float(np.sum(cat[:, 0] == k)) for k in ("a", "b", "c")}
    assert c.n_missing == int(np.sum(cat[:, 0] == None))  # noqa: E711
