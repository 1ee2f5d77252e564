/*
 * segment.c: walking the batches of a .log region (recovery, index rebuild, fetch planning).
 *
 * .log file => [RecordBatch] (KAFKA_FACTS.md 3.2): batches back to back, no file header, no
 * padding. Each batch is framed by its first 12 bytes (BaseOffset => Int64, Length => Int32);
 * the full v2 header table is in record_batch.c.
 *
 * Outputs written by the recovery scan, in Kafka's on-disk form (big-endian):
 *   .index entry     => RelativeOffset => Int32, Position => Int32            (8 bytes)
 *   .timeindex entry => Timestamp => Int64, RelativeOffset => Int32           (12 bytes)
 *
 * ls_segment_scan is Kafka's LogSegment.recover (KAFKA_FACTS.md 3.3, 3.4, 3.7), one batch at a
 * time in file order:
 *   1. frame and validate the batch (ensureValid: size, CRC, header fields);
 *   2. its offsets must increase (base > previous last), stay >= the segment's base offset and
 *      fit a relative int32 (ensureOffsetInRange); its end must fit an int32 file position;
 *   3. control batches: the first record is decoded (type, coordinator epoch), as
 *      ProducerAppendInfo does; a malformed marker stops recovery (InvalidRecordException);
 *   4. maxTimestampSoFar / offsetOfMaxTimestampSoFar move when the batch max is strictly larger;
 *   5. if validBytes - lastIndexEntry > index_interval_bytes (checked BEFORE counting this batch,
 *      so the first batch of a segment never gets an entry): offset entry (lastOffset of this
 *      batch, position of its first byte), plus a time entry (maxTimestampSoFar, its offset) when
 *      that timestamp is strictly greater than the last time entry's;
 *   6. validBytes += batch size.
 * The scan stops at the first batch that fails 1-3; state->position is then the end of the valid
 * prefix, i.e. where Kafka truncates the segment. Outputs are per batch all-or-nothing: when an
 * output array is full the batch is left unconsumed and the call returns LS_SCAN_OUTPUT_FULL.
 * A NULL output array means "not wanted": nothing is written there but the bookkeeping (last
 * index entry, bytes since it) advances as if it were; a non-NULL array with no room left (cap 0,
 * e.g. a full index mmap) stops the scan with LS_SCAN_OUTPUT_FULL when an entry is due.
 *
 * Every loop is bounded by the region size divided by the smallest batch (61 bytes).
 * Thread-safety: pure functions over caller-owned buffers and state.
 */
#include "ls_internal.h"

/* One framed, validated batch as the scan sees it. */
typedef struct {
    ls_batch_header h;
    size_t position;
    size_t size;
    int64_t last_offset;
    int16_t control_type;
    int32_t coordinator_epoch;
} scan_batch;

typedef struct {
    uint8_t *index_out;
    int32_t index_cap;
    uint8_t *time_index_out;
    int32_t time_index_cap;
    ls_batch_info *infos;
    int32_t infos_cap;
    int32_t producer_batches_only;
} scan_outputs;

static inline size_t batches_max(size_t len, size_t pos) {
    return (len - pos) / LS_BATCH_OVERHEAD + 1;
}

/* The first record of an uncompressed control batch: its key type and, for COMMIT/ABORT, the
 * coordinator epoch of the value (KAFKA_FACTS.md 2). Compressed control batches, which Kafka never
 * writes, are left to the caller (-1, -1). */
static int control_record_parse(const uint8_t *batch, size_t size, const ls_batch_header *h,
                                int16_t *type, int32_t *coordinator_epoch) {
    *type = -1;
    *coordinator_epoch = -1;
    if ((h->attributes & LS_ATTR_CONTROL) == 0 ||
        (h->attributes & LS_ATTR_COMPRESSION_MASK) != 0 || h->records_count == 0) {
        return LS_OK;
    }
    const uint8_t *records = batch + LS_BATCH_OVERHEAD;
    size_t pos = 0;
    ls_record r;
    if (ls_record_read(records, size - LS_BATCH_OVERHEAD, &pos, &r) != LS_OK ||
        r.key_length < LS_CONTROL_KEY_SIZE || ls_load_i16(records + r.key_offset) < 0) {
        return LS_ERR_INVALID_RECORD; /* ControlRecordType.parse */
    }
    int16_t key_type = ls_load_i16(records + r.key_offset + 2);
    if (key_type != LS_CONTROL_TYPE_ABORT && key_type != LS_CONTROL_TYPE_COMMIT) {
        *type = key_type >= 0 && key_type <= LS_CONTROL_TYPE_KNOWN_MAX ? key_type
                                                                       : LS_CONTROL_TYPE_UNKNOWN;
        return LS_OK;
    }
    if (r.value_length < LS_END_TXN_VALUE_SIZE || ls_load_i16(records + r.value_offset) < 0) {
        return LS_ERR_INVALID_RECORD; /* EndTransactionMarker.deserializeValue */
    }
    *type = key_type;
    *coordinator_epoch = ls_load_i32(records + r.value_offset + 2);
    return LS_OK;
}

