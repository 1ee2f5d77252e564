/*
 * io_journal.c: the power-cut model. While a journal runs, every write, truncate, sync and
 * rename that goes through io.c is recorded, so that ls_io_journal_cut can leave the files the
 * way a power cut would: everything after the last fsync of each file is gone.
 *
 * What a cut does, and how faithful it is:
 *   - File contents, per inode: the size and bytes as of the start of its last successful
 *     fsync/fdatasync. Writes and truncations since then are undone: the file is cut back (or
 *     extended) to its durable size and every byte overwritten inside the durable region gets
 *     its old value back (undo records, saved before the write and applied newest first). A
 *     write racing a sync may or may not be kept, as on a real disk. An inode the journal meets
 *     for the first time is taken as durable as it is then: start the journal on a quiet tree.
 *   - Directory entries (LS_JOURNAL_CUT_DIR_ENTRIES): each directory under the root goes back
 *     to its entries as of its last fsync (ls_io_journal_note_dir takes the baseline at the
 *     start). A name created since is removed (a subdirectory with everything below it); a name
 *     a rename moved away inside the directory is moved back; a name a rename replaced, or an
 *     unlink removed, gets its file back with that file's durable content (the journal keeps
 *     every inode it has seen open, so it can copy it, and so its number is not reused). A
 *     directory with no snapshot (created after the start, never fsynced) loses every entry.
 *     Without the flag, directory entries stay as they are: a file system that committed its
 *     metadata just before the cut, while the data blocks were lost.
 *   - Not modelled: stores through a shared mmap (the offset and time indexes) are kept as the
 *     page cache holds them; only their file sizes rewind (they are derived data: recovery
 *     rebuilds them unless they were fsynced at a roll). A file removed before the journal ever
 *     saw it (no write, sync or directory snapshot) cannot come back. Torn sectors and
 *     reordered writes are not simulated: the cut is the most pessimistic consistent state,
 *     not a random one. A removed subdirectory cannot be restored (a directory inode cannot be
 *     linked again); only renames within one directory are undone.
 *
 * The hooks (ls_internal.h) run in io.c's wrappers before the real call, whichever operation
 * table is installed, so faults and the journal combine (a CRASH_AFTER fault freezes the disk
 * at an arbitrary byte; a cut then drops what was not synced). The cut itself uses the system
 * calls directly, never the (possibly "crashed") table.
 *
 * Limits: LS_JOURNAL_NODES_MAX inodes, LS_JOURNAL_UNDO_BYTES_MAX bytes of undo data,
 * LS_JOURNAL_ENTRIES_MAX names per directory, LS_JOURNAL_DEPTH_MAX directory levels. Past a
 * limit, or when an allocation or a system call of the journal fails, the journal marks itself
 * broken and the cut refuses to run (LS_ERR_UNSUPPORTED) rather than produce a wrong state.
 *
 * Memory and descriptors: the journal's own, released by ls_io_journal_stop (or a new start).
 * Thread-safety: journal_lock guards all state; a hook holds it while it records, never across
 * the real system call, so a slow fsync blocks no other thread's I/O.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "ls_internal.h"

#define LS_JOURNAL_NODES_MAX 4096
#define LS_JOURNAL_UNDO_BYTES_MAX ((size_t)256 << 20)
#define LS_JOURNAL_ENTRIES_MAX 65536
#define LS_JOURNAL_DEPTH_MAX 8
#define LS_JOURNAL_COPY_CHUNK_BYTES 65536
#define LS_JOURNAL_PROC_PATH_BYTES 64
#define LS_JOURNAL_RELIST_MAX 4096           /* directory fixes per directory and cut */

typedef struct {
    int64_t offset;
    size_t len;
    uint64_t seq;                     /* journal order: syncs drop the records before them */
    uint8_t *bytes;                   /* the old content of [offset, offset + len) */
} journal_undo;

typedef struct {
    char *name;
    uint64_t ino;
    int is_dir;
} journal_entry;

typedef struct {
    journal_entry *items;
    size_t count;
} journal_listing;

