/*
 * io.c: every write, read, sync, truncate and rename of the store, through one replaceable table.
 *
 * No on-disk format lives here; this is the seam crash-safety tests use (bbolt's db.ops.writeAt).
 *
 * Normal path: a static table holding the libc calls themselves. An ls_io_* call costs one
 * atomic pointer load more than the system call. The wrappers retry EINTR (at most
 * LS_IO_EINTR_RETRIES_MAX times in a row) and short transfers, and map failures to LS_ERR_IO, or
 * LS_ERR_NO_SPACE for ENOSPC / EDQUOT, keeping errno in a thread-local (ls_io_errno).
 *
 * Fault path: ls_io_fault_set swaps in a second table whose functions consult the fault
 * description (under a mutex), then either call the real function, fail, or transfer part of the
 * data first. The fault model (logstore.h has the contract):
 *   - a call "matches" when its op is in op_mask (renames: and its target contains the path
 *     filter, if one is set); the first after_calls matching calls pass untouched;
 *   - ERROR fails the next `count` matching calls (-1: all) with errno err (EIO when 0);
 *   - SHORT_WRITE (writes only) transfers the first `bytes` bytes, then fails with errno err;
 *   - CRASH_AFTER gives writes a budget of `bytes` bytes: the write that would exceed it is cut
 *     exactly at the budget and fails with LS_ERR_FAULT_INJECTED; from then on every write, sync,
 *     truncate and rename fails the same way (the process is dead for I/O); reads still work so
 *     a test can look at what reached the file. `count` does not apply.
 * ls_io_fault_clear puts the real table back; the fired counter survives until the next set.
 *
 * Power cuts: whichever table is installed, the wrappers first tell the power-cut journal
 * (io_journal.c) what they are about to change, so a test can later rewind every file to its
 * last fsync; without a running journal that costs one atomic load per call.
 *
 * Thread-safety: the table pointer is atomic; the fault description is guarded by fault_lock;
 * errno and the injected-fault flag are thread-local, so concurrent calls never mix them up.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

#include "ls_internal.h"

#define LS_IO_EINTR_RETRIES_MAX 1000
#define LS_IO_PATH_FILTER_BYTES_MAX 256
#define LS_IO_OP_ALL (LS_IO_OP_WRITE | LS_IO_OP_READ | LS_IO_OP_SYNC | LS_IO_OP_TRUNCATE | \
                      LS_IO_OP_RENAME)

typedef struct {
    ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t offset);
    ssize_t (*pread)(int fd, void *buf, size_t len, off_t offset);
    int (*fsync)(int fd);
    int (*fdatasync)(int fd);
    int (*ftruncate)(int fd, off_t length);
    int (*rename)(const char *source, const char *target);
} ls_io_ops;

static const ls_io_ops io_real = {pwrite, pread, fsync, fdatasync, ftruncate, rename};

typedef struct {
    int32_t op_mask;
    int32_t kind;                     /* 0 = none */
    int32_t err;
    int64_t after_calls;              /* matching calls still to pass before the fault arms */
    int64_t remaining;                /* fires left, -1 = forever (ERROR, SHORT_WRITE) */
    int64_t bytes;                    /* SHORT_WRITE: bytes to transfer; CRASH_AFTER: budget */
    int64_t fired;
    int crashed;
    char path_filter[LS_IO_PATH_FILTER_BYTES_MAX];
} io_fault;

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static io_fault fault;
static _Thread_local int32_t io_last_errno;
static _Thread_local int io_injected;

/* ----------------------------------------------------------------------------------------------
 * The faulty table.
 */
typedef enum { FAULT_PASS, FAULT_FAIL, FAULT_PARTIAL_FAIL, FAULT_CRASH } fault_action;

typedef struct {
    fault_action action;
    int err;
    size_t allowed;                   /* bytes to transfer before failing (partial, crash) */
} fault_decision;

