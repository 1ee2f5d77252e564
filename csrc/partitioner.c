/*
 * partitioner.c: the key hashes of librdkafka's partitioners, for the embedded Producer.
 *
 *   murmur2: Kafka's Utils.murmur2 (MurmurHash2, seed 0x9747b28c, little-endian words, Java
 *            int arithmetic), bit for bit the function logstore/partitioner.py transcribes; the
 *            partition is (hash & 0x7fffffff) % n, Kafka's toPositive, as librdkafka's
 *            "murmur2" and "murmur2_random" partitioners compute it.
 *   fnv1a:   32-bit FNV-1a (offset basis 0x811c9dc5, prime 0x01000193); the partition is
 *            |h % n| with h taken as a signed int32 and C's truncating remainder, which is
 *            what librdkafka's "fnv1a" and "fnv1a_random" answer (checked against
 *            confluent_kafka.fnv1a in the tests).
 *
 * The partition functions return the partition (>= 0) or LS_ERR_INVALID_ARGUMENT, so the
 * Python hot path needs no out-pointer. No state; safe from any thread.
 */
#include "ls_internal.h"

enum {
    MURMUR2_SEED = 0x9747b28c,
    MURMUR2_R = 24
};
#define MURMUR2_M 0x5bd1e995u
#define FNV1A_OFFSET_BASIS 0x811c9dc5u
#define FNV1A_PRIME 0x01000193u
#define POSITIVE_MASK 0x7fffffffu

static uint32_t murmur2(const uint8_t *data, size_t len) {
    uint32_t h = (uint32_t)MURMUR2_SEED ^ (uint32_t)len;
    size_t whole = len - len % 4;
    for (size_t i = 0; i < whole; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 |
                     (uint32_t)data[i + 2] << 16 | (uint32_t)data[i + 3] << 24;
        k *= MURMUR2_M;
        k ^= k >> MURMUR2_R;
        k *= MURMUR2_M;
        h *= MURMUR2_M;
        h ^= k;
    }
    switch (len % 4) { /* Java's switch falls through: 3, then 2, then 1 (which multiplies) */
    case 3:
        h ^= (uint32_t)data[whole + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)data[whole + 1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)data[whole];
        h *= MURMUR2_M;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= MURMUR2_M;
    h ^= h >> 15;
    return h;
}

static uint32_t fnv1a(const uint8_t *data, size_t len) {
    uint32_t h = FNV1A_OFFSET_BASIS;
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= FNV1A_PRIME;
    }
    return h;
}

int ls_murmur2(const uint8_t *buf, size_t len, int32_t *out) {
    if ((buf == NULL && len > 0) || out == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *out = (int32_t)murmur2(buf, len);
    return LS_OK;
}

int ls_murmur2_partition(const uint8_t *buf, size_t len, int32_t partition_count) {
    if ((buf == NULL && len > 0) || partition_count < 1) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return (int)((murmur2(buf, len) & POSITIVE_MASK) % (uint32_t)partition_count);
}

int ls_fnv1a_partition(const uint8_t *buf, size_t len, int32_t partition_count) {
    if ((buf == NULL && len > 0) || partition_count < 1) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int32_t h = (int32_t)fnv1a(buf, len);
    int32_t r = h % partition_count;
    return r < 0 ? -r : r;
}
