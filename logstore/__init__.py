"""logstore: an embeddable, durable, Kafka-compatible log store.

The storage layer: partitions of segments in Kafka's on-disk format (v2 record batches,
.log/.index/.timeindex/.txnindex/.snapshot), with a C core for the byte-level hot paths.
See shared/DESIGN.md for the layering: this package never imports `txn` or `wire`.
"""

__version__ = "0.1.0"
