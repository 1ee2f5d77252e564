/*
 * logstore.h: the whole contract between the C core and Python.
 *
 * This file is fed verbatim to cffi's cdef() by csrc/build_ffi.py and included by every .c file,
 * so it holds only what cdef can parse: #define integer constants, enums, plain structs with
 * fixed-width types, and prototypes. No macros with arguments, no inline code, no #include.
 *
 * Rules every function follows:
 *   - returns 0 (LS_OK) or a negative code from enum ls_error; positive values are documented
 *     per function (scan stop reasons);
 *   - writes results through out-pointers, never through globals;
 *   - never allocates memory, prints, exits or aborts on bad input (asserts are for bugs only);
 *   - all integers in Kafka's on-disk structures are big-endian; the structs below are host order.
 *
 * Ownership: every buffer is owned by the caller. Functions read or write only inside
 * [buf, buf + len) / [out, out + cap) and keep no pointer after they return.
 */

#define LS_ABI_VERSION 1

/* Record batch v2 layout (KAFKA_FACTS.md section 1.1); full table in record_batch.c. */
#define LS_BATCH_OVERHEAD 61
#define LS_LOG_OVERHEAD 12
#define LS_BATCH_MAGIC 2
#define LS_BATCH_CRC_START 21
#define LS_RECORD_OVERHEAD_MAX 21

/* Attribute bits (the low byte of the int16 at offset 21). */
#define LS_ATTR_COMPRESSION_MASK 7
#define LS_ATTR_TIMESTAMP_TYPE 8
#define LS_ATTR_TRANSACTIONAL 16
#define LS_ATTR_CONTROL 32
#define LS_ATTR_DELETE_HORIZON 64

/* Index entry sizes (KAFKA_FACTS.md 3.3 - 3.5). */
#define LS_OFFSET_INDEX_ENTRY_SIZE 8
#define LS_TIME_INDEX_ENTRY_SIZE 12
#define LS_TXN_INDEX_ENTRY_SIZE 34

enum ls_error {
    LS_OK = 0,
    LS_ERR_INVALID_ARGUMENT = -1,     /* a caller bug: null pointer, negative size, bad flag */
    LS_ERR_BUFFER_TOO_SMALL = -2,     /* the output buffer or array cannot hold the result */
    LS_ERR_TRUNCATED = -3,            /* the input ends inside a batch (a partial tail) */
    LS_ERR_CORRUPT_BATCH = -4,        /* impossible length or header field */
    LS_ERR_CRC_MISMATCH = -5,         /* stored CRC-32C differs from the computed one */
    LS_ERR_UNSUPPORTED_MAGIC = -6,    /* magic byte is not 2 */
    LS_ERR_INVALID_RECORD = -7,       /* records region malformed: varints, count, sizes */
    LS_ERR_OFFSET_OVERFLOW = -8,      /* an offset does not fit relative int32 of the segment */
    LS_ERR_NON_MONOTONIC = -9,        /* offsets go backwards or overlap */
    LS_ERR_NOT_FOUND = -10,           /* no batch / entry matches the query */
    LS_ERR_IO = -11,                  /* a system call failed; ls_io_errno() tells which errno */
    LS_ERR_NO_SPACE = -12,            /* ENOSPC or EDQUOT */
    LS_ERR_CORRUPT_INDEX = -13,       /* an index file breaks its invariants */
    LS_ERR_UNSUPPORTED = -14,         /* feature not available here (e.g. no SSE4.2) */
    LS_ERR_FAULT_INJECTED = -15       /* a test fault fired (crash-after-N-bytes) */
};

/* Positive stop reasons of ls_segment_scan (not errors). */
enum ls_scan_stop {
    LS_SCAN_END = 0,                  /* every byte of the region was consumed by valid batches */
    LS_SCAN_OUTPUT_FULL = 1           /* an output array filled; call again to resume */
};

/* ----------------------------------------------------------------------------------------------
 * Version and errors (errors.c)
 */
int ls_version(int32_t *abi_version);
/* Static, never freed. Unknown codes give "unknown error". */
const char *ls_strerror(int32_t code);

