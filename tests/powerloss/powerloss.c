/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libpowerloss.so: an LD_PRELOAD shim that records what a power loss
 * would leave on disk, so a test can SIGKILL a daemon, roll its files back
 * with rollback.py and restart it on exactly the durable state.
 *
 *   POWERLOSS_ROOT=/tmp/t/data[:/tmp/t/state]   trees to watch
 *   POWERLOSS_DIR=/tmp/t/shadow                 journal and copies
 *   LD_PRELOAD=.../libpowerloss.so daemon ...
 *   kill -KILL <pid>; rollback.py /tmp/t/shadow; daemon ... (again)
 *
 *   POWERLOSS_HOLD=/tmp/t/hold   (optional, also without the two above)
 *   every fsync and fdatasync waits while that file exists, before it
 *   syncs anything: a test holds a daemon's data in the page cache for
 *   as long as it needs to look at what the daemon exposes meanwhile
 *
 * The disk it simulates (a strict reading of POSIX, with no luck):
 *
 *   - A file's data is durable only as far as its last successful fsync or
 *     fdatasync (on any descriptor of it) covered: at that call the shim
 *     copies the whole file into the shadow dir. After the rollback the
 *     file holds exactly that copy: later writes, appends, truncations,
 *     fallocate()s and stores through a shared mapping are all gone. A
 *     file created after tracking started and never synced comes back
 *     empty (if its name is durable at all).
 *   - A directory entry (create, rename, unlink, mkdir, rmdir) is durable
 *     only once fsync(dir) succeeded: at that call the shim records the
 *     directory's listing (name -> inode). After the rollback each watched
 *     tree is rebuilt from the listings alone: a file created but whose
 *     directory was never synced is gone, an unlinked file whose removal
 *     was not synced is back, and rename(tmp, name) not followed by
 *     fsync(dir) leaves `name` with the old file's (synced) contents.
 *     Files are identified by inode; an unlink or rename that drops an
 *     inode's last link starts a new generation, so a reused inode number
 *     never lends its contents to the old name.
 *   - What exists when the shim starts (with no journal yet) is durable:
 *     the first process copies the trees in. Later processes (a restart
 *     without a rollback) continue the same journal, so a clean stop is
 *     not taken as making anything durable.
 *   - sync() and syncfs() make every watched file and directory durable.
 *
 * What it does not simulate:
 *   - Luck. Real disks (ext4 data=ordered, xfs) usually keep some writes
 *     that were never synced (ext4 commits a new file's directory entry
 *     with the file's fsync, writeback flushes pages every few seconds);
 *     this model keeps none, so it is stricter than any real file system.
 *     rollback.py --torn SEED keeps a random prefix of each file's
 *     unsynced appends, which is one more state real disks can produce.
 *   - Torn sectors inside synced data, reordered writes within a sync
 *     interval other than appended prefixes, and failing fsyncs.
 *   - sync_file_range(), msync() and O_SYNC/O_DSYNC descriptors do not
 *     count as syncs (the daemons use none of them). A program relying on
 *     them would see its data lost after a rollback, never kept by
 *     mistake.
 *   - Memory-mapped files get no special treatment: the collector stores
 *     index entries through a shared mapping and fdatasyncs the index's
 *     descriptor when a segment closes; the copy, read through the page
 *     cache, then holds those stores. The active segment's index is not
 *     synced on the produce path, so after a rollback it is usually short
 *     or stale (zeros where entries were), which recovery must and does
 *     handle by rebuilding it from the log.
 *   - Symlinks, hard links (a second name for an inode is fine, but the
 *     shim does not track link counts beyond "was this the last one"),
 *     ownership, times and exact permission bits beyond the file mode.
 *   - An fsync of a file after its last name was unlinked is attributed
 *     to whatever inode reuses its number (the daemons close before they
 *     unlink).
 *   - io_uring submissions (libuv 1.44 in Debian 12 uses none).
 *
 * Journal (POWERLOSS_DIR/journal, one line per event, each appended with
 * one write() under a process-wide lock, in the order the events
 * happened; blobs are files beside it):
 *
 *   R <dev> <ino> <path>          a watched root
 *   S <dev> <ino> <mode> <blob>   file contents now durable = blob
 *   D <dev> <ino> <blob>          directory listing now durable; blob has
 *                                 lines "<dev> <ino> <f|d> <name>"
 *   U <dev> <ino>                 last name of the inode removed
 *
 * Threads: every recording runs under one mutex, copy included, so the
 * journal order is the order in which the copies were taken (the
 * collector fdatasyncs from libuv's thread pool). The copy is taken after
 * the real call returns; writes racing with the sync may or may not be in
 * it, which is what a real fsync allows too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#define PL_MAX_ROOTS 8

static pthread_mutex_t pl_lock = PTHREAD_MUTEX_INITIALIZER;
static int pl_on;
static int pl_journal = -1;
static char pl_dir[1024];
static char pl_roots[PL_MAX_ROOTS][PATH_MAX];
static size_t pl_nroots;
static unsigned long pl_seq;

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rmdir)(const char *);
static int (*real_remove)(const char *);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);

