/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's disk buffer: round trips across segment rolls, out-of-order
 * acknowledgements, segment deletion and the ledger, reopening after a
 * close and after a crash (a forked child that _exit()s), the size bound,
 * and recovery from a torn tail, flipped bytes, a garbage segment header
 * and a damaged ledger; seeded rounds of random damage; a write cut short
 * (file size limit), one whose partial frame cannot be cut off (ftruncate
 * failing through a seccomp filter), a full filesystem (a small tmpfs),
 * damage appearing while open, records that cannot be
 * encoded, the lock against a second open; rewind; and the offline check
 * and dump (each line checked as JSON).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "buffer/buffer.h"

/* ---------------------------------------------------------------------- */
/* Fixture: a fresh directory per test.                                   */

static char root[256];
static char bdir[300];
static char mnt[300]; /* a tmpfs mounted by a test; unmounted by teardown */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/test_buffer.XXXXXX");
    if (mkdtemp(root) == NULL) {
        return -1;
    }
    snprintf(bdir, sizeof(bdir), "%s/buffer", root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (mnt[0] != '\0') {
        if (umount(mnt) != 0) {
            (void)umount2(mnt, MNT_DETACH);
        }
        mnt[0] = '\0';
    }
    return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------------- */
/* Records whose every field follows from their number.                   */

typedef struct trec {
    char topic[16];
    char key[32];
    char value[320];
    char hv[3][48];
    agent_buffer_rec_t r;
} trec_t;

static void mkrec(trec_t *t, uint64_t i)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->topic, sizeof(t->topic), "logs.%u", (unsigned)(i % 3));
    t->r.topic = t->topic;
    t->r.topic_len = strlen(t->topic);
    if (i % 5 != 0) {
        snprintf(t->key, sizeof(t->key), "key-%" PRIu64, i);
        t->r.key = t->key;
        t->r.key_len = strlen(t->key);
    }
    int n = snprintf(t->value, sizeof(t->value), "REC%06" PRIu64 ":", i);
    for (int j = n; j < 300; j++) {
        t->value[j] = (char)('a' + (i + (uint64_t)j) % 26);
    }
    t->r.value = t->value;
    t->r.value_len = 300;
    t->r.ts_ms = 1700000000000 + (int64_t)i;
    t->r.nhdrs = i % 3;
    static const char *names[] = {"source", "host", "pipeline"};
    for (size_t h = 0; h < t->r.nhdrs; h++) {
        snprintf(t->hv[h], sizeof(t->hv[h]), "v%zu-%" PRIu64, h, i);
        t->r.hdrs[h].name = names[h];
        t->r.hdrs[h].nlen = strlen(names[h]);
        t->r.hdrs[h].val = t->hv[h];
        t->r.hdrs[h].vlen = strlen(t->hv[h]);
    }
}

static void expect_rec(const agent_buffer_rec_t *r, uint64_t i)
{
    trec_t t;
    mkrec(&t, i);
    assert_int_equal(r->topic_len, t.r.topic_len);
    assert_memory_equal(r->topic, t.r.topic, t.r.topic_len);
    if (t.r.key == NULL) {
        assert_null(r->key);
    } else {
        assert_non_null(r->key);
        assert_int_equal(r->key_len, t.r.key_len);
        assert_memory_equal(r->key, t.r.key, t.r.key_len);
    }
    assert_int_equal(r->value_len, t.r.value_len);
    assert_memory_equal(r->value, t.r.value, t.r.value_len);
    assert_int_equal(r->ts_ms, t.r.ts_ms);
    assert_int_equal(r->nhdrs, t.r.nhdrs);
    for (size_t h = 0; h < r->nhdrs; h++) {
        assert_int_equal(r->hdrs[h].nlen, t.r.hdrs[h].nlen);
        assert_memory_equal(r->hdrs[h].name, t.r.hdrs[h].name, t.r.hdrs[h].nlen);
        assert_int_equal(r->hdrs[h].vlen, t.r.hdrs[h].vlen);
        assert_memory_equal(r->hdrs[h].val, t.r.hdrs[h].val, t.r.hdrs[h].vlen);
    }
}

static agent_buffer_t *open_buf(uint64_t max, uint64_t seg, agent_buffer_report_t *rep)
{
    agent_buffer_opts_t o = {bdir, max, seg};
    agent_buffer_t *b = NULL;
    assert_int_equal(agent_buffer_open(&b, &o, rep), 0);
    assert_non_null(b);
    return b;
}

/* Appends records lo..hi (ids are expected to equal the record numbers). */
static void append_range(agent_buffer_t *b, uint64_t lo, uint64_t hi)
{
    for (uint64_t i = lo; i <= hi; i++) {
        trec_t t;
        mkrec(&t, i);
        uint64_t id = 0;
        assert_int_equal(agent_buffer_append(b, &t.r, &id), 0);
        assert_int_equal(id, i);
    }
}

/* Reads everything there is; each record must match its id. Returns the
   count and fills ids (when not NULL, up to cap). */
