"""txn/fetch.py: the read_committed filter over one fetch's batches.

Goal: aborted transactions are dropped and committed ones kept when producers interleave, and
only markers that can change the filter's state are decoded: those of producers with an aborted
transaction in the fetch. A COMMIT marker ends every committed transaction; decoding each of
them cost read_committed consumers about a tenth of their throughput (bench section `txn`).
Method: a real TxnPartition with markers written directly (as the coordinator does), a
read_committed fetch, and the filter with its marker decoder wrapped to count calls.
"""

from __future__ import annotations

from logstore import record_batch
from txn import fetch
from txn.broker import Broker

CONFIG = {"transaction.state.log.num.partitions": 2, "offsets.topic.num.partitions": 2,
          "transaction.partition.verification.enable": False}
COMMITTER, ABORTER = 11, 12


def txn_batch(values, pid, seq):
    return record_batch.build_batch([v.encode() for v in values], producer_id=pid,
                                    producer_epoch=0, base_sequence=seq, transactional=True)


def test_interleaved_transactions_keep_committed_and_decode_only_relevant_markers(
        tmp_path, monkeypatch):
    broker = Broker(str(tmp_path / "d"), dict(CONFIG), background=False)
    try:
        broker.ensure_topic("t")
        part = broker.partition("t", 0)
        part.append(record_batch.build_batch([b"plain"]))
        part.append(txn_batch(["c1"], COMMITTER, 0))
        part.append(txn_batch(["a1"], ABORTER, 0))
        part.append(txn_batch(["c2"], COMMITTER, 1))
        part.write_marker(COMMITTER, 0, True, broker.coordinator_epoch)
        part.append(txn_batch(["a2"], ABORTER, 1))
        part.write_marker(ABORTER, 0, False, broker.coordinator_epoch)
        part.append(txn_batch(["c3"], COMMITTER, 2))
        part.write_marker(COMMITTER, 0, True, broker.coordinator_epoch)
        result = part.fetch(0, 1 << 20, "read_committed")
        decoded = []
        original = fetch._is_abort_marker

        def counting(batch):
            decoded.append(batch.producer_id)
            return original(batch)
        monkeypatch.setattr(fetch, "_is_abort_marker", counting)
        kept = list(fetch.committed_batches(result.batches(), result.aborted_transactions))
        values = [r.value for b in kept for r in b.records()]
    finally:
        broker.close()
    assert values == [b"plain", b"c1", b"c2", b"c3"]
    assert decoded == [ABORTER]             # the two COMMIT markers are not decoded