/* ----------------------------------------------------------------------------------------------
 * CRC-32C, Castagnoli (crc32c.c). `crc` is the running value: 0 to start, the previous result to
 * continue, so crc(a + b) == crc32c(crc32c(0, a), b).
 */
int ls_crc32c(uint32_t crc, const uint8_t *buf, size_t len, uint32_t *out);
int ls_crc32c_sw(uint32_t crc, const uint8_t *buf, size_t len, uint32_t *out);
/* LS_ERR_UNSUPPORTED when the CPU lacks SSE4.2. */
int ls_crc32c_hw(uint32_t crc, const uint8_t *buf, size_t len, uint32_t *out);
int ls_crc32c_hw_available(int32_t *out);

/* ----------------------------------------------------------------------------------------------
 * Record batch v2 (record_batch.c)
 */
typedef struct {
    int64_t base_offset;
    int32_t length;                   /* bytes after the length field: total size = length + 12 */
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t records_count;
} ls_batch_header;

/* Parse the 61-byte header at buf. Checks: len >= 61 (else TRUNCATED), magic == 2 (else
 * UNSUPPORTED_MAGIC), 49 <= length (else CORRUPT_BATCH), length + 12 <= len (else TRUNCATED).
 * Does not check the CRC. */
int ls_batch_parse_header(const uint8_t *buf, size_t len, ls_batch_header *out);

/* Parse plus Kafka's ensureValid(): the CRC over [21, length + 12) must match, records_count >= 0,
 * attribute bits 7..15 zero, compression codec <= 4, lastOffsetDelta >= 0. `len` may be longer
 * than the batch; only the first batch is checked. */
int ls_batch_validate(const uint8_t *buf, size_t len, ls_batch_header *out);

/* Rewrite baseOffset / partitionLeaderEpoch in place; the CRC does not cover them. */
int ls_batch_set_base_offset(uint8_t *buf, size_t len, int64_t base_offset);
int ls_batch_set_partition_leader_epoch(uint8_t *buf, size_t len, int32_t epoch);

/* Write every header field of h except length and crc at buf[0, 61), set length = len - 12,
 * then compute and store the CRC over [21, len). The records region must already be in place at
 * buf + 61. h->length and h->crc are updated to the stored values. */
int ls_batch_seal(uint8_t *buf, size_t len, ls_batch_header *h);

/* Upper bound of the encoded size of `count` records whose keys, values and pre-encoded header
 * sections total the given byte counts (not counting the 61-byte batch header). */
int ls_records_size_bound(int32_t count, int64_t keys_bytes, int64_t values_bytes,
                          int64_t headers_bytes, int64_t *out);

/* Encode `count` records (KAFKA_FACTS.md 1.4) into out[0, cap) with offsetDelta i and
 * timestampDelta timestamps[i] - base_timestamp (0 when timestamps is NULL).
 *   keys:    concatenated key bytes; key_lengths[i] = -1 for a null key; key_lengths NULL = all null.
 *   values:  likewise (value_lengths NULL = all null values).
 *   headers: concatenated pre-encoded header sections (headersCount varint then the headers, as
 *            written by ls_headers_encode); headers_lengths[i] is section i's size; NULL = no
 *            headers (a single 0 byte is written per record).
 * *written = bytes used. BUFFER_TOO_SMALL if cap is short (use ls_records_size_bound). */
int ls_records_encode(uint8_t *out, size_t cap, size_t *written, int32_t count,
                      int64_t base_timestamp, const int64_t *timestamps,
                      const uint8_t *keys, const int32_t *key_lengths,
                      const uint8_t *values, const int32_t *value_lengths,
                      const uint8_t *headers, const int32_t *headers_lengths);

/* Encode one record's header section: headersCount varint, then per header keyLen varint (>= 0),
 * key, valueLen varint (-1 = null value), value. */
int ls_headers_encode(uint8_t *out, size_t cap, size_t *written, int32_t count,
                      const uint8_t *keys, const int32_t *key_lengths,
                      const uint8_t *values, const int32_t *value_lengths);

