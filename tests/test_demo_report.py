"""The demo's printout of estimated performance and multivariate drift, from a /metrics text."""

from __future__ import annotations

from monitor.demo_report import estimation_lines, figures, multivariate_lines, parse_metrics

FRAUD = 'model="fraud",model_version="3.2.0",window="1h"'
EXPOSITION = f"""\
# TYPE ml_estimated_performance gauge
ml_estimated_performance{{{FRAUD},metric="accuracy"}} 0.861
ml_estimated_performance{{{FRAUD},metric="precision"}} 0.7
ml_estimated_performance{{model="eta",model_version="1.4.0",window="1h",metric="mae"}} 1.6
# TYPE ml_estimated_performance_lower gauge
ml_estimated_performance_lower{{{FRAUD},metric="accuracy"}} 0.83
ml_estimated_performance_lower{{model="eta",model_version="1.4.0",window="1h",metric="mae"}} 1.5
# TYPE ml_estimated_performance_upper gauge
ml_estimated_performance_upper{{{FRAUD},metric="accuracy"}} 0.893
ml_estimated_performance_upper{{model="eta",model_version="1.4.0",window="1h",metric="mae"}} 1.7
# TYPE ml_model_performance gauge
ml_model_performance{{{FRAUD},metric="accuracy"}} 0.869
ml_model_performance{{model="eta",model_version="1.4.0",window="1h",metric="mae"}} 2.6
# TYPE ml_multivariate_drift_score gauge
ml_multivariate_drift_score{{{FRAUD},method="domain_classifier"}} 0.69
ml_multivariate_drift_score{{{FRAUD},method="pca_reconstruction"}} 1.2
# TYPE ml_multivariate_drift_threshold gauge
ml_multivariate_drift_threshold{{{FRAUD},method="domain_classifier"}} 0.55
ml_multivariate_drift_threshold{{{FRAUD},method="pca_reconstruction"}} 1.66
# TYPE ml_multivariate_drift_detected gauge
ml_multivariate_drift_detected{{{FRAUD},method="domain_classifier"}} 1
ml_multivariate_drift_detected{{{FRAUD},method="pca_reconstruction"}} 0
"""


def _words(line: str) -> str:
    return " ".join(line.split())


def test_estimates_print_with_their_band_and_the_realized_figure() -> None:
    series = parse_metrics(EXPOSITION, ["fraud", "eta"])
    lines = [_words(line) for line in estimation_lines(series, "1h")]
    assert lines[0] == "estimated performance (no labels needed: CBPE / DLE), last 1h"
    assert lines[2] == "eta 1.4.0 mae 1.600 1.500-1.700 2.600 <- realized outside the band"
    assert lines[3] == "fraud 3.2.0 accuracy 0.861 0.830-0.893 0.869"
    assert len(lines) == 4  # precision is not among the printed metrics


def test_multivariate_drift_prints_score_threshold_and_verdict() -> None:
    series = parse_metrics(EXPOSITION, ["fraud"])
    lines = [_words(line) for line in multivariate_lines(series, "1h")]
    assert lines[1] == "DRIFT fraud 3.2.0 domain_classifier 0.690 (threshold 0.550)"
    assert lines[2] == "- fraud 3.2.0 pca_reconstruction 1.200 (threshold 1.660)"


def test_without_the_figures_the_printout_says_what_they_need() -> None:
    out = "\n".join(figures("", ["fraud"], "1h", "http://x"))
    assert "a reference needs 'prediction' and 'label' columns" in out
    assert "multivariate drift (the features together), last 1h\n    none yet" in out
    assert "ml_estimated_performance{metric} / _lower / _upper" in out
    assert "ml_multivariate_drift_score{method} / _detected" in out