static void batch_info_fill(const scan_batch *b, ls_batch_info *info) {
    info->position = (int64_t)b->position;
    info->base_offset = b->h.base_offset;
    info->last_offset = b->last_offset;
    info->base_timestamp = b->h.base_timestamp;
    info->max_timestamp = b->h.max_timestamp;
    info->producer_id = b->h.producer_id;
    info->size = (int32_t)b->size;
    info->base_sequence = b->h.base_sequence;
    info->records_count = b->h.records_count;
    info->producer_epoch = b->h.producer_epoch;
    info->attributes = b->h.attributes;
    info->control_type = b->control_type;
    info->coordinator_epoch = b->coordinator_epoch;
}

/* Steps 2 of the scan: offsets against the segment and the previous batch. */
static int scan_offsets_check(const scan_batch *b, int64_t base_offset,
                              const ls_scan_state *state) {
    if (state->next_offset != -1 && b->h.base_offset < state->next_offset) {
        return LS_ERR_NON_MONOTONIC;
    }
    if (b->h.base_offset < base_offset || b->last_offset - base_offset > INT32_MAX) {
        return LS_ERR_OFFSET_OVERFLOW;
    }
    if (b->position + b->size > (size_t)INT32_MAX) {
        return LS_ERR_OFFSET_OVERFLOW; /* the position does not fit an index entry */
    }
    return LS_OK;
}

/* Steps 1-3 for the batch at pos. */
static int scan_batch_read(const uint8_t *buf, size_t len, size_t pos, int64_t base_offset,
                           int32_t verify_crc, const ls_scan_state *state, scan_batch *b) {
    int rc = ls_batch_frame(buf, len, pos, &b->size);
    if (rc != LS_OK) {
        return rc;
    }
    b->position = pos;
    ls_batch_header_read(buf + pos, &b->h);
    rc = ls_batch_check(buf + pos, b->size, &b->h, verify_crc);
    if (rc != LS_OK) {
        return rc;
    }
    if (__builtin_add_overflow(b->h.base_offset, b->h.last_offset_delta, &b->last_offset)) {
        return LS_ERR_OFFSET_OVERFLOW;
    }
    rc = scan_offsets_check(b, base_offset, state);
    if (rc != LS_OK) {
        return rc;
    }
    rc = control_record_parse(buf + pos, b->size, &b->h, &b->control_type,
                              &b->coordinator_epoch);
    /* Kafka decodes markers only in batches with a producer id (LogSegment.updateProducerState). */
    return rc != LS_OK && b->h.producer_id >= 0 ? rc : LS_OK;
}

static void index_entry_write(uint8_t *out, int64_t relative_offset, size_t position) {
    ls_store_be32(out, (uint32_t)relative_offset);
    ls_store_be32(out + 4, (uint32_t)position);
}

static void time_index_entry_write(uint8_t *out, int64_t timestamp, int64_t relative_offset) {
    ls_store_be64(out, (uint64_t)timestamp);
    ls_store_be32(out + 8, (uint32_t)relative_offset);
}