/* Build a whole uncompressed batch: header fields from h (compression bits must be 0,
 * records_count and last_offset_delta are set from count), records as ls_records_encode, CRC.
 * max_timestamp is computed from the timestamps unless the LOG_APPEND_TIME bit is set. */
int ls_batch_build(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h, int32_t count,
                   const int64_t *timestamps,
                   const uint8_t *keys, const int32_t *key_lengths,
                   const uint8_t *values, const int32_t *value_lengths,
                   const uint8_t *headers, const int32_t *headers_lengths);

/* The same as ls_batch_build / ls_records_encode, with keys and values given as Python lists or
 * tuples of `count` items, each a bytes object or None (null), passed by address (id(seq)).
 * keys NULL = all keys null. Any other item type gives LS_ERR_INVALID_ARGUMENT, and the caller
 * falls back to the copying path. C gathers straight from the objects: no join or length pass in
 * Python. These are the only functions that take the GIL (see pyobjects.c). */
int ls_batch_build_sequences(uint8_t *out, size_t cap, size_t *written, ls_batch_header *h,
                             int32_t count, const int64_t *timestamps, void *keys, void *values,
                             const uint8_t *headers, const int32_t *headers_lengths);
int ls_records_encode_sequences(uint8_t *out, size_t cap, size_t *written, int32_t count,
                                int64_t base_timestamp, const int64_t *timestamps, void *keys,
                                void *values, const uint8_t *headers,
                                const int32_t *headers_lengths);
/* Total bytes of the keys and of the values (None counts 0); INVALID_ARGUMENT as above. */
int ls_sequences_size(void *keys, void *values, int32_t count, int64_t *keys_bytes,
                      int64_t *values_bytes);

/* Build one Python object per record of a (decompressed) records region, for the consumer's
 * poll(): instances of the class `type` (by address, id(cls)) created without calling __init__,
 * whose __slots__ are set directly. `slots` is a tuple of the class's slot descriptors: first
 * the five per-record fields (offset, key, value, headers, timestamp), then one per constant
 * field, whose value is the item at the same position of the tuple `constants`. Records with
 * base_offset + offsetDelta < min_offset are skipped. timestamp = base_timestamp + delta, or
 * max_timestamp for every record when log_append_time != 0. key/value: bytes or None; headers:
 * None when the record has none, else a list of (str, bytes | None) tuples. The objects are
 * appended to the list `out`; *built = how many. Header keys that are not valid UTF-8 are
 * decoded with U+FFFD replacements, as Java does. INVALID_RECORD: the region is malformed;
 * INVALID_ARGUMENT: wrong object arguments, or Python ran out of
 * memory (no Python exception is left set). Takes the GIL (see pyobjects.c). */
int ls_records_build_objects(const uint8_t *buf, size_t len, int32_t count, int64_t base_offset,
                             int64_t base_timestamp, int32_t log_append_time,
                             int64_t max_timestamp, int64_t min_offset, void *type, void *slots,
                             void *constants, void *out, int32_t *built);

/* One decoded record. Offsets are byte positions relative to the start of the records region
 * passed to ls_records_decode. A length of -1 means null. */
typedef struct {
    int64_t timestamp_delta;
    int32_t offset_delta;
    int32_t key_offset;
    int32_t key_length;
    int32_t value_offset;
    int32_t value_length;
    int32_t headers_offset;           /* first byte after the headersCount varint */
    int32_t headers_length;           /* bytes of the headers after the count varint */
    int32_t headers_count;
} ls_record;

/* Decode a records region (the bytes after the header, decompressed). Exactly `count` records
 * must fill exactly `len` bytes, else INVALID_RECORD ("incorrect declared batch size").
 * out must hold count entries (cap >= count, else BUFFER_TOO_SMALL). */
int ls_records_decode(const uint8_t *buf, size_t len, int32_t count, ls_record *out, int32_t cap);

/* Decode the same region into a struct-of-arrays form for fast bulk use from Python/numpy.
 * Any array may be NULL to skip it; each non-NULL array must hold count entries. */
