"""The SQLite store: migrations, round trips, and refusing a newer schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assay.errors import AssayError
from assay.model import Record
from assay.store import SCHEMA_VERSION, RecordWriter, Store


def record(item: str, attempt: int = 0, **kw: object) -> Record:
    base = dict(run_id="r1", target="t", suite="probe", item_id=item, attempt=attempt, status="ok", wall_start_s=1.5)
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def new_store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "a.db")
    store.create_run("r1", "probe", 1.0, "abc", {"targets": []}, {"requests": 2}, {"assay": "0"})
    return store


def test_schema_is_migrated_and_wal(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_records_round_trip_through_the_writer_thread(tmp_path: Path) -> None:
    full = record(
        "0",
        sent_ns=10,
        first_token_ns=20,
        done_ns=90,
        content_offsets_us=[10, 15, 30],
        output_tokens=3,
        token_source="server",
        rate_limit_headers={"x-ratelimit-limit-requests": "60"},
        scores={"exact": 1.0},
        response_text="héllo",
    )
    failed = record("1", status="error", error_class="timeout", error_phase="idle", retry_after_s=2.5, final=False)
    with new_store(tmp_path) as store:
        writer = RecordWriter(store.path)
        writer.put(full)
        writer.put(failed)
        writer.close()
        assert store.records("r1") == [full, failed]
        assert store.run("latest").params == {"requests": 2}


def test_duplicate_attempt_key_is_ignored_not_doubled(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        writer = RecordWriter(store.path)
        writer.put(record("0"))
        writer.put(record("0"))
        writer.close()
        assert len(store.records("r1")) == 1


def test_resume_bookkeeping(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        writer = RecordWriter(store.path)
        writer.put(record("0"))  # done
        writer.put(record("1", status="error", error_class="rate_limited", final=False))
        writer.put(record("1", attempt=1, status="error", error_class="cancelled", final=False))  # interrupted
        writer.put(record("2", status="error", error_class="server_error"))  # failed for good: done
        writer.close()
        done, next_attempt = store.attempts_so_far("r1")
    assert done == {("t", "probe", "0"), ("t", "probe", "2")}
    assert next_attempt[("t", "probe", "1")] == 2


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(AssayError, match="newer than this assay understands"):
        Store(path)


def test_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as store:
        with pytest.raises(AssayError, match="no runs"):
            store.run("latest")
        with pytest.raises(AssayError, match="no run 'nope'"):
            store.run("nope")


def test_unusable_store_locations_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "assay.db"
    junk.write_text("not a database")
    with pytest.raises(AssayError, match="is not an assay run store"):
        Store(junk)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AssayError, match=r"cannot open the run store at .*ASSAY_HOME"):
        Store(blocker / "sub" / "assay.db")  # a file where a folder should be
