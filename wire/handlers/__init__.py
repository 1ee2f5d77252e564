"""Request handlers, one module per area; importing this package registers them all.

  admin         ApiVersions, CreateTopics, DeleteTopics, DescribeConfigs
  metadata      Metadata (with auto topic creation), FindCoordinator
  produce       Produce (client batches validated in C, stored verbatim)
  fetch         Fetch (isolation levels, LSO, aborted transactions, long polling), ListOffsets
  groups        JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups, ListGroups,
                OffsetCommit, OffsetFetch
  transactions  InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
                DescribeProducers, DescribeTransactions, ListTransactions

Every handler is `async def handler(ctx: RequestContext, request) -> response entity`.
"""

from wire.handlers import admin, fetch, groups, metadata, produce, transactions  # noqa: F401
