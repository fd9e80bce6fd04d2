"""The SQLite schema, versioned by `PRAGMA user_version`; each migration moves it up by one.

A migration is SQL, or a function for steps that must read rows to rewrite them
(4: the `scores` JSON of each Record becomes typed annotations). Each runs in one
transaction with its version bump, so a crash never leaves half a migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from assay.errors import AssayError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

_RECORD_COLUMNS = """
        id                 INTEGER PRIMARY KEY,
        run_id             TEXT NOT NULL REFERENCES runs(run_id),
        target             TEXT NOT NULL,
        suite              TEXT NOT NULL,
        item_id            TEXT NOT NULL,
        judged_target      TEXT NOT NULL DEFAULT '',
        attempt            INTEGER NOT NULL,
        final              INTEGER NOT NULL,
        status             TEXT NOT NULL,
        wall_start_s       REAL NOT NULL,
        intended_ns        INTEGER NOT NULL,
        sent_ns            INTEGER NOT NULL,
        headers_ns         INTEGER NOT NULL,
        first_token_ns     INTEGER NOT NULL,
        done_ns            INTEGER NOT NULL,
        content_offsets_us BLOB,
        input_tokens       INTEGER NOT NULL,
        output_tokens      INTEGER NOT NULL,
        cached_tokens      INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens   INTEGER NOT NULL,
        token_source       TEXT NOT NULL,
        http_status        INTEGER,
        error_class        TEXT,
        error_phase        TEXT,
        error_message      TEXT,
        retry_after_s      REAL,
        rate_limit_headers TEXT,
        finish_reason      TEXT,
        request_id         TEXT,
        cost_usd           REAL,
        response_text      TEXT,
        prompt             TEXT,
        cached             INTEGER NOT NULL DEFAULT 0,
        session            INTEGER NOT NULL DEFAULT 0,  -- 0 for the run's first process, 1 after one --resume...
        route              TEXT,
        policy             TEXT,
        arm                TEXT,
        key_id             TEXT,
        fallback_of        TEXT,
        UNIQUE (run_id, target, suite, item_id, judged_target, attempt)
"""

_SAFETY_KEYS = {"class": "reply_class", "success": "success", "detector": "detector", "stance": "stance",
                "answer": "answer", "correct": "correct", "biased": "biased", "unknown": "unknown",
                "harmful": "harmful", "detector_class": "detector_class", "detector_by": "detector_by"}  # fmt: skip
_ITEM_KEYS = ("tags", "category", "attack", "label", "technique", "condition")


def _annotations_of(scores: dict[str, Any], judge: bool, scorer: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The typed annotations an old Record's `scores` JSON stood for."""
    out: list[tuple[str, dict[str, Any]]] = []
    item = {k: scores[k] for k in _ITEM_KEYS if scores.get(k) is not None}
    if item:
        out.append(("item", item))
    if judge:
        v = scores.get("verdict")
        if isinstance(v, bool):
            out.append(("verdict", {"verdict": "correct" if v else "incorrect"}))
        else:
            out.append(("verdict", {"verdict": v, "harmful": scores.get("harmful")}))
        return out
    if "class" in scores:
        out.append(("safety", {new: scores.get(old) for old, new in _SAFETY_KEYS.items()}))
    elif "value" in scores or "passed" in scores:
        out.append(("score", {"scorer": scorer or "unknown", "value": scores.get("value"),
                              "passed": scores.get("passed"), "extracted": scores.get("extracted"),
                              "hallucinated": scores.get("hallucinated")}))  # fmt: skip
    return out


