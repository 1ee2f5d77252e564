/*
 * errors.c: the ABI version and the text of every ls_error code.
 *
 * No on-disk format lives here. The codes themselves are pinned in logstore.h (enum ls_error);
 * Python maps them to exceptions in one table (logstore/_ffi.py ERROR_TABLE), so a code's meaning
 * must never change once released: add new codes at the end.
 *
 * Also home of ls_assert_fail, the one place the library may abort (a broken internal invariant,
 * i.e. a bug in this library, never bad input).
 *
 * Thread-safety: only static constant strings; safe from any thread.
 */
#include <stdio.h>

#include "ls_internal.h"

int ls_version(int32_t *abi_version) {
    if (abi_version == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *abi_version = LS_ABI_VERSION;
    return LS_OK;
}

const char *ls_strerror(int32_t code) {
    switch (code) {
    case LS_OK: return "success";
    case LS_ERR_INVALID_ARGUMENT: return "invalid argument";
    case LS_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
    case LS_ERR_TRUNCATED: return "input ends inside a record batch (partial tail)";
    case LS_ERR_CORRUPT_BATCH: return "corrupt record batch (impossible length or header field)";
    case LS_ERR_CRC_MISMATCH: return "record batch CRC-32C mismatch";
    case LS_ERR_UNSUPPORTED_MAGIC: return "unsupported record batch magic (not v2)";
    case LS_ERR_INVALID_RECORD: return "invalid record (malformed varint, size or count)";
    case LS_ERR_OFFSET_OVERFLOW: return "offset does not fit the segment's relative int32 range";
    case LS_ERR_NON_MONOTONIC: return "offsets do not increase";
    case LS_ERR_NOT_FOUND: return "not found";
    case LS_ERR_IO: return "I/O error";
    case LS_ERR_NO_SPACE: return "no space left on device";
    case LS_ERR_CORRUPT_INDEX: return "corrupt index";
    case LS_ERR_UNSUPPORTED: return "not supported on this machine";
    case LS_ERR_FAULT_INJECTED: return "injected I/O fault (simulated crash)";
    default: return "unknown error";
    }
}

void ls_assert_fail(const char *cond, const char *file, int line) {
    /* The only output the library ever produces: it is about to abort on its own bug. */
    fprintf(stderr, "logstore: internal assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
