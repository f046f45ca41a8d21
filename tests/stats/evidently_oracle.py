"""Evidently 0.7's stattests, called directly on pandas Series: the oracle for our statistics."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from evidently.legacy.calculations import stattests
from evidently.legacy.calculations.stattests.registry import StatTest, _get_default_stattest
from evidently.legacy.core import ColumnType

# our method name -> Evidently's stattest object
TESTS: dict[str, StatTest] = {
    "ks": stattests.ks_stat_test,
    "wasserstein": stattests.wasserstein_stat_test,
    "chisquare": stattests.chi_stat_test,
    "ztest": stattests.z_stat_test,
    "jensenshannon": stattests.jensenshannon_stat_test,
    "psi": stattests.psi_stat_test,
}
OURS = {test.name: ours for ours, test in TESTS.items()}


def column_type(numeric: bool) -> ColumnType:
    return ColumnType.Numerical if numeric else ColumnType.Categorical


def run(
    method: str, ref: npt.ArrayLike, cur: npt.ArrayLike, *, numeric: bool
) -> tuple[float, bool]:
    """Evidently's (drift_score, drifted) with its default threshold."""
    result = TESTS[method](
        pd.Series(np.asarray(ref)), pd.Series(np.asarray(cur)), column_type(numeric), None
    )
    return float(result.drift_score), bool(result.drifted)


def default_method(ref: npt.ArrayLike, cur: npt.ArrayLike, *, numeric: bool) -> str:
    """Evidently's default stattest for the column, by our method name."""
    test = _get_default_stattest(
        pd.Series(np.asarray(ref)), pd.Series(np.asarray(cur)), column_type(numeric)
    )
    return OURS[test.name]
