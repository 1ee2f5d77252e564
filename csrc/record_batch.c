/*
 * record_batch.c: record batch v2 (magic 2), the unit of everything Kafka stores and sends.
 *
 * RecordBatch => (KAFKA_FACTS.md 1.1, Kafka's DefaultRecordBatch)
 *   BaseOffset => Int64              @0   rewritten by the broker; not covered by the CRC
 *   Length => Int32                  @8   bytes after this field: batch size = Length + 12
 *   PartitionLeaderEpoch => Int32    @12  not covered by the CRC
 *   Magic => Int8                    @16  2
 *   CRC => Uint32                    @17  CRC-32C over [21, end of batch)
 *   Attributes => Int16              @21
 *   LastOffsetDelta => Int32         @23  lastOffset - baseOffset
 *   BaseTimestamp => Int64           @27
 *   MaxTimestamp => Int64            @35
 *   ProducerId => Int64              @43  -1 = none
 *   ProducerEpoch => Int16           @51
 *   BaseSequence => Int32            @53
 *   RecordsCount => Int32            @57  outside any compression
 *   Records => [Record]              @61  plain, or one compressed stream
 *
 * Attributes (only the low byte is used):
 *   | 15..7 unused (0) | 6 delete horizon | 5 control | 4 transactional | 3 timestamp type |
 *   | 2..0 compression: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd |
 *
 * Record => (KAFKA_FACTS.md 1.4, Kafka's DefaultRecord; varints are zigzag LEB128)
 *   Length => Varint                 body size, not counting this field
 *   Attributes => Int8               unused (0)
 *   TimestampDelta => Varlong        relative to BaseTimestamp
 *   OffsetDelta => Varint            relative to BaseOffset
 *   KeyLength => Varint              -1 = null key
 *   Key => Bytes
 *   ValueLength => Varint            -1 = null value
 *   Value => Bytes
 *   HeadersCount => Varint           >= 0
 *   Headers => [HeaderKeyLength => Varint (>= 0), HeaderKey => Bytes,
 *               HeaderValueLength => Varint (-1 = null), HeaderValue => Bytes]
 *
 * Invariants kept here:
 *   - a decoder never reads outside [buf, buf + len): every length is checked against the end of
 *     the enclosing record before it is used, and every malformed input is an error code
 *     (INVALID_RECORD), including negative lengths other than -1, a null header key, a record whose
 *     Length does not match its fields, too few records for the count, and trailing bytes;
 *   - changing BaseOffset or PartitionLeaderEpoch never touches the CRC; anything else that
 *     changes goes through ls_batch_seal, which recomputes it.
 *
 * Thread-safety: pure functions over caller-owned buffers.
 */
#include "ls_internal.h"

/* ----------------------------------------------------------------------------------------------
 * Header parsing and validation.
 */
void ls_batch_header_read(const uint8_t *batch, ls_batch_header *out) {
    out->base_offset = ls_load_i64(batch + LS_BATCH_BASE_OFFSET_OFFSET);
    out->length = ls_load_i32(batch + LS_BATCH_LENGTH_OFFSET);
    out->partition_leader_epoch = ls_load_i32(batch + LS_BATCH_LEADER_EPOCH_OFFSET);
    out->magic = (int8_t)batch[LS_BATCH_MAGIC_OFFSET];
    out->crc = ls_load_be32(batch + LS_BATCH_CRC_OFFSET);
    out->attributes = ls_load_i16(batch + LS_BATCH_ATTRIBUTES_OFFSET);
    out->last_offset_delta = ls_load_i32(batch + LS_BATCH_LAST_OFFSET_DELTA_OFFSET);
    out->base_timestamp = ls_load_i64(batch + LS_BATCH_BASE_TIMESTAMP_OFFSET);
    out->max_timestamp = ls_load_i64(batch + LS_BATCH_MAX_TIMESTAMP_OFFSET);
    out->producer_id = ls_load_i64(batch + LS_BATCH_PRODUCER_ID_OFFSET);
    out->producer_epoch = ls_load_i16(batch + LS_BATCH_PRODUCER_EPOCH_OFFSET);
    out->base_sequence = ls_load_i32(batch + LS_BATCH_BASE_SEQUENCE_OFFSET);
    out->records_count = ls_load_i32(batch + LS_BATCH_RECORDS_COUNT_OFFSET);
}

