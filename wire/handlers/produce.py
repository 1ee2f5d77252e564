"""Produce (v3+, record batch v2): client batches validated in C and stored verbatim.

Each partition's records must be exactly one v2 batch (Kafka's rule for magic 2);
`TxnPartition.append(batch, validate=True)` checks it in C (CRC, sizes, counts, record
framing), runs the idempotent/transactional producer-state checks (a duplicate of one of the
last five batches is a success with the original offsets) and the KIP-890 verification, then
writes the batch as sent: only the base offset is rewritten (outside the CRC). Errors map to
Kafka codes through each exception's `.code`.

acks:
  -1 (all)  the response goes out once the batch is fsynced (the log's group commit: several
            requests, connections and partitions share one fsync);
   1        the response goes out after the append (page cache, plus whatever the topic's
            flush.messages / flush.ms say);
   0        no response; a partition error closes the connection (the client's only signal).
Other values: INVALID_REQUIRED_ACKS for every partition.

Appends of one connection happen in request order (the connection's order lock, held while the
batches are appended); the fsync wait happens after the lock is released, so a producer with
several requests in flight keeps the disk busy.

Kafka 4.0 transactions (transaction.version 2): a Produce v12+ transactional batch adds its
partition to the transaction implicitly (the client sends no AddPartitionsToTxn), through the
coordinator with transaction_version=2. Older versions must have added the partition first.

Thread-safety: the Broker calls run on worker threads via ctx.run.
"""

from __future__ import annotations

from dataclasses import dataclass

from logstore.errors import InvalidRecord
from logstore.record_batch import RecordBatch
from wire.handlers.common import INVALID_REQUIRED_ACKS, NONE, code_of, message_of
from wire.registry import NO_RESPONSE, ApiKey, CloseConnection, handler

IMPLICIT_ADD_VERSION = 12              # Produce v12: KIP-890 part 2 (transaction.version 2)
TRANSACTION_VERSION_2 = 2
ACKS_ALL, ACKS_LEADER, ACKS_NONE = -1, 1, 0


@dataclass
class _Outcome:
    code: int = NONE
    message: str | None = None
    appended: object = None              # txn.partition.AppendResult
    partition: object = None             # txn.partition.TxnPartition


def _producer_of(records) -> tuple[int, int] | None:
    """(producer id, epoch) of a transactional batch, else None (bad bytes: None as well;
    the append reports them)."""
    try:
        batch = RecordBatch(records)
    except Exception:  # noqa: BLE001 - validation reports it with the right code
        return None
    if not batch.is_transactional or batch.producer_id < 0:
        return None
    return batch.producer_id, batch.producer_epoch


def _add_implicitly(broker, transactional_id: str, topics, outcomes: dict) -> None:
    """Produce v12+: add the partitions of transactional batches to the transaction."""
    wanted: dict[tuple[int, int], list] = {}
    for topic, parts in topics:
        for index, records in parts:
            producer = _producer_of(records) if records else None
            if producer is not None:
                wanted.setdefault(producer, []).append((topic, index))
    for (producer_id, epoch), partitions in wanted.items():
        try:
            broker.transaction_coordinator.add_partitions_to_txn(
                transactional_id, producer_id, epoch, partitions,
                transaction_version=TRANSACTION_VERSION_2)
        except Exception as exc:  # noqa: BLE001 - those partitions fail with its code
            for tp in partitions:
                outcomes[tp] = _Outcome(code_of(exc, "implicit AddPartitionsToTxn"),
                                        message_of(exc))


def _append_all(broker, topics, transactional_id: str | None, version: int) -> dict:
    """{(topic, partition): _Outcome} after appending every partition's batch in order."""
    outcomes: dict[tuple[str, int], _Outcome] = {}
    if transactional_id and version >= IMPLICIT_ADD_VERSION:
        _add_implicitly(broker, transactional_id, topics, outcomes)
    for topic, parts in topics:
        for index, records in parts:
            if (topic, index) in outcomes:
                continue
            try:
                if not records:
                    raise InvalidRecord("a produce request partition without records")
                partition = broker.partition(topic, index)
                appended = partition.append(records, validate=True, durable=False)
                outcomes[(topic, index)] = _Outcome(appended=appended, partition=partition)
            except Exception as exc:  # noqa: BLE001 - the partition's error code
                outcomes[(topic, index)] = _Outcome(code_of(exc, f"produce {topic}-{index}"),
                                                    message_of(exc))
    return outcomes


def _make_durable(outcomes: dict) -> None:
    """acks=all: fsync every appended partition up to its batch (group commit)."""
    for tp, outcome in outcomes.items():
        if outcome.appended is None:
            continue
        try:
            outcome.partition.log.flush(outcome.appended.last_offset + 1)
        except Exception as exc:  # noqa: BLE001 - not durable: the client must retry
            outcomes[tp] = _Outcome(code_of(exc, f"flush {tp[0]}-{tp[1]}"), message_of(exc))


@handler(ApiKey.PRODUCE, 3, 12)
async def produce(ctx, request):
    acks = request.acks
    topics = [(t.name, [(p.index, p.records) for p in t.partition_data])
              for t in request.topic_data]
    if acks not in (ACKS_ALL, ACKS_LEADER, ACKS_NONE):
        outcomes = {(topic, index): _Outcome(INVALID_REQUIRED_ACKS, f"acks={acks}")
                    for topic, parts in topics for index, _ in parts}
    else:
        outcomes = await ctx.run(_append_all, ctx.broker, topics, request.transactional_id,
                                 ctx.api_version)
    ctx.release_order()
    if acks == ACKS_ALL:
        await ctx.run(_make_durable, outcomes)
    if acks == ACKS_NONE:
        failed = [f"{t}-{p}: {o.message}" for (t, p), o in outcomes.items() if o.code != NONE]
        if failed:
            raise CloseConnection(f"produce with acks=0 failed ({'; '.join(failed)})")
        return NO_RESPONSE
    return ctx.response(throttle_time=0, responses=[
        ctx.nested("TopicProduceResponse", name=topic, partition_responses=[
            _partition_response(ctx, index, outcomes[(topic, index)]) for index, _ in parts])
        for topic, parts in topics])


def _partition_response(ctx, index: int, outcome: _Outcome):
    appended = outcome.appended
    if appended is None:
        return ctx.nested("PartitionProduceResponse", index=index, error_code=outcome.code,
                          base_offset=-1, log_append_time=-1, log_start_offset=-1,
                          record_errors=[], error_message=outcome.message)
    return ctx.nested("PartitionProduceResponse", index=index, error_code=NONE,
                      base_offset=appended.first_offset,
                      log_append_time=appended.log_append_time_ms,
                      log_start_offset=outcome.partition.log_start_offset, record_errors=[],
                      error_message=None)