typedef struct {
    uint64_t dev;
    uint64_t ino;
    int fd;                           /* the journal's own descriptor of the inode */
    int is_dir;
    int64_t durable_size;             /* files: size as of the last sync */
    journal_undo *undo;
    size_t undo_count;
    size_t undo_cap;
    journal_listing snapshot;         /* directories: entries as of the last sync */
    int has_snapshot;
} journal_node;

static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int journal_active;
static struct {
    journal_node *nodes;
    size_t count;
    size_t cap;
    uint64_t seq;
    size_t undo_bytes;
    int broken;                       /* the errno that broke the model; 0 while it is whole */
} journal;

/* ----------------------------------------------------------------------------------------------
 * Small helpers (called with journal_lock held).
 */
static void journal_break(int err) {
    if (journal.broken == 0) {
        journal.broken = err != 0 ? err : EIO;
    }
}

static void listing_free(journal_listing *listing) {
    for (size_t i = 0; i < listing->count; i++) {
        free(listing->items[i].name);
    }
    free(listing->items);
    listing->items = NULL;
    listing->count = 0;
}

static void node_free(journal_node *node) {
    for (size_t i = 0; i < node->undo_count; i++) {
        free(node->undo[i].bytes);
    }
    free(node->undo);
    listing_free(&node->snapshot);
    if (node->fd >= 0) {
        close(node->fd);
    }
}

static void journal_free(void) {
    for (size_t i = 0; i < journal.count; i++) {
        node_free(&journal.nodes[i]);
    }
    free(journal.nodes);
    memset(&journal, 0, sizeof journal);
}

static journal_node *node_find(uint64_t dev, uint64_t ino) {
    for (size_t i = 0; i < journal.count; i++) {
        if (journal.nodes[i].dev == dev && journal.nodes[i].ino == ino) {
            return &journal.nodes[i];
        }
    }
    return NULL;
}

/* A descriptor of our own for the inode behind fd: writable for files (the cut rewrites them
 * after their owner closed its descriptors), a directory descriptor for directories. */
