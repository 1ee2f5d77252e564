/*
 * txn_index.c: the .txnindex file (Kafka's TransactionIndex / AbortedTxn).
 *
 * .txnindex => [AbortedTxn] (KAFKA_FACTS.md 3.5), 34 bytes each, big-endian:
 *   Version => Int16            0. Kafka reads only the FIRST byte as the version (a quirk kept
 *                               here): 00 xx is version 0, anything else in byte 0 is rejected
 *   ProducerId => Int64
 *   FirstOffset => Int64        first offset of the aborted transaction's data
 *   LastOffset => Int64         offset of its ABORT marker; strictly increasing in the file
 *   LastStableOffset => Int64   the LSO when the abort completed
 *
 * Only aborted, non-empty transactions are written, into the segment holding the marker. The file
 * is append-only and not preallocated; a partial entry at the end (torn append) is ignored by
 * readers, as Kafka's iterator does, and reported by the check.
 *
 * Thread-safety: pure functions over caller-owned memory.
 */
#include "ls_internal.h"

enum {
    TXN_VERSION = 0,
    TXN_PRODUCER_ID = TXN_VERSION + 2,
    TXN_FIRST_OFFSET = TXN_PRODUCER_ID + 8,
    TXN_LAST_OFFSET = TXN_FIRST_OFFSET + 8,
    TXN_LAST_STABLE_OFFSET = TXN_LAST_OFFSET + 8,
    TXN_ENTRY_SIZE = TXN_LAST_STABLE_OFFSET + 8,
    TXN_CURRENT_VERSION = 0
};

_Static_assert(TXN_ENTRY_SIZE == LS_TXN_INDEX_ENTRY_SIZE, "AbortedTxn.TOTAL_SIZE is 34");

typedef struct {
    int8_t version;
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset;
    int64_t last_stable_offset;
} aborted_txn;

static void aborted_txn_read(const uint8_t *entry, aborted_txn *out) {
    out->version = (int8_t)entry[TXN_VERSION];
    out->producer_id = ls_load_i64(entry + TXN_PRODUCER_ID);
    out->first_offset = ls_load_i64(entry + TXN_FIRST_OFFSET);
    out->last_offset = ls_load_i64(entry + TXN_LAST_OFFSET);
    out->last_stable_offset = ls_load_i64(entry + TXN_LAST_STABLE_OFFSET);
}

/* TransactionIndex.collectAbortedTxns: every entry with lastOffset >= fetch_offset and
 * firstOffset < upper_offset, in file order, until (and including) the first entry whose
 * lastStableOffset >= upper_offset, after which no later segment can hold a match. */
int ls_txn_index_collect(const uint8_t *buf, size_t len, int64_t fetch_offset,
                         int64_t upper_offset, int64_t *producer_ids, int64_t *first_offsets,
                         int32_t cap, int32_t *count, int32_t *stop) {
    if ((buf == NULL && len > 0) || count == NULL || stop == NULL || cap < 0 ||
        (cap > 0 && (producer_ids == NULL || first_offsets == NULL))) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *count = 0;
    *stop = 0;
    size_t entries = len / TXN_ENTRY_SIZE;
    for (size_t i = 0; i < entries; i++) {
        aborted_txn txn;
        aborted_txn_read(buf + i * TXN_ENTRY_SIZE, &txn);
        if (txn.version != TXN_CURRENT_VERSION) {
            return LS_ERR_CORRUPT_INDEX;
        }
        if (txn.last_offset >= fetch_offset && txn.first_offset < upper_offset) {
            if (*count >= cap) {
                return LS_ERR_BUFFER_TOO_SMALL;
            }
            producer_ids[*count] = txn.producer_id;
            first_offsets[*count] = txn.first_offset;
            (*count)++;
        }
        if (txn.last_stable_offset >= upper_offset) {
            *stop = 1;
            return LS_OK;
        }
    }
    return LS_OK;
}

int ls_txn_index_check(const uint8_t *buf, size_t len, int64_t base_offset, int64_t *bad_entry) {
    if ((buf == NULL && len > 0) || bad_entry == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    size_t entries = len / TXN_ENTRY_SIZE;
    int64_t previous_last = INT64_MIN;
    for (size_t i = 0; i < entries; i++) {
        aborted_txn txn;
        aborted_txn_read(buf + i * TXN_ENTRY_SIZE, &txn);
        if (txn.version != TXN_CURRENT_VERSION || txn.first_offset > txn.last_offset ||
            txn.last_offset < base_offset || (i > 0 && txn.last_offset <= previous_last)) {
            *bad_entry = (int64_t)i;
            return LS_ERR_CORRUPT_INDEX;
        }
        previous_last = txn.last_offset;
    }
    if (len % TXN_ENTRY_SIZE != 0) {
        *bad_entry = (int64_t)entries; /* a torn final entry */
        return LS_ERR_CORRUPT_INDEX;
    }
    return LS_OK;
}