/* Steps 4-6: emits the batch's outputs and consumes it, or returns OUTPUT_FULL untouched. */
static int scan_batch_commit(const scan_batch *b, int64_t base_offset, int32_t interval_bytes,
                             ls_scan_state *state, const scan_outputs *out) {
    int64_t max_timestamp = state->max_timestamp;
    int64_t offset_of_max = state->offset_of_max_timestamp;
    if (b->h.max_timestamp > max_timestamp) {
        max_timestamp = b->h.max_timestamp;
        offset_of_max = b->last_offset;
    }
    int index_due = state->bytes_since_index_entry > interval_bytes;
    int time_due = index_due && max_timestamp > state->last_time_index_timestamp;
    int info_due = out->infos != NULL && (!out->producer_batches_only || b->h.producer_id >= 0 ||
                                          (b->h.attributes & LS_ATTR_CONTROL) != 0);
    if ((index_due && out->index_out != NULL && state->index_entries >= out->index_cap) ||
        (time_due && out->time_index_out != NULL &&
         state->time_index_entries >= out->time_index_cap) ||
        (info_due && state->infos >= out->infos_cap)) {
        return LS_SCAN_OUTPUT_FULL;
    }
    if (index_due) {
        if (out->index_out != NULL) {
            uint8_t *slot = out->index_out + (size_t)state->index_entries++ * 8;
            index_entry_write(slot, b->last_offset - base_offset, b->position);
        }
        state->last_index_offset = b->last_offset;
        state->bytes_since_index_entry = 0;
    }
    if (time_due) {
        LS_ASSERT(offset_of_max >= base_offset && offset_of_max - base_offset <= INT32_MAX);
        if (out->time_index_out != NULL) {
            uint8_t *slot = out->time_index_out + (size_t)state->time_index_entries++ * 12;
            time_index_entry_write(slot, max_timestamp, offset_of_max - base_offset);
        }
        state->last_time_index_timestamp = max_timestamp;
    }
    if (info_due) {
        batch_info_fill(b, &out->infos[state->infos++]);
    }
    state->max_timestamp = max_timestamp;
    state->offset_of_max_timestamp = offset_of_max;
    state->bytes_since_index_entry += (int64_t)b->size;
    state->next_offset = b->last_offset + 1;
    state->batches++;
    state->position = (int64_t)(b->position + b->size);
    return LS_OK;
}

