"""Kafka's default partitioner for keyed records: murmur2 of the key bytes.

`murmur2(data)` is Kafka's `org.apache.kafka.common.utils.Utils.murmur2`, bit for bit: MurmurHash2
(32-bit) with seed 0x9747b28c, little-endian 4-byte words, Java's signed int32 arithmetic, and
a signed int32 result. `partition_for_key(key, n)` is `toPositive(murmur2(key)) % n`, which is
what Kafka's BuiltInPartitioner.partitionForKey does, so a keyed record lands in the same
partition here as it would in a Kafka cluster with the same partition count.

Keyless records are not this module's business: Kafka spreads them with a sticky partitioner; the
CLI rotates them per batch.

Thread-safety: pure functions; safe everywhere.
"""

from __future__ import annotations

import struct

MURMUR2_SEED = 0x9747B28C
MURMUR2_M = 0x5BD1E995
MURMUR2_R = 24
UINT32_MASK = 0xFFFFFFFF
INT32_SIGN = 0x80000000
POSITIVE_MASK = 0x7FFFFFFF       # Utils.toPositive: clear the sign bit (not abs())
WORD_SIZE = 4


def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 of `data`: a signed 32-bit int."""
    data = bytes(data)
    length = len(data)
    h = (MURMUR2_SEED ^ length) & UINT32_MASK
    whole = length - length % WORD_SIZE
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * MURMUR2_M) & UINT32_MASK
        k ^= k >> MURMUR2_R
        k = (k * MURMUR2_M) & UINT32_MASK
        h = (h * MURMUR2_M) & UINT32_MASK
        h ^= k
    tail = data[whole:]
    if tail:
        # Java's switch falls through: case 3, then 2, then 1 (which also multiplies).
        for i in reversed(range(len(tail))):
            h ^= tail[i] << (8 * i)
        h = (h * MURMUR2_M) & UINT32_MASK
    h ^= h >> 13
    h = (h * MURMUR2_M) & UINT32_MASK
    h ^= h >> 15
    return h - (1 << 32) if h & INT32_SIGN else h


def to_positive(n: int) -> int:
    """Kafka's Utils.toPositive: n with the sign bit cleared (maps MIN_VALUE to 0)."""
    return n & POSITIVE_MASK


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null key."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, got {partitions}")
    return to_positive(murmur2(key)) % partitions