/* ERROR and SHORT_WRITE once armed: fire while fires remain. Called with fault_lock held. */
static fault_decision fault_fire_counted(size_t len) {
    fault_decision d = {FAULT_PASS, 0, 0};
    if (fault.remaining == 0) {
        return d;
    }
    if (fault.remaining > 0) {
        fault.remaining--;
    }
    fault.fired++;
    d.err = fault.err;
    if (fault.kind == LS_FAULT_SHORT_WRITE) {
        d.action = FAULT_PARTIAL_FAIL;
        d.allowed = (uint64_t)fault.bytes < len ? (size_t)fault.bytes : len;
    } else {
        d.action = FAULT_FAIL;
    }
    return d;
}

/* CRASH_AFTER once armed: writes spend the budget; the one that would overrun it crashes. */
static fault_decision fault_fire_crash(int32_t op, size_t len) {
    fault_decision d = {FAULT_PASS, 0, 0};
    if (op != LS_IO_OP_WRITE) {
        return d;
    }
    if ((uint64_t)len <= (uint64_t)fault.bytes) {
        fault.bytes -= (int64_t)len;
        return d;
    }
    d.action = FAULT_CRASH;
    d.allowed = (size_t)fault.bytes;
    fault.bytes = 0;
    fault.crashed = 1;
    fault.fired++;
    return d;
}

static fault_decision fault_decide(int32_t op, size_t len, const char *target) {
    fault_decision d = {FAULT_PASS, 0, 0};
    pthread_mutex_lock(&fault_lock);
    if (fault.kind == LS_FAULT_CRASH_AFTER && fault.crashed) {
        if (op != LS_IO_OP_READ) {
            fault.fired++;
            d.action = FAULT_CRASH;
        }
    } else if (fault.kind == 0 || (fault.op_mask & op) == 0) {
        /* not a matching call */
    } else if (op == LS_IO_OP_RENAME && fault.path_filter[0] != '\0' &&
               (target == NULL || strstr(target, fault.path_filter) == NULL)) {
        /* a rename the filter leaves alone */
    } else if (fault.after_calls > 0) {
        fault.after_calls--;
    } else if (fault.kind == LS_FAULT_CRASH_AFTER) {
        d = fault_fire_crash(op, len);
    } else {
        d = fault_fire_counted(len);
    }
    pthread_mutex_unlock(&fault_lock);
    return d;
}

/* Fails the current call; a crash is flagged so the wrapper reports LS_ERR_FAULT_INJECTED. */
static int fault_fail(const fault_decision *d) {
    if (d->action == FAULT_CRASH) {
        io_injected = 1;
        errno = EIO;
    } else {
        errno = d->err;
    }
    return -1;
}

static ssize_t faulty_pwrite(int fd, const void *buf, size_t len, off_t offset) {
    fault_decision d = fault_decide(LS_IO_OP_WRITE, len, NULL);
    if (d.action == FAULT_PASS) {
        return pwrite(fd, buf, len, offset);
    }
    /* The part that reaches the file before the failure; each pass writes at least a byte. */
    const uint8_t *bytes = buf;
    size_t done = 0;
    for (size_t attempt = 0; done < d.allowed && attempt < d.allowed; attempt++) {
        ssize_t n = pwrite(fd, bytes + done, d.allowed - done, offset + (off_t)done);
        if (n < 0) {
            return -1; /* a real error wins, with its errno */
        }
        if (n == 0) {
            break;
        }
        done += (size_t)n;
    }
    return fault_fail(&d);
}

static ssize_t faulty_pread(int fd, void *buf, size_t len, off_t offset) {
    fault_decision d = fault_decide(LS_IO_OP_READ, len, NULL);
    return d.action == FAULT_PASS ? pread(fd, buf, len, offset) : fault_fail(&d);
}

static int faulty_fsync(int fd) {
    fault_decision d = fault_decide(LS_IO_OP_SYNC, 0, NULL);
    return d.action == FAULT_PASS ? fsync(fd) : fault_fail(&d);
}