static size_t drain(agent_buffer_t *b, uint64_t *ids, size_t cap)
{
    size_t n = 0;
    agent_buffer_rec_t r;
    uint64_t id;
    while (agent_buffer_next(b, &r, &id) == 1) {
        expect_rec(&r, id);
        if (ids != NULL && n < cap) {
            ids[n] = id;
        }
        n++;
    }
    return n;
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return 0;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The path of the n-th segment (0-based, in name order). */
static void nth_segment(int nth, char *out, size_t cap)
{
    struct dirent **list;
    int n = scandir(bdir, &list, NULL, alphasort);
    assert_true(n > 0);
    int k = 0;
    int w = -1;
    for (int i = 0; i < n; i++) {
        if (w < 0 && strncmp(list[i]->d_name, "seg-", 4) == 0 && k++ == nth) {
            w = snprintf(out, cap, "%s/%s", bdir, list[i]->d_name);
        }
        free(list[i]);
    }
    free(list);
    assert_true(w > 0 && (size_t)w < cap);
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

static void write_at(const char *path, long off, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
    close(fd);
}

/* Offset of "REC<i>:" in a segment file, or -1. */
static long find_rec(const char *path, uint64_t i)
{
    size_t len;
    uint8_t *p = read_file(path, &len);
    char pat[16];
    snprintf(pat, sizeof(pat), "REC%06" PRIu64 ":", i);
    uint8_t *q = memmem(p, len, pat, strlen(pat));
    long off = q != NULL ? (long)(q - p) : -1;
    free(p);
    return off;
}

/* Offset of the k-th frame (0-based) of a segment, walking the lengths. */
static long frame_off(const char *path, int k)
{
    size_t len;
    uint8_t *p = read_file(path, &len);
    size_t off = 32;
    for (int i = 0; i < k; i++) {
        assert_true(off + 8 <= len);
        uint32_t n = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 24;
        off += 8 + n;
    }
    free(p);
    return (long)off;
}

static uint64_t ledger_id(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/ledger", bdir);
    size_t len;
    uint8_t *p = read_file(path, &len);
    assert_int_equal(len, 20);
    assert_memory_equal(p, "TRIBLDG1", 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[8 + i];
    }
    free(p);
    return v;
}

/* ---------------------------------------------------------------------- */
/* Tests.                                                                 */

static void test_roundtrip_rolls(void **state)
{
    (void)state;
    agent_buffer_report_t rep;
    agent_buffer_t *b = open_buf(1 << 20, 4096, &rep);
    assert_int_equal(rep.records, 0);
    assert_int_equal(rep.first_id, 1);
    append_range(b, 1, 200);
    assert_true(count_files(bdir, "seg-") >= 15);
    assert_int_equal(agent_buffer_inflight(b), 0);

    uint64_t ids[200];
    assert_int_equal(drain(b, ids, 200), 200);
    for (uint64_t i = 0; i < 200; i++) {
        assert_int_equal(ids[i], i + 1);
    }
    assert_int_equal(agent_buffer_inflight(b), 200);
    /* appends after the reader caught up are read too */
    append_range(b, 201, 210);
    assert_int_equal(drain(b, NULL, 0), 10);

    for (uint64_t i = 1; i <= 210; i++) {
        agent_buffer_ack(b, i);
    }
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.appended, 210);
    assert_int_equal(st.acked, 210);
    assert_int_equal(st.records, 0);
    assert_true(st.segments_deleted >= 15);
    assert_int_equal(agent_buffer_inflight(b), 0);
    /* only the segment being written is left; the ledger is past every id */
    assert_int_equal(count_files(bdir, "seg-"), 1);
    assert_true(ledger_id() > 1);
    assert_int_equal(agent_buffer_sync(b), 0);
    assert_int_equal(ledger_id(), 211);
    assert_int_equal(agent_buffer_next(b, &(agent_buffer_rec_t){0}, &(uint64_t){0}), 0);
    agent_buffer_close(b);
}

static void test_out_of_order_acks(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 8192, NULL);
    append_range(b, 1, 100);
    assert_int_equal(drain(b, NULL, 0), 100);
    for (uint64_t i = 2; i <= 100; i += 2) {
        agent_buffer_ack(b, i);
    }
    agent_buffer_ack(b, 4); /* repeated: ignored */
    agent_buffer_ack(b, 0); /* unknown ids: ignored */
    agent_buffer_ack(b, 1000);
    assert_int_equal(agent_buffer_inflight(b), 50);
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.records, 50);
    assert_int_equal(st.acked, 50);
    assert_int_equal(st.segments_deleted, 0); /* id 1 holds the prefix */
    for (uint64_t i = 99; i >= 1; i -= 2) {
        agent_buffer_ack(b, i);
        if (i == 1) {
            break;
        }
    }
    assert_int_equal(agent_buffer_inflight(b), 0);
    agent_buffer_stats(b, &st);
    assert_int_equal(st.records, 0);
    assert_true(st.segments_deleted > 0);
    assert_int_equal(agent_buffer_sync(b), 0);
    assert_int_equal(ledger_id(), 101);
    agent_buffer_close(b);
}

static void test_reopen_after_close(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
    append_range(b, 1, 100);
    assert_int_equal(drain(b, NULL, 0), 100);
    for (uint64_t i = 1; i <= 40; i++) {
        agent_buffer_ack(b, i);
    }
    agent_buffer_ack(b, 50); /* above the prefix: not persisted */
    agent_buffer_close(b);

    agent_buffer_report_t rep;
    b = open_buf(1 << 20, 4096, &rep);
    assert_int_equal(rep.first_id, 41);
    assert_int_equal(rep.next_id, 101);
    assert_int_equal(rep.records, 60);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.corrupt_records, 0);
    assert_int_equal(rep.quarantined, 0);
    uint64_t ids[100];
    assert_int_equal(drain(b, ids, 100), 60);
    for (size_t i = 0; i < 60; i++) {
        assert_int_equal(ids[i], 41 + i); /* 50 is sent again: at-least-once */
    }
    /* new ids go on from the old ones */
    append_range(b, 101, 105);
    assert_int_equal(drain(b, NULL, 0), 5);
    agent_buffer_close(b);
}

