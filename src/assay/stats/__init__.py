"""Statistics over Records: percentiles with CIs, reliability, summaries."""

from assay.stats.load import LoadSummary, RateLimitVerdict, classify_rate_limit, summarize_load, timeline
from assay.stats.percentiles import QUANTILES, bootstrap_ci, percentiles
from assay.stats.quality import Comparison, holm, items_needed, mcnemar_exact, mean_ci, paired_bootstrap, wilson
from assay.stats.reliability import Bucket, error_counts, error_examples, uptime
from assay.stats.summary import LATENCY_TIERS, Latency, TargetSummary, latency_tier, summarize

__all__ = [
    "LATENCY_TIERS",
    "QUANTILES",
    "Bucket",
    "Comparison",
    "Latency",
    "LoadSummary",
    "RateLimitVerdict",
    "TargetSummary",
    "bootstrap_ci",
    "classify_rate_limit",
    "error_counts",
    "error_examples",
    "holm",
    "items_needed",
    "latency_tier",
    "mcnemar_exact",
    "mean_ci",
    "paired_bootstrap",
    "percentiles",
    "summarize",
    "summarize_load",
    "timeline",
    "uptime",
    "wilson",
]
