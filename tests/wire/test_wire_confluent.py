"""confluent-kafka (librdkafka) against the server: idempotent and transactional producers,
read_committed consumers, consume-process-produce across a rebalance, zombie fencing, recovery
from a kill -9 mid-transaction, and the clients' batches stored byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from wire_support import (
    REPO, SERVER_CONFIG, KioClient, ProduceTap, ServeProcess, free_port, req, wait_until)

from logstore import dump
from logstore.record_batch import LOG_OVERHEAD, iter_batches

TIMEOUT_S = 60
LOGSTORE = os.path.join(os.path.dirname(sys.executable), "logstore")
QUIET = {"log_level": 2}                 # librdkafka: errors only


def producer(bootstrap: str, **config) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **QUIET, **config})


def consumer(bootstrap: str, group: str, isolation: str = "read_committed",
             **config) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "isolation.level": isolation, "enable.partition.eof": True,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, **QUIET,
                     **config})


def create_topics(bootstrap: str, **partitions) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, **QUIET})
    futures = admin.create_topics([NewTopic(name, n, 1) for name, n in partitions.items()])
    for future in futures.values():
        future.result(TIMEOUT_S)


def read_all(bootstrap: str, topic: str, isolation: str = "read_committed",
             partitions: int | None = None) -> list:
    """Every message of `topic` up to its end (each partition's EOF), in partition order."""
    c = consumer(bootstrap, f"reader-{topic}-{isolation}-{time.monotonic_ns()}", isolation)
    c.subscribe([topic])
    messages, at_eof = [], set()
    wanted = partitions or len(c.list_topics(topic, TIMEOUT_S).topics[topic].partitions)
    deadline = time.monotonic() + TIMEOUT_S
    while len(at_eof) < wanted:
        assert time.monotonic() < deadline, "no end of partition reached"
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
            at_eof.add(msg.partition())
            continue
        at_eof.discard(msg.partition())
        messages.append(msg)
    c.close()
    return messages


def test_idempotent_producer_writes_every_message_once_in_order(wire_server):
    create_topics(wire_server.bootstrap, idem=3)
    delivered, failed = [], []

    def on_delivery(err, msg):
        (failed if err else delivered).append((msg.partition(), msg.offset(), msg.value()))
    p = producer(wire_server.bootstrap, **{"enable.idempotence": True, "acks": "all"})
    for i in range(3000):
        p.produce("idem", key=b"k%d" % (i % 7), value=b"v%d" % i, on_delivery=on_delivery)
        if i % 500 == 0:
            p.poll(0)
    assert p.flush(TIMEOUT_S) == 0
    assert failed == [] and len(delivered) == 3000
    for partition in range(3):
        offsets = sorted(o for p_, o, _ in delivered if p_ == partition)
        assert offsets == list(range(len(offsets)))
        batches = wire_server.broker.partition("idem", partition).fetch(0, 1 << 26).batches()
        sequences = [(b.producer_id, b.base_sequence, b.last_sequence) for b in batches]
        assert len({pid for pid, _, _ in sequences}) == 1 and sequences[0][0] >= 0
        assert [s for _, s, _ in sequences] == \
            [0] + [last + 1 for _, _, last in sequences[:-1]]
    stored = read_all(wire_server.bootstrap, "idem")
    assert sorted(m.value() for m in stored) == sorted(v for _, _, v in delivered)


def test_transactions_commit_and_abort_and_read_committed_never_sees_aborted_data(
        wire_server):
    create_topics(wire_server.bootstrap, txn=2)
    p = producer(wire_server.bootstrap, **{"transactional.id": "ck-txn"})
    p.init_transactions(TIMEOUT_S)
    committed, aborted = set(), set()
    for t in range(6):
        p.begin_transaction()
        values = {b"t%d-%d" % (t, i) for i in range(50)}
        for i, value in enumerate(sorted(values)):
            p.produce("txn", value=value, partition=i % 2)
        if t % 2 == 0:
            p.commit_transaction(TIMEOUT_S)
            committed |= values
        else:
            p.flush(TIMEOUT_S)                    # the aborted records are in the log
            p.abort_transaction(TIMEOUT_S)
            aborted |= values
    seen = [m.value() for m in read_all(wire_server.bootstrap, "txn")]
    assert len(seen) == len(set(seen)) and set(seen) == committed
    everything = {m.value() for m in read_all(wire_server.bootstrap, "txn", "read_uncommitted")}
    assert everything == committed | aborted


def process_stream(bootstrap: str, name: str, stop: threading.Event, stats: dict,
                   straddle: bool = False) -> None:
    """One consume-process-produce worker: read 'in' (group 'etl'), write 'out' in
    transactions carrying the consumer offsets; on an abortable error abort and rewind, on a
    fatal one start a new producer. With `straddle`, the first transaction stays open across
    a rebalance (it goes on consuming into it) and then commits the offsets and the group
    metadata it had before: the server must refuse that stale generation."""
    c = consumer(bootstrap, "etl", **{"enable.partition.eof": False})

    def new_producer() -> Producer:
        p = producer(bootstrap, **{"transactional.id": f"etl-{name}"})
        p.init_transactions(TIMEOUT_S)
        return p

    def on_assign(_consumer, partitions):
        stats[f"{name}-assigned"] = sorted(tp.partition for tp in partitions)
        stats[f"{name}-assignments"] = stats.get(f"{name}-assignments", 0) + 1
    p = new_producer()
    c.subscribe(["in"], on_assign=on_assign)
    try:
        while not stop.is_set():
            msgs = [m for m in c.consume(20, 0.2) if not m.error()]
            if not msgs:
                continue
            p.begin_transaction()
            for m in msgs:
                p.produce("out", key=m.key(), value=b"out-" + m.value())
            offsets, metadata = c.position(c.assignment()), c.consumer_group_metadata()
            if straddle:
                straddle = False
                straddle_rebalance(c, p, name, stop, stats)
            try:
                p.send_offsets_to_transaction(offsets, metadata, TIMEOUT_S)
                p.commit_transaction(TIMEOUT_S)
                stats[name] = stats.get(name, 0) + len(msgs)
            except KafkaException as exc:
                error = exc.args[0]
                stats.setdefault("refused-commits", []).append(error.name())
                if error.fatal():
                    p = new_producer()
                elif error.txn_requires_abort():
                    p.abort_transaction(TIMEOUT_S)
                else:
                    raise
                rewind(c)
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        stats.setdefault("errors", []).append(repr(exc))
    finally:
        c.close()


def straddle_rebalance(c: Consumer, p: Producer, name: str, stop: threading.Event,
                       stats: dict) -> None:
    """Keep the open transaction going (consuming into it) until the assignment changes."""
    seen = stats[f"{name}-assignments"]
    stats[f"{name}-straddling"] = True
    while stats[f"{name}-assignments"] == seen and not stop.is_set():
        for m in c.consume(20, 0.2):
            if not m.error():
                p.produce("out", key=m.key(), value=b"out-" + m.value())


def rewind(c: Consumer) -> None:
    """Back to the committed offsets (the aborted transaction's input is read again)."""
    for tp in c.committed(c.assignment(), TIMEOUT_S):
        c.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))