static void batch_header_write(uint8_t *batch, const ls_batch_header *h) {
    ls_store_be64(batch + LS_BATCH_BASE_OFFSET_OFFSET, (uint64_t)h->base_offset);
    ls_store_be32(batch + LS_BATCH_LEADER_EPOCH_OFFSET, (uint32_t)h->partition_leader_epoch);
    batch[LS_BATCH_MAGIC_OFFSET] = (uint8_t)h->magic;
    ls_store_be16(batch + LS_BATCH_ATTRIBUTES_OFFSET, (uint16_t)h->attributes);
    ls_store_be32(batch + LS_BATCH_LAST_OFFSET_DELTA_OFFSET, (uint32_t)h->last_offset_delta);
    ls_store_be64(batch + LS_BATCH_BASE_TIMESTAMP_OFFSET, (uint64_t)h->base_timestamp);
    ls_store_be64(batch + LS_BATCH_MAX_TIMESTAMP_OFFSET, (uint64_t)h->max_timestamp);
    ls_store_be64(batch + LS_BATCH_PRODUCER_ID_OFFSET, (uint64_t)h->producer_id);
    ls_store_be16(batch + LS_BATCH_PRODUCER_EPOCH_OFFSET, (uint16_t)h->producer_epoch);
    ls_store_be32(batch + LS_BATCH_BASE_SEQUENCE_OFFSET, (uint32_t)h->base_sequence);
    ls_store_be32(batch + LS_BATCH_RECORDS_COUNT_OFFSET, (uint32_t)h->records_count);
}

int ls_batch_frame(const uint8_t *buf, size_t len, size_t pos, size_t *size) {
    LS_ASSERT(pos <= len);
    size_t remaining = len - pos;
    if (remaining < LS_BATCH_HEADER_SIZE_UP_TO_MAGIC) {
        return LS_ERR_TRUNCATED;
    }
    int32_t length = ls_load_i32(buf + pos + LS_BATCH_LENGTH_OFFSET);
    if (length < LS_BATCH_LENGTH_LEGACY_MIN) {
        return LS_ERR_CORRUPT_BATCH;
    }
    size_t batch_size = (size_t)length + LS_LOG_OVERHEAD;
    if (batch_size > remaining) {
        return LS_ERR_TRUNCATED;
    }
    if (buf[pos + LS_BATCH_MAGIC_OFFSET] != LS_BATCH_MAGIC) {
        return LS_ERR_UNSUPPORTED_MAGIC;
    }
    if (length < LS_BATCH_LENGTH_MIN) {
        return LS_ERR_CORRUPT_BATCH;
    }
    *size = batch_size;
    return LS_OK;
}

int ls_batch_check(const uint8_t *batch, size_t size, const ls_batch_header *h, int verify_crc) {
    LS_ASSERT(size >= LS_BATCH_OVERHEAD);
    LS_ASSERT(size == (size_t)h->length + LS_LOG_OVERHEAD);
    if (verify_crc) {
        uint32_t computed = ls_crc32c_update(0, batch + LS_BATCH_CRC_START,
                                             size - LS_BATCH_CRC_START);
        if (computed != h->crc) {
            return LS_ERR_CRC_MISMATCH;
        }
    }
    uint16_t attributes = (uint16_t)h->attributes;
    if (h->records_count < 0 || h->last_offset_delta < 0) {
        return LS_ERR_CORRUPT_BATCH;
    }
    if ((attributes & LS_BATCH_ATTRIBUTES_UNUSED_MASK) != 0) {
        return LS_ERR_CORRUPT_BATCH;
    }
    if ((attributes & LS_ATTR_COMPRESSION_MASK) > LS_BATCH_CODEC_MAX) {
        return LS_ERR_CORRUPT_BATCH;
    }
    return LS_OK;
}