static int faulty_fdatasync(int fd) {
    fault_decision d = fault_decide(LS_IO_OP_SYNC, 0, NULL);
    return d.action == FAULT_PASS ? fdatasync(fd) : fault_fail(&d);
}

static int faulty_ftruncate(int fd, off_t length) {
    fault_decision d = fault_decide(LS_IO_OP_TRUNCATE, 0, NULL);
    return d.action == FAULT_PASS ? ftruncate(fd, length) : fault_fail(&d);
}

static int faulty_rename(const char *source, const char *target) {
    fault_decision d = fault_decide(LS_IO_OP_RENAME, 0, target);
    return d.action == FAULT_PASS ? rename(source, target) : fault_fail(&d);
}

static const ls_io_ops io_faulty = {faulty_pwrite, faulty_pread, faulty_fsync,
                                    faulty_fdatasync, faulty_ftruncate, faulty_rename};

static _Atomic(const ls_io_ops *) io_table = &io_real;

static inline const ls_io_ops *io_ops(void) {
    return atomic_load_explicit(&io_table, memory_order_acquire);
}

/* ----------------------------------------------------------------------------------------------
 * The wrappers.
 */
static int io_fail(int err) {
    if (io_injected) {
        io_injected = 0;
        io_last_errno = 0;
        return LS_ERR_FAULT_INJECTED;
    }
    io_last_errno = err;
    return err == ENOSPC || err == EDQUOT ? LS_ERR_NO_SPACE : LS_ERR_IO;
}

static inline int io_retry(int *interrupts) {
    return errno == EINTR && !io_injected && (*interrupts)++ < LS_IO_EINTR_RETRIES_MAX;
}

static int io_range_check(int32_t fd, const void *buf, size_t len, int64_t offset) {
    if (fd < 0 || (buf == NULL && len > 0) || offset < 0 ||
        (uint64_t)len > (uint64_t)(INT64_MAX - offset)) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    return LS_OK;
}

int ls_io_pwrite_all(int32_t fd, const uint8_t *buf, size_t len, int64_t offset) {
    int rc = io_range_check(fd, buf, len, offset);
    if (rc != LS_OK) {
        return rc;
    }
    ls_io_journal_before_write(fd, offset, len);
    const ls_io_ops *ops = io_ops();
    size_t done = 0;
    int interrupts = 0;
    while (done < len) { /* each pass makes progress, fails, or spends an EINTR retry */
        ssize_t n = ops->pwrite(fd, buf + done, len - done, (off_t)(offset + (int64_t)done));
        if (n < 0) {
            if (io_retry(&interrupts)) {
                continue;
            }
            return io_fail(errno);
        }
        if (n == 0) {
            return io_fail(EIO); /* no progress on a regular file: give up rather than spin */
        }
        done += (size_t)n;
    }
    return LS_OK;
}

int ls_io_pread_all(int32_t fd, uint8_t *buf, size_t len, int64_t offset, size_t *nread) {
    int rc = io_range_check(fd, buf, len, offset);
    if (rc != LS_OK || nread == NULL) {
        return rc != LS_OK ? rc : LS_ERR_INVALID_ARGUMENT;
    }
    const ls_io_ops *ops = io_ops();
    size_t done = 0;
    int interrupts = 0;
    *nread = 0;
    while (done < len) {
        ssize_t n = ops->pread(fd, buf + done, len - done, (off_t)(offset + (int64_t)done));
        if (n < 0) {
            if (io_retry(&interrupts)) {
                continue;
            }
            return io_fail(errno);
        }
        if (n == 0) {
            break; /* end of file */
        }
        done += (size_t)n;
    }
    *nread = done;
    return LS_OK;
}