def test_consume_process_produce_is_exactly_once_while_two_consumers_rebalance(wire_server):
    """Worker a holds a transaction open while worker b joins the group; a's commit with the
    generation from before the rebalance is refused (KIP-447 fencing), a aborts and rewinds,
    and the output has every input record exactly once."""
    create_topics(wire_server.bootstrap, **{"in": 4, "out": 2})
    feed = producer(wire_server.bootstrap, **{"enable.idempotence": True})
    for i in range(300):
        feed.produce("in", key=b"%d" % i, value=b"in-%d" % i, partition=i % 4)
    assert feed.flush(TIMEOUT_S) == 0
    stop, stats = threading.Event(), {}
    first = threading.Thread(target=process_stream,
                             args=(wire_server.bootstrap, "a", stop, stats, True))
    first.start()
    second = threading.Thread(target=process_stream,
                              args=(wire_server.bootstrap, "b", stop, stats))
    try:
        wait_until(lambda: stats.get("a-straddling") or stats.get("errors"), TIMEOUT_S,
                   what="the first worker to hold a transaction open")
        second.start()                       # the rebalance, mid-transaction
        wait_until(lambda: stats.get("b-assigned") or stats.get("errors"), TIMEOUT_S,
                   what="the second worker to take partitions over")
        for i in range(300, 600):
            feed.produce("in", key=b"%d" % i, value=b"in-%d" % i, partition=i % 4)
        assert feed.flush(TIMEOUT_S) == 0
        wait_until(lambda: len(read_all(wire_server.bootstrap, "out")) >= 600
                   or stats.get("errors"), TIMEOUT_S, interval_s=0.5,
                   what="every input record to come out")
    finally:
        stop.set()
        first.join(TIMEOUT_S)
        if second.is_alive() or second.ident is not None:
            second.join(TIMEOUT_S)
    assert not stats.get("errors"), stats
    assert stats.get("refused-commits"), stats        # the stale generation was fenced
    assert stats.get("b", 0) > 0, stats
    out = sorted(m.value() for m in read_all(wire_server.bootstrap, "out"))
    assert out == sorted(b"out-in-%d" % i for i in range(600))


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(wire_server):
    create_topics(wire_server.bootstrap, zombie=1)
    old = producer(wire_server.bootstrap, **{"transactional.id": "shared"})
    old.init_transactions(TIMEOUT_S)
    old.begin_transaction()
    old.produce("zombie", value=b"from-the-zombie")
    old.flush(TIMEOUT_S)
    new = producer(wire_server.bootstrap, **{"transactional.id": "shared"})
    new.init_transactions(TIMEOUT_S)                 # fences the old one, aborts its txn
    new.begin_transaction()
    new.produce("zombie", value=b"from-the-new-one")
    new.commit_transaction(TIMEOUT_S)
    with pytest.raises(KafkaException) as caught:
        old.produce("zombie", value=b"late")
        old.commit_transaction(TIMEOUT_S)
    error = caught.value.args[0]
    assert error.fatal() or error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                             KafkaError.INVALID_PRODUCER_EPOCH), error
    assert [m.value() for m in read_all(wire_server.bootstrap, "zombie")] == \
        [b"from-the-new-one"]