int ls_records_decode_columns(const uint8_t *buf, size_t len, int32_t count,
                              int64_t *timestamp_deltas, int32_t *offset_deltas,
                              int32_t *key_offsets, int32_t *key_lengths,
                              int32_t *value_offsets, int32_t *value_lengths,
                              int32_t *headers_offsets, int32_t *headers_lengths,
                              int32_t *headers_counts);

typedef struct {
    int32_t key_offset;
    int32_t key_length;
    int32_t value_offset;
    int32_t value_length;             /* -1 = null */
} ls_header;

/* Decode `count` headers starting at buf (the bytes after a record's headersCount varint). */
int ls_headers_decode(const uint8_t *buf, size_t len, int32_t count, ls_header *out, int32_t cap);

/* ----------------------------------------------------------------------------------------------
 * Partitioner hashes (partitioner.c): librdkafka's murmur2 and fnv1a partitioners.
 */
/* Kafka's Utils.murmur2 of buf[0, len): a signed 32-bit hash. */
int ls_murmur2(const uint8_t *buf, size_t len, int32_t *out);
/* The partition (>= 0): (murmur2 & 0x7fffffff) % partition_count, or INVALID_ARGUMENT. */
int ls_murmur2_partition(const uint8_t *buf, size_t len, int32_t partition_count);
/* The partition (>= 0): |FNV-1a 32-bit (signed) % partition_count|, or INVALID_ARGUMENT. */
int ls_fnv1a_partition(const uint8_t *buf, size_t len, int32_t partition_count);

/* ----------------------------------------------------------------------------------------------
 * Segment scanning (segment.c). A region is the bytes of one .log file (or a slice of one).
 */

/* Summary of one batch, produced by scans. */
typedef struct {
    int64_t position;                 /* byte position of the batch in the region */
    int64_t base_offset;
    int64_t last_offset;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int32_t size;                     /* length + 12 */
    int32_t base_sequence;
    int32_t records_count;
    int16_t producer_epoch;
    int16_t attributes;
    int16_t control_type;             /* control batches: the first record's key type, else -1 */
    int32_t coordinator_epoch;        /* end-txn markers: from the value, else -1 */
} ls_batch_info;

/* Scan state, in and out. Zero it (ls_scan_init) before the first call; pass it back unchanged to
 * resume after LS_SCAN_OUTPUT_FULL. */
typedef struct {
    int64_t position;                 /* next byte to scan; on return: end of the valid prefix */
    int64_t next_offset;              /* last_offset + 1 of the last valid batch, or -1 */
    int64_t max_timestamp;            /* max timestamp seen, -1 if none */
    int64_t offset_of_max_timestamp;  /* last_offset of the batch holding max_timestamp, or -1 */
    int64_t bytes_since_index_entry;  /* Kafka's validBytes - lastIndexEntry bookkeeping */
    int64_t last_index_offset;        /* offset of the last index entry written, or -1 */
    int64_t last_time_index_timestamp; /* timestamp of the last time index entry, or -1 */
    int64_t batches;                  /* valid batches scanned in total */
    int32_t index_entries;            /* entries written to index_out by this call */
    int32_t time_index_entries;       /* entries written to time_index_out by this call */
    int32_t infos;                    /* entries written to infos by this call */
    int32_t error;                    /* 0, or the ls_error that stopped the scan at `position` */
} ls_scan_state;

int ls_scan_init(ls_scan_state *state, int64_t start_position);

/* Walk [state->position, len) batch by batch, as Kafka's LogSegment.recover does: each batch is
 * parsed and CRC-checked (verify_crc != 0), its offsets must increase, stay >= base_offset and fit
 * relative int32. Index entries (big-endian, on-disk format) are written when more than
 * index_interval_bytes were scanned since the last one; time index entries go with them when the
 * max timestamp grew. infos receives one entry per batch (only batches with producer_id >= 0 or
 * the control bit when producer_batches_only != 0). Any output pointer may be NULL (cap 0).
 * Returns LS_SCAN_END when the whole region was valid, LS_SCAN_OUTPUT_FULL when an output array
 * filled first (state is ready to resume), or LS_OK with state->error set to the reason the first
 * invalid batch at state->position was rejected (LS_ERR_TRUNCATED for a partial tail). */
