"""A power cut loses what was not fsynced, and nothing that was reported durable.

Goal: prove the store's durability claims against the harshest crash the POSIX contract
allows: every file loses what was written after its last fsync, and (strict mode) every
directory loses the names created, renamed or removed after its last fsync.
Method: the C power-cut journal (csrc/io_journal.c, harness tests/crash/powercut.py) records
every write, truncate, sync and rename of the io table. First the model itself is checked on
plain files. Then workloads run on a Log and on the embedded Producer/Consumer with
transactions; a CRASH_AFTER fault freezes the disk at a random byte (the power fails in the
middle of whatever was being written), the store is abandoned, the journal rewinds the tree,
and the store is reopened. Checks: every append that returned with durable=True, every
record flushed, every transaction whose commit_transaction() returned and its consumer
offsets are there; nothing aborted is visible to read_committed; no record appears twice;
the history checker finds no anomaly; the autouse checker finds the reopened (and cleanly
closed) directories consistent.
"""

from __future__ import annotations

import os
import random

import pytest
from powercut import power_cut, start_journal

from logstore import _ffi, fsutil
from logstore.errors import KafkaStorageError, LogstoreError
from logstore.log import Log
from logstore.store import LogStore
from txn import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from txn.broker import Broker
from txn.history import READ_COMMITTED, History

LOG_CONFIG = {"segment.bytes": 2500, "index.interval.bytes": 300}
LOG_STEPS = 80
LOG_SEEDS = 12
TXN_SEEDS = 12
TXN_STEPS = 12
TXN_PER_TXN = 3
PLAIN_PARTITIONS = 2
TIMEOUT_S = 10.0
TXN_BYTES_MAX = 12000            # about what the whole transactional workload writes
NO_FREEZE = 1 << 40
FAST_BROKER = {"broker.offsets.topic.num.partitions": 1,
               "broker.transaction.state.log.num.partitions": 1}
MODES = [pytest.param(True, id="strict"), pytest.param(False, id="names-kept")]


def freeze_disk_after(nbytes: int) -> None:
    """The power fails once nbytes more bytes were written: that write is cut there and every
    later write, sync, truncate and rename fails (the disk is frozen)."""
    _ffi.io_fault_set(_ffi.IO_OP_WRITE, _ffi.FAULT_CRASH_AFTER, nbytes=nbytes)


def thaw_and_cut(root, strict: bool):
    _ffi.io_fault_clear()
    return power_cut(str(root), dir_entries=strict)


# ------------------------------------------------------------------------------------------------
# The model