static int io_sync(int32_t fd, int (*sync_fn)(int)) {
    if (fd < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    ls_journal_sync journal = ls_io_journal_sync_begin(fd);
    int rc = LS_OK;
    for (int interrupts = 0; sync_fn(fd) != 0;) {
        if (!io_retry(&interrupts)) {
            rc = io_fail(errno);
            break;
        }
    }
    ls_io_journal_sync_end(&journal, rc == LS_OK);
    return rc;
}

int ls_io_fsync(int32_t fd) { return io_sync(fd, io_ops()->fsync); }

int ls_io_fdatasync(int32_t fd) { return io_sync(fd, io_ops()->fdatasync); }

int ls_io_ftruncate(int32_t fd, int64_t length) {
    if (fd < 0 || length < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    const ls_io_ops *ops = io_ops();
    ls_io_journal_before_truncate(fd, length);
    for (int interrupts = 0; ops->ftruncate(fd, (off_t)length) != 0;) {
        if (!io_retry(&interrupts)) {
            return io_fail(errno);
        }
    }
    return LS_OK;
}

int ls_io_rename(const char *source, const char *target) {
    if (source == NULL || target == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    ls_io_journal_before_rename(source, target);
    if (io_ops()->rename(source, target) != 0) {
        return io_fail(errno);
    }
    return LS_OK;
}

int32_t ls_io_errno(void) { return io_last_errno; }

int ls_io_fail_errno(int err) {
    io_last_errno = err;
    return err == ENOSPC || err == EDQUOT ? LS_ERR_NO_SPACE : LS_ERR_IO;
}

/* ----------------------------------------------------------------------------------------------
 * Fault control.
 */
static int fault_args_check(int32_t op_mask, int32_t kind, int32_t err, int64_t after_calls,
                            int64_t count, int64_t bytes) {
    if (op_mask == 0 || (op_mask & ~LS_IO_OP_ALL) != 0 || err < 0 || after_calls < 0 ||
        count < -1 || bytes < 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    switch (kind) {
    case LS_FAULT_ERROR:
        return LS_OK;
    case LS_FAULT_SHORT_WRITE:
        return op_mask == LS_IO_OP_WRITE ? LS_OK : LS_ERR_INVALID_ARGUMENT;
    case LS_FAULT_CRASH_AFTER:
        return (op_mask & LS_IO_OP_WRITE) != 0 ? LS_OK : LS_ERR_INVALID_ARGUMENT;
    default:
        return LS_ERR_INVALID_ARGUMENT;
    }
}

int ls_io_fault_set(int32_t op_mask, int32_t kind, int32_t err, int64_t after_calls,
                    int64_t count, int64_t bytes) {
    int rc = fault_args_check(op_mask, kind, err, after_calls, count, bytes);
    if (rc != LS_OK) {
        return rc;
    }
    pthread_mutex_lock(&fault_lock);
    fault.op_mask = op_mask;
    fault.kind = kind;
    fault.err = err != 0 ? err : EIO;
    fault.after_calls = after_calls;
    fault.remaining = count;
    fault.bytes = bytes;
    fault.fired = 0;
    fault.crashed = 0;
    atomic_store_explicit(&io_table, &io_faulty, memory_order_release);
    pthread_mutex_unlock(&fault_lock);
    return LS_OK;
}

int ls_io_fault_set_path_filter(const char *path_filter) {
    size_t n = path_filter != NULL ? strlen(path_filter) : 0;
    if (n >= LS_IO_PATH_FILTER_BYTES_MAX) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&fault_lock);
    memset(fault.path_filter, 0, sizeof fault.path_filter);
    if (n > 0) {
        memcpy(fault.path_filter, path_filter, n);
    }
    pthread_mutex_unlock(&fault_lock);
    return LS_OK;
}

int ls_io_fault_clear(void) {
    pthread_mutex_lock(&fault_lock);
    atomic_store_explicit(&io_table, &io_real, memory_order_release);
    fault.kind = 0;
    fault.op_mask = 0;
    fault.crashed = 0;
    memset(fault.path_filter, 0, sizeof fault.path_filter);
    pthread_mutex_unlock(&fault_lock);
    return LS_OK;
}

int ls_io_fault_fired(int64_t *out) {
    if (out == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&fault_lock);
    *out = fault.fired;
    pthread_mutex_unlock(&fault_lock);
    return LS_OK;
}