int ls_segment_scan(const uint8_t *buf, size_t len, int64_t base_offset,
                    int32_t index_interval_bytes, int32_t verify_crc, ls_scan_state *state,
                    uint8_t *index_out, int32_t index_cap,
                    uint8_t *time_index_out, int32_t time_index_cap,
                    ls_batch_info *infos, int32_t infos_cap, int32_t producer_batches_only);

/* Kafka's searchForOffsetWithSize: from start_position, the first batch whose last offset is >=
 * target. Header reads only, no CRC. NOT_FOUND if none. */
int ls_segment_find_offset(const uint8_t *buf, size_t len, int64_t start_position,
                           int64_t target_offset, ls_batch_info *out);

/* From start_position, the first batch whose max timestamp is >= target_timestamp. */
int ls_segment_find_timestamp(const uint8_t *buf, size_t len, int64_t start_position,
                              int64_t target_timestamp, ls_batch_info *out);

/* Fetch planning: whole batches from start_position whose base offset is < upper_offset, adding
 * batches while the total stays <= max_bytes, but always the first one (KIP-74).
 * *end_position = end of the last batch taken (== start_position when none qualifies);
 * *next_offset = last offset + 1 of the last batch taken (-1 if none). */
int ls_segment_read_extent(const uint8_t *buf, size_t len, int64_t start_position,
                           int64_t max_bytes, int64_t upper_offset,
                           int64_t *end_position, int64_t *next_offset);

/* ----------------------------------------------------------------------------------------------
 * Indexes (offset_index.c, time_index.c, txn_index.c). Entries are read in their big-endian
 * on-disk form straight from the mmap.
 */

/* Largest entry with base_offset + relativeOffset <= target; none gives (base_offset, 0). */
int ls_offset_index_lookup(const uint8_t *entries, int64_t entry_count, int64_t base_offset,
                           int64_t target_offset, int64_t *out_offset, int32_t *out_position);

/* Smallest entry whose position >= target_position: its absolute offset; NOT_FOUND if none
 * (Kafka's fetchUpperBoundOffset). */
int ls_offset_index_upper_bound(const uint8_t *entries, int64_t entry_count,
                                int64_t base_offset, int64_t target_position,
                                int64_t *out_offset);

/* Sanity check (Kafka's OffsetIndex.sanityCheck plus strict growth): offsets and positions
 * strictly increase, positions >= 0 and < log_size. CORRUPT_INDEX with *bad_entry set. */
int ls_offset_index_check(const uint8_t *entries, int64_t entry_count, int64_t log_size,
                          int64_t *bad_entry);

/* Largest entry with timestamp <= target; none gives (-1, base_offset). */
int ls_time_index_lookup(const uint8_t *entries, int64_t entry_count, int64_t base_offset,
                         int64_t target_timestamp, int64_t *out_timestamp, int64_t *out_offset);

/* Timestamps and offsets non-decreasing / increasing, relative offsets >= 0. */
int ls_time_index_check(const uint8_t *entries, int64_t entry_count, int64_t *bad_entry);

/* Collect aborted transactions from a .txnindex region (34-byte entries) whose lastOffset >=
 * fetch_offset and firstOffset < upper_offset, in file order. *stop = 1 when an entry with
 * lastStableOffset >= upper_offset was reached (later segments need not be searched).
 * BUFFER_TOO_SMALL when more than cap entries match (*count = cap filled). Entries with a version
 * byte other than 0 give CORRUPT_INDEX. */
int ls_txn_index_collect(const uint8_t *buf, size_t len, int64_t fetch_offset,
                         int64_t upper_offset, int64_t *producer_ids, int64_t *first_offsets,
                         int32_t cap, int32_t *count, int32_t *stop);

