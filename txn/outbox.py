"""The transactional outbox (an outbox relay over SQLite) and the idempotent consumer.

The outbox. The application writes its business rows and the messages they imply in ONE SQLite
transaction:

    with conn:                                    # conn = outbox.connect("app.db")
        conn.execute("INSERT INTO orders ...")
        outbox.enqueue(conn, "orders", value, key=b"42")

`OutboxRelay` publishes the rows in id order, each batch in ONE Kafka transaction that also
commits the relay's checkpoint: the offset of group `outbox-relay.<relay id>` on partition 0 of
`__outbox_relay` is set to (last published id + 1) with send_offsets_to_transaction. Only after
that commit does it mark the rows relayed in SQLite. On (re)start it first re-initialises its
transactional id `outbox-relay-<relay id>` (which aborts the previous instance's unfinished
transaction, or finishes one whose commit was decided), then reads the checkpoint and marks
every row below it relayed: rows published but not marked are marked, never published again.
Every row therefore reaches the log exactly once as seen by read_committed readers, whatever
step a kill -9 interrupts. Failpoints: outbox.after_select, .after_produce, .before_commit,
.after_commit (published, not marked), .after_mark; idempotent.after_local_commit.

Why a watermark is enough: SQLite admits one writer at a time and `AUTOINCREMENT` never reuses
an id, so ids become visible in increasing order; once id n is committed no row below n can
appear later. (Without AUTOINCREMENT, deleting the newest rows could hand their ids out again.)

Tables:
    outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT, partition INTEGER NULL (NULL:
           the producer's partitioner), key BLOB, value BLOB, headers TEXT (JSON list of
           [name, base64 value or null]), created_ms INTEGER, relayed_ms INTEGER NULL)
           with the partial index outbox_unrelayed (id) WHERE relayed_ms IS NULL
    processed_ids(consumer TEXT, message_id TEXT, processed_ms INTEGER,
                  PRIMARY KEY (consumer, message_id)) WITHOUT ROWID
Published records carry the application's headers plus `outbox_id` (the row id, decimal).

The idempotent consumer. `IdempotentConsumer(consumer, conn).process(message, fn)` runs
fn(conn, message) and records the message's id in `processed_ids` in the same SQLite
transaction, then commits the consumer's offset; a message whose id is already recorded (a
redelivery after a crash between the SQLite commit and the offset commit, or a duplicate
carrying the same id) is skipped. The id is (topic, partition, offset) unless `id_of` says
otherwise (`header_id("outbox_id")` uses a header).

Databases are opened in WAL mode with `PRAGMA synchronous=FULL`: a commit is fsynced.

Thread-safety: a relay's methods may be called from any thread; its own SQLite connection and
clients are used under its lock (run_once, unrelayed, the thread of start()). enqueue() runs on
the application's connection inside its transaction; an IdempotentConsumer is used from one
thread, as its Consumer and connection are.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sqlite3
import sys
import threading
from dataclasses import dataclass

from logstore.scheduler import wall_ms
from txn import failpoints
from txn.kafka_error import KafkaException
from txn.message import TopicPartition

logger = logging.getLogger("txn.outbox")

OUTBOX_TABLE = "outbox"
PROCESSED_TABLE = "processed_ids"
CHECKPOINT_TOPIC = "__outbox_relay"
CHECKPOINT_PARTITION = 0
RELAY_GROUP_PREFIX = "outbox-relay."
RELAY_TRANSACTIONAL_ID_PREFIX = "outbox-relay-"
OUTBOX_ID_HEADER = "outbox_id"
DEFAULT_RELAY_ID = "default"
BATCH_ROWS = 100
POLL_INTERVAL_S = 0.2
CALL_TIMEOUT_S = 30.0
BUSY_TIMEOUT_MS = 30_000
FIRST_ID = 0                # the checkpoint before anything was published

FP_AFTER_SELECT = "outbox.after_select"
FP_AFTER_PRODUCE = "outbox.after_produce"
FP_BEFORE_COMMIT = "outbox.before_commit"
FP_AFTER_COMMIT = "outbox.after_commit"
FP_AFTER_MARK = "outbox.after_mark"
FP_AFTER_LOCAL_COMMIT = "idempotent.after_local_commit"     # processed, offset not committed

OUTBOX_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {OUTBOX_TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    partition INTEGER,
    key BLOB,
    value BLOB,
    headers TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL,
    relayed_ms INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_unrelayed ON outbox (id) WHERE relayed_ms IS NULL;
"""
PROCESSED_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {PROCESSED_TABLE} (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_ms INTEGER NOT NULL,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
"""


def connect(path: str, *, timeout_s: float = BUSY_TIMEOUT_MS / 1000,
            check_same_thread: bool = True) -> sqlite3.Connection:
    """A SQLite connection for the patterns here: WAL, synchronous=FULL (every commit is
    fsynced), a busy timeout, and both tables created if missing."""
    conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=check_same_thread)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    create_tables(conn)
    return conn


def create_tables(conn: sqlite3.Connection) -> None:
    with conn:
        for statement in (OUTBOX_SCHEMA + PROCESSED_SCHEMA).split(";"):
            if statement.strip():
                conn.execute(statement)


def _encode_headers(headers) -> str:
    items = headers.items() if isinstance(headers, dict) else (headers or ())
    out = []
    for name, value in items:
        if isinstance(value, str):
            value = value.encode()
        out.append([name, None if value is None else base64.b64encode(value).decode()])
    return json.dumps(out)


def _decode_headers(text: str) -> list:
    return [(name, None if value is None else base64.b64decode(value))
            for name, value in json.loads(text or "[]")]


def enqueue(conn: sqlite3.Connection, topic: str, value, *, key=None,
            partition: int | None = None, headers=None, now_ms: int | None = None) -> int:
    """Insert one outbox row on `conn` (inside the application's transaction); its id."""
    if not isinstance(topic, str) or not topic:
        raise ValueError("topic must be a non-empty string")
    if isinstance(value, str):
        value = value.encode()
    if isinstance(key, str):
        key = key.encode()
    cursor = conn.execute(
        f"INSERT INTO {OUTBOX_TABLE} (topic, partition, key, value, headers, created_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (topic, partition, key, value, _encode_headers(headers),
         wall_ms() if now_ms is None else now_ms))
    return cursor.lastrowid


def delete_relayed(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete rows relayed before `before_ms` (ids are never reused: AUTOINCREMENT)."""
    with conn:
        return conn.execute(f"DELETE FROM {OUTBOX_TABLE} WHERE relayed_ms IS NOT NULL "
                            "AND relayed_ms < ?", (before_ms,)).rowcount


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: list


class OutboxRelay:
    """Publishes outbox rows of the SQLite database `db_path` to the store named by
    config["log.dirs"], exactly once (module doc)."""

    def __init__(self, db_path: str, config: dict, *, relay_id: str = DEFAULT_RELAY_ID,
                 batch_rows: int = BATCH_ROWS, poll_interval_s: float = POLL_INTERVAL_S):
        if not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive int, got {batch_rows!r}")
        self.relay_id = relay_id
        self.group_id = RELAY_GROUP_PREFIX + relay_id
        self.batch_rows = batch_rows
        self.poll_interval_s = poll_interval_s
        self.next_id = FIRST_ID
        self._marks_pending = False             # rows below next_id may be unmarked
        self._config = dict(config)
        self._db_path = db_path
        self._conn = self._producer = self._consumer = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()          # the connection and clients: one user at once
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        from txn.admin import AdminClient
        from txn.admin_types import NewTopic
        from txn.consumer import Consumer
        self._conn = connect(self._db_path, check_same_thread=False)   # start()'s thread
        base = {k: v for k, v in self._config.items()
                if k == "log.dirs" or k.startswith("broker.")}
        with AdminClient(base) as admin:
            if CHECKPOINT_TOPIC not in admin.list_topics().topics:
                future = admin.create_topics([NewTopic(CHECKPOINT_TOPIC, 1)])[CHECKPOINT_TOPIC]
                try:
                    future.result()
                except KafkaException as exc:
                    logger.debug("creating %s: %s", CHECKPOINT_TOPIC, exc)
        self._consumer = Consumer({**base, "group.id": self.group_id,
                                   "isolation.level": "read_committed",
                                   "enable.auto.commit": False})
        self._producer = self._new_producer()
        self.recover()

    def _new_producer(self):
        from txn.producer import Producer
        conf = {**self._config, "linger.ms": 0}
        conf.setdefault("transactional.id", RELAY_TRANSACTIONAL_ID_PREFIX + self.relay_id)
        producer = Producer(conf)
        try:
            producer.init_transactions(CALL_TIMEOUT_S)
        except BaseException:
            producer.close()
            raise
        return producer

    def recover(self) -> int:
        """Read the committed checkpoint and mark the rows below it relayed (published by a
        relay that died before marking them); how many were marked."""
        found = self._consumer.committed([TopicPartition(CHECKPOINT_TOPIC,
                                                         CHECKPOINT_PARTITION)],
                                         timeout=CALL_TIMEOUT_S)[0]
        self.next_id = max(found.offset, FIRST_ID)
        marked = self._mark_published()
        if marked:
            logger.info("relay %s: %d rows below %d were published but not marked: marked",
                        self.relay_id, marked, self.next_id)
        return marked

    # -- relaying ---------------------------------------------------------------------------

    def run_once(self) -> int:
        """Publish the next batch of rows (one Kafka transaction), then mark them; how many."""
        with self._lock:
            return self._run_once()

    def _run_once(self) -> int:
        if self._marks_pending:
            self._mark_published()
        rows = self._select()
        if not rows:
            return 0
        failpoints.hit(FP_AFTER_SELECT)
        self._publish(rows)
        self.next_id = rows[-1].id + 1          # published: never selected again
        self._marks_pending = True
        failpoints.hit(FP_AFTER_COMMIT)
        self._mark_published()
        failpoints.hit(FP_AFTER_MARK)
        return len(rows)

    def _mark_published(self) -> int:
        """Mark every row below the checkpoint relayed (also rows a failed mark left)."""
        with self._conn:
            marked = self._conn.execute(
                f"UPDATE {OUTBOX_TABLE} SET relayed_ms = ? WHERE id < ? AND relayed_ms IS NULL",
                (wall_ms(), self.next_id)).rowcount
        self._marks_pending = False
        return marked

    def _select(self) -> list[OutboxRow]:
        cursor = self._conn.execute(
            f"SELECT id, topic, partition, key, value, headers FROM {OUTBOX_TABLE} "
            "WHERE id >= ? ORDER BY id LIMIT ?", (self.next_id, self.batch_rows))
        return [OutboxRow(i, t, p, k, v, _decode_headers(h)) for i, t, p, k, v, h in cursor]

    def _publish(self, rows: list[OutboxRow]) -> None:
        producer = self._producer
        producer.begin_transaction()
        try:
            for row in rows:
                headers = row.headers + [(OUTBOX_ID_HEADER, b"%d" % row.id)]
                producer.produce(row.topic, row.value, row.key,
                                 -1 if row.partition is None else row.partition,
                                 headers=headers)
            producer.flush(CALL_TIMEOUT_S)     # in the log (commit would flush them anyway)
            failpoints.hit(FP_AFTER_PRODUCE)
            checkpoint = TopicPartition(CHECKPOINT_TOPIC, CHECKPOINT_PARTITION, rows[-1].id + 1)
            producer.send_offsets_to_transaction(
                [checkpoint], self._consumer.consumer_group_metadata(), CALL_TIMEOUT_S)
            failpoints.hit(FP_BEFORE_COMMIT)
            producer.commit_transaction(CALL_TIMEOUT_S)
        except BaseException as exc:
            logger.warning("relay %s: publishing rows %d..%d failed: %s", self.relay_id,
                           rows[0].id, rows[-1].id, exc)
            self._reset_producer()
            raise

    def _reset_producer(self) -> None:
        """A new transactional producer: its init aborts the failed transaction (or finishes
        it if its commit was decided); the checkpoint is read again."""
        old, self._producer = self._producer, None
        try:
            old.close()
        except Exception:  # noqa: BLE001 - a fenced or failed producer may refuse to close
            logger.debug("closing the failed relay producer", exc_info=True)
        self._producer = self._new_producer()
        self.recover()

    def run(self, *, until_idle: bool = False, stop: threading.Event | None = None) -> int:
        """Relay until `stop` is set (or, until_idle, until no row is left); rows relayed."""
        stop = stop or self._stop
        total = 0
        while not stop.is_set():
            try:
                count = self.run_once()
            except Exception:  # noqa: BLE001 - a busy database, a failed transaction: retry
                if until_idle:
                    raise
                logger.exception("relay %s: round failed; retrying", self.relay_id)
                count = 0
            total += count
            if count == 0:
                if until_idle:
                    return total
                stop.wait(self.poll_interval_s)
        return total

    def start(self) -> None:
        """Relay on a background thread until close()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, daemon=True,
                                            name=f"outbox-relay-{self.relay_id}")
            self._thread.start()

    def unrelayed(self) -> int:
        """Rows not yet marked relayed."""
        with self._lock:
            return self._conn.execute(f"SELECT COUNT(*) FROM {OUTBOX_TABLE} "
                                      "WHERE relayed_ms IS NULL").fetchone()[0]

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
        for client in (self._producer, self._consumer):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - close the rest regardless
                    logger.warning("closing a relay client failed", exc_info=True)
        self._producer = self._consumer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> OutboxRelay:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- the idempotent consumer -------------------------------------------------------------------

def offset_id(message) -> str:
    """A message's identity in the log: topic/partition/offset."""
    return f"{message.topic()}/{message.partition()}/{message.offset()}"


def header_id(name: str, fallback=offset_id):
    """An id_of reading header `name` (e.g. outbox_id, __transactionId__), else fallback."""
    def id_of(message) -> str:
        for header, value in message.headers() or ():
            if header == name and value is not None:
                return f"{name}:{value.decode(errors='replace')}"
        return fallback(message)
    return id_of


class IdempotentConsumer:
    """Process each message once per `consumer_name` in the consumer's own SQLite database
    (module doc). `conn` must be outside a transaction between calls; fn must not commit."""

    def __init__(self, consumer, conn: sqlite3.Connection, *, consumer_name: str | None = None,
                 id_of=offset_id, commit_offsets: bool = True):
        self.consumer = consumer
        self.conn = conn
        self.consumer_name = consumer_name or consumer.consumer_group_metadata().group_id
        self.id_of = id_of
        self.commit_offsets = commit_offsets
        self.processed = 0
        self.skipped = 0
        create_tables(conn)

    def is_processed(self, message_id: str) -> bool:
        return self.conn.execute(
            f"SELECT 1 FROM {PROCESSED_TABLE} WHERE consumer = ? AND message_id = ?",
            (self.consumer_name, message_id)).fetchone() is not None

    def process(self, message, fn) -> bool:
        """fn(conn, message) and the processed id in one SQLite transaction; False (fn not
        called) when the id was already processed. The offset is committed afterwards."""
        if message.error() is not None:
            raise ValueError(f"not a message: {message.error()}")
        conn = self.conn
        if conn.in_transaction:
            raise RuntimeError("process() needs the connection outside a transaction")
        message_id = self.id_of(message)
        conn.execute("BEGIN IMMEDIATE")
        try:
            duplicate = self.is_processed(message_id)
            if not duplicate:
                fn(conn, message)
                if not conn.in_transaction:
                    raise RuntimeError("fn committed the transaction itself: the processed "
                                       "id could not go with it")
                conn.execute(f"INSERT INTO {PROCESSED_TABLE} (consumer, message_id, "
                             "processed_ms) VALUES (?, ?, ?)",
                             (self.consumer_name, message_id, wall_ms()))
            conn.commit()
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        failpoints.hit(FP_AFTER_LOCAL_COMMIT)
        if duplicate:
            self.skipped += 1
            logger.debug("%s: %s already processed: skipped", self.consumer_name, message_id)
        else:
            self.processed += 1
        if self.commit_offsets:
            self.consumer.commit(message=message, asynchronous=False)
        return not duplicate

    def poll(self, fn, timeout: float = 1.0) -> bool | None:
        """Poll one message and process it: True processed, False skipped, None no message
        (errors such as partition EOF are logged and count as no message)."""
        message = self.consumer.poll(timeout)
        if message is None:
            return None
        if message.error() is not None:
            logger.debug("%s: %s", self.consumer_name, message.error())
            return None
        return self.process(message, fn)


# -- command line (used by the crash tests and the demo) ------------------------------------

def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m txn.outbox",
                                     description="Run an outbox relay.")
    parser.add_argument("--db", required=True, help="the SQLite database with the outbox")
    parser.add_argument("--log-dirs", required=True, help="the logstore data directory")
    parser.add_argument("--relay-id", default=DEFAULT_RELAY_ID)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--until-idle", action="store_true",
                        help="exit once no row is left (default: run until killed)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                        help="a client or broker.* setting (repeatable)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    config = {"log.dirs": args.log_dirs}
    for item in args.config:
        key, _, value = item.partition("=")
        config[key] = value
    with OutboxRelay(args.db, config, relay_id=args.relay_id,
                     batch_rows=args.batch_rows) as relay:
        print(f"relay {args.relay_id} ready at id {relay.next_id}", flush=True)
        count = relay.run(until_idle=args.until_idle)       # without --until-idle: forever
        print(f"relayed {count} rows", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
