"""Section `txn`: what transactions cost, and the embedded clients' per-record rates.

- transactional vs idempotent producer: `txn.Producer` with a transactional.id, 1 KiB records,
  a commit every 100 ms (each iteration produces 1000 records; the clock is checked between
  iterations), against the same loop through an idempotent non-transactional producer. Both
  are acks=all: a record is fsynced (group commit) before its delivery report; the
  transactional producer's commits also fsync their markers and `__transaction_state` records.
  Each round ends with everything durable (a final commit, or flush()). Target >= 0.98x.
- read_committed vs read_uncommitted: one consumer per isolation level reads a partition of
  committed transactions of 1 KiB records from offset 0 with `consume(10000)`, touching every
  value; target >= 0.95x.
- per-record `produce()` of 100 B values (acks=all, defaults otherwise; the timed loop ends
  with flush(), so every record is delivered and fsynced): target >= 1 M records/s;
- per-record `poll()` of 100 B records from offset 0: target >= 1 M records/s.
The limit of the two per-record rows is the interpreter's floor for any per-record API written
in Python: a loop calling a no-op Python function once per record, in the same run.
"""

from __future__ import annotations

import time

from bench._report import Group, Target, comparison_row, fmt_us
from bench._section import RECORDS_PER_BATCH, Context, new_result, section
from bench._timer import Case, compare
from bench.sections.wire import _produce_loop, _Topics   # fresh topics; produce + flush

NAME = "txn"
TXN_TARGET = Target("ratio", 0.98)
READ_COMMITTED_TARGET = Target("ratio", 0.95)
PER_RECORD_TARGET = Target("absolute", 1e6, "records/s")
COMMIT_INTERVAL_S = 0.1
BIG, SMALL = 1024, 100
CONSUME_BATCH = 10000
TIMEOUT_S = 120.0
DURABILITY_ACKS_ALL = "acks=all: fsynced (group commit) before the delivery report"
DURABILITY_TXN = DURABILITY_ACKS_ALL + "; commits fsync markers and transaction state"
DURABILITY_READ = "read path (data in page cache)"
DURABILITY_NONE = "no I/O"


def _produce(producer, topic: str, value: bytes) -> None:
    """produce(), serving delivery reports while the queue is full (as an application does)."""
    while True:
        try:
            producer.produce(topic, value)
            return
        except BufferError:
            producer.poll(0.005)


def _produce_iteration(producer, topic: str, values: list[bytes]) -> None:
    produce = producer.produce
    for value in values:
        try:
            produce(topic, value)
        except BufferError:
            _produce(producer, topic, value)
    producer.poll(0)


# ------------------------------------------------------------------------------------------------
# Cases


def producer_case(name: str, directory: str, topics: _Topics, pool: list[list[bytes]],
                  transactional: bool) -> Case:
    """1000 records per iteration; transactional: a commit every COMMIT_INTERVAL_S."""
    from txn import Producer

    def setup(n):
        topic = topics.create()
        config = {"log.dirs": directory, "acks": "all", "enable.idempotence": True}
        if transactional:
            config["transactional.id"] = f"bench-{topic}"
        producer = Producer(config)
        if transactional:
            producer.init_transactions(TIMEOUT_S)
        return producer, topic

    def run(state, n):
        producer, topic = state
        if not transactional:
            _produce_loop(producer, topic, pool, n)
            return
        commits = []                  # ns of each commit_transaction() after its flush()
        producer.begin_transaction()
        started = time.monotonic()
        for i in range(n):
            _produce_iteration(producer, topic, pool[i % len(pool)])
            if time.monotonic() - started >= COMMIT_INTERVAL_S:
                commits.append(_commit(producer))
                producer.begin_transaction()
                started = time.monotonic()
        commits.append(_commit(producer))
        return commits

    def teardown(state):
        producer, topic = state
        producer.close()
        topics.delete(topic)
    return Case(name, run, {"records": RECORDS_PER_BATCH, "bytes": RECORDS_PER_BATCH * BIG},
                setup=setup, teardown=teardown)


def _commit(producer) -> int:
    """flush(), then commit_transaction(); the nanoseconds of the commit alone (EndTxn:
    Prepare, a marker per partition, Complete, each fsynced)."""
    _flushed(producer)
    started = time.perf_counter_ns()
    producer.commit_transaction(TIMEOUT_S)
    return time.perf_counter_ns() - started


def _flushed(producer) -> None:
    left = producer.flush(TIMEOUT_S)
    if left:
        raise RuntimeError(f"{left} records not delivered")


