/*
 * offset_index.c: the .index file (Kafka's OffsetIndex) and the index search both indexes share
 * (Kafka's AbstractIndex).
 *
 * .index => [Entry] (KAFKA_FACTS.md 3.3), 8 bytes each, big-endian:
 *   RelativeOffset => Int32     offset - segment base offset (the lastOffset of a batch)
 *   Position => Int32           byte position of that batch's first byte in the .log
 *
 * Sparse: one entry per index.interval.bytes of log. Offsets and positions strictly increase.
 * No checksum is kept: in the event of a crash the index is rebuilt from the log (segment.c), so
 * a lookup only has to stay inside the entries it is given, whatever they hold.
 *
 * Lookups run straight on the mmap. The search first tries the last 8192 bytes (the warm section:
 * appends and tailing consumers keep those pages hot, and a lookup that stays there touches no
 * cold page), then falls back to the whole index, exactly as AbstractIndex.indexSlotRangeFor.
 *
 * Thread-safety: pure functions over caller-owned memory.
 */
#include "ls_internal.h"

enum {
    OFFSET_ENTRY_RELATIVE_OFFSET = 0,
    OFFSET_ENTRY_POSITION = OFFSET_ENTRY_RELATIVE_OFFSET + 4,
    OFFSET_ENTRY_SIZE = OFFSET_ENTRY_POSITION + 4,
    TIME_ENTRY_TIMESTAMP = 0,
    TIME_ENTRY_RELATIVE_OFFSET = TIME_ENTRY_TIMESTAMP + 8,
    TIME_ENTRY_SIZE = TIME_ENTRY_RELATIVE_OFFSET + 4
};

_Static_assert(OFFSET_ENTRY_SIZE == LS_OFFSET_INDEX_ENTRY_SIZE, ".index entries are 8 bytes");
_Static_assert(TIME_ENTRY_SIZE == LS_TIME_INDEX_ENTRY_SIZE, ".timeindex entries are 12 bytes");

static inline int64_t index_key_at(const uint8_t *entries, int64_t slot, ls_index_key key,
                                   int64_t base_offset) {
    switch (key) {
    case LS_INDEX_KEY_OFFSET:
        return base_offset + ls_load_i32(entries + slot * OFFSET_ENTRY_SIZE +
                                         OFFSET_ENTRY_RELATIVE_OFFSET);
    case LS_INDEX_KEY_POSITION:
        return ls_load_i32(entries + slot * OFFSET_ENTRY_SIZE + OFFSET_ENTRY_POSITION);
    case LS_INDEX_KEY_TIMESTAMP:
        return ls_load_i64(entries + slot * TIME_ENTRY_SIZE + TIME_ENTRY_TIMESTAMP);
    }
    LS_ASSERT(0 && "unknown index key");
    return 0;
}

/* Binary search in slots [lo, hi] (AbstractIndex.binarySearch). Terminates in log2 steps
 * whatever the entries hold, and always returns a slot in range or -1. */
static int64_t index_binary_search(const uint8_t *entries, int64_t entry_count, ls_index_key key,
                                   int64_t base_offset, int64_t target, ls_index_bound bound,
                                   int64_t lo, int64_t hi) {
    LS_ASSERT(0 <= lo && lo <= hi && hi < entry_count);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        int64_t found = index_key_at(entries, mid, key, base_offset);
        if (found > target) {
            hi = mid - 1;
        } else if (found < target) {
            lo = mid;
        } else {
            return mid;
        }
    }
    if (bound == LS_INDEX_LARGEST_LOWER_BOUND) {
        return lo;
    }
    /* Kafka answers lo + 1 here even when the one slot left equals the target; the smallest
     * upper bound of an equal key is that slot itself. */
    if (index_key_at(entries, lo, key, base_offset) >= target) {
        return lo;
    }
    return lo == entry_count - 1 ? -1 : lo + 1;
}