static void test_reopen_after_crash(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        agent_buffer_opts_t o = {bdir, 1 << 22, 16384};
        agent_buffer_t *b = NULL;
        if (agent_buffer_open(&b, &o, NULL) != 0) {
            _exit(2);
        }
        for (uint64_t i = 1; i <= 500; i++) {
            trec_t t;
            mkrec(&t, i);
            if (agent_buffer_append(b, &t.r, NULL) != 0) {
                _exit(3);
            }
        }
        agent_buffer_rec_t r;
        uint64_t id;
        for (int i = 0; i < 30 && agent_buffer_next(b, &r, &id) == 1; i++) {
            agent_buffer_ack(b, id);
        }
        _exit(0); /* no close, no sync: like SIGKILL */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    agent_buffer_report_t rep;
    agent_buffer_t *b = open_buf(1 << 22, 16384, &rep);
    assert_int_equal(rep.next_id, 501);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.corrupt_records, 0);
    /* the acks may or may not have reached the ledger; nothing is lost */
    uint64_t ids[500];
    size_t n = drain(b, ids, 500);
    assert_true(n >= 470);
    assert_int_equal(ids[n - 1], 500);
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(ids[i], ids[i - 1] + 1);
    }
    assert_true(ids[0] <= 31);
    agent_buffer_close(b);
}

static void test_full(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(16384, 4096, NULL);
    trec_t t;
    mkrec(&t, 1);
    size_t rs = agent_buffer_rec_size(&t.r);
    assert_true(rs > 300 && rs < 400);
    uint64_t i = 1;
    int rc;
    for (;;) {
        mkrec(&t, i);
        uint64_t room = agent_buffer_room(b);
        rc = agent_buffer_append(b, &t.r, NULL);
        if (rc != 0) {
            assert_true(room < rs);
            break;
        }
        i++;
    }
    assert_int_equal(rc, -ENOSPC);
    uint64_t n = i - 1;
    assert_true(n > 30);
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.full, 1);
    assert_true(st.bytes <= 16384);
    /* a record that could never fit */
    static char big[20000];
    trec_t bt;
    mkrec(&bt, 1);
    bt.r.value = big;
    bt.r.value_len = sizeof(big);
    assert_int_equal(agent_buffer_append(b, &bt.r, NULL), -EMSGSIZE);
    /* delivered: room again, also when everything was in one segment */
    assert_int_equal(drain(b, NULL, 0), n);
    for (uint64_t k = 1; k <= n; k++) {
        agent_buffer_ack(b, k);
    }
    assert_true(agent_buffer_room(b) >= rs);
    /* acknowledged records in the segment being written hold their bytes
       until it rolls: at most a segment's worth less fits */
    uint64_t m = n - 4096 / rs - 1;
    append_range(b, n + 1, n + m);
    assert_int_equal(drain(b, NULL, 0), m);
    agent_buffer_close(b);
}

static void test_torn_tail(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 1 << 20, NULL);
    append_range(b, 1, 50);
    agent_buffer_close(b);
    char seg[512];
    nth_segment(0, seg, sizeof(seg));
    struct stat st;
    assert_int_equal(stat(seg, &st), 0);
    assert_int_equal(truncate(seg, st.st_size - 100), 0);
    assert_int_equal(agent_buffer_check(bdir, NULL, NULL), 1);

    agent_buffer_report_t rep;
    b = open_buf(1 << 20, 1 << 20, &rep);
    assert_true(rep.torn_bytes > 0);
    assert_int_equal(rep.corrupt_records, 0);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.records, 49);
    assert_int_equal(rep.next_id, 50);
    uint64_t ids[50];
    assert_int_equal(drain(b, ids, 50), 49);
    assert_int_equal(ids[48], 49);
    /* appends go on after the cut */
    append_range(b, 50, 52);
    assert_int_equal(drain(b, NULL, 0), 3);
    agent_buffer_close(b);
    assert_int_equal(agent_buffer_check(bdir, NULL, NULL), 0);

    /* a segment created with its header cut short */
    char path[512];
    snprintf(path, sizeof(path), "%s/seg-%020d.buf", bdir, 53);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "TRIBBUF1\1", 9), 9);
    close(fd);
    b = open_buf(1 << 20, 1 << 20, &rep);
    assert_int_equal(rep.torn_bytes, 9);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.records, 52);
    assert_int_equal(drain(b, NULL, 0), 52);
    agent_buffer_close(b);
}

static void test_corrupt_middle(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 1 << 20, NULL);
    append_range(b, 1, 100);
    agent_buffer_close(b);
    char seg[512];
    nth_segment(0, seg, sizeof(seg));
    /* flip payload bytes of record 50, and the length field of record 70 */
    long off = find_rec(seg, 50);
    assert_true(off > 0);
    write_at(seg, off + 20, "\xff\xfe\xfd", 3);
    write_at(seg, frame_off(seg, 69), "\xff\xff\xff\x7f", 4);

    FILE *out = tmpfile();
    assert_non_null(out);
    agent_buffer_report_t rep;
    assert_int_equal(agent_buffer_check(bdir, out, &rep), 1);
    assert_int_equal(rep.corrupt_records, 2);
    assert_int_equal(rep.records, 98);
    fclose(out);

    b = open_buf(1 << 20, 1 << 20, &rep);
    assert_int_equal(rep.corrupt_records, 2);
    assert_true(rep.corrupt_bytes > 0);
    assert_int_equal(rep.quarantined, 1);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.records, 98);
    char qdir[400];
    snprintf(qdir, sizeof(qdir), "%s/quarantine", bdir);
    assert_int_equal(count_files(qdir, "seg-"), 1);
    uint64_t ids[100];
    assert_int_equal(drain(b, ids, 100), 98);
    for (size_t i = 0, want = 1; i < 98; i++, want++) {
        if (want == 50 || want == 70) {
            want++;
        }
        assert_int_equal(ids[i], want);
    }
    /* the lost ids do not hold the prefix back */
    for (size_t i = 0; i < 98; i++) {
        agent_buffer_ack(b, ids[i]);
    }
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(agent_buffer_inflight(b), 0);
    agent_buffer_close(b);

    b = open_buf(1 << 20, 1 << 20, &rep);
    assert_int_equal(rep.corrupt_records, 0);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.records, 0);
    assert_int_equal(rep.first_id, 101);
    agent_buffer_close(b);
    assert_int_equal(agent_buffer_check(bdir, NULL, NULL), 0);
}