def test_a_cut_puts_file_contents_back_to_their_last_fsync(tmp_path):
    start_journal(str(tmp_path))
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(fd, b"durable!", 0)
    _ffi.fsync(fd)
    fsutil.fsync_dir(str(tmp_path))
    _ffi.pwrite_all(fd, b"appended", 8)          # after the sync: lost
    _ffi.pwrite_all(fd, b"D", 0)                 # an overwrite of synced bytes: undone
    _ffi.ftruncate(fd, 3)                        # a cut of synced bytes: undone
    os.close(fd)
    other = os.open(tmp_path / "g", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(other, b"never synced", 0)
    os.close(other)
    report = power_cut(str(tmp_path), dir_entries=False)
    assert (tmp_path / "f").read_bytes() == b"durable!"
    assert (tmp_path / "g").read_bytes() == b""          # its name stays, its data does not
    assert report.files_rewound == 2 and report.entries_changed == 0


def test_a_sync_makes_what_was_written_before_it_durable(tmp_path):
    start_journal(str(tmp_path))
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(fd, b"one", 0)
    _ffi.fdatasync(fd)
    _ffi.pwrite_all(fd, b"ONE", 0)
    _ffi.pwrite_all(fd, b"two", 3)
    _ffi.fsync(fd)
    _ffi.pwrite_all(fd, b"three", 6)
    os.close(fd)
    fsutil.fsync_dir(str(tmp_path))
    power_cut(str(tmp_path))
    assert (tmp_path / "f").read_bytes() == b"ONEtwo"


def test_strict_mode_undoes_names_changed_since_the_directory_fsync(tmp_path):
    (tmp_path / "removed").write_bytes(b"old file")
    fsutil.atomic_write(str(tmp_path / "replaced"), b"v1")
    (tmp_path / "kept").mkdir()
    start_journal(str(tmp_path))
    fsutil.atomic_write(str(tmp_path / "synced"), b"complete")    # dir fsynced: stays
    created = os.open(tmp_path / "created", os.O_RDWR | os.O_CREAT, 0o644)
    _ffi.pwrite_all(created, b"data", 0)
    _ffi.fsync(created)                               # the file is synced, its name is not
    os.close(created)
    tmp = tmp_path / "replaced.tmp"
    tmp.write_bytes(b"v2")
    _ffi.rename(str(tmp), str(tmp_path / "replaced"))
    _ffi.rename(str(tmp_path / "synced"), str(tmp_path / "moved"))
    os.unlink(tmp_path / "removed")
    (tmp_path / "kept" / "new-dir").mkdir()
    power_cut(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["kept", "removed", "replaced", "synced"]
    assert (tmp_path / "synced").read_bytes() == b"complete"
    assert (tmp_path / "replaced").read_bytes() == b"v1"
    assert (tmp_path / "removed").read_bytes() == b"old file"
    assert os.listdir(tmp_path / "kept") == []


def test_an_atomic_write_interrupted_before_its_directory_fsync_leaves_the_old_content(
        tmp_path):
    path = str(tmp_path / "checkpoint")
    fsutil.atomic_write(path, b"old")
    start_journal(str(tmp_path))
    # The .tmp file's fsync passes, the directory's fails: the power goes before it is done.
    _ffi.io_fault_set(_ffi.IO_OP_SYNC, _ffi.FAULT_ERROR, after_calls=1)
    with pytest.raises(KafkaStorageError):
        fsutil.atomic_write(path, b"new")
    assert (tmp_path / "checkpoint").read_bytes() == b"new"          # visible, not durable
    thaw_and_cut(tmp_path, strict=True)
    assert os.listdir(tmp_path) == ["checkpoint"]
    assert (tmp_path / "checkpoint").read_bytes() == b"old"


# ------------------------------------------------------------------------------------------------
# A Log


def run_log_workload(path, rng) -> tuple[list[bytes], int]:
    """Appends (some durable, some flushed later, rolls on the way) until done or the disk
    freezes. Returns (value of each acknowledged offset, offsets below this are durable)."""
    values: list[bytes] = []
    durable_end = 0
    log = Log.open(path, LOG_CONFIG)
    try:
        for step in range(LOG_STEPS):
            value = f"{step}:".encode() + os.urandom(rng.randint(1, 120)).hex().encode()
            durable = rng.random() < 0.3
            info = log.append([value], durable=durable)
            assert info.first_offset == len(values)
            values.append(value)
            if durable:
                durable_end = info.last_offset + 1
            elif rng.random() < 0.1:
                log.flush()
                durable_end = len(values)
    except KafkaStorageError:
        pass                                      # the disk froze: the power is going
    finally:
        log.abandon()
    return values, durable_end


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("seed", range(LOG_SEEDS))
def test_a_log_keeps_every_durable_append_across_a_power_cut(tmp_path, seed, strict):
    rng = random.Random(seed)
    path = str(tmp_path / "data" / "t-0")
    start_journal(str(tmp_path))
    freeze_disk_after(rng.randint(0, 12000))
    values, durable_end = run_log_workload(path, rng)
    thaw_and_cut(tmp_path, strict)
    with Log.open(path, LOG_CONFIG) as log:
        got = [record.value for batch in log.batches() for record in batch.records()]
        assert not log.recovery_report.clean_shutdown
    assert len(got) >= durable_end, f"lost durable appends: {len(got)} < {durable_end}"
    assert got == values[: len(got)]              # a prefix of what was appended, no garbage


def test_a_new_partition_directory_and_its_first_segment_survive_a_power_cut(tmp_path):
    """Regression: a Log created its directory and first segment without syncing the parent
    or the directory, so a power cut could take fsynced data away with the names."""
    start_journal(str(tmp_path))
    path = str(tmp_path / "data" / "t-0")
    with LogStore(str(tmp_path / "store")) as store:
        store.create_topic("t")
        store.log("t", 0).append([b"in a store"], durable=True)
        store.abandon()
    log = Log.open(path, LOG_CONFIG)
    log.append([b"standalone"], durable=True)
    log.abandon()
    power_cut(str(tmp_path))
    with Log.open(path, LOG_CONFIG) as log:
        assert [r.value for b in log.batches() for r in b.records()] == [b"standalone"]
    with LogStore(str(tmp_path / "store")) as store:
        log = store.log("t", 0)
        assert [r.value for b in log.batches() for r in b.records()] == [b"in a store"]


# ------------------------------------------------------------------------------------------------
# Transactions through the embedded clients


class TxnWorkload:
    """Transactions (commit or abort, with consumer offsets) and idempotent produces through
    the embedded clients, recorded in a History as they happen, until done or the disk
    freezes. `offsets` maps each consumer offset committed in a transaction to it."""

    def __init__(self, data: str, rng: random.Random):
        self.data = data
        self.rng = rng
        self.history = History()
        self.offsets: dict[int, object] = {}
        self.conf = {"log.dirs": data, **FAST_BROKER, "delivery.timeout.ms": 3000}

    def run(self) -> None:
        clients = []
        try:
            txn = Producer({**self.conf, "transactional.id": "power"})
            clients.append(txn)
            plain = Producer({**self.conf, "enable.idempotence": True})
            clients.append(plain)
            consumer = Consumer({**self.conf, "group.id": "g", "enable.auto.commit": False})
            clients.append(consumer)
            _engine(self.data).store.create_topic("t", 2, if_not_exists=True)
            txn.init_transactions(TIMEOUT_S)
            for step in range(TXN_STEPS):
                if self.rng.random() < 0.3:
                    self.produce_plain(plain, step)
                else:
                    self.transaction(txn, consumer, step)
        except (KafkaException, KafkaStorageError, LogstoreError):
            pass                                  # the disk froze: the power is going
        finally:
            engine = _engine(self.data)
            if engine is not None:
                engine.abandon()
            for client in clients:
                client.close()

    def send(self, producer, process: str, value: bytes, topic: str, partition: int, txn=None):
        write = self.history.send(process, value, topic, partition, txn=txn)

        def delivered(err, msg):
            if err is None:
                self.history.send_ok(write, msg.offset())
            else:
                self.history.send_failed(write)
        producer.produce(topic, value=value, partition=partition, on_delivery=delivered)

    def produce_plain(self, plain, step: int) -> None:
        for i in range(TXN_PER_TXN):
            self.send(plain, "plain", f"plain-{step}-{i}".encode(), "plain", 0)
        plain.flush(TIMEOUT_S)

    def transaction(self, producer, consumer, step: int) -> None:
        txn = self.history.begin("txn")
        producer.begin_transaction()
        for i in range(TXN_PER_TXN):
            self.send(producer, "txn", f"txn-{step}-{i}".encode(), "t", i % 2, txn)
        self.offsets[step] = txn
        producer.send_offsets_to_transaction([TopicPartition("plain", 0, step)],
                                             consumer.consumer_group_metadata(), TIMEOUT_S)
        if self.rng.random() < 0.3:
            self.history.txn_unknown(txn)
            producer.abort_transaction(TIMEOUT_S)
            self.history.abort(txn)
        else:
            self.history.commit_invoke(txn)
            self.history.txn_unknown(txn)
            producer.commit_transaction(TIMEOUT_S)
            self.history.commit_ok(txn)


def _engine(data: str):
    """The Broker the clients of `data` share in this process (None once released)."""
    return Broker._registry.get(os.path.realpath(data))


def read_back(workload: TxnWorkload) -> int | None:
    """After the cut: finish whatever transaction the crash left open (a new instance of the
    transactional id fences it), read every partition in both isolation levels into the
    history, and return the group's committed offset."""
    conf = {k: v for k, v in workload.conf.items() if k != "delivery.timeout.ms"}
    with Producer({**conf, "transactional.id": "power"}) as fencer:
        fencer.init_transactions(TIMEOUT_S)
    parts = [TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("plain", 0)]
    for isolation in ("read_committed", "read_uncommitted"):
        reader = Consumer({**conf, "group.id": "g", "isolation.level": isolation,
                           "enable.partition.eof": True, "enable.auto.commit": False})
        known = [tp for tp in parts if _exists(reader, tp.topic)]
        reader.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in known])
        workload.history.poll(f"reader-{isolation}", isolation, _drain(reader, len(known)))
        committed = reader.committed([TopicPartition("plain", 0)], TIMEOUT_S)[0].offset
        reader.close()
    return committed if committed >= 0 else None


