"""The Kafka wire-protocol server over a logstore data directory (`logstore serve`).

One node (node.id 0) leads every partition and is the group and transaction coordinator; the
engine underneath is `txn.Broker`. Every request and response schema comes from kio
(`wire.schemas`); this package adds framing, dispatch and the handlers.

Modules, one job each:
  framing     size-prefixed frames, request headers v1/v2 (tagged fields skipped), response
              headers per API, zero-copy response chunks, gather writes
  registry    api key -> handler and the version range it implements (what ApiVersions says)
  schemas     kio glue: the classes of an (api, version), entities built across versions
  context     what a handler gets: the broker, worker threads, the connection's order lock
  handlers/   admin, metadata, produce, fetch, groups, transactions
  notify      the Broker's data condition bridged to the event loop (Fetch long polling)
  server      the asyncio server: one task per connection, ordered responses, limits
  config      server settings (socket.request.max.bytes, connections.max.idle.ms, ...)
  runner      serve() for the CLI, ServerThread for tests and benchmarks
  cli         `logstore serve` (registered in logstore/cli.py as "wire.cli:main")

Advertised versions (all implemented in full; tests/wire/test_wire_versions.py sends every one):
  Produce 3-12, Fetch 4-12, ListOffsets 1-10, Metadata 0-12, OffsetCommit 2-9,
  OffsetFetch 1-9, FindCoordinator 0-5, JoinGroup 0-9, Heartbeat 0-4, LeaveGroup 0-5,
  SyncGroup 0-5, DescribeGroups 0-5, ListGroups 0-5, ApiVersions 0-4, CreateTopics 2-7,
  DeleteTopics 1-6, InitProducerId 0-5, AddPartitionsToTxn 0-3, AddOffsetsToTxn 0-4,
  EndTxn 0-5, TxnOffsetCommit 0-5, DescribeConfigs 1-4, DescribeProducers 0,
  DescribeTransactions 0, ListTransactions 0-2.
The lower bounds are kio's (it carries Kafka 4's schemas, which dropped the oldest versions);
the upper bounds stop before topic ids in Produce/Fetch (v13) and before the share-group and
KIP-848 additions. ApiVersions v3+ finalizes `transaction.version` 2: EndTxn v5, Produce v12
and TxnOffsetCommit v5 carry Kafka 4.0's per-transaction epoch bump and implicit partition
adds; older versions keep the classic protocol.

Layering: wire imports txn and logstore, never the reverse (tests/unit/test_layering.py).
"""