static void test_corrupt_across_segments(void **state)
{
    (void)state;
    /* damage in a segment that is not the last, then reopen without acks */
    agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
    append_range(b, 1, 60);
    agent_buffer_close(b);
    char seg[512];
    nth_segment(1, seg, sizeof(seg));
    size_t len;
    uint8_t *p = read_file(seg, &len);
    /* zero a stretch over two frames in the middle of the segment */
    memset(p + len / 2 - 200, 0, 400);
    write_at(seg, 0, p, len);
    free(p);

    agent_buffer_report_t rep;
    b = open_buf(1 << 20, 4096, &rep);
    assert_int_equal(rep.quarantined, 1);
    assert_int_equal(rep.torn_bytes, 0);
    size_t n = drain(b, NULL, 0);
    assert_true(n == 58 || n == 57); /* 400 bytes touch two or three frames */
    assert_int_equal(rep.records, n);
    assert_int_equal(rep.corrupt_records, 60 - n);
    agent_buffer_close(b);
    b = open_buf(1 << 20, 4096, &rep);
    assert_int_equal(rep.corrupt_records, 0);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.records, n);
    agent_buffer_close(b);
}

static void test_bad_header(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
    append_range(b, 1, 40);
    agent_buffer_close(b);
    char seg[512];
    nth_segment(1, seg, sizeof(seg));
    const char *base = strrchr(seg, '/') + 1;
    write_at(seg, 0, "GARBAGE!GARBAGE!", 16);
    agent_buffer_report_t rep;
    assert_int_equal(agent_buffer_check(bdir, NULL, &rep), 1);
    assert_int_equal(rep.quarantined, 1);

    b = open_buf(1 << 20, 4096, &rep);
    assert_int_equal(rep.quarantined, 1);
    char q[700];
    snprintf(q, sizeof(q), "%s/quarantine/%s.bad-header", bdir, base);
    assert_int_equal(access(q, F_OK), 0);
    assert_int_equal(access(seg, F_OK), -1);
    uint64_t ids[40];
    size_t n = drain(b, ids, 40);
    assert_true(n > 20 && n < 40);
    assert_int_equal(rep.records, n);
    assert_int_equal(ids[n - 1], 40);
    for (size_t i = 0; i < n; i++) {
        agent_buffer_ack(b, ids[i]);
    }
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.records, 0);
    agent_buffer_close(b);
    b = open_buf(1 << 20, 4096, &rep);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.records, 0);
    assert_int_equal(rep.next_id, 41);
    agent_buffer_close(b);
}

/* Only the AGENT_BUFFER_QUARANTINE_KEEP newest quarantine copies stay. */
static void test_quarantine_pruned(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
    agent_buffer_close(b);
    char q[600], f[700];
    snprintf(q, sizeof(q), "%s/quarantine", bdir);
    assert_true(mkdir(q, 0755) == 0 || errno == EEXIST);
    int total = AGENT_BUFFER_QUARANTINE_KEEP + 5;
    for (int i = 0; i < total; i++) {
        snprintf(f, sizeof(f), "%s/seg-%020d.buf.corrupt", q, i);
        FILE *fp = fopen(f, "w");
        assert_non_null(fp);
        fputs("x", fp);
        fclose(fp);
        /* oldest first: file i is i seconds newer than file 0 */
        struct timespec ts[2] = {{.tv_sec = 1700000000 + i}, {.tv_sec = 1700000000 + i}};
        assert_int_equal(utimensat(AT_FDCWD, f, ts, 0), 0);
    }
    b = open_buf(1 << 20, 4096, NULL);
    agent_buffer_close(b);
    int left = 0;
    for (int i = 0; i < total; i++) {
        snprintf(f, sizeof(f), "%s/seg-%020d.buf.corrupt", q, i);
        bool there = access(f, F_OK) == 0;
        assert_int_equal(there, i >= total - AGENT_BUFFER_QUARANTINE_KEEP);
        left += there;
    }
    assert_int_equal(left, AGENT_BUFFER_QUARANTINE_KEEP);
}

static void test_bad_ledger(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 1 << 20, NULL);
    append_range(b, 1, 10);
    assert_int_equal(drain(b, NULL, 0), 10);
    for (uint64_t i = 1; i <= 5; i++) {
        agent_buffer_ack(b, i);
    }
    agent_buffer_close(b);
    assert_int_equal(ledger_id(), 6);
    char path[400];
    snprintf(path, sizeof(path), "%s/ledger", bdir);
    write_at(path, 9, "\x42", 1);
    agent_buffer_report_t rep;
    b = open_buf(1 << 20, 1 << 20, &rep);
    assert_int_equal(rep.bad_ledger, 1);
    assert_int_equal(rep.first_id, 1); /* from the first segment: sent again */
    assert_int_equal(drain(b, NULL, 0), 10);
    agent_buffer_close(b);
    assert_int_equal(agent_buffer_check(bdir, NULL, NULL), 0);
}

static void test_rewind(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 2048, NULL);
    append_range(b, 1, 20);
    agent_buffer_rec_t r;
    uint64_t id;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(agent_buffer_next(b, &r, &id), 1);
    }
    agent_buffer_ack(b, 1);
    agent_buffer_ack(b, 2);
    agent_buffer_ack(b, 5);
    agent_buffer_ack(b, 7);
    assert_int_equal(agent_buffer_inflight(b), 6);
    agent_buffer_rewind(b);
    assert_int_equal(agent_buffer_inflight(b), 0);
    /* a late ack of a record handed out before the rewind still counts */
    agent_buffer_ack(b, 9);
    uint64_t ids[20];
    size_t n = drain(b, ids, 20);
    uint64_t want[] = {3, 4, 6, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ids[i], want[i]);
    }
    assert_int_equal(agent_buffer_inflight(b), n);
    agent_buffer_close(b);
}

