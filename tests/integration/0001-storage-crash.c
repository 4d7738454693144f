/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Crash test for the log engine: acknowledged appends survive SIGKILL.
 *
 *   0001-storage-crash [--iterations N] [--seed S] [--keep]
 *
 * Each iteration starts a child (this program, re-executed with --child)
 * that opens the data directory with storage.fsync=ack and appends record
 * batches as fast as it can, many in flight, waiting for durability with
 * coll_log_wait_durable(). Each time a wait completes, the child writes the
 * acknowledged offset (8 bytes) into a pipe: only then is the offset
 * "acknowledged". The parent SIGKILLs the child at a random moment (during
 * its startup and recovery, too), drains the pipe, then restarts the
 * storage itself — which runs crash recovery — and checks:
 *
 *   - the log end is past every acknowledged offset;
 *   - reading the log from its start returns every offset once, in order,
 *     each batch's CRC valid, each record's value matching its key;
 *   - every .log file on disk is a sequence of whole valid batches.
 *
 * Batches vary in size (up to 1.5 MiB, so SIGKILL can land in the middle of
 * a large write) and codec; segments are small so rolls happen under load.
 * Exit status 0 on success; on failure the data directory is kept.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "storage/storage.h"
#include "tributary/buf.h"
#include "tributary/log.h"
#include "tributary/record.h"

#define TOPIC "crash"
#define MAX_IN_FLIGHT 32

static void log_config(coll_log_config_t *cfg)
{
    coll_log_config_init(cfg);
    cfg->segment_bytes = 512 * 1024;
    cfg->index_interval_bytes = 1024;
    cfg->max_message_bytes = 2 << 20;
    cfg->segment_index_bytes = 64 * 1024;
}

static int config_for(void *arg, const char *topic, int32_t partition, coll_log_config_t *out)
{
    (void)arg;
    (void)topic;
    (void)partition;
    log_config(out);
    return 0;
}

static void storage_config(coll_storage_config_t *c, const char *dir)
{
    coll_storage_config_init(c);
    c->data_dir = dir;
    c->fsync = COLL_FSYNC_ACK;
    log_config(&c->log_defaults);
    c->log_config = config_for;
}

/* The value of a record is a function of its key, so corruption shows. */
static void fill_value(uint8_t *v, size_t n, const char *key)
{
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++) {
        h = (h ^ (uint8_t)*p) * 16777619u;
    }
    for (size_t i = 0; i < n; i++) {
        h = h * 1103515245u + 12345u;
        v[i] = (uint8_t)('a' + (h >> 16) % 26);
    }
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- child: append until killed ---------------------------------------------------- */

typedef struct ack {
    coll_durable_req_t req;
    int64_t offset;
    bool busy;
} ack_t;

typedef struct child {
    uv_loop_t loop;
    uv_timer_t timer;
    coll_storage_t *st;
    coll_log_t *log;
    int fd;
    uint64_t seq;
    ack_t acks[MAX_IN_FLIGHT];
    int in_flight;
    uint8_t *value;
} child_t;

static int g_ack_fd = -1;

static void on_durable(coll_durable_req_t *req, int status)
{
    ack_t *a = req->data;
    a->busy = false;
    if (status != 0) {
        fprintf(stderr, "child: durability wait failed: %s\n", trib_strerror(status));
        _exit(3);
    }
    /* Acknowledged only now, once it is on disk. */
    if (write(g_ack_fd, &a->offset, sizeof(a->offset)) != (ssize_t)sizeof(a->offset)) {
        _exit(4);
    }
}