int64_t ls_index_search(const uint8_t *entries, int64_t entry_count, ls_index_key key,
                        int64_t base_offset, int64_t target, ls_index_bound bound) {
    if (entry_count == 0) {
        return -1;
    }
    int64_t entry_size = key == LS_INDEX_KEY_TIMESTAMP ? TIME_ENTRY_SIZE : OFFSET_ENTRY_SIZE;
    int64_t warm_entries = LS_INDEX_WARM_BYTES / entry_size;
    int64_t first_hot = entry_count - 1 - warm_entries > 0 ? entry_count - 1 - warm_entries : 0;
    if (index_key_at(entries, first_hot, key, base_offset) < target) {
        return index_binary_search(entries, entry_count, key, base_offset, target, bound,
                                   first_hot, entry_count - 1);
    }
    if (index_key_at(entries, 0, key, base_offset) > target) {
        return bound == LS_INDEX_LARGEST_LOWER_BOUND ? -1 : 0;
    }
    return index_binary_search(entries, entry_count, key, base_offset, target, bound, 0,
                               first_hot);
}

static int offset_index_args_check(const uint8_t *entries, int64_t entry_count,
                                   int64_t base_offset) {
    if (entry_count < 0 || (entries == NULL && entry_count > 0)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (base_offset < 0 || base_offset > LS_SEGMENT_BASE_OFFSET_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return LS_OK;
}

int ls_offset_index_lookup(const uint8_t *entries, int64_t entry_count, int64_t base_offset,
                           int64_t target_offset, int64_t *out_offset, int32_t *out_position) {
    int rc = offset_index_args_check(entries, entry_count, base_offset);
    if (rc != LS_OK || out_offset == NULL || out_position == NULL) {
        return rc != LS_OK ? rc : LS_ERR_INVALID_ARGUMENT;
    }
    int64_t slot = ls_index_search(entries, entry_count, LS_INDEX_KEY_OFFSET, base_offset,
                                   target_offset, LS_INDEX_LARGEST_LOWER_BOUND);
    if (slot < 0) {
        *out_offset = base_offset;
        *out_position = 0;
        return LS_OK;
    }
    *out_offset = index_key_at(entries, slot, LS_INDEX_KEY_OFFSET, base_offset);
    *out_position = (int32_t)index_key_at(entries, slot, LS_INDEX_KEY_POSITION, base_offset);
    return LS_OK;
}

int ls_offset_index_upper_bound(const uint8_t *entries, int64_t entry_count,
                                int64_t base_offset, int64_t target_position,
                                int64_t *out_offset) {
    int rc = offset_index_args_check(entries, entry_count, base_offset);
    if (rc != LS_OK || out_offset == NULL) {
        return rc != LS_OK ? rc : LS_ERR_INVALID_ARGUMENT;
    }
    int64_t slot = ls_index_search(entries, entry_count, LS_INDEX_KEY_POSITION, base_offset,
                                   target_position, LS_INDEX_SMALLEST_UPPER_BOUND);
    if (slot < 0) {
        return LS_ERR_NOT_FOUND;
    }
    *out_offset = index_key_at(entries, slot, LS_INDEX_KEY_OFFSET, base_offset);
    return LS_OK;
}

int ls_offset_index_check(const uint8_t *entries, int64_t entry_count, int64_t log_size,
                          int64_t *bad_entry) {
    if (entry_count < 0 || (entries == NULL && entry_count > 0) || log_size < 0 ||
        bad_entry == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int64_t previous_offset = -1;
    int64_t previous_position = -1;
    for (int64_t i = 0; i < entry_count; i++) {
        int64_t relative = index_key_at(entries, i, LS_INDEX_KEY_OFFSET, 0);
        int64_t position = index_key_at(entries, i, LS_INDEX_KEY_POSITION, 0);
        /* A negative relative offset is an offset below the segment base (sanityCheck). */
        if (relative < 0 || relative <= previous_offset || position < 0 ||
            position <= previous_position || position >= log_size) {
            *bad_entry = i;
            return LS_ERR_CORRUPT_INDEX;
        }
        previous_offset = relative;
        previous_position = position;
    }
    return LS_OK;
}
