"""Section `wire`: confluent-kafka over loopback against `logstore serve`, next to the embedded
clients doing the same work in the same run.

The server is a separate process (`python -m wire.cli`, as `logstore serve` runs it) on
127.0.0.1, so client and server share the machine's cores as they would in production; the
benchmark process is the client.

- produce: confluent-kafka `Producer` with acks=all (librdkafka defaults otherwise: linger.ms 5,
  batch.size 1 MB), 1000 records of 1 KiB per iteration, then `flush()`: every record is
  acknowledged, which with acks=all means fsynced by the server's group commit. The embedded
  figure: `txn.Producer({"log.dirs": ...})` with acks=all, the same loop. Target >= 100 MB/s.
- consume: confluent-kafka `Consumer` assigned to a pre-filled partition from offset 0,
  `consume(10000)` until every record is seen (each value's length is read, so every record
  reaches Python), with fetch.queue.backoff.ms 10 (see FETCH_QUEUE_BACKOFF_MS). The embedded
  figure: `txn.Consumer` doing the same over log.dirs. Target >= 200 MB/s.
Every round uses a fresh topic (created before, deleted after, untimed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

from bench._report import MB, Group, Row, Target
from bench._section import RECORDS_PER_BATCH, Context, new_result, section
from bench._timer import Case, compare

NAME = "wire"
SIZE = 1024
PRODUCE_TARGET = Target("absolute", 100, "MB/s")
CONSUME_TARGET = Target("absolute", 200, "MB/s")
DURABILITY_ACKS_ALL = "acks=all: fsynced (group commit) before the ack"
DURABILITY_READ = "read path (data in page cache)"
CONSUME_BATCH = 10000
TIMEOUT_S = 120.0
QUIET = {"log_level": 2}
# librdkafka >= 2.4 sleeps fetch.queue.backoff.ms (default 1000) before fetching again once
# its local queue is over queued.max.messages.kbytes (64 MiB); a server that answers faster
# than the Python loop consumes fills it within a round, and the 1 s sleeps then measure the
# client's back-off, not the server. 10 ms keeps the fetcher going.
FETCH_QUEUE_BACKOFF_MS = 10


class ServerProcess:
    """`python -m wire.cli --dir DIR --port 0` until stop()."""

    def __init__(self, directory: str):
        self.directory = directory
        self.proc = None
        self.bootstrap = ""

    def start(self) -> ServerProcess:
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wire.cli", "--dir", self.directory, "--port", "0",
             "--log-level", "warning"], cwd=repo, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("logstore serve exited before listening")
            if "listening on" in line:
                self.bootstrap = line.rsplit(" ", 1)[1].strip()
                self.proc.stderr.close()
                return self
        raise RuntimeError("logstore serve did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(TIMEOUT_S)


class _Topics:
    """Fresh topic names and their creation/deletion, over the wire or embedded."""

    def __init__(self, admin, new_topic, prefix: str):
        self.admin = admin
        self.new_topic = new_topic
        self.prefix = prefix
        self.count = 0

    def create(self) -> str:
        self.count += 1
        name = f"{self.prefix}-{self.count}"
        self.admin.create_topics([self.new_topic(name, 1, 1)])[name].result(TIMEOUT_S)
        return name

    def delete(self, name: str) -> None:
        self.admin.delete_topics([name])[name].result(TIMEOUT_S)


def _produce_loop(producer, topic: str, pool: list[list[bytes]], n: int) -> None:
    produce, poll = producer.produce, producer.poll
    for i in range(n):
        for value in pool[i % len(pool)]:
            while True:
                try:
                    produce(topic, value)
                    break
                except BufferError:            # the client's queue is full: let it drain
                    poll(0.005)
        poll(0)
    left = producer.flush(TIMEOUT_S)
    if left:
        raise RuntimeError(f"{left} records not delivered")


def _consume_loop(consumer, records: int) -> None:
    seen = size = 0
    while seen < records:
        # never ask for more than is left: consume() waits its whole timeout for a batch
        # it cannot fill
        for message in consumer.consume(min(CONSUME_BATCH, records - seen), 1.0):
            if message.error() is None:
                seen += 1
                size += len(message.value())
    if size != records * SIZE:
        raise RuntimeError(f"read {size} bytes, expected {records * SIZE}")


def produce_case(name: str, make_producer, topics: _Topics, pool) -> Case:
    def setup(n):
        topic = topics.create()
        producer = make_producer()
        producer.produce(topic, b"warm-up")           # connections, metadata, producer id
        producer.flush(TIMEOUT_S)
        return producer, topic

    def run(state, n):
        producer, topic = state
        _produce_loop(producer, topic, pool, n)

    def teardown(state):
        producer, topic = state
        close = getattr(producer, "close", None)
        if close is not None:
            close()
        topics.delete(topic)
    return Case(name, run, {"records": RECORDS_PER_BATCH, "bytes": RECORDS_PER_BATCH * SIZE},
                setup=setup, teardown=teardown)


def consume_case(name: str, make_producer, make_consumer, topic_partition, topics: _Topics,
                 pool) -> Case:
    def setup(n):
        topic = topics.create()
        producer = make_producer()
        _produce_loop(producer, topic, pool, n)
        close = getattr(producer, "close", None)
        if close is not None:
            close()
        consumer = make_consumer()
        consumer.list_topics(topic, TIMEOUT_S)        # connected, metadata known: untimed
        return consumer, topic, n * RECORDS_PER_BATCH

    def run(state, n):
        consumer, topic, records = state
        consumer.assign([topic_partition(topic, 0, 0)])
        _consume_loop(consumer, records)

    def teardown(state):
        consumer, topic, _ = state
        consumer.close()
        topics.delete(topic)
    return Case(name, run, {"records": RECORDS_PER_BATCH, "bytes": RECORDS_PER_BATCH * SIZE},
                setup=setup, teardown=teardown)


def _row(cmp, subject: Case, baseline: Case, label: str, durability: str,
         target: Target | None) -> Row:
    case = cmp[subject.name]
    row = Row(label, durability, case.rate("records"), case.rate("bytes") / MB,
              cmp.ratio(subject.name, baseline.name), baseline.name, target,
              profile=(subject, baseline, case.iterations) if target else None)
    row.measure = row.mb_per_s
    return row


class _Clients:
    """Factories of the four clients: confluent-kafka against the server, txn embedded."""

    def __init__(self, bootstrap: str, embedded_dir: str):
        import confluent_kafka
        import txn
        self.ck, self.txn = confluent_kafka, txn
        self.bootstrap, self.embedded_dir = bootstrap, embedded_dir

    def wire_producer(self):
        return self.ck.Producer({"bootstrap.servers": self.bootstrap, "acks": "all", **QUIET})

    def embedded_producer(self):
        return self.txn.Producer({"log.dirs": self.embedded_dir, "acks": "all"})

    def wire_consumer(self):
        return self.ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench",
                                 "enable.auto.commit": False,
                                 "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS, **QUIET})

    def embedded_consumer(self):
        return self.txn.Consumer({"log.dirs": self.embedded_dir, "group.id": "bench",
                                  "enable.auto.commit": False})


@section(NAME, "8. wire: confluent-kafka over loopback vs the embedded clients", order=80,
         weight_quick=25, weight_full=180)
def run(ctx: Context):
    from confluent_kafka.admin import AdminClient as WireAdmin
    from confluent_kafka.admin import NewTopic as WireTopic

    import txn
    result = new_result(NAME)
    server = ServerProcess(ctx.path("server")).start()
    ctx.at_end(server.stop)
    clients = _Clients(server.bootstrap, ctx.path("embedded"))
    wire_topics = _Topics(WireAdmin({"bootstrap.servers": server.bootstrap, **QUIET}),
                          WireTopic, "wire")
    embedded_admin = txn.AdminClient({"log.dirs": clients.embedded_dir})
    ctx.at_end(lambda: embedded_admin.__exit__(None, None, None))   # releases the engine
    embedded_topics = _Topics(embedded_admin, txn.NewTopic, "embedded")
    result.intro = (
        f"`logstore serve` runs as a separate process on 127.0.0.1 (`{server.bootstrap}`); "
        "this process is the client. Each iteration is 1000 records of 1 KiB (random, "
        "incompressible). The embedded figures are the confluent-kafka-compatible embedded "
        "clients (`txn.Producer` / `txn.Consumer` over `log.dirs`) doing the same work in the "
        "same rounds; the ratio is wire / embedded.")
    steps = ctx.steps(2)
    # Rounds of at least 100 (quick) or 300 (full) MB: a consumer's start (assign, first
    # fetch: tens of ms) is part of every round and must not dominate it.
    settings = ctx.settings_with(min_iterations=ctx.pick(100, 300))
    pool = ctx.records.pools[SIZE]
    result.groups.append(_produce_group(result, settings, steps, clients, wire_topics,
                                        embedded_topics, pool))
    result.groups.append(_consume_group(result, settings, steps, clients, wire_topics,
                                        embedded_topics, pool))
    result.notes.append(
        "Client and server share the two cores: librdkafka's threads and the Python produce "
        "loop in this process, the server's event loop and worker threads in the other. The "
        "server sends fetched record sets with sendmsg straight from the segment mmaps (no "
        "copy in Python) and appends each client batch as sent (validated in C, base offset "
        "patched).")
    return result


def _produce_group(result, settings, steps, clients: _Clients, wire_topics, embedded_topics,
                   pool) -> Group:
    wire_p = produce_case("confluent-kafka Producer → logstore serve", clients.wire_producer,
                          wire_topics, pool)
    emb_p = produce_case("embedded txn.Producer (log.dirs)", clients.embedded_producer,
                         embedded_topics, pool)
    cmp = compare([wire_p, emb_p], settings, on_round=steps.sub("produce"))
    steps.finish()
    result.raw["produce"] = cmp.to_json()
    return Group("Produce 1 KiB records, acks=all (every record fsynced before its ack)", [
        _row(cmp, wire_p, emb_p, "confluent-kafka Producer over loopback, 1 KiB, acks=all",
             DURABILITY_ACKS_ALL, PRODUCE_TARGET),
        _row(cmp, emb_p, emb_p, "embedded txn.Producer, 1 KiB, acks=all (same run)",
             DURABILITY_ACKS_ALL, None)])


def _consume_group(result, settings, steps, clients: _Clients, wire_topics, embedded_topics,
                   pool) -> Group:
    wire_c = consume_case("confluent-kafka Consumer ← logstore serve", clients.wire_producer,
                          clients.wire_consumer, clients.ck.TopicPartition, wire_topics, pool)
    emb_c = consume_case("embedded txn.Consumer (log.dirs)", clients.embedded_producer,
                         clients.embedded_consumer, clients.txn.TopicPartition,
                         embedded_topics, pool)
    cmp = compare([wire_c, emb_c], replace(settings, settle=False),
                  on_round=steps.sub("consume"))
    steps.finish()
    result.raw["consume"] = cmp.to_json()
    return Group("Consume 1 KiB records (assign from offset 0, consume(10000))", [
        _row(cmp, wire_c, emb_c, "confluent-kafka Consumer over loopback, 1 KiB",
             DURABILITY_READ, CONSUME_TARGET),
        _row(cmp, emb_c, emb_c, "embedded txn.Consumer, 1 KiB (same run)", DURABILITY_READ,
             None)])