/* unnext takes back the record just handed out, across a segment roll,
   and skips records acknowledged out of order as next() does. */
static void test_unnext(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 2048, NULL);
    append_range(b, 1, 20);
    agent_buffer_rec_t r;
    uint64_t id;
    assert_false(agent_buffer_unnext(b)); /* nothing handed out yet */
    uint64_t prev = 0;
    for (uint64_t want = 1; want <= 20; want++) {
        assert_int_equal(agent_buffer_next(b, &r, &id), 1);
        assert_int_equal(id, want);
        assert_int_equal(agent_buffer_inflight(b), want);
        assert_true(agent_buffer_unnext(b));
        assert_false(agent_buffer_unnext(b)); /* only the last one */
        assert_int_equal(agent_buffer_inflight(b), want - 1);
        assert_int_equal(agent_buffer_next(b, &r, &id), 1);
        assert_int_equal(id, want);
        expect_rec(&r, id);
        prev = id;
    }
    assert_int_equal(prev, 20);
    assert_int_equal(agent_buffer_next(b, &r, &id), 0);
    /* after a rewind, records acknowledged out of order stay skipped */
    agent_buffer_ack(b, 2);
    agent_buffer_ack(b, 3);
    agent_buffer_rewind(b);
    assert_int_equal(agent_buffer_next(b, &r, &id), 1);
    assert_int_equal(id, 1);
    assert_int_equal(agent_buffer_next(b, &r, &id), 1);
    assert_int_equal(id, 4);
    assert_true(agent_buffer_unnext(b));
    assert_int_equal(agent_buffer_next(b, &r, &id), 1);
    assert_int_equal(id, 4);
    /* an ack in between makes the saved place stale: nothing to take back */
    agent_buffer_ack(b, 1);
    assert_false(agent_buffer_unnext(b));
    assert_int_equal(agent_buffer_inflight(b), 1);
    agent_buffer_close(b);
}

/* A write that fails half way (the file size limit, in a child): the
   partial frame is cut off, the append fails with nothing accepted, and
   every record accepted before is there at the next open. */
static void test_write_error(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        agent_buffer_opts_t o = {bdir, 1 << 20, 1 << 20};
        agent_buffer_t *b = NULL;
        if (agent_buffer_open(&b, &o, NULL) != 0) {
            _exit(2);
        }
        struct rlimit rl = {20000, 20000};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(3);
        }
        uint64_t n = 0;
        int rc;
        for (;;) {
            trec_t t;
            mkrec(&t, n + 1);
            rc = agent_buffer_append(b, &t.r, NULL);
            if (rc != 0) {
                break;
            }
            n++;
        }
        agent_buffer_stats_t st;
        agent_buffer_stats(b, &st);
        if (rc != -EFBIG || st.write_errors != 1 || st.appended != n) {
            _exit(4);
        }
        char seg[512];
        nth_segment(0, seg, sizeof(seg));
        struct stat sst;
        if (stat(seg, &sst) != 0 || (uint64_t)sst.st_size != st.bytes) {
            _exit(5); /* a partial frame was left behind */
        }
        /* what was accepted is still read back */
        agent_buffer_rec_t r;
        uint64_t id, got = 0;
        while (agent_buffer_next(b, &r, &id) == 1) {
            got++;
        }
        if (got != n || write(fds[1], &n, sizeof(n)) != sizeof(n)) {
            _exit(6);
        }
        _exit(0);
    }
    close(fds[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    uint64_t n = 0;
    assert_int_equal(read(fds[0], &n, sizeof(n)), sizeof(n));
    close(fds[0]);
    assert_true(n > 10);

    agent_buffer_report_t rep;
    agent_buffer_t *b = open_buf(1 << 20, 1 << 20, &rep);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.records, n);
    assert_int_equal(drain(b, NULL, 0), n);
    agent_buffer_close(b);
}

/* Bytes of the segment files in bdir. */
static uint64_t segment_bytes(void)
{
    DIR *d = opendir(bdir);
    assert_non_null(d);
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "seg-", 4) == 0) {
            char p[700];
            struct stat sst;
            snprintf(p, sizeof(p), "%s/%s", bdir, e->d_name);
            assert_int_equal(stat(p, &sst), 0);
            n += (uint64_t)sst.st_size;
        }
    }
    closedir(d);
    return n;
}

/* A full filesystem, not a full buffer: the buffer sits on a 192 KiB
   tmpfs (mounted here; CI=true makes a failed mount a failure, elsewhere
   a skip) with max_size 4 MiB. Appends end with -ENOSPC counted as
   disk_full (not full, not a write error), no partial frame is left,
   everything accepted is read back, and once it is acknowledged (the
   ledger written in place) its segments go and appends work again. */
static void test_disk_full(void **state)
{
    (void)state;
    snprintf(mnt, sizeof(mnt), "%s/fs", root);
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=192k") != 0) {
        int e = errno;
        mnt[0] = '\0';
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0) {
            fail_msg("cannot mount a tmpfs: %s (CI must allow it)", strerror(e));
        }
        skip();
    }
    int w = snprintf(bdir, sizeof(bdir), "%s/buffer", mnt);
    assert_true(w > 0 && (size_t)w < sizeof(bdir));
    agent_buffer_t *b = open_buf(4 << 20, 32 << 10, NULL);
    uint64_t n = 0;
    int rc = 0;
    while (n < 100000) {
        trec_t t;
        mkrec(&t, n + 1);
        rc = agent_buffer_append(b, &t.r, NULL);
        if (rc != 0) {
            break;
        }
        n++;
    }
    assert_int_equal(rc, -ENOSPC);
    assert_true(n > 100);
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.disk_full, 1);
    assert_true(st.disk_full_now);
    assert_int_equal(st.full, 0);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(st.appended, n);
    assert_int_equal(segment_bytes(), st.bytes); /* no partial frame */
    /* still full: refused again, counted again */
    trec_t t;
    mkrec(&t, n + 1);
    assert_int_equal(agent_buffer_append(b, &t.r, NULL), -ENOSPC);
    agent_buffer_stats(b, &st);
    assert_int_equal(st.disk_full, 2);
    /* everything accepted is there */
    assert_int_equal(drain(b, NULL, 0), n);
    for (uint64_t k = 1; k <= n; k++) {
        agent_buffer_ack(b, k);
    }
    /* acknowledged segments went, so there is room again */
    mkrec(&t, n + 1);
    assert_int_equal(agent_buffer_append(b, &t.r, NULL), 0);
    agent_buffer_stats(b, &st);
    assert_false(st.disk_full_now);
    assert_int_equal(st.appended, n + 1);
    assert_int_equal(drain(b, NULL, 0), 1);
    agent_buffer_close(b);
}

