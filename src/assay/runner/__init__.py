"""Execution of request plans: the run lifecycle, scheduling, concurrency, retries, resume."""

from assay.runner.execute import Annotator, RecordSink, Runner
from assay.runner.retry import RETRIABLE, RetryPolicy

__all__ = ["RETRIABLE", "Annotator", "RecordSink", "RetryPolicy", "Runner"]
