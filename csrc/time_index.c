/*
 * time_index.c: the .timeindex file (Kafka's TimeIndex).
 *
 * .timeindex => [Entry] (KAFKA_FACTS.md 3.4), 12 bytes each, big-endian:
 *   Timestamp => Int64          the largest batch max timestamp seen so far in the segment
 *   RelativeOffset => Int32     offset of the batch holding it - segment base offset
 *
 * An entry is added with an offset index entry only when its timestamp is greater than the last
 * entry's (segment.c), plus one forced entry on roll/close; so timestamps never decrease and
 * offsets increase. No checksum: rebuilt from the log after a crash. The search is the one shared
 * with the offset index (offset_index.c, warm section first; 8192 / 12 = 682 warm entries).
 *
 * Thread-safety: pure functions over caller-owned memory.
 */
#include "ls_internal.h"

enum { TIME_ENTRY_TIMESTAMP = 0, TIME_ENTRY_RELATIVE_OFFSET = 8 };

_Static_assert(TIME_ENTRY_RELATIVE_OFFSET + 4 == LS_TIME_INDEX_ENTRY_SIZE, "12-byte entries");

static inline int64_t time_entry_timestamp(const uint8_t *entries, int64_t slot) {
    return ls_load_i64(entries + slot * LS_TIME_INDEX_ENTRY_SIZE + TIME_ENTRY_TIMESTAMP);
}

static inline int32_t time_entry_relative_offset(const uint8_t *entries, int64_t slot) {
    return ls_load_i32(entries + slot * LS_TIME_INDEX_ENTRY_SIZE + TIME_ENTRY_RELATIVE_OFFSET);
}

int ls_time_index_lookup(const uint8_t *entries, int64_t entry_count, int64_t base_offset,
                         int64_t target_timestamp, int64_t *out_timestamp, int64_t *out_offset) {
    if (entry_count < 0 || (entries == NULL && entry_count > 0) || out_timestamp == NULL ||
        out_offset == NULL || base_offset < 0 || base_offset > LS_SEGMENT_BASE_OFFSET_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int64_t slot = ls_index_search(entries, entry_count, LS_INDEX_KEY_TIMESTAMP, base_offset,
                                   target_timestamp, LS_INDEX_LARGEST_LOWER_BOUND);
    if (slot < 0) {
        *out_timestamp = -1; /* RecordBatch.NO_TIMESTAMP */
        *out_offset = base_offset;
        return LS_OK;
    }
    *out_timestamp = time_entry_timestamp(entries, slot);
    *out_offset = base_offset + time_entry_relative_offset(entries, slot);
    return LS_OK;
}

int ls_time_index_check(const uint8_t *entries, int64_t entry_count, int64_t *bad_entry) {
    if (entry_count < 0 || (entries == NULL && entry_count > 0) || bad_entry == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int64_t previous_timestamp = INT64_MIN;
    int64_t previous_offset = -1;
    for (int64_t i = 0; i < entry_count; i++) {
        int64_t timestamp = time_entry_timestamp(entries, i);
        int64_t relative = time_entry_relative_offset(entries, i);
        if (relative < 0 || relative <= previous_offset || timestamp < previous_timestamp) {
            *bad_entry = i;
            return LS_ERR_CORRUPT_INDEX;
        }
        previous_timestamp = timestamp;
        previous_offset = relative;
    }
    return LS_OK;
}
