"""Multivariate drift: PCA reconstruction error with its reference band, domain-classifier
verdicts. Drift that no single feature shows (a correlation that flips sign) shows here.

PCA reconstruction (NannyML's data-reconstruction drift): standardise with the reference,
keep the principal components that explain ``variance`` of it, and measure how far each row
lies from that subspace. Rows that move together differently from the reference land far
from it. The reference is split in two halves (even and odd rows); each half's components
score the other half, so the reference errors are out-of-sample, and a window is scored by
both halves' components (the same models), so its error is comparable with the band.

The domain classifier itself (a learned model) is in ``monitor.learn.domain``; its verdict
threshold is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.stats._arrays import EmptySampleError, FloatArray
from monitor.stats.estimation import BAND_Z

DEFAULT_VARIANCE = 0.65
"""Share of the reference variance the kept components explain (NannyML's default)."""

MIN_SCALE = 1e-12

DOMAIN_AUC_FLOOR = 0.55
"""Below this cross-validated AUC, current rows are not meaningfully told from the reference."""

DOMAIN_Z = 4.0
"""Standard deviations of the null AUC above 0.5 before a small sample may claim drift."""


@dataclass(frozen=True, slots=True)
class Pca:
    """Standardisation and kept components (rows) fitted on one part of the reference."""

    mean: FloatArray
    scale: FloatArray
    components: FloatArray


def _matrix(rows: npt.ArrayLike) -> FloatArray:
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise EmptySampleError("need a non-empty (rows, features) matrix")
    return x


def _standardise(x: FloatArray, mean: FloatArray, scale: FloatArray) -> FloatArray:
    z = (x - mean) / scale
    return np.where(np.isnan(z), 0.0, z)  # a missing value sits at the reference mean


def fit_pca(rows: npt.ArrayLike, *, variance: float = DEFAULT_VARIANCE) -> Pca:
    """Components explaining at least ``variance`` of the standardised reference rows."""
    if not 0.0 < variance <= 1.0:
        raise ValueError("variance must be in (0, 1]")
    x = _matrix(rows)
    mean = np.nan_to_num(np.nanmean(x, axis=0))
    scale = np.nan_to_num(np.nanstd(x, axis=0))
    scale = np.where(scale < MIN_SCALE, 1.0, scale)
    z = _standardise(x, mean, scale)
    _, singular, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    explained = singular**2 / max(float(np.sum(singular**2)), MIN_SCALE)
    keep = int(np.searchsorted(np.cumsum(explained), variance - 1e-12) + 1)
    return Pca(mean, scale, vt[: min(keep, vt.shape[0])])


def reconstruction_errors(pca: Pca, rows: npt.ArrayLike) -> FloatArray:
    """Euclidean distance of each standardised row from its projection on the components."""
    z = _standardise(_matrix(rows), pca.mean, pca.scale)
    if z.shape[1] != pca.mean.size:
        raise ValueError(f"fitted on {pca.mean.size} features, got {z.shape[1]}")
    residual = z - (z @ pca.components.T) @ pca.components
    return np.asarray(np.sqrt(np.sum(residual * residual, axis=1)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class ReconstructionModel:
    """Two half-reference PCAs and the out-of-sample errors of the reference rows."""

    halves: tuple[Pca, Pca]
    reference_errors: FloatArray


def fit_reconstruction(
    rows: npt.ArrayLike, *, variance: float = DEFAULT_VARIANCE
) -> ReconstructionModel:
    """Fit each half of the reference, score the other half with it."""
    x = _matrix(rows)
    if x.shape[0] < 4:
        raise EmptySampleError("need at least 4 reference rows")
    even, odd = x[0::2], x[1::2]
    pca_even, pca_odd = fit_pca(even, variance=variance), fit_pca(odd, variance=variance)
    errors = np.concatenate(
        [reconstruction_errors(pca_even, odd), reconstruction_errors(pca_odd, even)]
    )
    return ReconstructionModel((pca_even, pca_odd), errors)


def window_reconstruction_error(model: ReconstructionModel, rows: npt.ArrayLike) -> float:
    """Mean reconstruction error of a window's rows under both half-reference models."""
    first, second = (reconstruction_errors(pca, rows) for pca in model.halves)
    return float(np.mean((first + second) / 2.0))


def reconstruction_band(
    model: ReconstructionModel, n_rows: int, *, z: float = BAND_Z
) -> tuple[float, float]:
    """Band for a window of ``n_rows``: reference mean ± z sd, with both samples' noise."""
    if n_rows <= 0:
        raise EmptySampleError("no rows")
    errors = model.reference_errors
    sd = float(np.std(errors, ddof=1)) * float(np.sqrt(1.0 / n_rows + 1.0 / errors.size))
    centre = float(errors.mean())
    return centre - z * sd, centre + z * sd


def outside_band(value: float, band: tuple[float, float]) -> bool:
    """The reconstruction verdict: drift when the window's error leaves the band."""
    return value < band[0] or value > band[1]


def null_auc_std(n_ref: int, n_cur: int) -> float:
    """Standard deviation of ROC AUC between two samples of one distribution (Mann-Whitney)."""
    if n_ref <= 0 or n_cur <= 0:
        raise EmptySampleError("no rows")
    return float(np.sqrt((n_ref + n_cur + 1) / (12.0 * n_ref * n_cur)))


def domain_auc_threshold(
    n_ref: int, n_cur: int, *, z: float = DOMAIN_Z, floor: float = DOMAIN_AUC_FLOOR
) -> float:
    """The AUC above which a domain classifier's score means drift.

    At small n an AUC of 0.6 happens by chance (sd of the null AUC is ~0.03 at 200 + 200
    rows), so the threshold is 0.5 + z sd of the null AUC, and never below ``floor``: a
    large sample separating the two at 0.52 is real but not worth a page.
    """
    return max(floor, 0.5 + z * null_auc_std(n_ref, n_cur))


def domain_verdict(auc: float, n_ref: int, n_cur: int) -> bool:
    return auc > domain_auc_threshold(n_ref, n_cur)


def top_features(
    names: Sequence[str], importances: npt.ArrayLike, k: int = 3
) -> list[tuple[str, float]]:
    """The ``k`` features with the largest positive importance, largest first."""
    values = np.asarray(importances, dtype=np.float64).ravel()
    if values.size != len(names):
        raise ValueError(f"{len(names)} names but {values.size} importances")
    order = np.argsort(-values, kind="stable")[:k]
    return [(names[i], float(values[i])) for i in order if values[i] > 0]
