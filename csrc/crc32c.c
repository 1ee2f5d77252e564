/*
 * crc32c.c: CRC-32C (Castagnoli), the checksum of record batch v2 and producer snapshots.
 *
 * What it covers on disk (KAFKA_FACTS.md 1.1, 3.6):
 *   RecordBatch  => crc uint32 at byte 17, over bytes [21, end of batch)
 *   .snapshot    => crc uint32 at byte 2, over bytes [6, EOF)
 * Parameters: reflected polynomial 0x82F63B78, initial register 0xFFFFFFFF, final XOR 0xFFFFFFFF
 * (java.util.zip.CRC32C). Check value: crc32c("123456789") = 0xE3069283.
 *
 * The running value convention of logstore.h: pass 0 to start and a previous result to continue,
 * so the register is the complement of the value (crc(a + b) == crc(crc(0, a), b)).
 *
 * Two paths, chosen once at run time:
 *   - software: slicing-by-8 over the constant tables of crc32c_tables.h (about 1 byte/cycle);
 *   - hardware: the SSE4.2 crc32 instruction, compiled with a per-function target attribute (no
 *     global -msse4.2), used only when __builtin_cpu_supports("sse4.2"). The instruction has a
 *     latency of 3 cycles and a throughput of 1 per cycle, so long buffers are cut into three
 *     lanes computed side by side; the lanes are joined by "shifting" a CRC over the length of
 *     the next lane (the zeros operator, tabulated per byte lane) and XOR-ing (CRC linearity).
 *   Setting LOGSTORE_CRC32C_SW=1 in the environment before the first CRC forces the software
 *   path (tests use it to exercise the no-SSE4.2 behaviour).
 *
 * Thread-safety: the tables are constant; the path choice is one atomic int written with the
 * same value by whichever thread gets there first.
 */
#include <stdatomic.h>

#include "ls_internal.h"
#include "crc32c_tables.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define LS_CRC32C_HAVE_HW 1
#else
#define LS_CRC32C_HAVE_HW 0
#endif

enum { LS_CRC_PATH_UNKNOWN = 0, LS_CRC_PATH_SW = 1, LS_CRC_PATH_HW = 2 };

_Static_assert((LS_CRC32C_LONG_BYTES & 7) == 0 && (LS_CRC32C_SHORT_BYTES & 7) == 0,
               "lanes are walked 8 bytes at a time");
_Static_assert(LS_CRC32C_SHORT_BYTES < LS_CRC32C_LONG_BYTES, "long lanes first");

static atomic_int ls_crc_path = LS_CRC_PATH_UNKNOWN;

static inline uint64_t crc32c_load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ----------------------------------------------------------------------------------------------
 * Software path: slicing-by-8 on a little-endian host.
 */
static uint32_t crc32c_sw_run(uint32_t crc, const uint8_t *p, size_t len) {
    uint32_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = ls_crc32c_slice[0][(c ^ *p) & 0xFF] ^ (c >> 8);
        p++;
        len--;
    }
    while (len >= 8) {
        uint64_t w = crc32c_load64(p) ^ c;
        c = ls_crc32c_slice[7][w & 0xFF] ^ ls_crc32c_slice[6][(w >> 8) & 0xFF] ^
            ls_crc32c_slice[5][(w >> 16) & 0xFF] ^ ls_crc32c_slice[4][(w >> 24) & 0xFF] ^
            ls_crc32c_slice[3][(w >> 32) & 0xFF] ^ ls_crc32c_slice[2][(w >> 40) & 0xFF] ^
            ls_crc32c_slice[1][(w >> 48) & 0xFF] ^ ls_crc32c_slice[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = ls_crc32c_slice[0][(c ^ *p) & 0xFF] ^ (c >> 8);
        p++;
        len--;
    }
    return ~c;
}

/* ----------------------------------------------------------------------------------------------
 * Hardware path.
 */
#if LS_CRC32C_HAVE_HW

/* The register after feeding the zero bytes the table stands for. */
static inline uint32_t crc32c_shift(const uint32_t table[4][256], uint32_t reg) {
    return table[0][reg & 0xFF] ^ table[1][(reg >> 8) & 0xFF] ^ table[2][(reg >> 16) & 0xFF] ^
           table[3][reg >> 24];
}

