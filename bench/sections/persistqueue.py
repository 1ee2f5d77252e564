"""Section `persist-queue`: logstore as a queue, against persist-queue's two queues.

persist-queue (https://pypi.org/project/persist-queue/) is the popular pure-Python persistent
queue. Its two main classes, used with their defaults:
- `SQLiteQueue(path, auto_commit=True)`: SQLite in WAL mode; every put is one committed INSERT
  and every get a SELECT + DELETE + commit; SQLite's synchronous level is its default (stated on
  the rows as read back from the connection). Items are pickled.
- `Queue(path)` (the file queue): put pickles the item into a chunk file and flushes it to the
  page cache, then rewrites its info file (write + rename, no fsync); only a full chunk file (100
  items) is fsynced. get unpickles the next item; its removal is persisted only by task_done()
  (not called here, so get is read-only, like logstore's).

logstore puts one record per `Log.append` (per-message, like a queue's put). logstore's get reads
the next record from a log filled by such puts (one record per batch): `Log.batches()` +
`RecordBatch.records()`; the consumer position stays in memory (committing it is the txn layer's
job), so a logstore get never writes.
"""

from __future__ import annotations

import contextlib
import logging
import os

from logstore.log import Log

from bench import _cases, _env
from bench._report import Group, Row, comparison_row
from bench._section import Context, new_result, section
from bench._timer import Case, compare

NAME = "persist-queue"
SIZE = 100


@section(NAME, "5b. persist-queue: logstore as a queue vs persist-queue", order=55,
         weight_quick=8, weight_full=80)
def run(ctx: Context):
    result = new_result(NAME)
    try:
        import persistqueue
    except ImportError:
        result.error = "persist-queue is not installed (pip install -e '.[bench]')"
        return result
    logging.getLogger("persistqueue").setLevel(logging.ERROR)
    sync_level = _sqlite_queue_sync_level(ctx, persistqueue)
    durability_sqlq = (f"SQLite WAL, synchronous={sync_level} (persist-queue default), one "
                       "commit per put/get")
    result.intro = (
        f"persist-queue {getattr(persistqueue, '__version__', '?')}, 100 B items (the records "
        "of `append`), one item per call. Ratios are logstore ÷ the named peer. "
        + "\n\n" + "\n\n".join(__doc__.strip().split("\n\n")[1:]))
    steps = ctx.steps(3)
    single = ctx.settings_with(min_iterations=ctx.pick(100, 300))

    log_put = _cases.log_put_single(ctx, SIZE, durable=True,
                                    name="logstore Log.append([v], durable=True)")
    sq_put = sqlite_queue_put(ctx, persistqueue)
    cmp = compare([log_put, sq_put], single, same_work=False,
                  on_round=steps.sub("durable put"))
    steps.finish()
    result.groups.append(Group("put, durable per item", [
        _row(cmp, log_put.name, sq_put.name, "Log.append([v], durable=True)",
             _cases.DURABILITY_FSYNC_MESSAGE),
        _row(cmp, sq_put.name, sq_put.name, "persist-queue SQLiteQueue.put", durability_sqlq),
    ]))
    result.raw["put_durable"] = cmp.to_json()

    log_put_b = _cases.log_put_single(ctx, SIZE, durable=False, name="logstore Log.append([v])")
    fq_put = file_queue_put(ctx, persistqueue)
    cmp = compare([log_put_b, fq_put], single, same_work=False,
                  on_round=steps.sub("buffered put"))
    steps.finish()
    result.groups.append(Group("put, not synced per item", [
        _row(cmp, log_put_b.name, fq_put.name, "Log.append([v])", _cases.DURABILITY_BUFFERED),
        _row(cmp, fq_put.name, fq_put.name, "persist-queue Queue.put (file queue)",
             "page cache; fsync only per full 100-item chunk"),
    ]))
    result.raw["put_buffered"] = cmp.to_json()

    log_get = logstore_get(ctx)
    sq_get = sqlite_queue_get(ctx, persistqueue)
    fq_get = file_queue_get(ctx, persistqueue)
    cmp = compare([log_get, sq_get, fq_get], single, same_work=False,
                  on_round=steps.sub("get"))
    steps.finish()
    result.groups.append(Group("get, one item per call", [
        _row(cmp, log_get.name, sq_get.name, "logstore get vs SQLiteQueue.get",
             "read only (position in memory)"),
        _row(cmp, log_get.name, fq_get.name, "logstore get vs file Queue.get",
             "read only (position in memory)"),
        _row(cmp, sq_get.name, sq_get.name, "persist-queue SQLiteQueue.get",
             "deletes the item: " + durability_sqlq),
        _row(cmp, fq_get.name, fq_get.name, "persist-queue Queue.get (file queue)",
             "read only (removal persisted by task_done, not called)"),
    ]))
    result.raw["get"] = cmp.to_json()
    result.raw["sqlite_queue_synchronous"] = sync_level
    return result