static void pl_die(const char *what)
{
    /* A shim that cannot record must not let a test pass on a false model. */
    fprintf(stderr, "libpowerloss: %s: %s\n", what, strerror(errno));
    abort();
}

static void pl_resolve(void)
{
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_syncfs = dlsym(RTLD_NEXT, "syncfs");
    real_sync = dlsym(RTLD_NEXT, "sync");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    real_rmdir = dlsym(RTLD_NEXT, "rmdir");
    real_remove = dlsym(RTLD_NEXT, "remove");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_renameat = dlsym(RTLD_NEXT, "renameat");
    real_renameat2 = dlsym(RTLD_NEXT, "renameat2");
}

static void pl_emit(const char *fmt, ...)
{
    char line[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        errno = ENAMETOOLONG;
        pl_die("journal line");
    }
    if (write(pl_journal, line, (size_t)n) != n) {
        pl_die("journal write");
    }
}

/* A new blob name, unique across processes sharing the shadow dir. */
static void pl_blob(char *name, size_t len)
{
    snprintf(name, len, "b%ld.%lu", (long)getpid(), ++pl_seq);
}

static int pl_under_root(const char *path)
{
    for (size_t i = 0; i < pl_nroots; i++) {
        size_t n = strlen(pl_roots[i]);
        if (strncmp(path, pl_roots[i], n) == 0 && (path[n] == '\0' || path[n] == '/')) {
            return 1;
        }
    }
    return 0;
}

static int pl_fd_path(int fd, char *out, size_t len)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    if (n < 0) {
        return -1;
    }
    out[n] = '\0';
    return 0;
}

/* Copies everything readable from src into a new blob; called with the lock held. */
static void pl_copy(int src, char *blob, size_t blen)
{
    char path[PATH_MAX];
    pl_blob(blob, blen);
    snprintf(path, sizeof(path), "%s/%s", pl_dir, blob);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        pl_die(path);
    }
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(src, buf, sizeof(buf), off);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            pl_die("read for copy");
        }
        if (r == 0) {
            break;
        }
        for (ssize_t w = 0; w < r;) {
            ssize_t k = write(out, buf + w, (size_t)(r - w));
            if (k < 0 && errno != EINTR) {
                pl_die("write copy");
            }
            w += k > 0 ? k : 0;
        }
        off += r;
    }
    close(out);
}

static void pl_record_file(int fd, const struct stat *st)
{
    /* The descriptor may be write-only: read through a new one. */
    char blob[64], link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    int rfd = open(link, O_RDONLY | O_CLOEXEC);
    if (rfd < 0) {
        pl_die(link);
    }
    pl_copy(rfd, blob, sizeof(blob));
    close(rfd);
    pl_emit("S %lu %lu %o %s\n", (unsigned long)st->st_dev, (unsigned long)st->st_ino,
            (unsigned)(st->st_mode & 07777), blob);
}

