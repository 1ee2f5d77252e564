/*
 * ls_internal.h: helpers shared by the C core, never seen by cffi.
 *
 * - Big-endian loads and stores (Kafka's on-disk byte order) through memcpy, so they are safe at
 *   any alignment and compile to one load plus a byte swap.
 * - Zigzag varint / varlong codecs (KAFKA_FACTS.md 1.4, Kafka's ByteUtils) with explicit bounds:
 *   a decoder never reads past `len` and rejects over-long encodings.
 * - The record batch v2 header layout as a chain of named offsets, pinned with _Static_assert.
 * - LS_ASSERT: for broken internal invariants only (bugs). Bad input, corrupt bytes and failed
 *   system calls are reported with an ls_error code, never with an assertion.
 *
 * Thread-safety: everything here is pure (no state).
 */
#ifndef LS_INTERNAL_H
#define LS_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "logstore.h"

#define LS_HIDDEN __attribute__((visibility("hidden")))

/* Aborts on a bug in this library. Never use it on anything a caller or a file can choose. */
#define LS_ASSERT(cond)                                                                      \
    do {                                                                                     \
        if (__builtin_expect(!(cond), 0)) {                                                  \
            ls_assert_fail(#cond, __FILE__, __LINE__);                                       \
        }                                                                                    \
    } while (0)

LS_HIDDEN _Noreturn void ls_assert_fail(const char *cond, const char *file, int line);

/* ----------------------------------------------------------------------------------------------
 * Record batch v2 header (KAFKA_FACTS.md 1.1): each offset is the previous one plus its size.
 */
enum {
    LS_BATCH_BASE_OFFSET_OFFSET = 0,
    LS_BATCH_LENGTH_OFFSET = LS_BATCH_BASE_OFFSET_OFFSET + 8,
    LS_BATCH_LEADER_EPOCH_OFFSET = LS_BATCH_LENGTH_OFFSET + 4,
    LS_BATCH_MAGIC_OFFSET = LS_BATCH_LEADER_EPOCH_OFFSET + 4,
    LS_BATCH_CRC_OFFSET = LS_BATCH_MAGIC_OFFSET + 1,
    LS_BATCH_ATTRIBUTES_OFFSET = LS_BATCH_CRC_OFFSET + 4,
    LS_BATCH_LAST_OFFSET_DELTA_OFFSET = LS_BATCH_ATTRIBUTES_OFFSET + 2,
    LS_BATCH_BASE_TIMESTAMP_OFFSET = LS_BATCH_LAST_OFFSET_DELTA_OFFSET + 4,
    LS_BATCH_MAX_TIMESTAMP_OFFSET = LS_BATCH_BASE_TIMESTAMP_OFFSET + 8,
    LS_BATCH_PRODUCER_ID_OFFSET = LS_BATCH_MAX_TIMESTAMP_OFFSET + 8,
    LS_BATCH_PRODUCER_EPOCH_OFFSET = LS_BATCH_PRODUCER_ID_OFFSET + 8,
    LS_BATCH_BASE_SEQUENCE_OFFSET = LS_BATCH_PRODUCER_EPOCH_OFFSET + 2,
    LS_BATCH_RECORDS_COUNT_OFFSET = LS_BATCH_BASE_SEQUENCE_OFFSET + 4,
    LS_BATCH_RECORDS_OFFSET = LS_BATCH_RECORDS_COUNT_OFFSET + 4,
    /* Kafka's HEADER_SIZE_UP_TO_MAGIC: what must be present to frame a batch. */
    LS_BATCH_HEADER_SIZE_UP_TO_MAGIC = LS_BATCH_MAGIC_OFFSET + 1,
    /* The smallest `length` field of a v2 batch (a header with no records). */
    LS_BATCH_LENGTH_MIN = LS_BATCH_OVERHEAD - LS_LOG_OVERHEAD,
    /* Kafka's LegacyRecord.RECORD_OVERHEAD_V0: below it FileLogInputStream calls it corrupt. */
    LS_BATCH_LENGTH_LEGACY_MIN = 14,
    /* Highest compression codec id (zstd). */
    LS_BATCH_CODEC_MAX = 4,
    /* Attribute bits 7..15 are unused and must be zero. */
    LS_BATCH_ATTRIBUTES_UNUSED_MASK = 0xFF80
};

_Static_assert(LS_BATCH_RECORDS_OFFSET == LS_BATCH_OVERHEAD, "v2 header is 61 bytes");
_Static_assert(LS_BATCH_OVERHEAD == 61, "RECORD_BATCH_OVERHEAD");
_Static_assert(LS_BATCH_ATTRIBUTES_OFFSET == LS_BATCH_CRC_START, "CRC starts at attributes");
_Static_assert(LS_BATCH_LEADER_EPOCH_OFFSET == LS_LOG_OVERHEAD, "LOG_OVERHEAD = offset+length");
_Static_assert(LS_BATCH_HEADER_SIZE_UP_TO_MAGIC == 17, "HEADER_SIZE_UP_TO_MAGIC");
_Static_assert(LS_BATCH_LENGTH_MIN == 49, "smallest length field");
_Static_assert(LS_RECORD_OVERHEAD_MAX == 5 + 10 + 5 + 1, "MAX_RECORD_OVERHEAD");

/* Record-level limits (KAFKA_FACTS.md 1.4). */
enum {
    LS_VARINT_BYTES_MAX = 5,
    LS_VARLONG_BYTES_MAX = 10,
    /* length, attributes, timestampDelta, offsetDelta, keyLen, valueLen, headersCount: 1 each. */
    LS_RECORD_SIZE_MIN = 7,
    /* A record adds at most this much to its key, value and header bytes. */
    LS_RECORD_FRAMING_MAX = LS_RECORD_OVERHEAD_MAX + 2 * LS_VARINT_BYTES_MAX + 1
};

/* Largest segment base offset: base + any int32 relative offset + 1 cannot overflow int64. */
#define LS_SEGMENT_BASE_OFFSET_MAX (INT64_MAX - INT32_MAX - 1)

/* Kafka's AbstractIndex tries the last 8192 bytes of an index first (the "warm" section, which
 * stays in the page cache because every append and most lookups touch it). */
#define LS_INDEX_WARM_BYTES 8192

/* Control record key/value (KAFKA_FACTS.md 2). */
enum {
    LS_CONTROL_KEY_SIZE = 4,
    LS_END_TXN_VALUE_SIZE = 6,
    LS_CONTROL_TYPE_ABORT = 0,
    LS_CONTROL_TYPE_COMMIT = 1,
    LS_CONTROL_TYPE_KNOWN_MAX = 6,
    LS_CONTROL_TYPE_UNKNOWN = -1
};

/* ----------------------------------------------------------------------------------------------
 * Big-endian loads and stores.
 */
static inline uint16_t ls_load_be16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap16(v);
}