/* Makes every later ftruncate() of this process fail with EIO: a real
   failing system call (a seccomp filter), for the child of a fork. */
static int fail_ftruncate(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_ftruncate, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EIO & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) {
        return -errno;
    }
    return 0;
}

/* A write that fails half way and whose partial frame cannot be cut off
   (ftruncate fails): later appends are refused with that error instead of
   writing after or over the partial frame, what was accepted is read back,
   and the next open cuts the partial frame off as a torn tail with no
   record lost or counted as damaged. */
static void test_write_error_cut_fails(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        agent_buffer_opts_t o = {bdir, 1 << 20, 1 << 20};
        agent_buffer_t *b = NULL;
        if (agent_buffer_open(&b, &o, NULL) != 0) {
            _exit(2);
        }
        struct rlimit rl;
        if (getrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(3);
        }
        rlim_t hard = rl.rlim_max;
        rl.rlim_cur = 20000;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(3);
        }
        if (fail_ftruncate() != 0) {
            _exit(77);
        }
        uint64_t n = 0;
        int rc;
        for (;;) {
            trec_t t;
            mkrec(&t, n + 1);
            rc = agent_buffer_append(b, &t.r, NULL);
            if (rc != 0) {
                break;
            }
            n++;
        }
        agent_buffer_stats_t st;
        agent_buffer_stats(b, &st);
        /* the write and the cut failed */
        if (rc != -EFBIG || st.write_errors != 2 || st.appended != n) {
            _exit(4);
        }
        char seg[512];
        nth_segment(0, seg, sizeof(seg));
        struct stat sst;
        if (stat(seg, &sst) != 0 || (uint64_t)sst.st_size <= st.bytes) {
            _exit(5); /* no partial frame: the size limit did not cut the write */
        }
        off_t partial = sst.st_size;
        /* room again, but the cut still fails: a smaller record that would
           fit inside the partial frame is refused too */
        rl.rlim_cur = hard;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(3);
        }
        trec_t t;
        mkrec(&t, n + 1);
        t.r.value_len = 10;
        t.r.nhdrs = 0;
        rc = agent_buffer_append(b, &t.r, NULL);
        agent_buffer_stats(b, &st);
        if (rc != -EIO || st.write_errors != 3 || st.appended != n) {
            _exit(6);
        }
        if (stat(seg, &sst) != 0 || sst.st_size != partial) {
            _exit(7); /* something was written */
        }
        agent_buffer_rec_t r;
        uint64_t id, got = 0;
        while (agent_buffer_next(b, &r, &id) == 1) {
            got++;
        }
        if (got != n || write(fds[1], &n, sizeof(n)) != sizeof(n)) {
            _exit(8);
        }
        _exit(0); /* a crash: no close */
    }
    close(fds[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        close(fds[0]);
        const char *ci = getenv("CI");
        if (ci != NULL && strcmp(ci, "true") == 0) {
            fail_msg("cannot install a seccomp filter (CI must allow it)");
        }
        printf("SKIP: cannot install a seccomp filter here\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    uint64_t n = 0;
    assert_int_equal(read(fds[0], &n, sizeof(n)), sizeof(n));
    close(fds[0]);
    assert_true(n > 10);

    agent_buffer_report_t rep;
    agent_buffer_t *b = open_buf(1 << 20, 1 << 20, &rep);
    assert_true(rep.torn_bytes > 0);
    assert_int_equal(rep.corrupt_records, 0);
    assert_int_equal(rep.quarantined, 0);
    assert_int_equal(rep.records, n);
    append_range(b, n + 1, n + 5);
    uint64_t ids[512];
    assert_true(n + 5 <= 512);
    assert_int_equal(drain(b, ids, 512), n + 5);
    for (uint64_t i = 0; i < n + 5; i++) {
        assert_int_equal(ids[i], i + 1);
    }
    agent_buffer_close(b);
}

/* Damage that appears while the buffer is open: the reader skips to the
   next intact frame with an error, everything else is delivered and the
   lost id does not hold the prefix back. */
static void test_damage_while_open(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
    append_range(b, 1, 40);
    char seg[512];
    nth_segment(1, seg, sizeof(seg));
    long off = find_rec(seg, 15);
    assert_true(off > 0);
    write_at(seg, off, "#", 1);
    uint64_t ids[40];
    size_t n = drain(b, ids, 40);
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.read_errors, 1);
    assert_int_equal(n, 39);
    assert_int_equal(ids[n - 1], 40);
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] != 15);
        agent_buffer_ack(b, ids[i]);
    }
    agent_buffer_stats(b, &st);
    assert_int_equal(st.records, 0);
    assert_int_equal(agent_buffer_inflight(b), 0);
    append_range(b, 41, 45);
    assert_int_equal(drain(b, NULL, 0), 5);
    agent_buffer_close(b);
}

/* Seeded damage: bytes flipped, stretches zeroed, files cut short, in any
   segment or the ledger. check and dump never fail, open never fails,
   every record handed out is exactly the one appended under its id, in
   order and once, and the next open finds nothing more to repair. */