static void pl_record_dir(int fd, const struct stat *st)
{
    char blob[64], path[PATH_MAX];
    int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        pl_die("open dir for listing");
    }
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        pl_die("fdopendir");
    }
    pl_blob(blob, sizeof(blob));
    snprintf(path, sizeof(path), "%s/%s", pl_dir, blob);
    FILE *out = fopen(path, "we");
    if (out == NULL) {
        pl_die(path);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        struct stat cs;
        if (fstatat(dirfd(d), e->d_name, &cs, AT_SYMLINK_NOFOLLOW) != 0) {
            continue; /* removed while listing: not durable either way */
        }
        char type = S_ISREG(cs.st_mode) ? 'f' : S_ISDIR(cs.st_mode) ? 'd' : 0;
        if (type) {
            fprintf(out, "%lu %lu %c %s\n", (unsigned long)cs.st_dev, (unsigned long)cs.st_ino,
                    type, e->d_name);
        }
    }
    if (fclose(out) != 0) {
        pl_die("write listing");
    }
    closedir(d);
    pl_emit("D %lu %lu %s\n", (unsigned long)st->st_dev, (unsigned long)st->st_ino, blob);
}

/* Records fd's current state as durable if it lies under a root. Lock held. */
static void pl_record_fd(int fd)
{
    char path[PATH_MAX];
    struct stat st;
    if (pl_fd_path(fd, path, sizeof(path)) != 0 || !pl_under_root(path) || fstat(fd, &st) != 0) {
        return;
    }
    if (S_ISREG(st.st_mode)) {
        pl_record_file(fd, &st);
    } else if (S_ISDIR(st.st_mode)) {
        pl_record_dir(fd, &st);
    }
}

/* Records a whole tree as durable (start, sync, syncfs). Lock held. */
static void pl_record_tree(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        pl_record_file(fd, &st);
    } else if (S_ISDIR(st.st_mode)) {
        pl_record_dir(fd, &st);
        DIR *d = fdopendir(fd);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                    char child[PATH_MAX];
                    snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
                    pl_record_tree(child);
                }
            }
            closedir(d);
            return;
        }
    }
    close(fd);
}

/*
 * Removing or replacing a name: pl_gone_begin takes the lock and notes
 * the inode if this is its last link, pl_gone_end records it once the
 * call succeeded (under the same lock, so no other thread can reuse the
 * inode number in between).
 */
typedef struct pl_gone {
    int dead;
    struct stat st;
} pl_gone_t;

static void pl_gone_begin(pl_gone_t *g, int dirfd, const char *name, int fromfd, const char *from)
{
    g->dead = 0;
    if (!pl_on) {
        return;
    }
    pthread_mutex_lock(&pl_lock);
    if (fstatat(dirfd, name, &g->st, AT_SYMLINK_NOFOLLOW) != 0) {
        return;
    }
    struct stat fs;
    if (from && fstatat(fromfd, from, &fs, AT_SYMLINK_NOFOLLOW) == 0 && fs.st_dev == g->st.st_dev &&
        fs.st_ino == g->st.st_ino) {
        return; /* rename of a name onto a link of the same inode */
    }
    g->dead = (S_ISREG(g->st.st_mode) && g->st.st_nlink == 1) || S_ISDIR(g->st.st_mode);
}

static int pl_gone_end(pl_gone_t *g, int rc)
{
    if (!pl_on) {
        return rc;
    }
    int saved = errno;
    if (rc == 0 && g->dead) {
        pl_emit("U %lu %lu\n", (unsigned long)g->st.st_dev, (unsigned long)g->st.st_ino);
    }
    pthread_mutex_unlock(&pl_lock);
    errno = saved;
    return rc;
}

