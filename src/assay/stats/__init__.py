"""Statistics over Records: the one per-target summary, distributions with CIs, inference, timelines."""

from assay.stats.distribution import EXACT_MAX, Distribution
from assay.stats.percentiles import QUANTILES, bootstrap_ci, percentiles
from assay.stats.quality import (
    Comparison,
    classified_rate_ci,
    compare_pair,
    holm,
    holm_adjusted,
    items_needed,
    kappa_ci,
    mcnemar_exact,
    mean_ci,
    paired_bootstrap,
    wilson,
)
from assay.stats.ratelimit import RateLimitVerdict, classify_rate_limit
from assay.stats.reliability import UPTIME_THRESHOLD, Bucket
from assay.stats.summary import (
    LATENCY_METRICS,
    LATENCY_TIERS,
    Summarizer,
    TargetSummary,
    latency_tier,
    summarize,
    summarize_by_target,
    summarize_stored,
)
from assay.stats.timeline import timeline

__all__ = [
    "EXACT_MAX",
    "LATENCY_METRICS",
    "LATENCY_TIERS",
    "QUANTILES",
    "UPTIME_THRESHOLD",
    "Bucket",
    "Comparison",
    "Distribution",
    "RateLimitVerdict",
    "Summarizer",
    "TargetSummary",
    "bootstrap_ci",
    "classified_rate_ci",
    "classify_rate_limit",
    "compare_pair",
    "holm",
    "holm_adjusted",
    "items_needed",
    "kappa_ci",
    "latency_tier",
    "mcnemar_exact",
    "mean_ci",
    "paired_bootstrap",
    "percentiles",
    "summarize",
    "summarize_by_target",
    "summarize_stored",
    "timeline",
    "wilson",
]