static void test_mutations(void **state)
{
    (void)state;
    char cmd[400];
    for (unsigned seed = 1; seed <= 40; seed++) {
        srand(seed);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bdir);
        assert_int_equal(system(cmd), 0);
        agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
        append_range(b, 1, 60);
        assert_int_equal(drain(b, NULL, 0), 60);
        for (uint64_t i = 1; i <= (uint64_t)(rand() % 20); i++) {
            agent_buffer_ack(b, i);
        }
        agent_buffer_close(b);

        int nsegs = 0;
        {
            struct dirent **list;
            int n = scandir(bdir, &list, NULL, alphasort);
            for (int i = 0; i < n; i++) {
                nsegs += strncmp(list[i]->d_name, "seg-", 4) == 0;
                free(list[i]);
            }
            free(list);
        }
        assert_true(nsegs > 1);
        for (int m = 0, nm = 1 + rand() % 4; m < nm; m++) {
            char path[512];
            if (rand() % 10 == 0) {
                snprintf(path, sizeof(path), "%s/ledger", bdir);
            } else {
                nth_segment(rand() % nsegs, path, sizeof(path));
            }
            size_t len;
            uint8_t *p = read_file(path, &len);
            if (len == 0) {
                free(p);
                continue;
            }
            size_t at = (size_t)rand() % len;
            switch (rand() % 4) {
            case 0:
                p[at] ^= (uint8_t)(1 + rand() % 255);
                write_at(path, (long)at, p + at, 1);
                break;
            case 1: {
                size_t n = 1 + (size_t)rand() % 64;
                if (at + n > len) {
                    n = len - at;
                }
                memset(p + at, 0, n);
                write_at(path, (long)at, p + at, n);
                break;
            }
            case 2:
                assert_int_equal(truncate(path, (off_t)at), 0);
                break;
            default:
                for (int k = 0; k < 8; k++) {
                    size_t q = (size_t)rand() % len;
                    p[q] = (uint8_t)rand();
                    write_at(path, (long)q, p + q, 1);
                }
                break;
            }
            free(p);
        }

        agent_buffer_report_t crep;
        int crc = agent_buffer_check(bdir, NULL, &crep);
        assert_true(crc == 0 || crc == 1);
        FILE *out = tmpfile();
        assert_int_equal(agent_buffer_dump(bdir, out), 0);
        fclose(out);

        agent_buffer_report_t rep;
        b = open_buf(1 << 20, 4096, &rep);
        assert_int_equal(rep.records, crep.records);
        uint64_t ids[60];
        size_t n = drain(b, ids, 60);
        assert_int_equal(n, rep.records);
        for (size_t i = 1; i < n; i++) {
            assert_true(ids[i] > ids[i - 1]);
        }
        agent_buffer_close(b);
        b = open_buf(1 << 20, 4096, &rep);
        assert_int_equal(rep.torn_bytes, 0);
        assert_int_equal(rep.corrupt_records, 0);
        assert_int_equal(rep.quarantined, 0);
        assert_int_equal(rep.bad_ledger, 0);
        uint64_t again[60];
        assert_int_equal(drain(b, again, 60), n);
        assert_memory_equal(again, ids, n * sizeof(ids[0]));
        agent_buffer_close(b);
        assert_int_equal(agent_buffer_check(bdir, NULL, NULL), 0);
    }
}

/* A second open of the same directory is refused while the first holds it. */
static void test_locked(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 0, NULL);
    agent_buffer_opts_t o = {bdir, 1 << 20, 0};
    agent_buffer_t *b2 = NULL;
    assert_int_equal(agent_buffer_open(&b2, &o, NULL), -EBUSY);
    assert_null(b2);
    /* check says the buffer is in use, without taking the lock */
    char *text = NULL;
    size_t tlen = 0;
    FILE *out = open_memstream(&text, &tlen);
    assert_int_equal(agent_buffer_check(bdir, out, NULL), 0);
    fclose(out);
    assert_non_null(strstr(text, "open in a running agent"));
    free(text);
    agent_buffer_close(b);
    out = open_memstream(&text, &tlen);
    assert_int_equal(agent_buffer_check(bdir, out, NULL), 0);
    fclose(out);
    assert_null(strstr(text, "open in a running agent"));
    free(text);
    b = open_buf(1 << 20, 0, NULL);
    agent_buffer_close(b);
}

/* Records that cannot be encoded are refused before anything is written. */
static void test_bad_records(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 0, NULL);
    trec_t t;
    mkrec(&t, 1);
    static char big_topic[70000];
    t.r.topic = big_topic;
    t.r.topic_len = sizeof(big_topic);
    assert_int_equal(agent_buffer_rec_size(&t.r), SIZE_MAX);
    assert_int_equal(agent_buffer_append(b, &t.r, NULL), -EMSGSIZE);
    mkrec(&t, 1);
    t.r.nhdrs = AGENT_BUFFER_MAX_HDRS + 1;
    assert_int_equal(agent_buffer_append(b, &t.r, NULL), -EINVAL);
    mkrec(&t, 1);
    t.r.key = "";
    t.r.key_len = 0; /* an empty key is not a missing key */
    t.r.value_len = 0;
    uint64_t id;
    assert_int_equal(agent_buffer_append(b, &t.r, &id), 0);
    assert_int_equal(id, 1);
    agent_buffer_rec_t r;
    assert_int_equal(agent_buffer_next(b, &r, &id), 1);
    assert_non_null(r.key);
    assert_int_equal(r.key_len, 0);
    assert_int_equal(r.value_len, 0);
    agent_buffer_stats_t st;
    agent_buffer_stats(b, &st);
    assert_int_equal(st.appended, 1);
    assert_int_equal(st.write_errors, 0);
    agent_buffer_close(b);
}

/* A small JSON syntax checker: one value, then the end of the line. */
static const char *js_value(const char *p);