def run_transaction(p: Producer, make_producer, values: list[bytes], topic: str,
                    log: list) -> Producer:
    """Commit `values` in one transaction, recovering as librdkafka's errors say: retry a
    retriable error, abort and redo an abortable one, replace the producer after a fatal one.
    Returns the producer to go on with."""
    for _ in range(10):
        try:
            return _commit(p, values, topic)
        except KafkaException as exc:
            error = exc.args[0]
            log.append(error.name())
            if error.fatal():
                p = make_producer()
            elif error.txn_requires_abort():
                p.abort_transaction(TIMEOUT_S)
            elif not error.retriable():
                raise
    raise AssertionError(f"no commit after 10 attempts: {log}")


def _commit(p: Producer, values: list[bytes], topic: str) -> Producer:
    try:
        p.begin_transaction()
    except KafkaException as exc:                 # a retried commit: the txn is still open
        if "already" not in str(exc) and "in progress" not in str(exc):
            raise
    for value in values:
        p.produce(topic, value=value)
    p.commit_transaction(TIMEOUT_S)
    return p


def test_a_producer_recovers_after_the_server_is_killed_mid_transaction(tmp_path):
    port = free_port()
    data_dir = str(tmp_path / "data")
    server = ServeProcess(data_dir, port, SERVER_CONFIG).start()
    try:
        create_topics(server.bootstrap, crash=1)

        def make_producer() -> Producer:
            p = producer(server.bootstrap, **{"transactional.id": "crashy",
                                               "transaction.timeout.ms": 30000,
                                               "reconnect.backoff.max.ms": 200})
            p.init_transactions(TIMEOUT_S)
            return p
        p = make_producer()
        expected, log = [], []
        for t in range(6):
            values = [b"crash-%d-%d" % (t, i) for i in range(40)]
            if t == 3:
                p.begin_transaction()
                for value in values[:20]:
                    p.produce("crash", value=value)
                p.flush(TIMEOUT_S)                         # acknowledged, transaction open
                for value in values[20:]:
                    p.produce("crash", value=value)        # maybe in flight
                server.kill9()
                server = ServeProcess(data_dir, port, SERVER_CONFIG).start()
                try:
                    p.commit_transaction(TIMEOUT_S)        # the same transaction, finished
                except KafkaException as exc:
                    log.append(exc.args[0].name())
                    if exc.args[0].fatal():
                        p = make_producer()
                    elif exc.args[0].txn_requires_abort():
                        p.abort_transaction(TIMEOUT_S)
                    p = run_transaction(p, make_producer, values, "crash", log)
            else:
                p = run_transaction(p, make_producer, values, "crash", log)
            expected += values
        got = [m.value() for m in read_all(server.bootstrap, "crash")]
        print("recovery path:", log)
        assert sorted(got) == sorted(expected), log
        assert len(got) == len(set(got))
    finally:
        assert server.stop() == 0


def transaction_state(port: int, transactional_id: str) -> str:
    with KioClient("127.0.0.1", port) as client:
        described = client.call(req(65, 0, transactional_ids=[transactional_id]))
        return described.transaction_states[0].transaction_state


