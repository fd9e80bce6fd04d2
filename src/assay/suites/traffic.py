"""The per-target summaries of any stored run's traffic, the same for every reader.

`assay report`, `assay cost --run` and the scorecard's cost section all read a run
through here, so a load run is summarised with its own stored SLO and schedule
(offered rate, goodput) wherever it is read, and any other run with its stored config.
"""

from __future__ import annotations

from assay.stats import TargetSummary, summarize_stored
from assay.store import Store
from assay.suites.load import KIND as LOAD
from assay.suites.load import load_summaries

__all__ = ["run_summaries"]


def run_summaries(store: Store, run_id: str) -> dict[str, TargetSummary]:
    """One summary per target of a stored run (RUN_ID or 'latest')."""
    info = store.run(run_id)
    if info.kind == LOAD:
        return load_summaries(store, info.run_id).summaries
    return summarize_stored(store, info.run_id)