def fill(directory: str, topic: str, pool: list[list[bytes]], records: int, *,
         transactional: bool) -> None:
    """`records` values from the pool into topic; in committed transactions of 1000 if
    transactional."""
    from txn import Producer
    config = {"log.dirs": directory}
    if transactional:
        config["transactional.id"] = f"fill-{topic}"
    producer = Producer(config)
    try:
        if transactional:
            producer.init_transactions(TIMEOUT_S)
        for i in range(records // RECORDS_PER_BATCH):
            if transactional:
                producer.begin_transaction()
            _produce_iteration(producer, topic, pool[i % len(pool)])
            if transactional:
                producer.commit_transaction(TIMEOUT_S)
        _flushed(producer)
    finally:
        producer.close()


def consume_case(name: str, directory: str, topic: str, records: int, isolation: str,
                 size: int) -> Case:
    """One iteration: every record of topic-0 from offset 0, with consume(10000)."""
    from txn import Consumer, TopicPartition

    def setup(n):
        return Consumer({"log.dirs": directory, "group.id": f"bench-{isolation}",
                         "isolation.level": isolation, "enable.auto.commit": False})

    def run(consumer, n):
        for _ in range(n):
            consumer.assign([TopicPartition(topic, 0, 0)])
            seen = total = 0
            while seen < records:
                for message in consumer.consume(CONSUME_BATCH, 1.0):
                    if message.error() is None:
                        seen += 1
                        total += len(message.value())
            if total != records * size:
                raise RuntimeError(f"read {total} bytes, expected {records * size}")
    return Case(name, run, {"records": records, "bytes": records * size}, setup=setup,
                teardown=lambda consumer: consumer.close())


def produce_per_record_case(directory: str, topics: _Topics, values: list[bytes]) -> Case:
    """1000 produce() calls per iteration (100 B values); the run ends with flush()."""
    from txn import Producer

    def setup(n):
        topic = topics.create()
        return Producer({"log.dirs": directory}), topic

    def run(state, n):
        producer, topic = state
        _produce_loop(producer, topic, [values], n)

    def teardown(state):
        producer, topic = state
        producer.close()
        topics.delete(topic)
    return Case("txn.Producer.produce() per record", run,
                {"records": len(values), "bytes": len(values) * SMALL},
                setup=setup, teardown=teardown)


def poll_per_record_case(directory: str, topic: str, records: int) -> Case:
    """One iteration: poll() every record of topic-0 from offset 0."""
    from txn import Consumer, TopicPartition

    def setup(n):
        return Consumer({"log.dirs": directory, "group.id": "bench-poll",
                         "enable.auto.commit": False})

    def run(consumer, n):
        poll = consumer.poll
        for _ in range(n):
            consumer.assign([TopicPartition(topic, 0, 0)])
            seen = 0
            while seen < records:
                message = poll(1.0)
                if message is not None and message.error() is None:
                    seen += 1
    return Case("txn.Consumer.poll() per record", run,
                {"records": records, "bytes": records * SMALL}, setup=setup,
                teardown=lambda consumer: consumer.close())


def _noop(first=None, second=None):
    return None


def floor_case(records: int) -> Case:
    """The floor of a per-record API written in Python: one no-op Python call per record
    (with two arguments, as produce(topic, value))."""
    def run(state, n):
        call = _noop
        for _ in range(n):
            for _ in range(records):
                call("topic", b"value")
    return Case("a no-op Python call per record", run,
                {"records": records, "bytes": records * SMALL})


# ------------------------------------------------------------------------------------------------
# The section


@section(NAME, "9. txn: transactions' cost and the clients' per-record rates", order=90,
         weight_quick=40, weight_full=240)
def run(ctx: Context):
    from txn import AdminClient, NewTopic
    result = new_result(NAME)
    directory = ctx.path("store")
    admin = AdminClient({"log.dirs": directory})          # holds the engine for the section
    ctx.at_end(lambda: admin.__exit__(None, None, None))
    topics = _Topics(admin, NewTopic, "bench")
    result.intro = (
        "The embedded confluent-kafka-compatible clients over one data directory (one engine "
        "for the section). Records are the shared random (incompressible) values. Ratios "
        "divide the subject by the other row of its group, measured in the same rounds.")
    steps = ctx.steps(4)
    result.groups.append(transactions(ctx, result, directory, topics, steps))
    result.groups.append(isolation(ctx, result, directory, topics, steps))
    result.groups.append(per_record(ctx, result, directory, topics, steps))
    return result


def transactions(ctx: Context, result, directory: str, topics: _Topics, steps) -> Group:
    pool = ctx.records.pools[BIG]
    subject = producer_case("transactional txn.Producer, commit every 100 ms", directory,
                            topics, pool, transactional=True)
    limit = producer_case("idempotent txn.Producer (no transactions)", directory, topics,
                          pool, transactional=False)
    settings = ctx.settings_with(min_iterations=ctx.pick(50, 200))
    cmp = compare([subject, limit], settings, on_round=steps.sub("transactional vs idempotent"))
    steps.finish()
    result.raw["transactional_vs_idempotent"] = cmp.to_json()
    commits = cmp[subject.name]
    result.notes.append(
        f"**What a commit costs.** {len(commits.latencies_ns):,} commits over all rounds took "
        f"(after their flush) p50 {fmt_us(commits.percentile_ns(50))}, p99 "
        f"{fmt_us(commits.percentile_ns(99))}: EndTxn writes and fsyncs PrepareCommit, a "
        "marker per partition and CompleteCommit, and returns once the transaction is visible "
        "to read_committed consumers. The producer blocks meanwhile, and the sender has "
        "nothing to send (the flush emptied the queue) until the next transaction's first "
        "batch, which first adds its partition to the transaction (one more fsynced "
        "`__transaction_state` record) and lingers linger.ms.")
    return Group("Producing 1 KiB records: transactions (a commit every 100 ms) vs an "
                 "idempotent producer, both acks=all", [
                     comparison_row(cmp, subject.name, limit.name,
                                    "transactional producer, 1 KiB, commit every 100 ms",
                                    DURABILITY_TXN, target=TXN_TARGET,
                                    profile=(subject, limit)),
                     comparison_row(cmp, limit.name, limit.name,
                                    "idempotent producer, 1 KiB (the limit)",
                                    DURABILITY_ACKS_ALL)])


def isolation(ctx: Context, result, directory: str, topics: _Topics, steps) -> Group:
    records = ctx.pick(20_000, 200_000)
    topic = topics.create()
    fill(directory, topic, ctx.records.pools[BIG], records, transactional=True)
    subject = consume_case("read_committed txn.Consumer", directory, topic, records,
                           "read_committed", BIG)
    limit = consume_case("read_uncommitted txn.Consumer", directory, topic, records,
                         "read_uncommitted", BIG)
    cmp = compare([subject, limit], ctx.settings_with(settle=False,
                                                      min_iterations=ctx.pick(3, 10)),
                  on_round=steps.sub("read_committed vs read_uncommitted"))
    steps.finish()
    result.raw["read_committed_vs_uncommitted"] = cmp.to_json()
    return Group(f"Consuming {records:,} records of 1 KiB written in committed transactions "
                 "of 1000 (consume(10000), every value touched)", [
                     comparison_row(cmp, subject.name, limit.name,
                                    "read_committed consumer, 1 KiB", DURABILITY_READ,
                                    target=READ_COMMITTED_TARGET, profile=(subject, limit),
                                    cpu=True),
                     comparison_row(cmp, limit.name, limit.name,
                                    "read_uncommitted consumer, 1 KiB (the limit)",
                                    DURABILITY_READ)])


def per_record(ctx: Context, result, directory: str, topics: _Topics, steps) -> Group:
    values = ctx.records.singles(SMALL)
    subject = produce_per_record_case(directory, topics, values)
    floor = floor_case(len(values))
    cmp = compare([subject, floor], ctx.settings_with(min_iterations=ctx.pick(200, 1000)),
                  same_work=False, on_round=steps.sub("produce() per record"))
    steps.finish()
    result.raw["produce_per_record"] = cmp.to_json()
    produce_row = comparison_row(cmp, subject.name, floor.name, "produce() per record, 100 B",
                                 DURABILITY_ACKS_ALL, target=PER_RECORD_TARGET,
                                 profile=(subject, floor), cpu=True)
    produce_row.measure = produce_row.records_per_s
    records = ctx.pick(200_000, 1_000_000)
    topic = topics.create()
    fill(directory, topic, ctx.records.pools[SMALL], records, transactional=False)
    poller, floor = poll_per_record_case(directory, topic, records), floor_case(records)
    cmp2 = compare([poller, floor], ctx.settings_with(settle=False, min_iterations=2),
                   same_work=False, on_round=steps.sub("poll() per record"))
    steps.finish()
    result.raw["poll_per_record"] = cmp2.to_json()
    poll_row = comparison_row(cmp2, poller.name, floor.name, "poll() per record, 100 B",
                              DURABILITY_READ, target=PER_RECORD_TARGET,
                              profile=(poller, floor), cpu=True)
    poll_row.measure = poll_row.records_per_s
    floor_row = comparison_row(cmp, floor.name, floor.name,
                               "a no-op Python call per record (the floor)", DURABILITY_NONE)
    return Group("Per-record calls, 100 B records: produce() (the run ends with flush(): "
                 "everything delivered and fsynced) and poll() from offset 0", [
                     produce_row, poll_row, floor_row])
