"""Pure statistics: arrays and rollups in, numbers and small dataclasses out.

No I/O, no clock, no pandas. Modules:

- ``drift``: exact two-sample drift statistics on raw samples (KS, normed Wasserstein,
  chi-square, z-test, Jensen-Shannon, PSI) and the frozen PSI bins.
- ``binned``: the same statistics from per-bucket rollups (counts, sums, sums of squares).
- ``selection``: the default method per column (Evidently's data-drift preset) and the registry.
- ``verdict``: thresholds, the minimum-sample guard, dataset drift, multiple-testing correction.
- ``performance``: classification and regression quality against delayed labels.
- ``serving``: latency quantiles, throughput, error ratio, canary-vs-production comparison.
- ``cost``: cost per one million predictions.
"""