def _typed_annotations(conn: sqlite3.Connection) -> None:
    """4: append-only Records. `scores` moves to an `annotations` table of typed values; judge calls get
    `judged_target` instead of `suite@judge` / `target/item`; cache hits get `cached`; routing columns."""
    conn.execute(
        """CREATE TABLE annotations (
            id            INTEGER PRIMARY KEY,
            run_id        TEXT NOT NULL REFERENCES runs(run_id),
            target        TEXT NOT NULL,
            suite         TEXT NOT NULL,
            item_id       TEXT NOT NULL,
            judged_target TEXT NOT NULL DEFAULT '',
            attempt       INTEGER NOT NULL,
            kind          TEXT NOT NULL,          -- item | score | safety | verdict
            data          TEXT NOT NULL,          -- the typed value as JSON (records.py)
            created_s     REAL NOT NULL
        )"""
    )
    conn.execute("ALTER TABLE runs ADD COLUMN targets_json TEXT")  # the targets a run sends to
    conn.execute("ALTER TABLE runs ADD COLUMN sessions INTEGER NOT NULL DEFAULT 0")  # processes that ran it so far
    conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")  # host:pid of the process running it now
    for run_id, params in conn.execute("SELECT run_id, params_json FROM runs").fetchall():
        used = orjson.loads(params).get("targets") if params else None
        if isinstance(used, list) and used:  # a run of some targets only: resume must not need the others' keys
            conn.execute("UPDATE runs SET targets_json = ? WHERE run_id = ?", (orjson.dumps(used).decode(), run_id))
    conn.execute(f"CREATE TABLE records_v4 ({_RECORD_COLUMNS})")
    scorers: dict[tuple[str, str], str] = {}
    for run_id, config in conn.execute("SELECT run_id, config_json FROM runs"):
        for suite in orjson.loads(config).get("suites") or []:
            if isinstance(suite, dict) and suite.get("scorer"):
                scorers[(run_id, suite["name"])] = suite["scorer"]
    old_cols = [r[1] for r in conn.execute("PRAGMA table_info(records)")]
    keep = [c for c in old_cols if c not in ("id", "scores")]
    cols = ", ".join(f"records.{c}" for c in keep)
    rows = conn.cursor().execute(f"SELECT {cols}, records.scores, runs.created_s FROM records JOIN runs USING (run_id)")
    insert = (
        f"INSERT INTO records_v4 ({', '.join(keep)}, judged_target, cached) VALUES ({', '.join('?' * (len(keep) + 2))})"
    )
    annotate = (
        "INSERT INTO annotations (run_id, target, suite, item_id, judged_target, attempt, kind, data, created_s) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    at = {c: i for i, c in enumerate(keep)}
    for row in rows:
        values = list(row[: len(keep)])
        scores = orjson.loads(row[len(keep)]) if row[len(keep)] else {}
        created = row[len(keep) + 1]
        suite, item_id, judged = values[at["suite"]], values[at["item_id"]], ""
        judge = suite.endswith("@judge")
        if judge:
            suite = suite.removesuffix("@judge")
            judged, _, item_id = item_id.partition("/")
            values[at["suite"]], values[at["item_id"]] = suite, item_id
        cached = values[at["request_id"]] == "cache" or bool(scores.get("cached"))
        conn.execute(insert, [*values, judged, int(cached)])
        run_id, target, attempt = values[at["run_id"]], values[at["target"]], values[at["attempt"]]
        for kind, data in _annotations_of(scores, judge, scorers.get((run_id, suite))):
            conn.execute(annotate, (run_id, target, suite, item_id, judged, attempt, kind, orjson.dumps(data).decode(),
                                    created))  # fmt: skip
    conn.execute("DROP TABLE records")
    conn.execute("ALTER TABLE records_v4 RENAME TO records")
    conn.execute("CREATE INDEX records_by_run ON records (run_id, target)")
    conn.execute("CREATE INDEX annotations_by_run ON annotations (run_id)")


MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    # 1: runs and their request records
    """
    CREATE TABLE runs (
        run_id        TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,
        status        TEXT NOT NULL,          -- running | complete | interrupted
        created_s     REAL NOT NULL,
        finished_s    REAL,
        config_hash   TEXT NOT NULL,
        config_json   TEXT NOT NULL,          -- the validated config; key env names only, never values
        params_json   TEXT NOT NULL,          -- options the run was started with (for resume)
        versions_json TEXT NOT NULL
    );
    CREATE TABLE records (
        id                 INTEGER PRIMARY KEY,
        run_id             TEXT NOT NULL REFERENCES runs(run_id),
        target             TEXT NOT NULL,
        suite              TEXT NOT NULL,
        item_id            TEXT NOT NULL,
        attempt            INTEGER NOT NULL,
        final              INTEGER NOT NULL,
        status             TEXT NOT NULL,
        wall_start_s       REAL NOT NULL,
        intended_ns        INTEGER NOT NULL,
        sent_ns            INTEGER NOT NULL,
        headers_ns         INTEGER NOT NULL,
        first_token_ns     INTEGER NOT NULL,
        done_ns            INTEGER NOT NULL,
        content_offsets_us BLOB,
        input_tokens       INTEGER NOT NULL,
        output_tokens      INTEGER NOT NULL,
        cached_tokens      INTEGER NOT NULL,
        reasoning_tokens   INTEGER NOT NULL,
        token_source       TEXT NOT NULL,
        http_status        INTEGER,
        error_class        TEXT,
        error_phase        TEXT,
        error_message      TEXT,
        retry_after_s      REAL,
        rate_limit_headers TEXT,
        finish_reason      TEXT,
        request_id         TEXT,
        cost_usd           REAL,
        response_text      TEXT,
        prompt             TEXT,
        scores             TEXT,
        UNIQUE (run_id, target, suite, item_id, attempt)
    );
    CREATE INDEX records_by_run ON records (run_id, target);
    """,
    # 2: prompt-cache writes, which Anthropic bills above the input rate
    """
    ALTER TABLE records ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: replies reused across eval runs, keyed by (target, exact request)
    """
    CREATE TABLE response_cache (
        key            TEXT PRIMARY KEY,      -- sha256 of api, base_url, model and the request body
        response_text  TEXT NOT NULL,
        input_tokens   INTEGER NOT NULL,
        output_tokens  INTEGER NOT NULL,
        cached_tokens  INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        token_source   TEXT NOT NULL,
        finish_reason  TEXT,
        created_s      REAL NOT NULL
    );
    """,
    _typed_annotations,
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to SCHEMA_VERSION; refuse one written by a newer assay.

    Safe when several processes open a new store at once (a command and a viewer, two gateway
    replicas): each step takes the write lock first and re-reads the version under it.
    """
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise AssayError(
            f"the store has schema version {current}, newer than this assay understands "
            f"({SCHEMA_VERSION}); upgrade assay"
        )
    while current < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current < SCHEMA_VERSION:
                step = MIGRATIONS[current]
                if isinstance(step, str):
                    for statement in _statements(step):
                        conn.execute(statement)
                else:
                    step(conn)
                current += 1
                conn.execute(f"PRAGMA user_version = {current}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    """The statements of a migration script, one by one (executescript would commit the transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s.strip(" ;\n")]