static void produce(uv_timer_t *h)
{
    child_t *c = h->data;
    int free_slot = -1;
    c->in_flight = 0;
    for (int i = 0; i < MAX_IN_FLIGHT; i++) {
        if (c->acks[i].busy) {
            c->in_flight++;
        } else if (free_slot < 0) {
            free_slot = i;
        }
    }
    if (free_slot < 0) {
        return;
    }
    trib_buf_t b;
    trib_buf_init(&b);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    uint64_t r = rnd();
    o.codec = (r % 7 == 0) ? TRIB_CODEC_LZ4 : TRIB_CODEC_NONE;
    trib_batch_builder_t bb;
    if (trib_batch_builder_init(&bb, &b, &o) != 0) {
        _exit(5);
    }
    bool big = r % 200 == 0; /* up to 1.2 MiB: a write SIGKILL can tear */
    int n = 1 + (int)(rnd() % 20);
    size_t vlen = big ? 60000 : 10 + (size_t)(rnd() % 500);
    for (int i = 0; i < n; i++) {
        char key[48];
        int kl = snprintf(key, sizeof(key), "p%d-%" PRIu64, (int)getpid(), c->seq++);
        fill_value(c->value, vlen, key);
        trib_record_in_t rec = {
            .key = trib_record_bytes(key, kl),
            .value = trib_record_bytes(c->value, (int32_t)vlen),
            .timestamp = 1700000000000LL + (int64_t)c->seq,
        };
        if (trib_batch_builder_add(&bb, &rec) != 0) {
            _exit(5);
        }
    }
    if (trib_batch_builder_finish(&bb) != 0) {
        _exit(5);
    }
    trib_batch_builder_fini(&bb);
    size_t len;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &len);
    coll_append_info_t info;
    int rc = coll_log_append(c->log, p, len, 1, COLL_APPEND_CRC_VERIFIED, &info);
    trib_buf_fini(&b);
    if (rc) {
        fprintf(stderr, "child: append: %s\n", trib_strerror(rc));
        _exit(6);
    }
    coll_log_set_high_watermark(c->log, info.log_end_offset);
    ack_t *a = &c->acks[free_slot];
    a->busy = true;
    a->offset = info.last_offset;
    a->req.data = a;
    if (coll_log_wait_durable(c->log, info.last_offset, &a->req, on_durable) != 0) {
        _exit(7);
    }
}

static int run_child(const char *dir, int fd)
{
    static child_t c;
    memset(&c, 0, sizeof(c));
    rng_state = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL | 1;
    c.fd = fd;
    g_ack_fd = fd;
    c.value = malloc(64 * 1024);
    uv_loop_t *loop = uv_default_loop();
    coll_storage_config_t cfg;
    storage_config(&cfg, dir);
    trib_error_t err;
    if (coll_storage_open(loop, &cfg, &c.st, &err) != 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 2;
    }
    coll_log_config_t lc;
    log_config(&lc);
    if (coll_storage_create_log(c.st, TOPIC, 0, &lc, NULL, &c.log, &err) != 0) {
        fprintf(stderr, "child: create: %s\n", err.msg);
        return 2;
    }
    /*
     * One batch a millisecond (several MB/s), so the log stays small enough
     * to verify whole after every kill, while fdatasyncs of a few ms each
     * still find several waits to group.
     */
    uv_timer_init(loop, &c.timer);
    c.timer.data = &c;
    uv_timer_start(&c.timer, produce, 1, 1);
    uv_run(loop, UV_RUN_DEFAULT); /* until SIGKILL */
    return 0;
}

/* ---- parent: kill, restart, verify ---------------------------------------------------- */

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("0001-storage-crash: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int check_batches(const uint8_t *p, size_t len, int64_t *expect, const char *what)
{
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, p, len, 0);
    trib_batch_t b;
    int rc;
    uint8_t *want = malloc(64 * 1024);
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        if (expect && b.base_offset != *expect) {
            free(want);
            return fail("%s: batch at offset %" PRId64 ", expected %" PRId64, what, b.base_offset,
                        *expect);
        }
        trib_record_iter_t ri;
        trib_record_t r;
        if (trib_record_iter_init(&ri, &b, NULL, 64 << 20) != 0) {
            free(want);
            return fail("%s: undecodable records", what);
        }
        int64_t next = b.base_offset;
        while ((rc = trib_record_iter_next(&ri, &r)) == 1) {
            char key[64];
            if (r.offset != next++ || r.key.len <= 0 || r.key.len >= (int32_t)sizeof(key) ||
                r.value.len < 0 || r.value.len > 64 * 1024) {
                trib_record_iter_fini(&ri);
                free(want);
                return fail("%s: bad record at %" PRId64, what, r.offset);
            }
            memcpy(key, r.key.ptr, (size_t)r.key.len);
            key[r.key.len] = '\0';
            fill_value(want, (size_t)r.value.len, key);
            if (memcmp(want, r.value.ptr, (size_t)r.value.len) != 0) {
                trib_record_iter_fini(&ri);
                free(want);
                return fail("%s: record %" PRId64 " (%s) has a wrong value", what, r.offset, key);
            }
        }
        trib_record_iter_fini(&ri);
        if (rc != 0) {
            free(want);
            return fail("%s: malformed records at %" PRId64, what, b.base_offset);
        }
        if (expect) {
            *expect = next;
        }
    }
    free(want);
    if (rc != 0) {
        return fail("%s: invalid batch: %s", what, trib_strerror(rc));
    }
    if (trib_batch_iter_partial(&it)) {
        return fail("%s: %zu bytes of a partial batch", what, trib_batch_iter_partial(&it));
    }
    return 0;
}