def test_a_transaction_that_timed_out_while_the_server_was_down_is_redone(tmp_path):
    """The server is killed mid-transaction and comes back only after the transaction timed
    out: the restarted coordinator aborts it and fences the producer (its epoch is bumped);
    commit_transaction fails as librdkafka says it must (fatal: fenced), and a new producer
    instance redoes the transaction. read_committed sees each transaction exactly once."""
    config = {**SERVER_CONFIG, "transaction.abort.timed.out.transaction.cleanup.interval.ms": 200}
    port, data_dir = free_port(), str(tmp_path / "data")
    server = ServeProcess(data_dir, port, config).start()
    try:
        create_topics(server.bootstrap, late=1)

        def make_producer() -> Producer:
            p = producer(server.bootstrap, **{"transactional.id": "late",
                                               "transaction.timeout.ms": 2000,
                                               "reconnect.backoff.max.ms": 200})
            p.init_transactions(TIMEOUT_S)
            return p
        p = make_producer()
        log, expected = [], []
        first = [b"late-0-%d" % i for i in range(20)]
        p = run_transaction(p, make_producer, first, "late", log)
        doomed = [b"late-1-%d" % i for i in range(20)]
        p.begin_transaction()
        for value in doomed:
            p.produce("late", value=value)
        p.flush(TIMEOUT_S)
        server.kill9()
        server = ServeProcess(data_dir, port, config).start()
        wait_until(lambda: transaction_state(port, "late") == "CompleteAbort", TIMEOUT_S,
                   interval_s=0.1, what="the restarted coordinator to abort the timed-out "
                                        "transaction")
        with pytest.raises(KafkaException) as caught:
            p.commit_transaction(TIMEOUT_S)
        assert caught.value.args[0].fatal() or caught.value.args[0].txn_requires_abort()
        p = make_producer() if caught.value.args[0].fatal() else p
        if not caught.value.args[0].fatal():
            p.abort_transaction(TIMEOUT_S)
        p = run_transaction(p, make_producer, doomed, "late", log)
        last = [b"late-2-%d" % i for i in range(20)]
        p = run_transaction(p, make_producer, last, "late", log)
        expected = first + doomed + last
        got = [m.value() for m in read_all(server.bootstrap, "late")]
        assert sorted(got) == sorted(expected) and len(got) == len(set(got)), log
        everything = [m.value() for m in read_all(server.bootstrap, "late",
                                                    "read_uncommitted")]
        assert len(everything) == len(expected) + len(doomed)   # the aborted copy stays
    finally:
        assert server.stop() == 0


def test_client_batches_are_stored_byte_for_byte_with_their_crcs(make_server, data_dir):
    """A tap between confluent-kafka and the server records each Produce request's batch as
    the client sent it; the stored batch (read back with logstore.dump and from the .log) must
    be the same bytes but for the base offset, with the same CRC, for every codec."""
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
    tap_port = free_port()
    server = make_server(advertised_port=tap_port)
    tap = ProduceTap(server.port, tap_port).start()
    try:
        create_topics(f"127.0.0.1:{tap_port}", bytes=len(codecs))
        for partition, codec in enumerate(codecs):
            p = producer(f"127.0.0.1:{tap_port}", **{"compression.type": codec,
                                                      "enable.idempotence": True})
            for i in range(300):
                p.produce("bytes", value=b"%s record %d " % (codec.encode(), i) * 5,
                          key=b"k%d" % i, partition=partition, headers=[("h", b"%d" % i)])
            assert p.flush(TIMEOUT_S) == 0
    finally:
        tap.close()
    server.stop()
    crcs = []
    for partition, codec in enumerate(codecs):
        sent = [b for t, p, b in tap.batches if t == "bytes" and p == partition]
        directory = os.path.join(data_dir, f"bytes-{partition}")
        events = [e for e in dump.dump(directory) if e["type"] == "batch"]
        stored = stored_batches(directory)
        assert len(sent) == len(events) == len(stored) > 0, codec
        for client_bytes, event, disk in zip(sent, events, stored):
            assert disk[LOG_OVERHEAD - 4:] == client_bytes[LOG_OVERHEAD - 4:], codec
            assert event["crc_valid"] and event["compression"] == codec
            assert event["crc"] == int.from_bytes(client_bytes[17:21], "big")
        crcs += [event["crc"] for event in events]
    text = subprocess.run([LOGSTORE, "dump", data_dir], cwd=REPO, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    assert text.returncode == 0, text.stderr
    for crc in crcs:
        assert f"crc: {crc} isvalid: true" in text.stdout


def stored_batches(directory: str) -> list[bytes]:
    out = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".log"):
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
            out += [bytes(b.buffer) for b in iter_batches(memoryview(data))]
    return out
