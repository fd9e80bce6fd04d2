"""The run store: runs and their Records in one SQLite file (WAL), written off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from assay.errors import AssayError, ConfigError
from assay.records import Annotation, Annotations, ItemKey, Record, RecordKey, annotation_from_json
from assay.store.schema import migrate

__all__ = ["RecordWriter", "RunInfo", "Store", "connect"]

_FIELDS = [f.name for f in dataclasses.fields(Record)]
_JSON_FIELDS = {"rate_limit_headers"}
_BOOL_FIELDS = {"final", "cached"}
_INSERT = f"INSERT OR IGNORE INTO records ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"
_ANNOTATE = (
    "INSERT INTO annotations (run_id, target, suite, item_id, judged_target, attempt, kind, data, created_s) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store at `path`, migrated to the current schema."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise AssayError(f"cannot open the run store at {path}: {e} (set ASSAY_HOME to a writable folder)") from None
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise AssayError(f"{path} is not an assay run store ({e}); move it aside or set ASSAY_HOME") from None
    return conn


def _row(rec: Record) -> tuple[Any, ...]:
    out: list[Any] = []
    for name in _FIELDS:
        v = getattr(rec, name)
        if name == "content_offsets_us":
            v = orjson.dumps(v) if v else None
        elif name in _JSON_FIELDS:
            v = orjson.dumps(v).decode() if v else None
        elif name in _BOOL_FIELDS:
            v = int(v)
        out.append(v)
    return tuple(out)


def _record(row: sqlite3.Row) -> Record:
    d = {k: row[k] for k in _FIELDS}
    d["content_offsets_us"] = orjson.loads(d["content_offsets_us"]) if d["content_offsets_us"] else []
    for k in _JSON_FIELDS:
        d[k] = orjson.loads(d[k]) if d[k] else {}
    for k in _BOOL_FIELDS:
        d[k] = bool(d[k])
    return Record(**d)


def annotation_row(record: Record, annotation: Annotation, now_s: float) -> tuple[Any, ...]:
    data = {f.name: getattr(annotation, f.name) for f in dataclasses.fields(annotation)}
    return (record.run_id, record.target, record.suite, record.item_id, record.judged_target, record.attempt,
            annotation.KIND, orjson.dumps(data).decode(), now_s)  # fmt: skip


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    kind: str
    status: str
    created_s: float
    finished_s: float | None
    config_hash: str
    config: dict[str, Any]
    params: dict[str, Any]
    versions: dict[str, str]
    targets: list[str]  # the targets the run sent to (judges included); older runs: the config's
    sessions: int = 0  # processes that have run it so far (the first, then one per --resume)
    owner: str | None = None  # host:pid of the process that last activated it


class Store:
    """Reads and run bookkeeping. Records are appended through a `RecordWriter`."""

    LOCKED_RETRY_S = 0.25  # a locked or busy store: wait this long, then try the same batch again
    GIVE_UP_AFTER_STOP_S = 10.0  # ... but not forever once asked to stop

    def __init__(self, path: Path, limit: int = 0) -> None:
        """`limit` bounds the Records waiting to be written (0: unbounded); see `offer`."""
        self.path = path
        self.limit = limit
        self.dropped = 0  # Records `offer` refused because `limit` were already waiting
        self._writing_since = 0.0  # monotonic time the current batch's commit began (0: not committing)
        self.conn = connect(path)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_run(
        self,
        run_id: str,
        kind: str,
        created_s: float,
        config_hash: str,
        config: dict[str, Any],
        params: dict[str, Any],
        versions: dict[str, str],
        targets: list[str] | None = None,
    ) -> None:
        names = targets if targets is not None else [t["name"] for t in config.get("targets", [])]
        self.conn.execute(
            "INSERT INTO runs (run_id, kind, status, created_s, finished_s, config_hash, config_json, params_json, "
            "versions_json, targets_json) VALUES (?, ?, 'running', ?, NULL, ?, ?, ?, ?, ?)",
            (
                run_id,
                kind,
                created_s,
                config_hash,
                orjson.dumps(config).decode(),
                orjson.dumps(params).decode(),
                orjson.dumps(versions).decode(),
                orjson.dumps(names).decode(),
            ),
        )

    def set_status(self, run_id: str, status: str, finished_s: float | None = None) -> None:
        self.conn.execute("UPDATE runs SET status = ?, finished_s = ? WHERE run_id = ?", (status, finished_s, run_id))

    def start_session(self, run_id: str, owner: str) -> int:
        """Mark the run running in this process; return this process's session number (0 the first)."""
        with self.conn:
            row = self.conn.execute("SELECT sessions FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            self.conn.execute(
                "UPDATE runs SET status = 'running', owner = ?, sessions = ? WHERE run_id = ?",
                (owner, row[0] + 1, run_id),
            )
        return int(row[0])

    def run(self, run_id: str, kind: str | None = None) -> RunInfo:
        """A run by id, or the newest (of `kind`, when given) for `latest`."""
        if run_id == "latest":
            sql, args = "SELECT * FROM runs", tuple[str, ...]()
            if kind is not None:  # the newest of this kind
                sql, args = sql + " WHERE kind = ?", (kind,)
            row = self.conn.execute(sql + " ORDER BY created_s DESC LIMIT 1", args).fetchone()
            if row is None:
                what = f"{kind} runs" if kind else "runs"
                raise ConfigError(f"no {what} in {self.path} yet; start one with `assay {kind or 'probe'}`")
        else:
            row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise ConfigError(f"no run {run_id!r} in {self.path}; `assay runs` lists them")
        config = orjson.loads(row["config_json"])
        targets = orjson.loads(row["targets_json"]) if row["targets_json"] else None
        return RunInfo(
            run_id=row["run_id"],
            kind=row["kind"],
            status=row["status"],
            created_s=row["created_s"],
            finished_s=row["finished_s"],
            config_hash=row["config_hash"],
            config=config,
            params=orjson.loads(row["params_json"]),
            versions=orjson.loads(row["versions_json"]),
            targets=targets if targets is not None else [t["name"] for t in config.get("targets", [])],
            sessions=row["sessions"],
            owner=row["owner"],
        )

    def latest_of(self, kind: str, config_hash: str) -> str | None:
        """The newest run of `kind` made from the same config, if any."""
        row = self.conn.execute(
            "SELECT run_id FROM runs WHERE kind = ? AND config_hash = ? ORDER BY created_s DESC LIMIT 1",
            (kind, config_hash),
        ).fetchone()
        return None if row is None else str(row[0])

    def runs(self, limit: int = 50) -> list[RunInfo]:
        ids = [r[0] for r in self.conn.execute("SELECT run_id FROM runs ORDER BY created_s DESC LIMIT ?", (limit,))]
        return [self.run(i) for i in ids]

    def sweep_runs(self, sweep_id: str) -> list[RunInfo]:
        """The load runs of one `--sweep`, in the order they ran."""
        rows = self.conn.execute(
            "SELECT run_id FROM runs WHERE kind = 'load' AND json_extract(params_json, '$.sweep_id') = ? "
            "ORDER BY created_s",
            (sweep_id,),
        )
        return [self.run(r[0]) for r in rows]

    def records(self, run_id: str, target: str | None = None) -> list[Record]:
        return list(self.iter_records(run_id, target))

    def iter_records(self, run_id: str, target: str | None = None) -> Iterator[Record]:
        sql, args = "SELECT * FROM records WHERE run_id = ?", [run_id]
        if target is not None:
            sql += " AND target = ?"
            args.append(target)
        for row in self.conn.execute(sql + " ORDER BY id", args):
            yield _record(row)

    def cached(self, keys: list[str]) -> dict[str, sqlite3.Row]:
        """Cached replies for these request keys (see suites.quality.request_key)."""
        out: dict[str, sqlite3.Row] = {}
        for i in range(0, len(keys), 500):  # SQLite's bound-variable limit
            chunk = keys[i : i + 500]
            sql = f"SELECT * FROM response_cache WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({row["key"]: row for row in self.conn.execute(sql, chunk)})
        return out

    def cache_replies(self, rows: list[tuple[str, Record]], now_s: float) -> None:
        """Keep successful replies for reuse by later runs of the same exact requests."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO response_cache VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    key,
                    r.response_text or "",
                    r.input_tokens,
                    r.output_tokens,
                    r.cached_tokens,
                    r.reasoning_tokens,
                    r.token_source,
                    r.finish_reason,
                    now_s,
                )
                for key, r in rows
                if r.ok
            ],
        )

    def annotations(self, run_id: str) -> dict[RecordKey, Annotations]:
        """Every Record's latest annotation of each kind, by (target, suite, item, judged_target, attempt)."""
        out: dict[RecordKey, Annotations] = {}
        rows = self.conn.execute(
            "SELECT target, suite, item_id, judged_target, attempt, kind, data FROM annotations "
            "WHERE run_id = ? ORDER BY id",
            (run_id,),
        )
        for target, suite, item, judged, attempt, kind, data in rows:
            key = (target, suite, item, judged, attempt)
            out.setdefault(key, Annotations()).add(annotation_from_json(kind, orjson.loads(data)))
        return out

    def iter_annotated(self, run_id: str, target: str | None = None) -> Iterator[tuple[Record, Annotations]]:
        """Each Record with its annotations (empty when it has none)."""
        notes = self.annotations(run_id)
        for r in self.iter_records(run_id, target):
            yield r, notes.get(r.key) or Annotations()

    def annotate(self, rows: Sequence[tuple[Record, Annotation]], now_s: float) -> None:
        """Append annotations to stored Records (scorers and classifiers that run after the requests)."""
        with self.conn:
            self.conn.executemany(_ANNOTATE, [annotation_row(r, a, now_s) for r, a in rows])

    def attempts_so_far(self, run_id: str) -> tuple[set[ItemKey], dict[ItemKey, int]]:
        """For resume: items already finished, and the next attempt number of every item seen."""
        done: set[ItemKey] = set()
        next_attempt: dict[ItemKey, int] = {}
        rows = self.conn.execute(
            "SELECT target, suite, item_id, judged_target, MAX(attempt), MAX(final AND error_class IS NOT 'cancelled') "
            "FROM records WHERE run_id = ? GROUP BY target, suite, item_id, judged_target",
            (run_id,),
        )
        for target, suite, item, judged, max_attempt, finished in rows:
            key = (target, suite, item, judged)
            next_attempt[key] = max_attempt + 1
            if finished:
                done.add(key)
        return done, next_attempt