/* Versions 0, lastOffset strictly increasing, firstOffset <= lastOffset, lastOffset >= base. */
int ls_txn_index_check(const uint8_t *buf, size_t len, int64_t base_offset, int64_t *bad_entry);

/* ----------------------------------------------------------------------------------------------
 * File I/O (io.c). Every write, read, sync, truncate and rename of the store goes through one
 * replaceable table of operations, so tests can inject faults (issue: crash safety). These
 * functions retry EINTR and short transfers; errors come back as LS_ERR_IO / LS_ERR_NO_SPACE with
 * the errno in ls_io_errno() (thread-local). All of them release the GIL when called from cffi.
 */
int ls_io_pwrite_all(int32_t fd, const uint8_t *buf, size_t len, int64_t offset);
int ls_io_pread_all(int32_t fd, uint8_t *buf, size_t len, int64_t offset, size_t *nread);
int ls_io_fsync(int32_t fd);
int ls_io_fdatasync(int32_t fd);
int ls_io_ftruncate(int32_t fd, int64_t length);
int ls_io_rename(const char *source, const char *target);
int32_t ls_io_errno(void);

/* Fault injection. op is one of LS_IO_OP_*; kind one of LS_FAULT_*. A fault arms after
 * `after_calls` matching calls have passed and fires `count` times (-1 = forever).
 *   LS_FAULT_ERROR:       the call fails with errno `err` and transfers nothing;
 *   LS_FAULT_SHORT_WRITE: a write transfers only `bytes` bytes, then fails with errno `err`;
 *   LS_FAULT_CRASH_AFTER: writes stop after `bytes` more bytes in total; the write that crosses
 *                         the limit is cut there and fails with LS_ERR_FAULT_INJECTED, as does
 *                         every later write and sync (the process is "dead" for I/O).
 * path_filter, if non-empty, restricts rename faults to targets containing it. */
enum ls_io_op {
    LS_IO_OP_WRITE = 1,
    LS_IO_OP_READ = 2,
    LS_IO_OP_SYNC = 4,
    LS_IO_OP_TRUNCATE = 8,
    LS_IO_OP_RENAME = 16
};
enum ls_fault_kind {
    LS_FAULT_ERROR = 1,
    LS_FAULT_SHORT_WRITE = 2,
    LS_FAULT_CRASH_AFTER = 3
};
int ls_io_fault_set(int32_t op_mask, int32_t kind, int32_t err, int64_t after_calls,
                    int64_t count, int64_t bytes);
/* Sets the path_filter above (NULL or "" = none; shorter than 256 bytes). Call it before
 * ls_io_fault_set; it stays until ls_io_fault_clear. */
int ls_io_fault_set_path_filter(const char *path_filter);
int ls_io_fault_clear(void);
/* How many times a fault fired since the last ls_io_fault_set. */
int ls_io_fault_fired(int64_t *out);

/* Power-cut journal (io_journal.c; the model and its limits are described there). While a
 * journal runs, the calls above record what each write, truncate, sync and rename changed;
 * ls_io_journal_cut then rewinds every file to its last fsync and, with
 * LS_JOURNAL_CUT_DIR_ENTRIES, every directory under `root` to its entries at its last fsync.
 * Call the cut only when nothing uses the files any more (the store abandoned). It returns
 * LS_ERR_UNSUPPORTED when no journal runs or the journal lost track (a limit, an allocation or
 * a system call failed) and LS_ERR_IO when a rewinding call fails; *files_rewound and
 * *entries_changed count what it changed. start drops any previous journal; stop forgets it. */
enum ls_journal_cut_flags {
    LS_JOURNAL_CUT_DIR_ENTRIES = 1
};
int ls_io_journal_start(void);
int ls_io_journal_stop(void);
/* Take path's current entries as durable (the baseline of a directory at the start). */
int ls_io_journal_note_dir(const char *path);
int ls_io_journal_cut(const char *root, int32_t flags, int64_t *files_rewound,
                      int64_t *entries_changed);
/* *err = the errno that made the journal lose track, 0 while it follows everything. */
int ls_io_journal_broken(int32_t *err);
