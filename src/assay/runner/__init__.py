"""Execution of request plans: scheduling, concurrency, retries, resume."""

from assay.runner.execute import RecordSink, Runner, WorkItem, make_record
from assay.runner.retry import RETRIABLE, RetryPolicy

__all__ = ["RETRIABLE", "RecordSink", "RetryPolicy", "Runner", "WorkItem", "make_record"]
