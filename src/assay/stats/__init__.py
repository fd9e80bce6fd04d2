"""Statistics over Records: percentiles with CIs, reliability, summaries."""

from assay.stats.percentiles import QUANTILES, bootstrap_ci, percentiles
from assay.stats.reliability import Bucket, error_counts, error_examples, uptime
from assay.stats.summary import LATENCY_TIERS, Latency, TargetSummary, latency_tier, summarize

__all__ = [
    "LATENCY_TIERS",
    "QUANTILES",
    "Bucket",
    "Latency",
    "TargetSummary",
    "bootstrap_ci",
    "error_counts",
    "error_examples",
    "latency_tier",
    "percentiles",
    "summarize",
    "uptime",
]
