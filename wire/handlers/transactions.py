"""Transactions over the wire: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
TxnOffsetCommit, DescribeProducers, DescribeTransactions, ListTransactions.

Each calls `broker.transaction_coordinator` (txn/coordinator.py) or the group coordinator on a
worker thread (they append to `__transaction_state` / `__consumer_offsets` and fsync; EndTxn
also writes the markers) and maps its exceptions to Kafka codes.

Transaction version, decided per request as Kafka 4.0 does:
  - EndTxn v0-v4: the classic protocol (transaction_version=1, no epoch bump at the end);
    v5+: KIP-890 part 2 (transaction_version=2): the coordinator bumps the epoch at every
    EndTxn and the response carries the new producer id and epoch.
  - AddPartitionsToTxn v0-v3 and AddOffsetsToTxn are the classic client calls (1).
  - TxnOffsetCommit v5+ (transaction.version 2 clients send no AddOffsetsToTxn) adds the
    group's offsets partition to the transaction itself first (2).
  - InitProducerId v5+ (3.8+ clients) records transaction_version=2 for a new transaction id's
    initial state, older versions 1 (it only picks the `__transaction_state` value format until
    the first transaction says otherwise).
AddPartitionsToTxn with unknown topics or partitions answers UNKNOWN_TOPIC_OR_PARTITION for
those and OPERATION_NOT_ATTEMPTED for the rest, as Kafka.

Thread-safety: coordinator calls run on worker threads via ctx.run.
"""

from __future__ import annotations

import re

from wire.handlers.common import (
    INVALID_REQUEST, NONE, OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION, code_of,
    message_of)
from wire.handlers.groups import (
    commit_plan, commit_response, commit_results, known_partition)
from wire.registry import ApiKey, handler

CLASSIC_TV = 1
TV2 = 2
END_TXN_TV2_FROM = 5
TXN_OFFSET_COMMIT_TV2_FROM = 5
INIT_PRODUCER_ID_TV2_FROM = 5
NO_PRODUCER_ID = -1
NO_EPOCH = -1


def _ms(value) -> int:
    return round(value.total_seconds() * 1000)


def _call(fn, *args, **kwargs):
    """(result, error code) of a coordinator call."""
    try:
        return fn(*args, **kwargs), NONE
    except Exception as exc:  # noqa: BLE001 - the request's error code
        return None, code_of(exc, getattr(fn, "__name__", "coordinator"))


# -- InitProducerId -----------------------------------------------------------------------------

