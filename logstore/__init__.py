"""logstore: an embeddable, durable, Kafka-compatible log store.

The storage layer: partitions of segments in Kafka's on-disk format (v2 record batches,
.log/.index/.timeindex/.txnindex/.snapshot), with a C core for the byte-level hot paths.
See shared/DESIGN.md for the layering: this package never imports `txn` or `wire`.
"""

import os as _os

# numpy is used for arrays only (index views, decoded columns), never for linear algebra. Its
# OpenBLAS threads otherwise spin on the machine's cores; one thread is plenty. Set only when the
# user has not chosen, and only effective if numpy is not imported yet.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