__attribute__((constructor)) static void pl_init(void)
{
    pl_resolve();
    const char *dir = getenv("POWERLOSS_DIR");
    const char *roots = getenv("POWERLOSS_ROOT");
    if (dir == NULL || roots == NULL || !*dir || !*roots) {
        return;
    }
    if (strlen(dir) >= sizeof(pl_dir)) {
        errno = ENAMETOOLONG;
        pl_die("POWERLOSS_DIR");
    }
    snprintf(pl_dir, sizeof(pl_dir), "%s", dir);
    if (mkdir(pl_dir, 0755) != 0 && errno != EEXIST) {
        pl_die(pl_dir);
    }
    char list[PL_MAX_ROOTS * PATH_MAX];
    snprintf(list, sizeof(list), "%s", roots);
    for (char *save = NULL, *r = strtok_r(list, ":", &save); r; r = strtok_r(NULL, ":", &save)) {
        if (pl_nroots == PL_MAX_ROOTS) {
            errno = E2BIG;
            pl_die("POWERLOSS_ROOT");
        }
        if (realpath(r, pl_roots[pl_nroots]) == NULL) {
            pl_die(r);
        }
        if (strncmp(pl_dir, pl_roots[pl_nroots], strlen(pl_roots[pl_nroots])) == 0) {
            errno = EINVAL;
            pl_die("POWERLOSS_DIR must lie outside every POWERLOSS_ROOT");
        }
        pl_nroots++;
    }
    char jpath[PATH_MAX];
    snprintf(jpath, sizeof(jpath), "%s/journal", pl_dir);
    int fresh = access(jpath, F_OK) != 0;
    pl_journal = open(jpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (pl_journal < 0) {
        pl_die(jpath);
    }
    pl_on = 1;
    pthread_mutex_lock(&pl_lock);
    for (size_t i = 0; i < pl_nroots; i++) {
        struct stat st;
        if (stat(pl_roots[i], &st) != 0) {
            pl_die(pl_roots[i]);
        }
        pl_emit("R %lu %lu %s\n", (unsigned long)st.st_dev, (unsigned long)st.st_ino, pl_roots[i]);
        if (fresh) {
            pl_record_tree(pl_roots[i]);
        }
    }
    pthread_mutex_unlock(&pl_lock);
}

static int pl_after_sync(int fd, int rc)
{
    if (rc == 0 && pl_on) {
        int saved = errno;
        pthread_mutex_lock(&pl_lock);
        pl_record_fd(fd);
        pthread_mutex_unlock(&pl_lock);
        errno = saved;
    }
    return rc;
}

/* POWERLOSS_HOLD: waits (10 ms polls) while the named file exists. */
static void pl_hold(void)
{
    const char *hold = getenv("POWERLOSS_HOLD");
    if (hold == NULL || !*hold) {
        return;
    }
    int saved = errno;
    struct timespec ts = {0, 10 * 1000 * 1000};
    while (access(hold, F_OK) == 0) {
        nanosleep(&ts, NULL);
    }
    errno = saved;
}

int fsync(int fd)
{
    pl_hold();
    if (!real_fsync) {
        pl_resolve();
    }
    return pl_after_sync(fd, real_fsync(fd));
}

int fdatasync(int fd)
{
    pl_hold();
    if (!real_fdatasync) {
        pl_resolve();
    }
    return pl_after_sync(fd, real_fdatasync(fd));
}

static void pl_all(void)
{
    if (pl_on) {
        int saved = errno;
        pthread_mutex_lock(&pl_lock);
        for (size_t i = 0; i < pl_nroots; i++) {
            pl_record_tree(pl_roots[i]);
        }
        pthread_mutex_unlock(&pl_lock);
        errno = saved;
    }
}

int syncfs(int fd)
{
    if (!real_syncfs) {
        pl_resolve();
    }
    int rc = real_syncfs(fd);
    if (rc == 0) {
        pl_all();
    }
    return rc;
}

void sync(void)
{
    if (!real_sync) {
        pl_resolve();
    }
    real_sync();
    pl_all();
}

int unlink(const char *path)
{
    if (!real_unlink) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, AT_FDCWD, path, 0, NULL);
    return pl_gone_end(&g, real_unlink(path));
}

int unlinkat(int dirfd, const char *path, int flags)
{
    if (!real_unlinkat) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, dirfd, path, 0, NULL);
    return pl_gone_end(&g, real_unlinkat(dirfd, path, flags));
}

int rmdir(const char *path)
{
    if (!real_rmdir) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, AT_FDCWD, path, 0, NULL);
    return pl_gone_end(&g, real_rmdir(path));
}

int remove(const char *path)
{
    if (!real_remove) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, AT_FDCWD, path, 0, NULL);
    return pl_gone_end(&g, real_remove(path));
}

int rename(const char *from, const char *to)
{
    if (!real_rename) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, AT_FDCWD, to, AT_FDCWD, from);
    return pl_gone_end(&g, real_rename(from, to));
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    if (!real_renameat) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, tofd, to, fromfd, from);
    return pl_gone_end(&g, real_renameat(fromfd, from, tofd, to));
}

int renameat2(int fromfd, const char *from, int tofd, const char *to, unsigned flags)
{
    if (!real_renameat2) {
        pl_resolve();
    }
    pl_gone_t g;
    pl_gone_begin(&g, tofd, to, fromfd, from);
    return pl_gone_end(&g, real_renameat2(fromfd, from, tofd, to, flags));
}