int ls_batch_parse_header(const uint8_t *buf, size_t len, ls_batch_header *out) {
    if ((buf == NULL && len > 0) || out == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (len < LS_BATCH_OVERHEAD) {
        return LS_ERR_TRUNCATED;
    }
    if (buf[LS_BATCH_MAGIC_OFFSET] != LS_BATCH_MAGIC) {
        return LS_ERR_UNSUPPORTED_MAGIC;
    }
    int32_t length = ls_load_i32(buf + LS_BATCH_LENGTH_OFFSET);
    if (length < LS_BATCH_LENGTH_MIN) {
        return LS_ERR_CORRUPT_BATCH;
    }
    if ((size_t)length + LS_LOG_OVERHEAD > len) {
        return LS_ERR_TRUNCATED;
    }
    ls_batch_header_read(buf, out);
    return LS_OK;
}

int ls_batch_validate(const uint8_t *buf, size_t len, ls_batch_header *out) {
    int rc = ls_batch_parse_header(buf, len, out);
    if (rc != LS_OK) {
        return rc;
    }
    return ls_batch_check(buf, (size_t)out->length + LS_LOG_OVERHEAD, out, 1);
}

/* Base offset and leader epoch sit before the CRC'd range, so they are patched in place. */
static int batch_patch_check(const uint8_t *buf, size_t len) {
    if (buf == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (len < LS_BATCH_OVERHEAD) {
        return LS_ERR_TRUNCATED;
    }
    if (buf[LS_BATCH_MAGIC_OFFSET] != LS_BATCH_MAGIC) {
        return LS_ERR_UNSUPPORTED_MAGIC; /* v0/v1 keep other fields at bytes 12..20 */
    }
    return LS_OK;
}

int ls_batch_set_base_offset(uint8_t *buf, size_t len, int64_t base_offset) {
    int rc = batch_patch_check(buf, len);
    if (rc == LS_OK) {
        ls_store_be64(buf + LS_BATCH_BASE_OFFSET_OFFSET, (uint64_t)base_offset);
    }
    return rc;
}

int ls_batch_set_partition_leader_epoch(uint8_t *buf, size_t len, int32_t epoch) {
    int rc = batch_patch_check(buf, len);
    if (rc == LS_OK) {
        ls_store_be32(buf + LS_BATCH_LEADER_EPOCH_OFFSET, (uint32_t)epoch);
    }
    return rc;
}

int ls_batch_seal(uint8_t *buf, size_t len, ls_batch_header *h) {
    if (buf == NULL || h == NULL || h->magic != LS_BATCH_MAGIC) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (len < LS_BATCH_OVERHEAD || len - LS_LOG_OVERHEAD > (size_t)INT32_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    batch_header_write(buf, h);
    int32_t length = (int32_t)(len - LS_LOG_OVERHEAD);
    ls_store_be32(buf + LS_BATCH_LENGTH_OFFSET, (uint32_t)length);
    uint32_t crc = ls_crc32c_update(0, buf + LS_BATCH_CRC_START, len - LS_BATCH_CRC_START);
    ls_store_be32(buf + LS_BATCH_CRC_OFFSET, crc);
    h->length = length;
    h->crc = crc;
    return LS_OK;
}

/* ----------------------------------------------------------------------------------------------
 * Record decoding.
 */

/* A length-prefixed byte field inside [*pos, end): -1 (null) when allow_null, else >= 0. */
static inline int record_read_bytes(const uint8_t *buf, size_t end, size_t *pos, int allow_null,
                                    int32_t *offset, int32_t *length) {
    int32_t n;
    if (ls_get_varint(buf, end, pos, &n) != LS_OK) {
        return LS_ERR_INVALID_RECORD;
    }
    *offset = (int32_t)*pos;
    *length = n;
    if (n == -1 && allow_null) {
        return LS_OK;
    }
    if (n < 0 || (size_t)n > end - *pos) {
        return LS_ERR_INVALID_RECORD;
    }
    *pos += (size_t)n;
    return LS_OK;
}

/* Walks `count` headers in [*pos, end); writes them to out when out != NULL. */
static int headers_walk(const uint8_t *buf, size_t end, size_t *pos, int32_t count,
                        ls_header *out) {
    for (int32_t i = 0; i < count; i++) {
        ls_header h;
        if (record_read_bytes(buf, end, pos, 0, &h.key_offset, &h.key_length) != LS_OK ||
            record_read_bytes(buf, end, pos, 1, &h.value_offset, &h.value_length) != LS_OK) {
            return LS_ERR_INVALID_RECORD;
        }
        if (out != NULL) {
            out[i] = h;
        }
    }
    return LS_OK;
}

int ls_record_read(const uint8_t *buf, size_t len, size_t *pos, ls_record *out) {
    LS_ASSERT(*pos <= len && len <= (size_t)INT32_MAX);
    size_t p = *pos;
    int32_t body;
    if (ls_get_varint(buf, len, &p, &body) != LS_OK || body < 0 || (size_t)body > len - p) {
        return LS_ERR_INVALID_RECORD;
    }
    size_t end = p + (size_t)body;
    if (p >= end) {
        return LS_ERR_INVALID_RECORD;
    }
    p++; /* record attributes: unused */
    if (ls_get_varlong(buf, end, &p, &out->timestamp_delta) != LS_OK ||
        ls_get_varint(buf, end, &p, &out->offset_delta) != LS_OK) {
        return LS_ERR_INVALID_RECORD;
    }
    if (record_read_bytes(buf, end, &p, 1, &out->key_offset, &out->key_length) != LS_OK ||
        record_read_bytes(buf, end, &p, 1, &out->value_offset, &out->value_length) != LS_OK) {
        return LS_ERR_INVALID_RECORD;
    }
    int32_t count;
    if (ls_get_varint(buf, end, &p, &count) != LS_OK || count < 0 ||
        (size_t)count > end - p) {
        return LS_ERR_INVALID_RECORD;
    }
    out->headers_count = count;
    out->headers_offset = (int32_t)p;
    if (headers_walk(buf, end, &p, count, NULL) != LS_OK || p != end) {
        return LS_ERR_INVALID_RECORD; /* a header runs past the record, or bytes are left over */
    }
    out->headers_length = (int32_t)(end - (size_t)out->headers_offset);
    *pos = end;
    return LS_OK;
}

/* Arguments shared by both record decoders: the region and the declared count. */
static int records_decode_check(const uint8_t *buf, size_t len, int32_t count) {
    if (buf == NULL && len > 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (len > (size_t)INT32_MAX) {
        return LS_ERR_INVALID_ARGUMENT; /* a batch cannot be this large */
    }
    if (count < 0 || (uint64_t)count * LS_RECORD_SIZE_MIN > len) {
        return LS_ERR_INVALID_RECORD; /* cannot hold that many records */
    }
    return LS_OK;
}

int ls_records_decode(const uint8_t *buf, size_t len, int32_t count, ls_record *out,
                      int32_t cap) {
    if ((out == NULL && cap > 0) || cap < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int rc = records_decode_check(buf, len, count);
    if (rc != LS_OK) {
        return rc;
    }
    if (count > cap) {
        return LS_ERR_BUFFER_TOO_SMALL;
    }
    size_t pos = 0;
    for (int32_t i = 0; i < count; i++) {
        rc = ls_record_read(buf, len, &pos, &out[i]);
        if (rc != LS_OK) {
            return rc;
        }
    }
    return pos == len ? LS_OK : LS_ERR_INVALID_RECORD; /* incorrect declared batch size */
}

int ls_records_decode_columns(const uint8_t *buf, size_t len, int32_t count,
                              int64_t *timestamp_deltas, int32_t *offset_deltas,
                              int32_t *key_offsets, int32_t *key_lengths,
                              int32_t *value_offsets, int32_t *value_lengths,
                              int32_t *headers_offsets, int32_t *headers_lengths,
                              int32_t *headers_counts) {
    int rc = records_decode_check(buf, len, count);
    if (rc != LS_OK) {
        return rc;
    }
    size_t pos = 0;
    for (int32_t i = 0; i < count; i++) {
        ls_record r;
        rc = ls_record_read(buf, len, &pos, &r);
        if (rc != LS_OK) {
            return rc;
        }
        if (timestamp_deltas != NULL) timestamp_deltas[i] = r.timestamp_delta;
        if (offset_deltas != NULL) offset_deltas[i] = r.offset_delta;
        if (key_offsets != NULL) key_offsets[i] = r.key_offset;
        if (key_lengths != NULL) key_lengths[i] = r.key_length;
        if (value_offsets != NULL) value_offsets[i] = r.value_offset;
        if (value_lengths != NULL) value_lengths[i] = r.value_length;
        if (headers_offsets != NULL) headers_offsets[i] = r.headers_offset;
        if (headers_lengths != NULL) headers_lengths[i] = r.headers_length;
        if (headers_counts != NULL) headers_counts[i] = r.headers_count;
    }
    return pos == len ? LS_OK : LS_ERR_INVALID_RECORD;
}

/* The buffer may extend past the last header (e.g. to the end of the records region): records
 * decoding has already checked that the headers fill their record exactly. */
int ls_headers_decode(const uint8_t *buf, size_t len, int32_t count, ls_header *out,
                      int32_t cap) {
    if ((buf == NULL && len > 0) || (out == NULL && cap > 0) || cap < 0 ||
        len > (size_t)INT32_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (count < 0 || (uint64_t)count * 2 > len) {
        return LS_ERR_INVALID_RECORD; /* a header takes at least two bytes */
    }
    if (count > cap) {
        return LS_ERR_BUFFER_TOO_SMALL;
    }
    size_t pos = 0;
    return headers_walk(buf, len, &pos, count, out);
}

/* ----------------------------------------------------------------------------------------------
 * Record encoding.
 */
typedef struct {
    int32_t count;
    int64_t base_timestamp;
    const int64_t *timestamps;
    const uint8_t *keys;
    const int32_t *key_lengths;
    const uint8_t *values;
    const int32_t *value_lengths;
    const uint8_t *headers;
    const int32_t *headers_lengths;
    void *const *key_objects;        /* when set: record i's key is a CPython bytes/None object */
    void *const *value_objects;      /* likewise for values (see pyobjects.c) */
} records_input;

int ls_records_size_bound(int32_t count, int64_t keys_bytes, int64_t values_bytes,
                          int64_t headers_bytes, int64_t *out) {
    if (out == NULL || count < 0 || keys_bytes < 0 || values_bytes < 0 || headers_bytes < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int64_t total = (int64_t)count * LS_RECORD_FRAMING_MAX;
    if (__builtin_add_overflow(total, keys_bytes, &total) ||
        __builtin_add_overflow(total, values_bytes, &total) ||
        __builtin_add_overflow(total, headers_bytes, &total)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *out = total;
    return LS_OK;
}

/* A pre-encoded header section must be exactly: count varint, then count well-formed headers. */
static int header_section_check(const uint8_t *section, size_t size) {
    size_t pos = 0;
    int32_t count;
    if (ls_get_varint(section, size, &pos, &count) != LS_OK || count < 0 ||
        (size_t)count > size - pos) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (headers_walk(section, size, &pos, count, NULL) != LS_OK || pos != size) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return LS_OK;
}

/* Length of field i: -1 (null) when the lengths array is NULL. Bad lengths are caller bugs. */
static inline int field_length(const uint8_t *data, const int32_t *lengths, int32_t i,
                               int32_t *out) {
    int32_t n = lengths != NULL ? lengths[i] : -1;
    if (n < -1 || (n > 0 && data == NULL)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *out = n;
    return LS_OK;
}

static inline size_t bytes_of(int32_t n) { return n > 0 ? (size_t)n : 0; }

/* Everything about record i except where it goes. */
typedef struct {
    int64_t timestamp_delta;
    int32_t key_length;
    int32_t value_length;
    const uint8_t *key_object_data;   /* set when keys come from objects */
    const uint8_t *value_object_data;
    size_t headers_size;
    size_t body_size;
} record_plan;

/* Key and value lengths of record i, from the length arrays or from the objects. */
static int record_fields(const records_input *in, int32_t i, record_plan *plan) {
    plan->key_object_data = NULL;
    plan->value_object_data = NULL;
    int rc = in->key_objects != NULL
                 ? ls_object_bytes(in->key_objects[i], &plan->key_object_data, &plan->key_length)
                 : field_length(in->keys, in->key_lengths, i, &plan->key_length);
    if (rc != LS_OK) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    rc = in->value_objects != NULL
             ? ls_object_bytes(in->value_objects[i], &plan->value_object_data,
                               &plan->value_length)
             : field_length(in->values, in->value_lengths, i, &plan->value_length);
    return rc != LS_OK ? LS_ERR_INVALID_ARGUMENT : LS_OK;
}

static int record_plan_make(const records_input *in, int32_t i, const uint8_t *header_section,
                            record_plan *plan) {
    if (record_fields(in, i, plan) != LS_OK) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    plan->headers_size = 1; /* a single 0 byte: no headers */
    if (in->headers_lengths != NULL) {
        int32_t size = in->headers_lengths[i];
        if (size < 1 || in->headers == NULL ||
            header_section_check(header_section, (size_t)size) != LS_OK) {
            return LS_ERR_INVALID_ARGUMENT;
        }
        plan->headers_size = (size_t)size;
    }
    plan->timestamp_delta = 0;
    if (in->timestamps != NULL) { /* wraps like Java's long subtraction */
        plan->timestamp_delta = (int64_t)((uint64_t)in->timestamps[i] -
                                          (uint64_t)in->base_timestamp);
    }
    uint64_t body = 1 + ls_varlong_size(plan->timestamp_delta) + ls_varint_size(i) +
                    ls_varint_size(plan->key_length) + bytes_of(plan->key_length) +
                    ls_varint_size(plan->value_length) + bytes_of(plan->value_length) +
                    plan->headers_size;
    if (body > (uint64_t)INT32_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    plan->body_size = (size_t)body;
    return LS_OK;
}

static size_t record_write(uint8_t *out, const record_plan *plan, int32_t i, const uint8_t *key,
                           const uint8_t *value, const uint8_t *header_section) {
    size_t p = ls_put_varint(out, (int32_t)plan->body_size);
    size_t body_start = p;
    out[p++] = 0; /* attributes */
    p += ls_put_varlong(out + p, plan->timestamp_delta);
    p += ls_put_varint(out + p, i);
    p += ls_put_varint(out + p, plan->key_length);
    if (plan->key_length > 0) {
        memcpy(out + p, key, (size_t)plan->key_length);
        p += (size_t)plan->key_length;
    }
    p += ls_put_varint(out + p, plan->value_length);
    if (plan->value_length > 0) {
        memcpy(out + p, value, (size_t)plan->value_length);
        p += (size_t)plan->value_length;
    }
    if (header_section != NULL) {
        memcpy(out + p, header_section, plan->headers_size);
    } else {
        out[p] = 0;
    }
    p += plan->headers_size;
    LS_ASSERT(p - body_start == plan->body_size);
    return p;
}

/* Key or value i of a header-less record: from the objects, or from the concatenated data. */
static inline int plain_field(const uint8_t *data, const int32_t *lengths,
                              void *const *objects, int32_t i, size_t *data_pos,
                              const uint8_t **field, int32_t *length) {
    if (objects != NULL) {
        return ls_object_bytes(objects[i], field, length);
    }
    if (field_length(data, lengths, i, length) != LS_OK) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *field = data != NULL ? data + *data_pos : NULL;
    *data_pos += bytes_of(*length);
    return LS_OK;
}

/* The common case, records without headers, in one tight pass: size, check, write. */
static int records_encode_plain(uint8_t *out, size_t cap, const records_input *in,
                                size_t *written) {
    size_t pos = 0;
    size_t key_pos = 0;
    size_t value_pos = 0;
    for (int32_t i = 0; i < in->count; i++) {
        const uint8_t *key;
        const uint8_t *value;
        int32_t key_length;
        int32_t value_length;
        if (plain_field(in->keys, in->key_lengths, in->key_objects, i, &key_pos, &key,
                        &key_length) != LS_OK ||
            plain_field(in->values, in->value_lengths, in->value_objects, i, &value_pos,
                        &value, &value_length) != LS_OK) {
            return LS_ERR_INVALID_ARGUMENT;
        }
        int64_t delta = 0;
        if (in->timestamps != NULL) { /* wraps like Java's long subtraction */
            delta = (int64_t)((uint64_t)in->timestamps[i] - (uint64_t)in->base_timestamp);
        }
        uint64_t body = 2 + ls_varlong_size(delta) + ls_varint_size(i) +
                        ls_varint_size(key_length) + bytes_of(key_length) +
                        ls_varint_size(value_length) + bytes_of(value_length);
        if (body > (uint64_t)INT32_MAX) {
            return LS_ERR_INVALID_ARGUMENT;
        }
        if (ls_varint_size((int32_t)body) + body > cap - pos) {
            return LS_ERR_BUFFER_TOO_SMALL;
        }
        uint8_t *p = out + pos;
        p += ls_put_varint(p, (int32_t)body);
        *p++ = 0; /* attributes */
        p += ls_put_varlong(p, delta);
        p += ls_put_varint(p, i);
        p += ls_put_varint(p, key_length);
        if (key_length > 0) {
            memcpy(p, key, (size_t)key_length);
            p += key_length;
        }
        p += ls_put_varint(p, value_length);
        if (value_length > 0) {
            memcpy(p, value, (size_t)value_length);
            p += value_length;
        }
        *p++ = 0; /* headersCount */
        pos = (size_t)(p - out);
    }
    *written = pos;
    return LS_OK;
}

static int records_encode(uint8_t *out, size_t cap, const records_input *in, size_t *written) {
    if (in->headers_lengths == NULL) {
        return records_encode_plain(out, cap, in, written);
    }
    size_t pos = 0;
    size_t key_pos = 0;
    size_t value_pos = 0;
    size_t header_pos = 0;
    for (int32_t i = 0; i < in->count; i++) {
        const uint8_t *section = in->headers_lengths != NULL ? in->headers + header_pos : NULL;
        record_plan plan;
        int rc = record_plan_make(in, i, section, &plan);
        if (rc != LS_OK) {
            return rc;
        }
        size_t total = ls_varint_size((int32_t)plan.body_size) + plan.body_size;
        if (total > cap - pos) {
            return LS_ERR_BUFFER_TOO_SMALL;
        }
        const uint8_t *key = plan.key_object_data != NULL ? plan.key_object_data
                             : in->keys != NULL ? in->keys + key_pos : NULL;
        const uint8_t *value = plan.value_object_data != NULL ? plan.value_object_data
                               : in->values != NULL ? in->values + value_pos : NULL;
        size_t n = record_write(out + pos, &plan, i, key, value, section);
        LS_ASSERT(n == total);
        pos += n;
        key_pos += bytes_of(plan.key_length);
        value_pos += bytes_of(plan.value_length);
        header_pos += section != NULL ? plan.headers_size : 0;
    }
    *written = pos;
    return LS_OK;
}

int ls_records_encode(uint8_t *out, size_t cap, size_t *written, int32_t count,
                      int64_t base_timestamp, const int64_t *timestamps,
                      const uint8_t *keys, const int32_t *key_lengths,
                      const uint8_t *values, const int32_t *value_lengths,
                      const uint8_t *headers, const int32_t *headers_lengths) {
    if ((out == NULL && cap > 0) || written == NULL || count < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    records_input in = {count, base_timestamp, timestamps, keys, key_lengths,
                        values, value_lengths, headers, headers_lengths, NULL, NULL};
    return records_encode(out, cap, &in, written);
}

int ls_headers_encode(uint8_t *out, size_t cap, size_t *written, int32_t count,
                      const uint8_t *keys, const int32_t *key_lengths,
                      const uint8_t *values, const int32_t *value_lengths) {
    if ((out == NULL && cap > 0) || written == NULL || count < 0 ||
        (key_lengths == NULL && count > 0)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (ls_varint_size(count) > cap) {
        return LS_ERR_BUFFER_TOO_SMALL;
    }
    size_t pos = ls_put_varint(out, count);
    size_t key_pos = 0;
    size_t value_pos = 0;
    for (int32_t i = 0; i < count; i++) {
        int32_t key_length;
        int32_t value_length;
        if (field_length(keys, key_lengths, i, &key_length) != LS_OK || key_length < 0 ||
            field_length(values, value_lengths, i, &value_length) != LS_OK) {
            return LS_ERR_INVALID_ARGUMENT; /* header keys are never null */
        }
        size_t need = ls_varint_size(key_length) + (size_t)key_length +
                      ls_varint_size(value_length) + bytes_of(value_length);
        if (need > cap - pos) {
            return LS_ERR_BUFFER_TOO_SMALL;
        }
        pos += ls_put_varint(out + pos, key_length);
        if (key_length > 0) {
            memcpy(out + pos, keys + key_pos, (size_t)key_length);
        }
        pos += (size_t)key_length;
        key_pos += (size_t)key_length;
        pos += ls_put_varint(out + pos, value_length);
        if (value_length > 0) {
            memcpy(out + pos, values + value_pos, (size_t)value_length);
        }
        pos += bytes_of(value_length);
        value_pos += bytes_of(value_length);
    }
    *written = pos;
    return LS_OK;
}

/* ----------------------------------------------------------------------------------------------
 * Whole batches.
 */

/* The header a built batch gets: Kafka's MemoryRecordsBuilder takes the first record's
 * timestamp as the base when none was given, and the largest one as the max (CREATE_TIME). */
static void batch_build_header(ls_batch_header *h, int32_t count, const int64_t *timestamps) {
    if (timestamps != NULL && h->base_timestamp == -1) {
        h->base_timestamp = timestamps[0];
    }
    h->records_count = count;
    h->last_offset_delta = count - 1;
    if ((h->attributes & LS_ATTR_TIMESTAMP_TYPE) == 0) {
        /* Without timestamps every record has the base timestamp (delta 0). */
        int64_t max_timestamp = timestamps != NULL ? timestamps[0] : h->base_timestamp;
        for (int32_t i = 1; timestamps != NULL && i < count; i++) {
            if (timestamps[i] > max_timestamp) {
                max_timestamp = timestamps[i];
            }
        }
        h->max_timestamp = max_timestamp;
    }
}

static int batch_build(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h,
                       records_input *in);

int ls_batch_build(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h, int32_t count,
                   const int64_t *timestamps,
                   const uint8_t *keys, const int32_t *key_lengths,
                   const uint8_t *values, const int32_t *value_lengths,
                   const uint8_t *headers, const int32_t *headers_lengths) {
    records_input in = {count, 0, timestamps, keys, key_lengths, values, value_lengths,
                        headers, headers_lengths, NULL, NULL};
    return batch_build(out, cap, written, h, &in);
}

int ls_batch_build_items(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h,
                         int32_t count, const int64_t *timestamps,
                         void *const *key_objects, void *const *value_objects,
                         const uint8_t *headers, const int32_t *headers_lengths) {
    if (value_objects == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    records_input in = {count, 0, timestamps, NULL, NULL, NULL, NULL,
                        headers, headers_lengths, key_objects, value_objects};
    return batch_build(out, cap, written, h, &in);
}

int ls_records_encode_items(uint8_t *out, size_t cap, size_t *written, int32_t count,
                            int64_t base_timestamp, const int64_t *timestamps,
                            void *const *key_objects, void *const *value_objects,
                            const uint8_t *headers, const int32_t *headers_lengths) {
    if ((out == NULL && cap > 0) || written == NULL || count < 0 || value_objects == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    records_input in = {count, base_timestamp, timestamps, NULL, NULL, NULL, NULL,
                        headers, headers_lengths, key_objects, value_objects};
    return records_encode(out, cap, &in, written);
}

static int batch_build(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h,
                       records_input *in) {
    int32_t count = in->count;
    const int64_t *timestamps = in->timestamps;
    if (out == NULL || written == NULL || h == NULL || count < 1 ||
        h->magic != LS_BATCH_MAGIC || (h->attributes & LS_ATTR_COMPRESSION_MASK) != 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (cap < LS_BATCH_OVERHEAD) {
        return LS_ERR_BUFFER_TOO_SMALL;
    }
    ls_batch_header header = *h;
    batch_build_header(&header, count, timestamps);
    in->base_timestamp = header.base_timestamp;
    size_t records_size = 0;
    int rc = records_encode(out + LS_BATCH_OVERHEAD, cap - LS_BATCH_OVERHEAD, in,
                            &records_size);
    if (rc != LS_OK) {
        return rc;
    }
    size_t size = LS_BATCH_OVERHEAD + records_size;
    rc = ls_batch_seal(out, size, &header);
    if (rc != LS_OK) {
        return rc;
    }
    *h = header;
    *written = size;
    return LS_OK;
}
