"""Array coercion and the one error the statistics raise on purpose."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from monitor.errors import MonitorError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class EmptySampleError(MonitorError, ValueError):
    """A statistic was asked of an empty sample; jobs guard with ``min_samples`` first."""


def as_sample(values: npt.ArrayLike) -> FloatArray:
    """A non-empty 1-D float array."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise EmptySampleError("empty sample")
    return array


def as_counts(values: npt.ArrayLike) -> FloatArray:
    """Non-negative counts with a positive total, as floats (rollup counts may be summed)."""
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0 or array.sum() <= 0:
        raise EmptySampleError("counts are empty or sum to zero")
    if (array < 0).any():
        raise ValueError("counts must be non-negative")
    return array


def same_length(ref: FloatArray, cur: FloatArray) -> None:
    if ref.shape != cur.shape:
        raise ValueError(f"count vectors differ in length: {ref.size} != {cur.size}")