/* Three lanes of lane_bytes each, side by side; returns the register after all 3 * lane_bytes.
 * Lanes 1 and 2 start from register 0; by linearity the result is
 * shift(shift(r0) ^ r1) ^ r2, where shift feeds lane_bytes zero bytes. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
crc32c_hw_lanes(uint64_t reg, const uint8_t *p, size_t lane_bytes, const uint32_t table[4][256]) {
    uint64_t reg1 = 0;
    uint64_t reg2 = 0;
    for (size_t i = 0; i < lane_bytes; i += 8) {
        reg = _mm_crc32_u64(reg, crc32c_load64(p + i));
        reg1 = _mm_crc32_u64(reg1, crc32c_load64(p + lane_bytes + i));
        reg2 = _mm_crc32_u64(reg2, crc32c_load64(p + 2 * lane_bytes + i));
    }
    reg = crc32c_shift(table, (uint32_t)reg) ^ reg1;
    return crc32c_shift(table, (uint32_t)reg) ^ reg2;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_hw_run(uint32_t crc, const uint8_t *p,
                                                                size_t len) {
    uint64_t reg = (uint32_t)~crc;
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        reg = _mm_crc32_u8((uint32_t)reg, *p);
        p++;
        len--;
    }
    while (len >= 3 * LS_CRC32C_LONG_BYTES) {
        reg = crc32c_hw_lanes(reg, p, LS_CRC32C_LONG_BYTES, ls_crc32c_shift_long);
        p += 3 * LS_CRC32C_LONG_BYTES;
        len -= 3 * LS_CRC32C_LONG_BYTES;
    }
    while (len >= 3 * LS_CRC32C_SHORT_BYTES) {
        reg = crc32c_hw_lanes(reg, p, LS_CRC32C_SHORT_BYTES, ls_crc32c_shift_short);
        p += 3 * LS_CRC32C_SHORT_BYTES;
        len -= 3 * LS_CRC32C_SHORT_BYTES;
    }
    while (len >= 8) {
        reg = _mm_crc32_u64(reg, crc32c_load64(p));
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        reg = _mm_crc32_u8((uint32_t)reg, *p);
        p++;
        len--;
    }
    return ~(uint32_t)reg;
}

static int crc32c_detect(void) {
    const char *force_sw = getenv("LOGSTORE_CRC32C_SW");
    if (force_sw != NULL && force_sw[0] != '\0' && strcmp(force_sw, "0") != 0) {
        return LS_CRC_PATH_SW;
    }
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? LS_CRC_PATH_HW : LS_CRC_PATH_SW;
}

#else /* no x86-64: software only */

static uint32_t crc32c_hw_run(uint32_t crc, const uint8_t *p, size_t len) {
    LS_ASSERT(0 && "hardware CRC-32C path selected on a CPU without it");
    return crc32c_sw_run(crc, p, len);
}

static int crc32c_detect(void) { return LS_CRC_PATH_SW; }

#endif

static inline int crc32c_path(void) {
    int path = atomic_load_explicit(&ls_crc_path, memory_order_relaxed);
    if (__builtin_expect(path == LS_CRC_PATH_UNKNOWN, 0)) {
        path = crc32c_detect();
        atomic_store_explicit(&ls_crc_path, path, memory_order_relaxed);
    }
    return path;
}

uint32_t ls_crc32c_update(uint32_t crc, const uint8_t *buf, size_t len) {
    if (crc32c_path() == LS_CRC_PATH_HW) {
        return crc32c_hw_run(crc, buf, len);
    }
    return crc32c_sw_run(crc, buf, len);
}

/* ----------------------------------------------------------------------------------------------
 * Public entry points.
 */
int ls_crc32c(uint32_t crc, const uint8_t *buf, size_t len, uint32_t *out) {
    if (out == NULL || (buf == NULL && len > 0)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *out = ls_crc32c_update(crc, buf, len);
    return LS_OK;
}

int ls_crc32c_sw(uint32_t crc, const uint8_t *buf, size_t len, uint32_t *out) {
    if (out == NULL || (buf == NULL && len > 0)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *out = crc32c_sw_run(crc, buf, len);
    return LS_OK;
}

int ls_crc32c_hw(uint32_t crc, const uint8_t *buf, size_t len, uint32_t *out) {
    if (out == NULL || (buf == NULL && len > 0)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    if (crc32c_path() != LS_CRC_PATH_HW) {
        return LS_ERR_UNSUPPORTED;
    }
    *out = crc32c_hw_run(crc, buf, len);
    return LS_OK;
}

int ls_crc32c_hw_available(int32_t *out) {
    if (out == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *out = crc32c_path() == LS_CRC_PATH_HW ? 1 : 0;
    return LS_OK;
}
