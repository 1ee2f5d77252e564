"""TxnPartition.fetch against a concurrent append or marker: a read_committed fetch must see
the partition either before or after the write, never half-way.

Found by tests/history/test_txn_history.py (G1a: read_committed consumers returned records of
transactions that were then aborted). An append moves the high watermark before the producer
state learns of the new open transaction, and an abort marker ends the transaction before its
.txnindex entry is written; a fetch computing the LSO in either gap read the transaction's
records as decided, and without an aborted-transaction entry for them.

Method: a real Broker; the write is paused inside the log lock exactly in the gap (the next
step is wrapped to wait for an event), a fetch runs in another thread meanwhile, then the write
goes on. What the fetch returned must hold no record of the open or aborted transaction.
"""

from __future__ import annotations

import threading

from logstore import record_batch
from txn.broker import Broker
from txn.fetch import committed_batches

CONFIG = {"transaction.state.log.num.partitions": 2, "offsets.topic.num.partitions": 2,
          "transaction.partition.verification.enable": False}
PID, EPOCH = 5, 0
WAIT_S = 10.0
GAP_S = 0.3                     # how long the write stays in its gap while the fetch runs


def txn_batch(values):
    return record_batch.build_batch([v.encode() for v in values], producer_id=PID,
                                    producer_epoch=EPOCH, base_sequence=0, transactional=True)


def committed_values(result) -> list[str]:
    return [r.value.decode() for b in committed_batches(result.batches(),
                                                        result.aborted_transactions)
            for r in b.records()]


def fetch_during(part, write, pause_owner, pause_name: str):
    """Run write() in a thread, pausing it before pause_owner.<pause_name> runs; fetch
    `part` read_committed from offset 0 meanwhile (in a third thread: it may wait for the
    write). Returns the fetch result, taken while or after the write was in its gap."""
    original = getattr(pause_owner, pause_name)
    in_gap, go_on = threading.Event(), threading.Event()

    def paused(*args, **kwargs):
        in_gap.set()
        go_on.wait(WAIT_S)
        return original(*args, **kwargs)

    setattr(pause_owner, pause_name, paused)
    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert in_gap.wait(WAIT_S)
        fetched = []
        reader = threading.Thread(target=lambda: fetched.append(part.fetch(
            0, 1 << 20, "read_committed")))
        reader.start()
        reader.join(GAP_S)                 # done at once without the log lock, else waits
        go_on.set()
        reader.join(WAIT_S)
        return fetched[0]
    finally:
        go_on.set()
        writer.join(WAIT_S)
        setattr(pause_owner, pause_name, original)


def test_a_fetch_during_a_transactional_append_does_not_see_the_open_batch(tmp_path):
    broker = Broker(str(tmp_path / "d"), dict(CONFIG), background=False)
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        result = fetch_during(part, lambda: part.append(txn_batch(["open"])),
                              part.producers, "update")          # after the log append
        assert committed_values(result) == []
        assert part.last_stable_offset == 0
    finally:
        broker.close()


def test_a_fetch_during_an_abort_marker_does_not_see_the_aborted_batch(tmp_path):
    broker = Broker(str(tmp_path / "d"), dict(CONFIG), background=False)
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        part.append(txn_batch(["doomed"]))
        result = fetch_during(part, lambda: part.write_marker(PID, EPOCH, False,
                                                              broker.coordinator_epoch),
                              part.log, "append_aborted_txn")   # after complete_marker
        assert committed_values(result) == []
        assert committed_values(part.fetch(0, 1 << 20, "read_committed")) == []
    finally:
        broker.close()