static inline uint32_t ls_load_be32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap32(v);
}

static inline uint64_t ls_load_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}

static inline void ls_store_be16(uint8_t *p, uint16_t v) {
    v = __builtin_bswap16(v);
    memcpy(p, &v, sizeof v);
}

static inline void ls_store_be32(uint8_t *p, uint32_t v) {
    v = __builtin_bswap32(v);
    memcpy(p, &v, sizeof v);
}

static inline void ls_store_be64(uint8_t *p, uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof v);
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the byte swaps above assume a little-endian host"
#endif

static inline int16_t ls_load_i16(const uint8_t *p) { return (int16_t)ls_load_be16(p); }
static inline int32_t ls_load_i32(const uint8_t *p) { return (int32_t)ls_load_be32(p); }
static inline int64_t ls_load_i64(const uint8_t *p) { return (int64_t)ls_load_be64(p); }

/* ----------------------------------------------------------------------------------------------
 * Zigzag varints. Encoders need the caller to have checked space with ls_varint_size; decoders
 * take (buf, len, *pos) and return 0 or LS_ERR_INVALID_RECORD without reading past len.
 */
static inline uint32_t ls_zigzag32(int32_t v) {
    return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

static inline uint64_t ls_zigzag64(int64_t v) {
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline size_t ls_uvarint_size(uint64_t u) {
    /* 7 payload bits per byte: ceil(significant bits / 7), with at least one byte for 0. */
    unsigned bits = 64u - (unsigned)__builtin_clzll(u | 1u);
    return (size_t)((bits + 6u) / 7u);
}

static inline size_t ls_varint_size(int32_t v) { return ls_uvarint_size(ls_zigzag32(v)); }
static inline size_t ls_varlong_size(int64_t v) { return ls_uvarint_size(ls_zigzag64(v)); }

/* Writes the unsigned LEB128 form of u at p; returns the bytes written (1..10). */
static inline size_t ls_put_uvarint(uint8_t *p, uint64_t u) {
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (uint8_t)u;
    return n;
}

static inline size_t ls_put_varint(uint8_t *p, int32_t v) {
    return ls_put_uvarint(p, ls_zigzag32(v));
}

static inline size_t ls_put_varlong(uint8_t *p, int64_t v) {
    return ls_put_uvarint(p, ls_zigzag64(v));
}

/* Reads an unsigned LEB128 value of at most max_bytes bytes. Like Kafka's ByteUtils, bits beyond
 * the type's width in the last byte are dropped rather than rejected. */
static inline int ls_get_uvarint(const uint8_t *buf, size_t len, size_t *pos, size_t max_bytes,
                                 uint64_t *out) {
    uint64_t value = 0;
    size_t p = *pos;
    for (size_t i = 0; i < max_bytes; i++) {
        if (p >= len) {
            return LS_ERR_INVALID_RECORD;
        }
        uint8_t b = buf[p++];
        value |= (uint64_t)(b & 0x7F) << (7 * i);
        if ((b & 0x80) == 0) {
            *pos = p;
            *out = value;
            return LS_OK;
        }
    }
    return LS_ERR_INVALID_RECORD; /* continuation bit on the last allowed byte */
}

static inline int ls_get_varint(const uint8_t *buf, size_t len, size_t *pos, int32_t *out) {
    uint64_t u;
    int rc = ls_get_uvarint(buf, len, pos, LS_VARINT_BYTES_MAX, &u);
    if (rc == LS_OK) {
        uint32_t z = (uint32_t)u;
        *out = (int32_t)((z >> 1) ^ (0U - (z & 1U)));
    }
    return rc;
}

static inline int ls_get_varlong(const uint8_t *buf, size_t len, size_t *pos, int64_t *out) {
    uint64_t z;
    int rc = ls_get_uvarint(buf, len, pos, LS_VARLONG_BYTES_MAX, &z);
    if (rc == LS_OK) {
        *out = (int64_t)((z >> 1) ^ (0ULL - (z & 1ULL)));
    }
    return rc;
}

/* ----------------------------------------------------------------------------------------------
 * Shared between the .c files (hidden from the exported symbol table).
 */

/* The running CRC-32C of buf, on the fastest path this CPU has. */
LS_HIDDEN uint32_t ls_crc32c_update(uint32_t crc, const uint8_t *buf, size_t len);

/* Frames the batch at buf[pos, len) the way Kafka's FileLogInputStream.nextBatch does, then checks
 * the v2 magic and the minimum size: TRUNCATED (fewer than 17 bytes left, or the batch runs past
 * len), CORRUPT_BATCH (length < 14, or < 49 for v2), UNSUPPORTED_MAGIC. *size = length + 12. */
LS_HIDDEN int ls_batch_frame(const uint8_t *buf, size_t len, size_t pos, size_t *size);

/* Decodes the header fields of a framed batch (no checks). */
LS_HIDDEN void ls_batch_header_read(const uint8_t *batch, ls_batch_header *out);

/* ensureValid() on a framed batch of `size` bytes: CRC (when verify_crc), records_count >= 0,
 * attribute bits, codec, lastOffsetDelta >= 0. */
LS_HIDDEN int ls_batch_check(const uint8_t *batch, size_t size, const ls_batch_header *h,
                             int verify_crc);

/* Decodes the record at buf[*pos, len) into *out (offsets relative to buf) and advances *pos. */
LS_HIDDEN int ls_record_read(const uint8_t *buf, size_t len, size_t *pos, ls_record *out);

/* Index search (Kafka's AbstractIndex.indexSlotRangeFor), shared by the offset and time indexes:
 * the slot of the largest entry whose key is <= target, or of the smallest entry whose key is
 * >= target; -1 when there is none. The warm section is searched first. */
typedef enum {
    LS_INDEX_KEY_OFFSET,     /* .index: base_offset + relativeOffset */
    LS_INDEX_KEY_POSITION,   /* .index: physical position */
    LS_INDEX_KEY_TIMESTAMP   /* .timeindex: timestamp */
} ls_index_key;

typedef enum { LS_INDEX_LARGEST_LOWER_BOUND, LS_INDEX_SMALLEST_UPPER_BOUND } ls_index_bound;

LS_HIDDEN int64_t ls_index_search(const uint8_t *entries, int64_t entry_count, ls_index_key key,
                                  int64_t base_offset, int64_t target, ls_index_bound bound);

/* pyobjects.c: the bytes of a CPython object given by address: a bytes object gives its buffer
 * and size, None gives length -1 (null). Anything else, or a size above INT32_MAX, is
 * LS_ERR_INVALID_ARGUMENT. The caller holds the GIL. */
int ls_object_bytes(void *object, const uint8_t **data, int32_t *length);

/* record_batch.c: ls_batch_build / ls_records_encode with keys and values given as arrays of
 * CPython object pointers (called by pyobjects.c with the GIL held). */
int ls_batch_build_items(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h,
                         int32_t count, const int64_t *timestamps,
                         void *const *key_objects, void *const *value_objects,
                         const uint8_t *headers, const int32_t *headers_lengths);
int ls_records_encode_items(uint8_t *out, size_t cap, size_t *written, int32_t count,
                            int64_t base_timestamp, const int64_t *timestamps,
                            void *const *key_objects, void *const *value_objects,
                            const uint8_t *headers, const int32_t *headers_lengths);

/* ----------------------------------------------------------------------------------------------
 * io.c <-> io_journal.c: the power-cut journal's hooks, called by io.c's wrappers before each
 * real call (a no-op costing one atomic load when no journal runs), and io.c's errno keeper.
 */
typedef struct {
    int active;                       /* 0: the journal does not follow this sync */
    uint64_t node_dev;
    uint64_t node_ino;
    uint64_t seq;                     /* journal order when the sync started */
    int64_t size;                     /* the file's size when the sync started */
    void *listing;                    /* directories: their entries when the sync started */
} ls_journal_sync;

LS_HIDDEN void ls_io_journal_before_write(int32_t fd, int64_t offset, size_t len);
LS_HIDDEN void ls_io_journal_before_truncate(int32_t fd, int64_t length);
LS_HIDDEN void ls_io_journal_before_rename(const char *source, const char *target);
LS_HIDDEN ls_journal_sync ls_io_journal_sync_begin(int32_t fd);
LS_HIDDEN void ls_io_journal_sync_end(ls_journal_sync *sync, int succeeded);
/* Keep err as ls_io_errno() and return LS_ERR_NO_SPACE or LS_ERR_IO for it. */
LS_HIDDEN int ls_io_fail_errno(int err);

#endif /* LS_INTERNAL_H */