class RecordWriter:
    """Appends Records from a background thread in batches; the event loop only enqueues.

    The caller turns each Record into its row (a few microseconds) so the thread holds the
    GIL only briefly between sqlite3 steps, which release it. Converting a batch of 500 in
    the thread held the GIL for several milliseconds at a time and stalled the load
    generator's event loop by up to the interpreter's 5 ms switch interval.
    """

    BATCH = 500

    LOCKED_RETRY_S = 0.25  # a locked or busy store: wait this long, then try the same batch again
    GIVE_UP_AFTER_STOP_S = 10.0  # ... but not forever once asked to stop

    def __init__(self, path: Path, limit: int = 0) -> None:
        """`limit` bounds the Records waiting to be written (0: unbounded); see `offer`."""
        self.path = path
        self.limit = limit
        self.dropped = 0  # Records `offer` refused because `limit` were already waiting
        self._writing_since = 0.0  # monotonic time the current batch's commit began (0: not committing)
        # Rows with their annotation rows; a threading.Event asks for a flush; None stops the thread.
        self._queue: queue.Queue[tuple[tuple[Any, ...], list[tuple[Any, ...]]] | threading.Event | None] = queue.Queue()
        self._error: BaseException | None = None
        self._stopping = False
        self.duplicates = 0  # Records refused because their key was already stored (see _commit)
        self._conn = connect(path)
        self._thread = threading.Thread(target=self._loop, name="assay-record-writer", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        """Block until everything queued so far is committed (blocking; see `aflush`)."""
        done = threading.Event()
        self._queue.put(done)
        while not done.wait(0.05):
            if not self._thread.is_alive():
                break
        if self._error is not None:
            raise AssayError(f"record writer failed: {self._error}")

    async def aflush(self) -> None:
        await asyncio.to_thread(self.flush)

    def put(self, record: Record, annotations: Iterable[Annotation] = ()) -> None:
        """Queue a Record and the annotations it is born with; they are committed in the same transaction."""
        if self._error is not None:
            raise AssayError(f"record writer failed: {self._error}")
        notes = [annotation_row(record, a, record.wall_start_s) for a in annotations]
        self._queue.put((_row(record), notes))

    def offer(self, record: Record) -> bool:
        """Queue a Record unless `limit` are already waiting (a slow or locked store): then count it in
        `dropped` and return False. Never blocks, never raises: the gateway's hot path calls it."""
        if self._error is not None or (self.limit and self._queue.qsize() >= self.limit):
            self.dropped += 1
            return False
        self._queue.put((_row(record), []))
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def stalled(self) -> bool:
        """The store has kept the current batch waiting over a second (locked by another process, or slow)."""
        since = self._writing_since
        return bool(since) and time.monotonic() - since > 1.0

    def _loop(self) -> None:
        batch: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]] = []
        flushes: list[threading.Event] = []
        stop = False
        while not stop:
            item = self._queue.get()
            if item is None:
                stop = True
            elif isinstance(item, threading.Event):
                flushes.append(item)
            else:
                batch.append(item)
            while len(batch) < self.BATCH and not flushes:
                try:
                    more = self._queue.get(timeout=0.05) if not stop else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                elif isinstance(more, threading.Event):
                    flushes.append(more)
                else:
                    batch.append(more)
            if batch:
                self._write(batch, stop)
                batch = []
            for done in flushes:
                done.set()
            flushes = []
        self._conn.close()

    def _write(self, batch: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]], stopping: bool) -> None:
        """Commit one batch; a locked or busy store is waited for (the queue's `limit` bounds what piles up)."""
        waited_since: float | None = None
        self._writing_since = time.monotonic()
        while True:
            try:
                self._conn.execute("BEGIN")
                self._commit(batch)
                self._conn.execute("COMMIT")
                self._writing_since = 0.0
                return
            except sqlite3.OperationalError as e:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                text = str(e).lower()
                now = time.monotonic()
                waited_since = waited_since if waited_since is not None else now
                if ("locked" in text or "busy" in text) and not (
                    (stopping or self._stopping) and now - waited_since > self.GIVE_UP_AFTER_STOP_S
                ):
                    time.sleep(self.LOCKED_RETRY_S)
                    continue
                self._error = e
                self._writing_since = 0.0
                return
            except sqlite3.Error as e:  # keep the loop alive so close() still returns
                self._error = e
                self._writing_since = 0.0
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                return

    def _commit(self, batch: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]) -> None:
        """Insert the batch's Records, and the annotations of those that went in.

        A Record whose (run, target, suite, item, judged_target, attempt) is already stored is not
        written again, and neither are its annotations (they would land on the other Record): it is
        counted in `duplicates`, which the run lifecycle reports.
        """
        plain: list[tuple[Any, ...]] = []  # consecutive Records without annotations go in one executemany
        for row, notes in [*batch, ((), [])]:  # the empty sentinel flushes the last run of plain rows
            if row and not notes:
                plain.append(row)
                continue
            if plain:
                before = self._conn.total_changes
                self._conn.executemany(_INSERT, plain)
                self.duplicates += len(plain) - (self._conn.total_changes - before)
                plain = []
            if not row:
                break
            if self._conn.execute(_INSERT, row).rowcount:
                self._conn.executemany(_ANNOTATE, notes)
            else:
                self.duplicates += 1

    def close(self) -> None:
        """Flush everything queued and stop the thread (blocking)."""
        if self._thread.is_alive():
            self._stopping = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise AssayError(f"record writer failed: {self._error}")

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
