"""Fetch (v4+) and ListOffsets.

Fetch reads whole batches through `TxnPartition.fetch`: up to the high watermark
(read_uncommitted) or the last stable offset (read_committed, which also returns the aborted
transactions overlapping the returned range, Kafka's LocalLog.collectAbortedTransactions; the
client drops their batches, KAFKA_FACTS §4). Every partition reports its high watermark, LSO
and log start offset.

Sizes (KIP-74): the first partition that has data returns at least one whole batch, even above
partition_max_bytes or max_bytes; later partitions get whole batches within what is left of
max_bytes and their partition_max_bytes, or nothing (they come first next time, as clients
rotate partitions).

Long polling: if fewer than min_bytes are available, the request waits for new data (the
Broker's data condition, bridged to the loop by DataNotifier) until max_wait; an error on any
partition answers at once.

No copies: the records are memoryviews of the segment mmaps; the response encoder keeps them
as separate chunks and `sendmsg` writes them to the socket directly (framing.ChunkBuffer).

Fetch sessions (KIP-227) are declined: every response carries session id 0, which tells the
client to keep sending full fetch requests; a request naming a session gets
FETCH_SESSION_ID_NOT_FOUND.

ListOffsets: -1 latest (the high watermark, or the LSO under read_committed), -2 earliest and
-4 earliest-local (the log start offset), -3 the record with the largest timestamp, -5
latest-tiered (none: -1), a timestamp (the first record at or after it, below the isolation's
upper bound; -1 if none).

Thread-safety: reads run on worker threads via ctx.run; nothing here is shared.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from txn.partition import READ_COMMITTED, READ_UNCOMMITTED
from wire.handlers.common import (
    FETCH_SESSION_ID_NOT_FOUND, INVALID_REQUEST, LEADER_EPOCH, NONE, code_of,
    leader_epoch_error)
from wire.registry import ApiKey, handler

ISOLATION_READ_COMMITTED = 1
NO_SESSION = 0
SESSIONLESS_EPOCHS = (-1, 0)          # FINAL_EPOCH (no session) and INITIAL_EPOCH
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
BATCH_LENGTH = struct.Struct(">i")
BATCH_LENGTH_AT = 8
LOG_OVERHEAD = 12
EMPTY = memoryview(b"")


@dataclass
class _Read:
    topic: str
    index: int
    code: int = NONE
    records: memoryview = EMPTY
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted: list | None = None


def _whole_batches(view: memoryview, limit: int) -> memoryview:
    """The longest prefix of `view` made of whole batches and at most `limit` bytes."""
    end = 0
    total = view.nbytes
    while end + LOG_OVERHEAD <= total:
        size = BATCH_LENGTH.unpack_from(view, end + BATCH_LENGTH_AT)[0] + LOG_OVERHEAD
        if end + size > limit or end + size > total:
            break
        end += size
    return view[:end]


def _read_partition(broker, read: _Read, offset: int, limit: int, min_one: bool,
                    isolation: str) -> None:
    partition = broker.partition(read.topic, read.index)
    if limit > 0 or min_one:
        result = partition.fetch(offset, max(limit, 1), isolation)
        records = result.records
        if not min_one and records.nbytes > limit:
            records = _whole_batches(records, limit)
        read.records = records
        read.high_watermark = result.high_watermark
        read.last_stable_offset = result.last_stable_offset
        read.log_start_offset = result.log_start_offset
        read.aborted = result.aborted_transactions if records.nbytes else (
            [] if isolation == READ_COMMITTED else None)
    else:
        read.high_watermark = partition.high_watermark
        read.last_stable_offset = partition.last_stable_offset
        read.log_start_offset = partition.log_start_offset
        read.aborted = [] if isolation == READ_COMMITTED else None


def _read_all(broker, plan, isolation: str, max_bytes: int) -> tuple[list[_Read], int, bool]:
    """(reads, bytes, any error) for [(topic, index, offset, partition_max, leader_epoch)]."""
    reads = []
    remaining = max_bytes
    have_data = False
    failed = False
    for topic, index, offset, partition_max, leader_epoch in plan:
        read = _Read(topic, index, leader_epoch_error(leader_epoch))
        reads.append(read)
        if read.code == NONE:
            try:
                _read_partition(broker, read, offset, min(partition_max, remaining),
                                not have_data, isolation)
            except Exception as exc:  # noqa: BLE001 - the partition's error code
                read.code = code_of(exc, f"fetch {topic}-{index}")
        if read.code != NONE:
            failed = True
            continue
        size = read.records.nbytes
        if size:
            have_data = True
            remaining -= size
    return reads, max_bytes - remaining, failed


def _plan(request) -> list[tuple]:
    return [(t.topic, p.partition, p.fetch_offset, p.partition_max_bytes,
             getattr(p, "current_leader_epoch", -1))
            for t in request.topics for p in t.partitions]


@handler(ApiKey.FETCH, 4, 12)
async def fetch(ctx, request):
    ctx.release_order()
    session = getattr(request, "session_id", NO_SESSION)
    if session != NO_SESSION or getattr(request, "session_epoch", -1) not in SESSIONLESS_EPOCHS:
        return ctx.response(throttle_time=0, error_code=FETCH_SESSION_ID_NOT_FOUND,
                            session_id=NO_SESSION, responses=[])
    isolation = (READ_COMMITTED if request.isolation_level == ISOLATION_READ_COMMITTED
                 else READ_UNCOMMITTED)
    plan = _plan(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(request.max_wait.total_seconds(), 0)
    notifier = ctx.server.notifier
    while True:
        seen = notifier.version
        reads, total, failed = await ctx.run(_read_all, ctx.broker, plan, isolation,
                                             request.max_bytes)
        remaining = deadline - loop.time()
        if total >= request.min_bytes or failed or not plan or remaining <= 0:
            break
        await notifier.wait(seen, remaining)
    return _fetch_response(ctx, reads)


def _fetch_response(ctx, reads: list[_Read]):
    topics: list[tuple[str, list]] = []
    for read in reads:
        if not topics or topics[-1][0] != read.topic:
            topics.append((read.topic, []))
        aborted = None if read.aborted is None else [
            ctx.nested("AbortedTransaction", producer_id=pid, first_offset=first)
            for pid, first in read.aborted]
        topics[-1][1].append(ctx.nested(
            "PartitionData", partition_index=read.index, error_code=read.code,
            high_watermark=read.high_watermark, last_stable_offset=read.last_stable_offset,
            log_start_offset=read.log_start_offset, aborted_transactions=aborted,
            preferred_read_replica=-1, records=read.records))
    return ctx.response(throttle_time=0, error_code=NONE, session_id=NO_SESSION, responses=[
        ctx.nested("FetchableTopicResponse", topic=topic, partitions=parts)
        for topic, parts in topics])


# -- ListOffsets --------------------------------------------------------------------------------

def _offset_for(partition, timestamp: int, committed: bool) -> tuple[int, int]:
    """(offset, timestamp) ListOffsets answers for one partition."""
    upper = partition.last_stable_offset if committed else partition.high_watermark
    if timestamp == LATEST:
        return upper, -1
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return partition.log_start_offset, -1
    if timestamp == LATEST_TIERED:
        return -1, -1
    if timestamp < 0 and timestamp != MAX_TIMESTAMP:
        raise ValueError(timestamp)
    found = partition.log.offset_for_timestamp(timestamp)
    if found is None or found[0] >= upper:
        return -1, -1
    return found


def _list_offsets(broker, wanted, committed: bool) -> list[tuple]:
    """[(topic, index, code, offset, timestamp)] for [(topic, index, timestamp, epoch)]."""
    out = []
    for topic, index, timestamp, leader_epoch in wanted:
        code = leader_epoch_error(leader_epoch)
        offset = found_ts = -1
        if code == NONE:
            try:
                offset, found_ts = _offset_for(broker.partition(topic, index), timestamp,
                                               committed)
            except ValueError:
                code = INVALID_REQUEST
            except Exception as exc:  # noqa: BLE001
                code = code_of(exc, f"list offsets {topic}-{index}")
        out.append((topic, index, code, offset, found_ts))
    return out


@handler(ApiKey.LIST_OFFSETS, 1, 10)
async def list_offsets(ctx, request):
    ctx.release_order()
    committed = getattr(request, "isolation_level", 0) == ISOLATION_READ_COMMITTED
    wanted = [(t.name, p.partition_index, p.timestamp, getattr(p, "current_leader_epoch", -1))
              for t in request.topics for p in t.partitions]
    found = await ctx.run(_list_offsets, ctx.broker, wanted, committed)
    topics: list[tuple[str, list]] = []
    for topic, index, code, offset, timestamp in found:
        if not topics or topics[-1][0] != topic:
            topics.append((topic, []))
        topics[-1][1].append(ctx.nested(
            "ListOffsetsPartitionResponse", partition_index=index, error_code=code,
            timestamp=timestamp, offset=offset,
            leader_epoch=LEADER_EPOCH if code == NONE and offset >= 0 else -1))
    return ctx.response(throttle_time=0, topics=[
        ctx.nested("ListOffsetsTopicResponse", name=topic, partitions=parts)
        for topic, parts in topics])
