"""The consumer side of read_committed: which fetched batches an application may see.

Kafka's CompletedFetch.nextFetchedRecord, exactly. The broker returns whole batches up to the LSO
plus the aborted transactions [(producer_id, first_offset)] overlapping them. Walking the batches
in order:
  1. every aborted transaction whose first offset <= the batch's last offset joins the set of
     aborted producer ids (the list is consumed in first-offset order);
  2. an ABORT marker of a producer removes it from the set (its transaction is over); a
     marker of a producer not in the set changes nothing, so it is not decoded;
  3. a transactional data batch of a producer in the set is skipped whole;
  4. control batches are never returned.
Non-transactional batches pass untouched, whatever their producer id.

Thread-safety: `committed_batches` is a generator over its inputs; use one per fetch.
"""

from __future__ import annotations

import heapq
from typing import Iterable, Iterator

from logstore.record_batch import ABORT, RecordBatch


def committed_batches(batches: Iterable[RecordBatch],
                      aborted_transactions: list[tuple[int, int]] | None) -> Iterator[RecordBatch]:
    """The data batches a read_committed consumer returns from one fetch response."""
    pending = [(first, pid) for pid, first in (aborted_transactions or ())]
    heapq.heapify(pending)
    aborted_pids: set[int] = set()
    for batch in batches:
        producer_id = batch.producer_id
        if producer_id >= 0:
            last_offset = batch.last_offset
            while pending and pending[0][0] <= last_offset:
                aborted_pids.add(heapq.heappop(pending)[1])
            if batch.is_control:
                # Only a marker of a producer in the set can change it: decode no other one
                # (every committed transaction ends with a marker; decoding each cost
                # read_committed a tenth of its throughput).
                if producer_id in aborted_pids and _is_abort_marker(batch):
                    aborted_pids.discard(producer_id)
                continue
            if batch.is_transactional and producer_id in aborted_pids:
                continue
        elif batch.is_control:
            continue
        yield batch


def _is_abort_marker(batch: RecordBatch) -> bool:
    """Kafka reads the first record only; a control batch without records is ignored."""
    record = batch.control_record()
    return record is not None and record.type == ABORT