static int own_descriptor(int fd, int is_dir) {
    char path[LS_JOURNAL_PROC_PATH_BYTES];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int own = open(path, is_dir ? O_RDONLY | O_DIRECTORY | O_CLOEXEC : O_RDWR | O_CLOEXEC);
    return own >= 0 ? own : fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* The node of the inode open as fd, added (durable as it is now) when new. NULL: broken. */
static journal_node *node_for_fd(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        journal_break(errno);
        return NULL;
    }
    journal_node *node = node_find((uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (node != NULL) {
        return node;
    }
    if (journal.count == LS_JOURNAL_NODES_MAX) {
        journal_break(E2BIG);
        return NULL;
    }
    if (journal.count == journal.cap) {
        size_t cap = journal.cap ? journal.cap * 2 : 64;
        journal_node *grown = realloc(journal.nodes, cap * sizeof *grown);
        if (grown == NULL) {
            journal_break(ENOMEM);
            return NULL;
        }
        journal.nodes = grown;
        journal.cap = cap;
    }
    int is_dir = S_ISDIR(st.st_mode);
    int own = own_descriptor(fd, is_dir);
    if (own < 0) {
        journal_break(errno);
        return NULL;
    }
    node = &journal.nodes[journal.count++];
    memset(node, 0, sizeof *node);
    node->dev = (uint64_t)st.st_dev;
    node->ino = (uint64_t)st.st_ino;
    node->fd = own;
    node->is_dir = is_dir;
    node->durable_size = is_dir ? 0 : (int64_t)st.st_size;
    return node;
}

static int read_full(int fd, uint8_t *buf, size_t len, int64_t offset, size_t *done) {
    *done = 0;
    while (*done < len) {
        ssize_t n = pread(fd, buf + *done, len - *done, (off_t)(offset + (int64_t)*done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return n < 0 ? -1 : 0;
        }
        *done += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len, int64_t offset) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(offset + (int64_t)done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Save the bytes of [offset, end) that lie inside the durable region, before they change. */
static void undo_save(journal_node *node, int64_t offset, int64_t end) {
    end = end < node->durable_size ? end : node->durable_size;
    if (node->is_dir || offset >= end) {
        return;
    }
    size_t len = (size_t)(end - offset);
    if (journal.undo_bytes + len > LS_JOURNAL_UNDO_BYTES_MAX) {
        journal_break(E2BIG);
        return;
    }
    if (node->undo_count == node->undo_cap) {
        size_t cap = node->undo_cap ? node->undo_cap * 2 : 8;
        journal_undo *grown = realloc(node->undo, cap * sizeof *grown);
        if (grown == NULL) {
            journal_break(ENOMEM);
            return;
        }
        node->undo = grown;
        node->undo_cap = cap;
    }
    uint8_t *bytes = malloc(len);
    size_t got = 0;
    if (bytes == NULL || read_full(node->fd, bytes, len, offset, &got) != 0) {
        free(bytes);
        journal_break(bytes == NULL ? ENOMEM : errno);
        return;
    }
    /* Bytes past the current end (a file cut shorter since the sync) are zeros on restore. */
    memset(bytes + got, 0, len - got);
    node->undo[node->undo_count++] = (journal_undo){offset, len, journal.seq++, bytes};
    journal.undo_bytes += len;
}

/* ----------------------------------------------------------------------------------------------
 * Directory listings: names with their inode numbers (from fstatat, which agrees with fstat
 * on every file system, where readdir's d_ino may not).
 */
static int listing_add(journal_listing *listing, size_t *cap, const char *name, uint64_t ino,
                       int is_dir) {
    if (listing->count == LS_JOURNAL_ENTRIES_MAX) {
        errno = E2BIG;
        return -1;
    }
    if (listing->count == *cap) {
        size_t grown_cap = *cap ? *cap * 2 : 16;
        journal_entry *grown = realloc(listing->items, grown_cap * sizeof *grown);
        if (grown == NULL) {
            return -1;
        }
        listing->items = grown;
        *cap = grown_cap;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        return -1;
    }
    listing->items[listing->count++] = (journal_entry){copy, ino, is_dir};
    return 0;
}

/* Every entry of the directory open as dirfd except "." and "..". 0, or -1 with errno. */
static int listing_read(int dirfd, journal_listing *out) {
    memset(out, 0, sizeof *out);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        errno = err;
        return -1;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *entry;
    errno = 0;
    while (rc == 0 && (entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        struct stat st;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            continue;
        }
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = errno == ENOENT ? 0 : -1;          /* removed while we list: not there */
            continue;
        }
        rc = listing_add(out, &cap, name, (uint64_t)st.st_ino, S_ISDIR(st.st_mode));
    }
    int err = errno;
    closedir(dir);
    if (rc != 0) {
        listing_free(out);
        errno = err;
    }
    return rc;
}

static journal_entry *listing_by_name(const journal_listing *listing, const char *name) {
    for (size_t i = 0; i < listing->count; i++) {
        if (strcmp(listing->items[i].name, name) == 0) {
            return &listing->items[i];
        }
    }
    return NULL;
}

static journal_entry *listing_by_ino(const journal_listing *listing, uint64_t ino) {
    for (size_t i = 0; i < listing->count; i++) {
        if (listing->items[i].ino == ino) {
            return &listing->items[i];
        }
    }
    return NULL;
}

/* Keep every regular file of a snapshot open (a node), so a cut can bring back its name. */
static void snapshot_hold_files(int dirfd, const journal_listing *listing) {
    for (size_t i = 0; i < listing->count && journal.broken == 0; i++) {
        if (listing->items[i].is_dir) {
            continue;
        }
        int fd = openat(dirfd, listing->items[i].name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno != ENOENT && errno != ELOOP) {
                journal_break(errno);
            }
            continue;
        }
        node_for_fd(fd);
        close(fd);
    }
}

/* Install a listing as the directory node's durable entries (the node takes it over). */
static void snapshot_install(journal_node *node, journal_listing *listing) {
    listing_free(&node->snapshot);
    node->snapshot = *listing;
    node->has_snapshot = 1;
    memset(listing, 0, sizeof *listing);
}

/* ----------------------------------------------------------------------------------------------
 * Hooks called by io.c.
 */
void ls_io_journal_before_write(int32_t fd, int64_t offset, size_t len) {
    if (!atomic_load_explicit(&journal_active, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&journal_lock);
    journal_node *node = journal.broken == 0 ? node_for_fd(fd) : NULL;
    if (node != NULL) {
        undo_save(node, offset, offset + (int64_t)len);
    }
    pthread_mutex_unlock(&journal_lock);
}

void ls_io_journal_before_truncate(int32_t fd, int64_t length) {
    if (!atomic_load_explicit(&journal_active, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&journal_lock);
    journal_node *node = journal.broken == 0 ? node_for_fd(fd) : NULL;
    if (node != NULL) {
        undo_save(node, length, node->durable_size);
    }
    pthread_mutex_unlock(&journal_lock);
}

ls_journal_sync ls_io_journal_sync_begin(int32_t fd) {
    ls_journal_sync sync;
    memset(&sync, 0, sizeof sync);
    if (!atomic_load_explicit(&journal_active, memory_order_acquire)) {
        return sync;
    }
    pthread_mutex_lock(&journal_lock);
    journal_node *node = journal.broken == 0 ? node_for_fd(fd) : NULL;
    struct stat st;
    if (node != NULL && fstat(node->fd, &st) == 0) {
        sync.node_dev = node->dev;
        sync.node_ino = node->ino;
        sync.seq = journal.seq;
        sync.size = (int64_t)st.st_size;
        sync.active = 1;
        if (node->is_dir) {
            /* The entries as the sync starts; held open so the cut can restore them. */
            journal_listing *listing = calloc(1, sizeof *listing);
            if (listing == NULL || listing_read(node->fd, listing) != 0) {
                journal_break(listing == NULL ? ENOMEM : errno);
                free(listing);
                sync.active = 0;
            } else {
                snapshot_hold_files(node->fd, listing);
                sync.listing = listing;
            }
        }
    } else if (node != NULL) {
        journal_break(errno);
    }
    pthread_mutex_unlock(&journal_lock);
    return sync;
}

/* Drop the undo records a finished sync made durable (those saved before it started). */
static void undo_drop_before(journal_node *node, uint64_t seq) {
    size_t kept = 0;
    for (size_t i = 0; i < node->undo_count; i++) {
        if (node->undo[i].seq < seq) {
            journal.undo_bytes -= node->undo[i].len;
            free(node->undo[i].bytes);
        } else {
            node->undo[kept++] = node->undo[i];
        }
    }
    node->undo_count = kept;
}

void ls_io_journal_sync_end(ls_journal_sync *sync, int succeeded) {
    if (!sync->active) {
        return;
    }
    journal_listing *listing = (journal_listing *)sync->listing;
    pthread_mutex_lock(&journal_lock);
    journal_node *node = atomic_load_explicit(&journal_active, memory_order_acquire)
                             ? node_find(sync->node_dev, sync->node_ino) : NULL;
    if (node != NULL && succeeded) {
        if (node->is_dir && listing != NULL) {
            snapshot_install(node, listing);
        } else if (!node->is_dir) {
            undo_drop_before(node, sync->seq);
            node->durable_size = sync->size;
        }
    }
    pthread_mutex_unlock(&journal_lock);
    if (listing != NULL) {
        listing_free(listing);
        free(listing);
    }
    sync->active = 0;
}

void ls_io_journal_before_rename(const char *source, const char *target) {
    (void)source;
    if (!atomic_load_explicit(&journal_active, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&journal_lock);
    /* The inode about to be replaced: held, so a cut can give the name its old file back. */
    int fd = journal.broken == 0 ? open(target, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (fd >= 0) {
        node_for_fd(fd);
        close(fd);
    } else if (journal.broken == 0 && errno != ENOENT && errno != ELOOP) {
        journal_break(errno);
    }
    pthread_mutex_unlock(&journal_lock);
}

/* ----------------------------------------------------------------------------------------------
 * The cut.
 */

/* Put one file back to its durable state; 1 when something changed, 0 when not, -1 error. */
static int cut_file(journal_node *node) {
    struct stat st;
    if (node->is_dir || fstat(node->fd, &st) != 0) {
        return node->is_dir ? 0 : -1;
    }
    int changed = node->undo_count > 0 || (int64_t)st.st_size != node->durable_size;
    if ((int64_t)st.st_size != node->durable_size && ftruncate(node->fd, node->durable_size)) {
        return -1;
    }
    for (size_t i = node->undo_count; i-- > 0;) {
        const journal_undo *undo = &node->undo[i];
        if (write_full(node->fd, undo->bytes, undo->len, undo->offset) != 0) {
            return -1;
        }
    }
    return changed;
}

/* A new file at dirfd/name (replacing what has the name) with the content of the held inode
 * `source`; *ino = the new file's inode number. */
static int restore_copy(int dirfd, const char *name, const journal_node *source, uint64_t *ino) {
    uint8_t chunk[LS_JOURNAL_COPY_CHUNK_BYTES];
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
        return -1;
    }
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        errno = err;
        return -1;
    }
    *ino = (uint64_t)st.st_ino;
    int64_t offset = 0;
    for (;;) {
        size_t got = 0;
        if (read_full(source->fd, chunk, sizeof chunk, offset, &got) != 0 ||
            write_full(fd, chunk, got, offset) != 0) {
            int err = errno;
            close(fd);
            errno = err;
            return -1;
        }
        if (got < sizeof chunk) {
            break;
        }
        offset += (int64_t)got;
    }
    return close(fd);
}

static int remove_tree(int dirfd, const char *name, int depth) {
    if (depth > LS_JOURNAL_DEPTH_MAX) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    journal_listing listing;
    if (fd < 0 || listing_read(fd, &listing) != 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        errno = err;
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < listing.count && rc == 0; i++) {
        const journal_entry *entry = &listing.items[i];
        rc = entry->is_dir ? remove_tree(fd, entry->name, depth + 1)
                           : unlinkat(fd, entry->name, 0);
    }
    listing_free(&listing);
    close(fd);
    return rc == 0 ? unlinkat(dirfd, name, AT_REMOVEDIR) : rc;
}

/* Give `wanted` (a name of the durable snapshot) its inode back: 1 done, 0 impossible. A
 * copy is a new inode: the snapshot entry takes its number, so the name counts as restored. */
static int cut_fix_entry(int dirfd, uint64_t dev, const journal_listing *current,
                         journal_entry *wanted) {
    const journal_entry *moved = listing_by_ino(current, wanted->ino);
    if (moved != NULL) {
        return renameat(dirfd, moved->name, dirfd, wanted->name) == 0 ? 1 : -1;
    }
    const journal_node *held = node_find(dev, wanted->ino);
    const journal_entry *present = listing_by_name(current, wanted->name);
    if (held == NULL || held->is_dir || (present != NULL && present->is_dir)) {
        return 0;
    }
    return restore_copy(dirfd, wanted->name, held, &wanted->ino) == 0 ? 1 : -1;
}

/* The first thing in dirfd that differs from the snapshot, fixed: 1 fixed, 0 none left. */
static int cut_dir_step(int dirfd, uint64_t dev, journal_listing *durable, int depth) {
    journal_listing current;
    if (listing_read(dirfd, &current) != 0) {
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < durable->count && rc == 0; i++) {
        journal_entry *wanted = &durable->items[i];
        const journal_entry *present = listing_by_name(&current, wanted->name);
        if (present == NULL || present->ino != wanted->ino) {
            rc = cut_fix_entry(dirfd, dev, &current, wanted);
        }
    }
    for (size_t i = 0; i < current.count && rc == 0; i++) {
        const journal_entry *extra = &current.items[i];
        if (listing_by_name(durable, extra->name) == NULL) {
            rc = extra->is_dir ? remove_tree(dirfd, extra->name, depth + 1)
                               : unlinkat(dirfd, extra->name, 0);
            rc = rc == 0 ? 1 : -1;
        }
    }
    listing_free(&current);
    return rc;
}

static int cut_dir(int dirfd, int depth, int64_t *entries_changed) {
    struct stat st;
    if (depth > LS_JOURNAL_DEPTH_MAX || fstat(dirfd, &st) != 0) {
        errno = depth > LS_JOURNAL_DEPTH_MAX ? ELOOP : errno;
        return -1;
    }
    journal_node *node = node_find((uint64_t)st.st_dev, (uint64_t)st.st_ino);
    journal_listing none = {NULL, 0};
    journal_listing *durable = node != NULL && node->has_snapshot ? &node->snapshot : &none;
    int rc = 1;
    for (int fixes = 0; rc == 1 && fixes < LS_JOURNAL_RELIST_MAX; fixes++) {
        rc = cut_dir_step(dirfd, (uint64_t)st.st_dev, durable, depth);
        *entries_changed += rc == 1;
    }
    if (rc == 1) {
        errno = ELOOP;                /* the directory would not settle: give up, loudly */
        return -1;
    }
    for (size_t i = 0; i < durable->count && rc == 0; i++) {
        if (!durable->items[i].is_dir) {
            continue;
        }
        int fd = openat(dirfd, durable->items[i].name,
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            rc = cut_dir(fd, depth + 1, entries_changed);
            close(fd);
        }
    }
    return rc;
}

/* ----------------------------------------------------------------------------------------------
 * Control.
 */
int ls_io_journal_start(void) {
    pthread_mutex_lock(&journal_lock);
    journal_free();
    atomic_store_explicit(&journal_active, 1, memory_order_release);
    pthread_mutex_unlock(&journal_lock);
    return LS_OK;
}

int ls_io_journal_stop(void) {
    pthread_mutex_lock(&journal_lock);
    atomic_store_explicit(&journal_active, 0, memory_order_release);
    journal_free();
    pthread_mutex_unlock(&journal_lock);
    return LS_OK;
}

int ls_io_journal_note_dir(const char *path) {
    if (path == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return ls_io_fail_errno(errno);
    }
    ls_journal_sync sync = ls_io_journal_sync_begin(fd);
    int active = sync.active;
    ls_io_journal_sync_end(&sync, 1);
    close(fd);
    return active ? LS_OK : LS_ERR_UNSUPPORTED;
}

int ls_io_journal_cut(const char *root, int32_t flags, int64_t *files_rewound,
                      int64_t *entries_changed) {
    if (root == NULL || files_rewound == NULL || entries_changed == NULL ||
        (flags & ~LS_JOURNAL_CUT_DIR_ENTRIES) != 0) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    *files_rewound = *entries_changed = 0;
    pthread_mutex_lock(&journal_lock);
    int rc = LS_OK;
    if (!atomic_load_explicit(&journal_active, memory_order_acquire) || journal.broken != 0) {
        rc = LS_ERR_UNSUPPORTED;
    }
    for (size_t i = 0; i < journal.count && rc == LS_OK; i++) {
        int changed = cut_file(&journal.nodes[i]);
        rc = changed < 0 ? ls_io_fail_errno(errno) : LS_OK;
        *files_rewound += changed > 0;
    }
    if (rc == LS_OK && (flags & LS_JOURNAL_CUT_DIR_ENTRIES) != 0) {
        int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || cut_dir(fd, 0, entries_changed) != 0) {
            rc = ls_io_fail_errno(errno);
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    pthread_mutex_unlock(&journal_lock);
    return rc;
}

int ls_io_journal_broken(int32_t *err) {
    if (err == NULL) {
        return LS_ERR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&journal_lock);
    *err = journal.broken;
    pthread_mutex_unlock(&journal_lock);
    return LS_OK;
}
