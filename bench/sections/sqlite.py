"""Section `sqlite`: the same records into SQLite (WAL), the usual embedded alternative.

SQLite runs in WAL mode with synchronous=FULL (every commit fsyncs the WAL: durable per commit)
and NORMAL (commits are not synced; the WAL is synced at checkpoints: survives a process crash,
not a power loss). The table is `(id INTEGER PRIMARY KEY, value BLOB)`, the connection is in
autocommit mode (explicit BEGIN/COMMIT around a batch; a single INSERT is its own
transaction), rows are inserted with one prepared statement
(`executemany` for a batch, over a pre-built list of 1-tuples so no conversion is timed).

Rows (100 B records):
- batched, fdatasync per 1000 records: `Log.append(values, durable=True)` vs SQLite WAL FULL,
  one transaction per 1000 rows; target: logstore >= 3x SQLite;
- batched, not synced per batch: `Log.append(values)` vs SQLite WAL NORMAL (information);
- per message, durable: `Log.append([v], durable=True)` vs the raw `os.write + os.fdatasync`
  loop (target >= 0.9x) and vs SQLite WAL FULL, one commit per row;
- per message, not synced: `Log.append([v])` vs SQLite WAL NORMAL, one commit per row.
"""

from __future__ import annotations

import os
import sqlite3
import time

from bench import _cases, _env
from bench._report import Group, Row, Target, comparison_row
from bench._section import RECORDS_PER_BATCH, Context, new_result, section
from bench._timer import Case, compare

NAME = "sqlite"
BATCH_TARGET = Target("ratio", 3.0)
MESSAGE_TARGET = Target("ratio", 0.9)
SIZE = 100
SYNC_LEVELS = {"NORMAL": 1, "FULL": 2}
DURABILITY_FULL = "SQLite WAL, synchronous=FULL: WAL fsynced per commit"
DURABILITY_NORMAL = "SQLite WAL, synchronous=NORMAL: no sync per commit"


@section(NAME, "5a. sqlite: the same records into SQLite (WAL)", order=50, weight_quick=8,
         weight_full=90)
def run(ctx: Context):
    result = new_result(NAME)
    result.intro = (
        f"SQLite {sqlite3.sqlite_version} (Python's sqlite3), WAL mode, table `(id INTEGER "
        "PRIMARY KEY, value BLOB)`, autocommit connection (BEGIN/COMMIT around a batch; a "
        "single INSERT is its own transaction), one prepared INSERT (`executemany` over "
        "pre-built 1-tuples for a batch). 100 B records "
        "(the records of `append`). Each round starts from a fresh database / log. Ratios are "
        "logstore ÷ the named peer; the targets are the issue's.")
    steps = ctx.steps(4)
    settings = ctx.settings

    log_batch = _cases.log_append(ctx, SIZE, durable=True,
                                  name="logstore Log.append(durable=True)")
    full_batch = sqlite_batch(ctx, "FULL")
    cmp = compare([log_batch, full_batch], settings, same_work=False,
                  on_round=steps.sub("batched, durable"))
    steps.finish()
    result.groups.append(Group("Batched: 1000 records per append / transaction, synced per "
                               "batch", [
        _row(cmp, log_batch.name, full_batch.name, "Log.append(durable=True), 1000 × 100 B",
             _cases.DURABILITY_FSYNC_BATCH, BATCH_TARGET, (log_batch, full_batch)),
        _row(cmp, full_batch.name, full_batch.name, "SQLite WAL FULL, 1000 rows per "
             "transaction", DURABILITY_FULL, None),
    ]))
    result.raw["batched_durable"] = cmp.to_json()

    log_buffered = _cases.log_append(ctx, SIZE, name="logstore Log.append")
    normal_batch = sqlite_batch(ctx, "NORMAL")
    cmp = compare([log_buffered, normal_batch], settings, same_work=False,
                  on_round=steps.sub("batched, not synced"))
    steps.finish()
    result.groups.append(Group("Batched: 1000 records per append / transaction, not synced "
                               "per batch", [
        _row(cmp, log_buffered.name, normal_batch.name, "Log.append, 1000 × 100 B",
             _cases.DURABILITY_BUFFERED, None),
        _row(cmp, normal_batch.name, normal_batch.name, "SQLite WAL NORMAL, 1000 rows per "
             "transaction", DURABILITY_NORMAL, None),
    ]))
    result.raw["batched_normal"] = cmp.to_json()

    single_settings = ctx.settings_with(min_iterations=ctx.pick(200, 500))
    log_single = _cases.log_put_single(ctx, SIZE, durable=True,
                                       name="logstore Log.append([v], durable=True)")
    raw_single = _cases.raw_write_fdatasync(ctx, SIZE, ctx.records.singles(SIZE),
                                            "raw os.write+fdatasync per message", records=1)
    full_single = sqlite_single(ctx, "FULL")
    cmp = compare([log_single, raw_single, full_single], single_settings, same_work=False,
                  on_round=steps.sub("per message, durable"))
    steps.finish()
    result.groups.append(Group("Per message, durable: one record per append / commit", [
        _row(cmp, log_single.name, raw_single.name, "Log.append([v], durable=True), 100 B",
             _cases.DURABILITY_FSYNC_MESSAGE, MESSAGE_TARGET, (log_single, raw_single)),
        _row(cmp, log_single.name, full_single.name, "Log.append([v], durable=True) vs SQLite "
             "FULL", _cases.DURABILITY_FSYNC_MESSAGE, None),
        _row(cmp, raw_single.name, raw_single.name, "raw os.write+fdatasync per message "
             "(the limit)", _cases.DURABILITY_FSYNC_MESSAGE, None),
        _row(cmp, full_single.name, raw_single.name, "SQLite WAL FULL, one row per commit",
             DURABILITY_FULL, None),
    ]))
    result.raw["single_durable"] = cmp.to_json()

    log_single_buffered = _cases.log_put_single(ctx, SIZE, durable=False,
                                                name="logstore Log.append([v])")
    normal_single = sqlite_single(ctx, "NORMAL")
    cmp = compare([log_single_buffered, normal_single], single_settings, same_work=False,
                  on_round=steps.sub("per message, not synced"))
    steps.finish()
    result.groups.append(Group("Per message, not synced per message", [
        _row(cmp, log_single_buffered.name, normal_single.name, "Log.append([v]), 100 B",
             _cases.DURABILITY_BUFFERED, None),
        _row(cmp, normal_single.name, normal_single.name, "SQLite WAL NORMAL, one row per "
             "commit", DURABILITY_NORMAL, None),
    ]))
    result.raw["single_normal"] = cmp.to_json()
    return result