def _sqlite_queue_sync_level(ctx: Context, persistqueue) -> str:
    path = ctx.path("pq-probe")
    q = persistqueue.SQLiteQueue(path, auto_commit=True)
    try:
        level = q._putter.execute("PRAGMA synchronous").fetchone()[0]
    except Exception:  # noqa: BLE001 - only for the label
        level = "?"
    finally:
        q.close()
        _env.remove(path)
    return {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, str(level))


class _Queue:
    def __init__(self, path: str, queue):
        self.path = path
        self.queue = queue

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if hasattr(self.queue, "close"):
                self.queue.close()
        self.queue = None
        _env.remove(self.path)


def sqlite_queue_put(ctx: Context, persistqueue) -> Case:
    values = ctx.records.singles(SIZE)

    def setup(n: int) -> _Queue:
        path = ctx.path("sqlq")
        return _Queue(path, persistqueue.SQLiteQueue(path, auto_commit=True))

    def run(q: _Queue, n: int) -> None:
        put = q.queue.put
        for i in range(n):
            put(values[i % len(values)])

    return Case("persist-queue SQLiteQueue.put", run, {"records": 1, "bytes": SIZE},
                setup=setup, teardown=_Queue.close)


def file_queue_put(ctx: Context, persistqueue) -> Case:
    values = ctx.records.singles(SIZE)

    def setup(n: int) -> _Queue:
        path = ctx.path("fileq")
        return _Queue(path, persistqueue.Queue(path, tempdir=_tempdir(path)))

    def run(q: _Queue, n: int) -> None:
        put = q.queue.put
        for i in range(n):
            put(values[i % len(values)])

    return Case("persist-queue Queue.put", run, {"records": 1, "bytes": SIZE},
                setup=setup, teardown=_Queue.close)


def _tempdir(path: str) -> str:
    """persist-queue's file queue wants a temp dir on the queue's file system."""
    tmp = path + "-tmp"
    os.makedirs(tmp, exist_ok=True)
    return tmp


def sqlite_queue_get(ctx: Context, persistqueue) -> Case:
    values = ctx.records.singles(SIZE)

    def setup(n: int) -> _Queue:
        path = ctx.path("sqlq-get")
        filler = persistqueue.SQLiteQueue(path, auto_commit=False)
        for i in range(n):
            filler.put(values[i % len(values)])
        filler.task_done()                       # commits the puts in one transaction
        filler.close()
        return _Queue(path, persistqueue.SQLiteQueue(path, auto_commit=True))

    def run(q: _Queue, n: int) -> None:
        get = q.queue.get
        for _ in range(n):
            get(block=False)

    return Case("persist-queue SQLiteQueue.get", run, {"records": 1, "bytes": SIZE},
                setup=setup, teardown=_Queue.close, max_iterations=ctx.pick(400, 2000))


def file_queue_get(ctx: Context, persistqueue) -> Case:
    values = ctx.records.singles(SIZE)

    def setup(n: int) -> _Queue:
        path = ctx.path("fileq-get")
        q = persistqueue.Queue(path, tempdir=_tempdir(path))
        for i in range(n):
            q.put(values[i % len(values)])
        return _Queue(path, q)

    def run(q: _Queue, n: int) -> None:
        get = q.queue.get
        for _ in range(n):
            get(block=False)

    # Filling costs a put (an info-file rewrite) per item: cap the items per round.
    return Case("persist-queue Queue.get", run, {"records": 1, "bytes": SIZE},
                setup=setup, teardown=_Queue.close, max_iterations=ctx.pick(400, 2000))


def logstore_get(ctx: Context) -> Case:
    """Records read one at a time from a log of single-record batches, built once and grown
    when a round needs more (reading does not consume)."""
    values = ctx.records.singles(SIZE)
    log = Log.open(ctx.path("get"))
    ctx.at_end(log.close)

    def setup(n: int) -> Log:
        while log.log_end_offset < n:
            log.append([values[log.log_end_offset % len(values)]])
        return log

    def run(log: Log, n: int) -> None:
        records = _records(log)
        for _ in range(n):
            next(records)

    return Case("logstore get (Log.batches + records())", run, {"records": 1, "bytes": SIZE},
                setup=setup)


def _records(log: Log):
    for batch in log.batches():
        yield from batch.records()


def _row(cmp, subject: str, limit: str, label: str, durability: str) -> Row:
    return comparison_row(cmp, subject, limit, label, durability)
