"""The SQLite store: migrations, round trips, and refusing a newer schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from assay.errors import AssayError
from assay.records import Annotations, ItemFacts, JudgeVerdict, Record, SafetyClass, Score
from assay.store import SCHEMA_VERSION, RecordWriter, Store
from assay.store.schema import MIGRATIONS


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
        response_text="héllo",
        route="chat",
        fallback_of="primary",
    )
    failed = record("1", status="error", error_class="timeout", error_phase="idle", retry_after_s=2.5, final=False)
    judge = record("0", target="j", judged_target="t", response_text='{"verdict": "correct"}')
    with new_store(tmp_path) as store:
        writer = RecordWriter(store.path)
        writer.put(full, [ItemFacts(tags=("a", "b")), Score("exact", 1.0, True, "x")])
        writer.put(failed)
        writer.put(judge, [JudgeVerdict("correct")])
        writer.close()
        assert store.records("r1") == [full, failed, judge]
        assert store.run("latest").params == {"requests": 2}
        notes = store.annotations("r1")
        assert notes[full.key] == Annotations(item=ItemFacts(tags=("a", "b")), score=Score("exact", 1.0, True, "x"))
        assert notes[judge.key].verdict == JudgeVerdict("correct") and failed.key not in notes


def test_annotations_are_appended_and_the_latest_of_a_kind_wins(tmp_path: Path) -> None:
    """A judge overruling a detector appends a new classification; the Record itself is never updated."""
    r = record("0", response_text="I can't help with that.")
    with new_store(tmp_path) as store:
        writer = RecordWriter(store.path)
        writer.put(r)
        writer.close()
        before = store.conn.execute("SELECT * FROM records").fetchall()
        store.annotate([(r, SafetyClass("refused", False, "rules"))], 2.0)
        store.annotate([(r, SafetyClass("complied", True, "judge", detector_class="refused"))], 3.0)
        assert store.conn.execute("SELECT * FROM records").fetchall() == before
        assert store.conn.execute("SELECT COUNT(*) FROM annotations").fetchone()[0] == 2
        ((_, got),) = store.iter_annotated("r1")
        assert got.safety == SafetyClass("complied", True, "judge", detector_class="refused")


def test_a_store_written_before_annotations_is_upgraded(tmp_path: Path) -> None:
    """Schema 3 kept scores as JSON on each Record and packed judge calls into `suite@judge` / `target/item`."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for step in MIGRATIONS[:3]:
        assert isinstance(step, str)
        conn.executescript(step)
    conn.execute("PRAGMA user_version = 3")
    suites = [{"name": "math", "scorer": "numeric", "dataset": "gsm8k"}]
    conn.execute(
        "INSERT INTO runs VALUES ('r1', 'eval', 'complete', 1.0, 2.0, 'h', ?, '{}', '{}')",
        (orjson.dumps({"targets": [{"name": "t"}, {"name": "j"}], "suites": suites}).decode(),),
    )
    cols = ("run_id, target, suite, item_id, attempt, final, status, wall_start_s, intended_ns, sent_ns, headers_ns, "
            "first_token_ns, done_ns, input_tokens, output_tokens, cached_tokens, reasoning_tokens, token_source, "
            "request_id, scores")  # fmt: skip
    rows = [
        ("t", "math", "q1", None, {"value": 1.0, "passed": True, "extracted": "42", "tags": ["easy"]}),
        ("t", "math", "q2", "cache", {"value": 0.0, "passed": False, "cached": True}),
        ("j", "math@judge", "t/q1", None, {"verdict": True}),
        ("t", "jailbreak", "a1", None, {"category": "jailbreak", "attack": "jailbreak", "label": "unsafe",
                                        "class": "refused", "success": False, "detector": "rules"}),
    ]  # fmt: skip
    for target, suite, item, request_id, scores in rows:
        conn.execute(
            f"INSERT INTO records ({cols}) VALUES ('r1', ?, ?, ?, 0, 1, 'ok', 1.0, 0, 1, 2, 3, 4, 5, 6, 0, 0, "
            "'server', ?, ?)",
            (target, suite, item, request_id, orjson.dumps(scores).decode()),
        )
    conn.close()
    with Store(path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        got = {r.item_key: (r, a) for r, a in store.iter_annotated("r1")}
        assert store.run("r1").targets == ["t", "j"]
    _, a = got[("t", "math", "q1", "")]
    assert a.score == Score("numeric", 1.0, True, "42") and a.item == ItemFacts(tags=("easy",))
    assert got[("t", "math", "q2", "")][0].cached
    judge, verdict = got[("j", "math", "q1", "t")]
    assert judge.judged_target == "t" and verdict.verdict == JudgeVerdict("correct")
    _, attack = got[("t", "jailbreak", "a1", "")]
    assert attack.safety == SafetyClass("refused", False, "rules")
    assert attack.item == ItemFacts(category="jailbreak", attack="jailbreak", label="unsafe")


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
    assert done == {("t", "probe", "0", ""), ("t", "probe", "2", "")}
    assert next_attempt[("t", "probe", "1", "")] == 2


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