/* Every .log file on disk: whole, valid batches only. Without a log (a
 * child killed before it created the partition) there may be no folder. */
static int check_files(const char *dir, bool have_log)
{
    char pdir[600];
    snprintf(pdir, sizeof(pdir), "%s/" TOPIC "-0", dir);
    DIR *d = opendir(pdir);
    if (!d) {
        if (errno == ENOENT && !have_log) {
            return 0;
        }
        return fail("%s: %s", pdir, strerror(errno));
    }
    struct dirent *de;
    int bad = 0;
    while (!bad && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 4 || strcmp(de->d_name + l - 4, ".log") != 0) {
            continue;
        }
        char path[900];
        snprintf(path, sizeof(path), "%s/%s", pdir, de->d_name);
        int fd = open(path, O_RDONLY);
        struct stat stb;
        if (fd < 0 || fstat(fd, &stb) != 0) {
            bad = fail("%s: %s", path, strerror(errno));
            break;
        }
        uint8_t *buf = malloc((size_t)stb.st_size + 1);
        ssize_t got = pread(fd, buf, (size_t)stb.st_size, 0);
        close(fd);
        if (got != stb.st_size) {
            bad = fail("%s: short read", path);
        } else {
            bad = check_batches(buf, (size_t)got, NULL, path);
        }
        free(buf);
    }
    closedir(d);
    return bad;
}

static int closed_status = -1;

static void on_closed(void *arg, int status)
{
    (void)arg;
    closed_status = status;
}