int ls_scan_init(ls_scan_state *state, int64_t start_position) {
    if (state == NULL || start_position < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    memset(state, 0, sizeof *state);
    state->position = start_position;
    state->next_offset = -1;
    state->max_timestamp = -1;
    state->offset_of_max_timestamp = -1;
    state->last_index_offset = -1;
    state->last_time_index_timestamp = -1;
    return LS_OK;
}

/* A state handed back by the caller must be one this file could have produced. */
static int scan_state_check(const ls_scan_state *s, size_t len, int64_t base_offset) {
    if (s->position < 0 || (uint64_t)s->position > len || s->bytes_since_index_entry < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (s->max_timestamp < -1 || s->last_time_index_timestamp < -1 || s->batches < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if ((s->offset_of_max_timestamp == -1) != (s->max_timestamp == -1)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (s->offset_of_max_timestamp != -1 &&
        (s->offset_of_max_timestamp < base_offset ||
         s->offset_of_max_timestamp - base_offset > INT32_MAX)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return LS_OK;
}

static int scan_args_check(const uint8_t *buf, size_t len, int64_t base_offset,
                           int32_t interval_bytes, const ls_scan_state *state,
                           const scan_outputs *out) {
    if ((buf == NULL && len > 0) || state == NULL || interval_bytes < 0 || base_offset < 0 ||
        base_offset > LS_SEGMENT_BASE_OFFSET_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (out->index_cap < 0 || out->time_index_cap < 0 || out->infos_cap < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return scan_state_check(state, len, base_offset);
}

int ls_segment_scan(const uint8_t *buf, size_t len, int64_t base_offset,
                    int32_t index_interval_bytes, int32_t verify_crc, ls_scan_state *state,
                    uint8_t *index_out, int32_t index_cap,
                    uint8_t *time_index_out, int32_t time_index_cap,
                    ls_batch_info *infos, int32_t infos_cap, int32_t producer_batches_only) {
    scan_outputs out = {index_out, index_cap, time_index_out, time_index_cap,
                        infos, infos_cap, producer_batches_only};
    int rc = scan_args_check(buf, len, base_offset, index_interval_bytes, state, &out);
    if (rc != LS_OK) {
        return rc;
    }
    state->index_entries = 0;
    state->time_index_entries = 0;
    state->infos = 0;
    state->error = LS_OK;
    size_t limit = batches_max(len, (size_t)state->position);
    for (size_t n = 0; n < limit; n++) {
        size_t pos = (size_t)state->position;
        if (pos == len) {
            return LS_SCAN_END;
        }
        scan_batch b;
        rc = scan_batch_read(buf, len, pos, base_offset, verify_crc, state, &b);
        if (rc != LS_OK) {
            state->error = rc; /* position stays at the first invalid batch */
            return LS_OK;
        }
        rc = scan_batch_commit(&b, base_offset, index_interval_bytes, state, &out);
        if (rc == LS_SCAN_OUTPUT_FULL) {
            return LS_SCAN_OUTPUT_FULL;
        }
        LS_ASSERT((size_t)state->position == pos + b.size && (size_t)state->position <= len);
    }
    LS_ASSERT((size_t)state->position == len); /* every batch takes at least 61 bytes */
    return LS_SCAN_END;
}

/* ----------------------------------------------------------------------------------------------
 * Header-only walks (no CRC): offset and timestamp search, fetch extents.
 */

/* Frames and reads the batch at pos for a header-only walk. */
static int walk_batch_read(const uint8_t *buf, size_t len, size_t pos, scan_batch *b) {
    int rc = ls_batch_frame(buf, len, pos, &b->size);
    if (rc != LS_OK) {
        return rc;
    }
    b->position = pos;
    ls_batch_header_read(buf + pos, &b->h);
    if (b->h.last_offset_delta < 0 ||
        __builtin_add_overflow(b->h.base_offset, b->h.last_offset_delta, &b->last_offset) ||
        b->last_offset == INT64_MAX) {
        return LS_ERR_CORRUPT_BATCH;
    }
    if (control_record_parse(buf + pos, b->size, &b->h, &b->control_type,
                             &b->coordinator_epoch) != LS_OK) {
        b->control_type = -1; /* best effort here: no validation on this path */
        b->coordinator_epoch = -1;
    }
    return LS_OK;
}

enum { WALK_BY_OFFSET = 0, WALK_BY_TIMESTAMP = 1 };

/* The first batch from start whose last offset (or max timestamp) is >= target. A partial tail
 * ends the walk like the end of the region (FileLogInputStream returns null there). */
static int segment_find(const uint8_t *buf, size_t len, int64_t start_position, int by,
                        int64_t target, ls_batch_info *out) {
    if ((buf == NULL && len > 0) || out == NULL || start_position < 0 ||
        (uint64_t)start_position > len) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    size_t pos = (size_t)start_position;
    size_t limit = batches_max(len, pos);
    for (size_t n = 0; n < limit && pos < len; n++) {
        scan_batch b;
        int rc = walk_batch_read(buf, len, pos, &b);
        if (rc == LS_ERR_TRUNCATED) {
            return LS_ERR_NOT_FOUND;
        }
        if (rc != LS_OK) {
            return rc;
        }
        int64_t key = by == WALK_BY_OFFSET ? b.last_offset : b.h.max_timestamp;
        if (key >= target) {
            batch_info_fill(&b, out);
            return LS_OK;
        }
        pos += b.size;
    }
    return LS_ERR_NOT_FOUND;
}

int ls_segment_find_offset(const uint8_t *buf, size_t len, int64_t start_position,
                           int64_t target_offset, ls_batch_info *out) {
    return segment_find(buf, len, start_position, WALK_BY_OFFSET, target_offset, out);
}

int ls_segment_find_timestamp(const uint8_t *buf, size_t len, int64_t start_position,
                              int64_t target_timestamp, ls_batch_info *out) {
    return segment_find(buf, len, start_position, WALK_BY_TIMESTAMP, target_timestamp, out);
}

/* Whole batches only. A corrupt header ends the extent; it is an error only when it is the first
 * batch (then nothing at all could be returned). */
int ls_segment_read_extent(const uint8_t *buf, size_t len, int64_t start_position,
                           int64_t max_bytes, int64_t upper_offset,
                           int64_t *end_position, int64_t *next_offset) {
    if ((buf == NULL && len > 0) || end_position == NULL || next_offset == NULL ||
        start_position < 0 || (uint64_t)start_position > len || max_bytes < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    size_t start = (size_t)start_position;
    size_t pos = start;
    *end_position = start_position;
    *next_offset = -1;
    size_t limit = batches_max(len, pos);
    for (size_t n = 0; n < limit && pos < len; n++) {
        scan_batch b;
        int rc = walk_batch_read(buf, len, pos, &b);
        if (rc != LS_OK) {
            return rc == LS_ERR_TRUNCATED || pos > start ? LS_OK : rc;
        }
        if (b.h.base_offset >= upper_offset) {
            break;
        }
        if (pos > start && (uint64_t)(pos + b.size - start) > (uint64_t)max_bytes) {
            break; /* KIP-74: only the first batch may exceed max_bytes */
        }
        pos += b.size;
        *end_position = (int64_t)pos;
        *next_offset = b.last_offset + 1;
    }
    return LS_OK;
}