def _exists(consumer, topic: str) -> bool:
    return topic in consumer.list_topics(topic).topics and not \
        consumer.list_topics(topic).topics[topic].error


def _drain(reader, partitions: int) -> list:
    records, at_end = [], set()
    while len(at_end) < partitions:
        message = reader.poll(TIMEOUT_S)
        assert message is not None, "a partition never reached its end"
        if message.error() is not None:
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            at_end.add((message.topic(), message.partition()))
            continue
        records.append((message.topic(), message.partition(), message.offset(),
                        message.value()))
    return records


def assert_durable_outcomes(workload: TxnWorkload, committed_offset: int | None) -> None:
    history = workload.history
    result = history.check()
    assert result.valid, str(result)
    read = {value for poll in history.polls if poll.isolation == READ_COMMITTED
            for (_t, _p, _o, value) in poll.records}
    durable = [w for w in history.writes
               if w.outcome == "ok" and (w.txn is None or w.txn.outcome == "ok")]
    lost = [w.value for w in durable if w.value not in read]
    assert not lost, f"acknowledged writes lost in the power cut: {lost}"
    returned = [step for step, txn in workload.offsets.items() if txn.outcome == "ok"]
    if returned:
        assert committed_offset is not None and committed_offset >= max(returned)
    if committed_offset is not None and committed_offset in workload.offsets:
        assert workload.offsets[committed_offset].outcome != "fail", \
            f"offset {committed_offset} of an aborted transaction is committed"


@pytest.mark.parametrize("strict", MODES)
@pytest.mark.parametrize("seed", range(TXN_SEEDS))
def test_every_committed_transaction_survives_a_power_cut(tmp_path, seed, strict):
    rng = random.Random(seed)
    data = str(tmp_path / "data")
    start_journal(str(tmp_path))
    freeze_disk_after(rng.randint(0, TXN_BYTES_MAX) if seed else NO_FREEZE)
    workload = TxnWorkload(data, rng)
    workload.run()
    thaw_and_cut(tmp_path, strict)
    committed_offset = read_back(workload)
    assert_durable_outcomes(workload, committed_offset)