/* Restarts the storage (crash recovery) and checks the log. */
static int verify(const char *dir, int64_t max_acked, int64_t *leo_out)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    coll_storage_config_t cfg;
    storage_config(&cfg, dir);
    coll_storage_t *st;
    trib_error_t err;
    if (coll_storage_open(&loop, &cfg, &st, &err) != 0) {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return fail("restart: %s", err.msg);
    }
    int bad = 0;
    coll_log_t *log;
    bool have_log = coll_storage_get_log(st, TOPIC, 0, &log) == 0;
    if (!have_log) {
        bad = max_acked >= 0 ? fail("the log is gone") : 0;
    } else {
        int64_t leo = coll_log_end_offset(log);
        *leo_out = leo;
        if (leo <= max_acked) {
            bad =
                fail("log end %" PRId64 " but offset %" PRId64 " was acknowledged", leo, max_acked);
        }
        int64_t off = coll_log_start_offset(log);
        if (off != 0) {
            bad = fail("log start moved to %" PRId64, off);
        }
        while (!bad && off < leo) {
            coll_read_t r;
            int rc = coll_log_read(log, off, 4 << 20, INT64_MAX, 0, &r);
            if (rc != 0 || r.len == 0) {
                bad = fail("read at %" PRId64 ": %s", off, rc ? trib_strerror(rc) : "empty");
                break;
            }
            uint8_t *buf = malloc(r.len);
            if (coll_read_copy(&r, 0, buf, r.len) != (ssize_t)r.len) {
                bad = fail("short read at %" PRId64, off);
            } else {
                int64_t expect = off;
                bad = check_batches(buf, r.len, &expect, "read");
                if (!bad && expect != r.next_offset) {
                    bad = fail("read ended at %" PRId64 ", said %" PRId64, expect, r.next_offset);
                }
                off = expect;
            }
            free(buf);
            coll_read_release(&r);
        }
    }
    closed_status = -1;
    coll_storage_close(st, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (closed_status != 0) {
        bad = fail("close: %d", closed_status);
    }
    if (uv_loop_close(&loop) != 0) {
        bad = fail("the loop still has handles");
    }
    if (!bad) {
        bad = check_files(dir, have_log);
    }
    return bad;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0) {
        trib_log_set_level(TRIB_LOG_WARN);
        return run_child(argv[2], atoi(argv[3]));
    }
    int iterations = 50;
    uint64_t seed = (uint64_t)time(NULL);
    bool keep = false;
    static const struct option opts[] = {{"iterations", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"keep", no_argument, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "n:s:k", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            iterations = atoi(optarg);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            keep = true;
            break;
        default:
            fprintf(stderr, "usage: %s [--iterations N] [--seed S] [--keep]\n", argv[0]);
            return 2;
        }
    }
    rng_state = seed | 1;
    /* Recovery's warnings (what it cut) are part of the story. */
    trib_log_set_level(TRIB_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/trib-crash-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("0001-storage-crash: %d iterations, seed %" PRIu64 ", dir %s\n", iterations, seed, dir);
    int64_t t0 = mono_ms();
    int64_t max_acked = -1, leo = 0, acks = 0;
    int bad = 0;
    for (int it = 0; it < iterations && !bad; it++) {
        int p[2];
        if (pipe(p) != 0) {
            perror("pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            char fd[16];
            snprintf(fd, sizeof(fd), "%d", p[1]);
            execl("/proc/self/exe", argv[0], "--child", dir, fd, (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        /* Kill at a random moment: one time in four within 125 ms of the
         * start (during startup and recovery), else within 125 ms of the
         * child's first acknowledgement, however slow its start (a
         * sanitized build, a loaded machine), waited for at most 60 s. */
        bool armed = rnd() % 4 == 0;
        int64_t deadline = mono_ms() + (armed ? 5 + (int64_t)(rnd() % 120) : 60000);
        int64_t off;
        bool died = false;
        for (;;) {
            int64_t left = deadline - mono_ms();
            if (left <= 0) {
                break;
            }
            struct pollfd pfd = {.fd = p[0], .events = POLLIN};
            int pr = poll(&pfd, 1, (int)left);
            if (pr > 0) {
                ssize_t r = read(p[0], &off, sizeof(off));
                if (r == (ssize_t)sizeof(off)) {
                    max_acked = off > max_acked ? off : max_acked;
                    acks++;
                    if (!armed) {
                        armed = true;
                        deadline = mono_ms() + 5 + (int64_t)(rnd() % 120);
                    }
                } else if (r == 0) {
                    died = true; /* the child died by itself */
                    break;
                }
            }
        }
        if (!armed && !died) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(p[0]);
            bad = fail("the child acknowledged nothing within 60 s");
            break;
        }
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        /* What the child acknowledged before it died still counts. */
        ssize_t r;
        while ((r = read(p[0], &off, sizeof(off))) == (ssize_t)sizeof(off)) {
            max_acked = off > max_acked ? off : max_acked;
            acks++;
        }
        close(p[0]);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            bad = fail("the child exited by itself (status %d)", status);
            break;
        }
        bad = verify(dir, max_acked, &leo);
    }
    printf("0001-storage-crash: %s after %" PRId64 " ms: %" PRId64
           " acknowledged waits, highest acknowledged offset %" PRId64 ", log end %" PRId64 "\n",
           bad ? "FAILED" : "passed", mono_ms() - t0, acks, max_acked, leo);
    if (!bad && acks == 0) {
        bad = fail("nothing was ever acknowledged");
    }
    if (bad || keep) {
        printf("0001-storage-crash: data kept in %s (seed %" PRIu64 ")\n", dir, seed);
    } else {
        rm_rf(dir);
    }
    return bad;
}