static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static const char *js_string(const char *p)
{
    if (*p++ != '"') {
        return NULL;
    }
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == '\0' || c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0') {
                        return NULL;
                    }
                }
                p += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", *p) || *p == '\0') {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *js_value(const char *p)
{
    p = js_ws(p);
    if (*p == '"') {
        return js_string(p);
    }
    if (*p == '{') {
        p = js_ws(p + 1);
        if (*p == '}') {
            return p + 1;
        }
        for (;;) {
            p = js_string(js_ws(p));
            if (p == NULL || *(p = js_ws(p)) != ':') {
                return NULL;
            }
            p = js_value(p + 1);
            if (p == NULL) {
                return NULL;
            }
            p = js_ws(p);
            if (*p == '}') {
                return p + 1;
            }
            if (*p++ != ',') {
                return NULL;
            }
        }
    }
    if (strncmp(p, "null", 4) == 0) {
        return p + 4;
    }
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *e;
        (void)strtod(p, &e);
        return e > p ? e : NULL;
    }
    return NULL;
}

static void test_check_and_dump(void **state)
{
    (void)state;
    agent_buffer_t *b = open_buf(1 << 20, 4096, NULL);
    append_range(b, 1, 30);
    agent_buffer_rec_t r = {0};
    r.topic = "odd \"topic\"\n";
    r.topic_len = strlen(r.topic);
    static const char value[] = "bad utf8 \xff\xc3( tab\t and nul \0 end";
    r.value = value;
    r.value_len = sizeof(value) - 1;
    r.ts_ms = -5;
    r.nhdrs = 2;
    r.hdrs[0] = (agent_buffer_hdr_t){"h\\1", 3, "\xe2\x82\xac", 3};
    r.hdrs[1] = (agent_buffer_hdr_t){"nullval", 7, NULL, 0};
    uint64_t id;
    assert_int_equal(agent_buffer_append(b, &r, &id), 0);
    assert_int_equal(id, 31);
    for (uint64_t i = 1; i <= 30; i++) {
        agent_buffer_rec_t rr;
        assert_int_equal(agent_buffer_next(b, &rr, &id), 1);
        expect_rec(&rr, id);
    }
    assert_int_equal(agent_buffer_next(b, &r, &id), 1);
    assert_int_equal(id, 31);
    assert_int_equal(r.value_len, sizeof(value) - 1);
    assert_null(r.hdrs[1].val);
    for (uint64_t i = 1; i <= 10; i++) {
        agent_buffer_ack(b, i);
    }
    agent_buffer_close(b);

    char *text = NULL;
    size_t tlen = 0;
    FILE *out = open_memstream(&text, &tlen);
    assert_non_null(out);
    agent_buffer_report_t rep;
    assert_int_equal(agent_buffer_check(bdir, out, &rep), 0);
    fclose(out);
    assert_non_null(strstr(text, "ok"));
    assert_int_equal(rep.records, 21);
    assert_int_equal(rep.first_id, 11);
    free(text);

    out = open_memstream(&text, &tlen);
    assert_int_equal(agent_buffer_dump(bdir, out), 0);
    fclose(out);
    int lines = 0;
    for (char *line = text, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        const char *end = js_value(line);
        assert_non_null(end);
        assert_int_equal(*js_ws(end), '\0');
        char want[64];
        snprintf(want, sizeof(want), "{\"id\":%d,", 11 + lines);
        assert_memory_equal(line, want, strlen(want));
        if (lines == 0) { /* id 11: key-11, topic logs.2, two headers */
            assert_non_null(strstr(line, "\"topic\":\"logs.2\""));
            assert_non_null(strstr(line, "\"key\":\"key-11\""));
            assert_non_null(strstr(line, "\"ts\":1700000000011"));
            assert_non_null(strstr(line, "\"headers\":{\"source\":\"v0-11\",\"host\":\"v1-11\"}"));
            assert_non_null(strstr(line, "\"value\":\"REC000011:"));
        }
        if (lines == 4) { /* id 15: no key */
            assert_non_null(strstr(line, "\"key\":null"));
        }
        if (lines == 20) {
            assert_non_null(strstr(line, "\"topic\":\"odd \\\"topic\\\"\\n\""));
            assert_non_null(strstr(line, "\\ufffd"));
            assert_non_null(strstr(line, "\"ts\":-5"));
            assert_non_null(strstr(line, "\"nullval\":null"));
            assert_non_null(strstr(line, "\\u0000"));
        }
        lines++;
    }
    assert_int_equal(lines, 21);
    free(text);

    /* damage: check says so and changes nothing */
    char seg[512];
    long off = -1;
    for (int k = 0; off < 0 && k < 3; k++) {
        nth_segment(k, seg, sizeof(seg));
        off = find_rec(seg, 12);
    }
    assert_true(off > 0);
    write_at(seg, off, "X", 1);
    out = open_memstream(&text, &tlen);
    assert_int_equal(agent_buffer_check(bdir, out, &rep), 1);
    fclose(out);
    assert_non_null(strstr(text, "problem:"));
    assert_non_null(strstr(text, "DAMAGED"));
    free(text);
    assert_int_equal(agent_buffer_check(bdir, NULL, NULL), 1);
    char qdir[400];
    snprintf(qdir, sizeof(qdir), "%s/quarantine", bdir);
    assert_int_equal(access(qdir, F_OK), -1);
    /* the dump skips the damaged record */
    out = open_memstream(&text, &tlen);
    assert_int_equal(agent_buffer_dump(bdir, out), 0);
    fclose(out);
    assert_null(strstr(text, "\"id\":12,"));
    assert_non_null(strstr(text, "\"id\":13,"));
    free(text);
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/nope", root);
    assert_int_equal(agent_buffer_check(missing, NULL, NULL), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_rolls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_cut_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unnext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_pruned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_and_dump, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