@handler(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def init_producer_id(ctx, request):
    tv = TV2 if ctx.at_least(INIT_PRODUCER_ID_TV2_FROM) else CLASSIC_TV
    coordinator = ctx.broker.transaction_coordinator
    result, code = await ctx.run(
        lambda: _call(coordinator.init_producer_id, request.transactional_id,
                      _ms(request.transaction_timeout),
                      getattr(request, "producer_id", NO_PRODUCER_ID),
                      getattr(request, "producer_epoch", NO_EPOCH), transaction_version=tv))
    producer_id, epoch = result if result is not None else (NO_PRODUCER_ID, NO_EPOCH)
    return ctx.response(throttle_time=0, error_code=code, producer_id=producer_id,
                        producer_epoch=epoch)


# -- AddPartitionsToTxn / AddOffsetsToTxn -------------------------------------------------------

def _add_partitions(broker, request) -> dict:
    wanted = [(t.name, p) for t in request.v3_and_below_topics for p in t.partitions]
    unknown = {tp for tp in wanted if not known_partition(broker.store, *tp)}
    if unknown:
        return {tp: UNKNOWN_TOPIC_OR_PARTITION if tp in unknown else OPERATION_NOT_ATTEMPTED
                for tp in wanted}
    _, code = _call(broker.transaction_coordinator.add_partitions_to_txn,
                    request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
                    request.v3_and_below_producer_epoch, wanted,
                    transaction_version=CLASSIC_TV)
    return {tp: code for tp in wanted}


@handler(ApiKey.ADD_PARTITIONS_TO_TXN, 0, 3)
async def add_partitions_to_txn(ctx, request):
    codes = await ctx.run(_add_partitions, ctx.broker, request)
    return ctx.response(throttle_time=0, results_by_topic_v3_and_below=[
        ctx.nested("AddPartitionsToTxnTopicResult", name=t.name, results_by_partition=[
            ctx.nested("AddPartitionsToTxnPartitionResult", partition_index=p,
                       partition_error_code=codes[(t.name, p)]) for p in t.partitions])
        for t in request.v3_and_below_topics])


@handler(ApiKey.ADD_OFFSETS_TO_TXN, 0, 4)
async def add_offsets_to_txn(ctx, request):
    coordinator = ctx.broker.transaction_coordinator
    _, code = await ctx.run(
        lambda: _call(coordinator.add_offsets_to_txn, request.transactional_id,
                      request.producer_id, request.producer_epoch, request.group_id,
                      transaction_version=CLASSIC_TV))
    return ctx.response(throttle_time=0, error_code=code)


# -- EndTxn -------------------------------------------------------------------------------------

@handler(ApiKey.END_TXN, 0, 5)
async def end_txn(ctx, request):
    tv = TV2 if ctx.at_least(END_TXN_TV2_FROM) else CLASSIC_TV
    coordinator = ctx.broker.transaction_coordinator
    result, code = await ctx.run(
        lambda: _call(coordinator.end_txn, request.transactional_id, request.producer_id,
                      request.producer_epoch, request.committed, transaction_version=tv))
    producer_id, epoch = result if result is not None else (NO_PRODUCER_ID, NO_EPOCH)
    return ctx.response(throttle_time=0, error_code=code, producer_id=producer_id,
                        producer_epoch=epoch)


# -- TxnOffsetCommit ----------------------------------------------------------------------------

def _txn_commit(broker, request, implicit_add: bool) -> dict:
    offsets, refused = commit_plan(broker, request.topics, None)

    def commit():
        if implicit_add:
            broker.transaction_coordinator.add_offsets_to_txn(
                request.transactional_id, request.producer_id, request.producer_epoch,
                request.group_id, transaction_version=TV2)
        return broker.group_coordinator.txn_offset_commit(
            request.transactional_id, request.group_id, request.producer_id,
            request.producer_epoch, getattr(request, "generation_id", -1),
            getattr(request, "member_id", ""), offsets,
            getattr(request, "group_instance_id", None))
    return commit_results(offsets, refused, commit)


@handler(ApiKey.TXN_OFFSET_COMMIT, 0, 5)
async def txn_offset_commit(ctx, request):
    implicit = ctx.at_least(TXN_OFFSET_COMMIT_TV2_FROM)
    codes = await ctx.run(_txn_commit, ctx.broker, request, implicit)
    return commit_response(ctx, request.topics, codes, "TxnOffsetCommitResponseTopic",
                           "TxnOffsetCommitResponsePartition")


# -- DescribeProducers / DescribeTransactions / ListTransactions --------------------------------

def _producers(broker, topics) -> list[tuple[str, list]]:
    out = []
    for topic in topics:
        rows = []
        for index in topic.partition_indexes:
            try:
                states = broker.partition(topic.name, index).producer_states()
                rows.append((index, NONE, None, states))
            except Exception as exc:  # noqa: BLE001
                rows.append((index, code_of(exc, "DescribeProducers"), message_of(exc), []))
        out.append((topic.name, rows))
    return out


@handler(ApiKey.DESCRIBE_PRODUCERS, 0, 0)
async def describe_producers(ctx, request):
    ctx.release_order()
    found = await ctx.run(_producers, ctx.broker, request.topics)
    return ctx.response(throttle_time=0, topics=[
        ctx.nested("TopicResponse", name=name, partitions=[
            ctx.nested("PartitionResponse", partition_index=index, error_code=code,
                       error_message=message, active_producers=[
                           ctx.nested("ProducerState", producer_id=s.producer_id,
                                      producer_epoch=s.producer_epoch,
                                      last_sequence=s.last_seq,
                                      last_timestamp=s.last_timestamp,
                                      coordinator_epoch=s.coordinator_epoch,
                                      current_txn_start_offset=s.current_txn_first_offset
                                      if s.current_txn_first_offset is not None else -1)
                           for s in states])
            for index, code, message, states in rows])
        for name, rows in found])


@handler(ApiKey.DESCRIBE_TRANSACTIONS, 0, 0)
async def describe_transactions(ctx, request):
    ctx.release_order()
    described = await ctx.run(ctx.broker.transaction_coordinator.describe_transactions,
                              list(request.transactional_ids))
    return ctx.response(throttle_time=0, transaction_states=[
        ctx.nested("TransactionState", error_code=d.error_code,
                   transactional_id=d.transactional_id, transaction_state=d.transaction_state,
                   transaction_timeout=d.transaction_timeout_ms,
                   transaction_start_time=d.transaction_start_time_ms
                   if d.error_code == NONE else 0,
                   producer_id=d.producer_id, producer_epoch=d.producer_epoch,
                   topics=[ctx.nested("TopicData", topic=t.topic, partitions=t.partitions)
                           for t in d.topics])
        for d in described])


def _list_transactions(coordinator, now_ms: int, request) -> tuple:
    listed = coordinator.list_transactions(list(request.state_filters) or None,
                                           list(request.producer_id_filters) or None)
    states = listed.transaction_states
    pattern = getattr(request, "transactional_id_pattern", None)
    if pattern:
        try:
            regex = re.compile(pattern)
        except re.error:
            return INVALID_REQUEST, listed.unknown_state_filters, []
        states = [s for s in states if regex.fullmatch(s.transactional_id)]
    duration = getattr(request, "duration_filter", -1)
    if duration >= 0 and states:
        started = {d.transactional_id: d.transaction_start_time_ms for d in
                   coordinator.describe_transactions([s.transactional_id for s in states])}
        states = [s for s in states
                  if 0 <= started.get(s.transactional_id, -1) <= now_ms - duration]
    return listed.error_code, listed.unknown_state_filters, states


@handler(ApiKey.LIST_TRANSACTIONS, 0, 2)
async def list_transactions(ctx, request):
    ctx.release_order()
    code, unknown, states = await ctx.run(_list_transactions,
                                          ctx.broker.transaction_coordinator,
                                          ctx.broker.time_ms(), request)
    return ctx.response(throttle_time=0, error_code=code, unknown_state_filters=unknown,
                        transaction_states=[
                            ctx.nested("TransactionState", transactional_id=s.transactional_id,
                                       producer_id=s.producer_id,
                                       transaction_state=s.transaction_state)
                            for s in states])
