"""The SQLite schema, versioned by `PRAGMA user_version`; each migration moves it up by one."""

from __future__ import annotations

import sqlite3

from assay.errors import AssayError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: list[str] = [
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
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to SCHEMA_VERSION; refuse one written by a newer assay."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise AssayError(
            f"the store has schema version {current}, newer than this assay understands "
            f"({SCHEMA_VERSION}); upgrade assay"
        )
    for version in range(current, SCHEMA_VERSION):
        # One transaction per step, version bump included, so a crash never leaves half a migration.
        conn.executescript(f"BEGIN;\n{MIGRATIONS[version]}\nPRAGMA user_version = {version + 1};\nCOMMIT;")
    return SCHEMA_VERSION
