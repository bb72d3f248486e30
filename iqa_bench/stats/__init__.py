"""Statistics over per-sample distances and human judgments (numpy/scipy only, never torch).

Inputs are plain arrays aligned by ``sample_id``; 2AFC and JND functions take *distances*
(lower = more similar), correlation functions take ``quality_like`` predictions.

Example:
    >>> from iqa_bench.stats import twoafc_scores
    >>> round(twoafc_scores([0.1, 0.4], [0.3, 0.2], [0.2, 0.9], ["cnn", "cnn"]).mean, 6)
    0.85
"""

from .bootstrap import (
    BootstrapResult,
    bootstrap_columns,
    bootstrap_jnd,
    bootstrap_statistic,
    bootstrap_twoafc,
    percentile_interval,
)
from .correlation import (
    CorrelationResult,
    Estimate,
    LogisticFit,
    PLCCResult,
    correlations,
    fit_logistic,
    krcc,
    logistic_4pl,
    logistic_5pl,
    plcc,
    srcc,
)
from .difference import (
    bootstrap_difference,
    bootstrap_of,
    mean_difference_interval,
    unpaired_difference,
)
from .jnd import JNDResult, jnd_ap, jnd_map, voc_ap
from .mos import SubsetCorrelation, subset_correlations
from .options import StatsOptions
from .significance import (
    PermutationTestResult,
    SignificanceMatrix,
    holm,
    paired_permutation_test,
    significance_matrix,
)
from .twoafc import (
    PreferenceCorrelation,
    TwoAFCResult,
    human_ceiling,
    preference_correlation,
    twoafc_credit,
    twoafc_scores,
)

__all__ = [
    "BootstrapResult",
    "CorrelationResult",
    "Estimate",
    "JNDResult",
    "LogisticFit",
    "PLCCResult",
    "PermutationTestResult",
    "PreferenceCorrelation",
    "SignificanceMatrix",
    "StatsOptions",
    "SubsetCorrelation",
    "TwoAFCResult",
    "bootstrap_columns",
    "bootstrap_difference",
    "bootstrap_jnd",
    "bootstrap_of",
    "bootstrap_statistic",
    "bootstrap_twoafc",
    "correlations",
    "fit_logistic",
    "holm",
    "human_ceiling",
    "jnd_ap",
    "jnd_map",
    "krcc",
    "mean_difference_interval",
    "logistic_4pl",
    "logistic_5pl",
    "paired_permutation_test",
    "percentile_interval",
    "plcc",
    "preference_correlation",
    "significance_matrix",
    "srcc",
    "subset_correlations",
    "twoafc_credit",
    "twoafc_scores",
    "unpaired_difference",
    "voc_ap",
]
