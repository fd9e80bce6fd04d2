"""Sending runs with the heap frozen, so a full collection does not stall the event loop mid-run."""

from __future__ import annotations

import gc

from assay.runner.execute import collector_quiet


def test_nested_uses_share_one_freeze_and_the_outermost_thaws() -> None:
    assert gc.get_freeze_count() == 0
    kept = [object() for _ in range(10)]
    with collector_quiet():
        frozen = gc.get_freeze_count()
        assert frozen > 0  # everything alive at the start is out of the collector's reach
        with collector_quiet():  # a second runner starting while the first sends
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen  # the inner exit does not thaw the outer run
    assert gc.get_freeze_count() == 0
    assert len(kept) == 10


def test_an_error_inside_still_thaws() -> None:
    try:
        with collector_quiet():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