class Database:
    def __init__(self, path: str, synchronous: str):
        self.path = path
        self.conn = sqlite3.connect(os.path.join(path, "bench.db"), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={synchronous}")
        self.conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, value BLOB)")
        self.cursor = self.conn.cursor()

        assert self.conn.execute("PRAGMA synchronous").fetchone()[0] == SYNC_LEVELS[synchronous]

    def close(self) -> None:
        self.conn.close()
        _env.remove(self.path)


def _open(ctx: Context, synchronous: str) -> Database:
    path = ctx.path(f"sqlite-{synchronous.lower()}")
    os.makedirs(path)
    return Database(path, synchronous)


def sqlite_batch(ctx: Context, synchronous: str) -> Case:
    rows = [[(value,) for value in batch] for batch in ctx.records.pools[SIZE]]
    count = len(rows)
    sql = "INSERT INTO records (value) VALUES (?)"

    def run(db: Database, n: int) -> None:
        execute, executemany = db.cursor.execute, db.cursor.executemany
        for i in range(n):
            execute("BEGIN")
            executemany(sql, rows[i % count])
            execute("COMMIT")

    return Case(f"SQLite WAL {synchronous}, batch", run,
                {"records": RECORDS_PER_BATCH, "bytes": RECORDS_PER_BATCH * SIZE},
                setup=lambda n: _open(ctx, synchronous), teardown=Database.close)


def sqlite_single(ctx: Context, synchronous: str) -> Case:
    values = ctx.records.singles(SIZE)
    count = len(values)
    sql = "INSERT INTO records (value) VALUES (?)"

    def run(db: Database, n: int) -> list[int]:
        execute = db.cursor.execute
        clock = time.perf_counter_ns
        latencies = [0] * n
        for i in range(n):
            start = clock()
            execute(sql, (values[i % count],))     # autocommit: its own transaction
            latencies[i] = clock() - start
        return latencies

    return Case(f"SQLite WAL {synchronous}, per row", run, {"records": 1, "bytes": SIZE},
                setup=lambda n: _open(ctx, synchronous), teardown=Database.close)


def _row(cmp, subject: str, limit: str, label: str, durability: str, target,
         profile=None) -> Row:
    return comparison_row(cmp, subject, limit, label, durability, target=target,
                          profile=profile)
