"""The learned parts of estimation and multivariate drift, behind small typed interfaces.

- ``calibration``: is a model's score a probability? isotonic calibration where it is not.
- ``dle``: direct loss estimation, models of a regressor's absolute and squared error.
- ``domain``: the domain classifier, telling reference rows from current rows.

Each is fitted from arrays and returns a frozen object that only transforms or predicts; the
arithmetic on what they return (estimates, bands, verdicts) is in ``monitor.stats``. Models
are scikit-learn's, fitted with fixed seeds so re-running a window gives the same answer.
"""
