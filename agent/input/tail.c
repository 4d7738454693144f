/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tail input: files matching globs, read line by line through rotation.
 *
 * Identity. A file is (device, inode) plus a fingerprint: the length and
 * CRC32C of its first fingerprint_bytes (fewer while the file is shorter;
 * the fingerprint grows with the file, so short files are read at once). A
 * checkpoint is only resumed when the file's first fp_len bytes still hash
 * to the stored value, so a reused inode starts from 0 (§2.1, §2.2).
 *
 * Discovery. The globs are expanded at start-up, every scan_interval, and
 * whenever inotify reports a name created, moved or deleted in a watched
 * directory. Open files are fstat()ed every poll_interval, and whenever
 * inotify reports a change; inotify only shortens the wait, so running out
 * of watches or instances (ENOSPC, EMFILE) or a queue overflow costs
 * latency, never lines (§2.5).
 *
 * Rotation by rename: the renamed file keeps its fd and is read to its
 * end; once it is at its end and has not grown for rotate_wait it is
 * closed, its last line flushed even without a newline. A new file at the
 * path is found by the next scan and read from its beginning. At start-up,
 * checkpoints that match no globbed file are looked for among the other
 * files of their directory (access.log.1), so a rotation while the agent
 * was down is finished too.
 *
 * Copytruncate: a size below what was read is a truncation. The bytes seen
 * but not yet read are counted as lost (bytes_lost_truncation_total: a
 * lower bound; copytruncate is racy by design), reading restarts at 0 and
 * the checkpoint restarts at 0 once the events of the old content are
 * acknowledged.
 *
 * Deleted files are closed once read to their end (after rotate_wait), or
 * after deleted_max_age with the unread bytes counted. Inactive files are
 * closed after close_inactive and reopened when they grow. At most
 * max_open_files files per input are open.
 *
 * Lines longer than max_line_bytes are split into parts flagged partial;
 * nothing is dropped. Multiline: a line matching multiline.start begins a
 * record; other lines join the current one, up to max_lines and
 * max_line_bytes; a record is sent when the next begins, after
 * multiline.timeout without a new line, when its file closes, on rotation
 * and at shutdown.
 *
 * Reading. A file is read with pread() from `off`, the first byte not yet
 * turned into an event, so "pausing" or "rewinding" is only not advancing
 * `off`: no per-file read buffer exists, one shared scratch buffer serves
 * all.
 *
 * Delivery. Every event made from a file goes through its pipeline
 * (pipeline.h) to the output (output/output.h), and gets the next sequence
 * number of that file and one entry (the file offset just past its last
 * line) in the file's ack ring. The output hands its delivery report back
 * (agent_tail_ack) with the message's cookie, (file slot << 40) |
 * (seq & 2^40-1); the report marks its entry, and the checkpoint is the
 * offset of the longest acknowledged prefix of the ring, so it only ever
 * moves past lines whose delivery came back successful, in order. Events
 * the filters drop enter the ring already acknowledged. A file slot is
 * released only when the file is closed and nothing is in flight.
 */
#include "input/tail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/inotify.h>

#include <uv.h>

#include "output/output.h"
#include "regex.h"
#include "tributary/crc32c.h"
#include "tributary/log.h"

static trib_log_ratelimit_t rl_tail = TRIB_LOG_RATELIMIT_INIT(10000, 5);
static trib_log_ratelimit_t rl_delivery = TRIB_LOG_RATELIMIT_INIT(10000, 5);

/* What the agent's tail inputs share. */
struct agent_tails {
    agent_input_host_t *h;
    agent_file_t **slots; /* a message's cookie names its file by slot */
    size_t nslots;
    char *rbuf; /* the one read buffer */
    size_t rbuf_cap;
    char *fpbuf;
    int64_t wall_ms;        /* the time of the current read: events made from it get it */
    agent_input_t **inputs; /* started tail inputs */
    size_t ninputs, cap;
    int inotify_fd;
    uv_poll_t inotify_poll;
    bool inotify_failed;
    int *wds;
    size_t nwds;
    uint64_t scan_gen; /* bumped by inotify events: every input scans and polls */
    int64_t last_wake_ms;
};

static agent_tail_t *tail_of(agent_input_t *in)
{
    return in->impl;
}

static void agent_file_release(agent_file_t *f);
static void agent_tail_flush_ml(agent_file_t *f);

/* ---------------------------------------------------------------------- */
/* The ack ring: a file's events in flight, and its checkpoint            */

/* Room for one more entry: 0 or -ENOMEM (nothing is produced without it). */
int agent_ring_reserve(agent_file_t *f)
{
    if (f->tail - f->head < f->rcap) {
        return 0;
    }
    size_t ncap = f->rcap ? f->rcap * 2 : 64;
    uint64_t *n = malloc(ncap * sizeof(*n));
    if (n == NULL) {
        return -ENOMEM;
    }
    for (uint64_t s = f->head; s < f->tail; s++) {
        n[s & (ncap - 1)] = f->ring[s & (f->rcap - 1)];
    }
    free(f->ring);
    f->ring = n;
    f->rcap = ncap;
    return 0;
}

/* Callers reserved the entry first. */
void agent_ring_push(agent_file_t *f, uint64_t v)
{
    f->ring[f->tail & (f->rcap - 1)] = v;
    f->tail++;
}

static void ring_advance(agent_file_t *f)
{
    agent_input_host_t *a = f->in->host;
    while (f->head < f->tail) {
        if (f->trunc_pending && f->head == f->trunc_seq) {
            f->trunc_pending = false;
            f->acked_off = 0;
        }
        uint64_t e = f->ring[f->head & (f->rcap - 1)];
        if (!(e & AGENT_ACK_BIT)) {
            break;
        }
        f->acked_off = e & ~AGENT_ACK_BIT;
        f->head++;
    }
    if (f->trunc_pending && f->head == f->trunc_seq) {
        f->trunc_pending = false;
        f->acked_off = 0;
    }
    uint64_t ck = f->trunc_pending ? 0 : f->acked_off;
    if (f->ck != NULL && f->ck->offset != ck) {
        f->ck->offset = ck;
        a->ckpts->dirty = true;
    }
}

/* An event that needs no delivery (filtered, printed, dropped) at end_off. */
int agent_ring_done(agent_file_t *f, uint64_t end_off)
{
    if (f->head == f->tail && !f->trunc_pending) {
        f->acked_off = end_off;
        if (f->ck != NULL && f->ck->offset != end_off) {
            f->ck->offset = end_off;
            f->in->host->ckpts->dirty = true;
        }
        return 0;
    }
    if (agent_ring_reserve(f) != 0) {
        return -EAGAIN; /* out of memory: the record is retried later */
    }
    agent_ring_push(f, end_off | AGENT_ACK_BIT);
    ring_advance(f);
    return 0;
}

void agent_ring_ack(agent_file_t *f, uint64_t seq)
{
    f->ring[seq & (f->rcap - 1)] |= AGENT_ACK_BIT;
    ring_advance(f);
}

static void pause_reading(agent_input_host_t *a)
{
    if (!*a->paused) {
        *a->paused = true;
        a->st->backpressure_pauses++;
        TRIB_LOG(TRIB_LOG_DEBUG, "output", "paused: the in-flight budget or the producer is full");
    }
}

/*
 * The event id of the record [start_off, end_off) of the file (event.h):
 * the identity hash covers the agent id, the input id, the inode and the
 * file's first min(fingerprint_bytes, end_off) bytes, which a record never
 * sees change (appended files; copytruncate writes new content from 0):
 * what the checkpoint knows a file by, so a restart, a reload or a rename
 * gives the record the same id, and two files with the same first lines
 * do not share ids. It is computed
 * once per file (or per record, for those ending inside the first
 * fingerprint_bytes). False when the bytes cannot be read (no id).
 */
static bool event_id(agent_file_t *f, uint64_t start_off, uint64_t end_off,
                     uint8_t id[AGENT_EVENT_ID_LEN])
{
    agent_input_t *in = f->in;
    uint64_t want = in->conf->fingerprint_bytes;
    uint64_t len = end_off < want ? end_off : want;
    if (!f->id_known || f->id_len != len) {
        if (f->fd < 0) {
            return false;
        }
        ssize_t n = len > 0 ? pread(f->fd, in->host->tails->fpbuf, len, 0) : 0;
        if (n != (ssize_t)len) {
            return false;
        }
        uint64_t h = agent_fnv64(AGENT_FNV64_INIT, in->pl->jagent.p, in->pl->jagent.len);
        h = agent_fnv64(h, "", 1);
        h = agent_fnv64(h, in->conf->id, strlen(in->conf->id) + 1);
        uint8_t nb[16];
        for (int i = 0; i < 8; i++) {
            nb[i] = (uint8_t)(f->ino >> (8 * i));
            nb[8 + i] = (uint8_t)(len >> (8 * i));
        }
        h = agent_fnv64(h, nb, sizeof(nb));
        f->id_hash = agent_fnv64(h, in->host->tails->fpbuf, len);
        f->id_len = len;
        f->id_known = true;
    }
    agent_event_id_tail(id, f->id_hash, start_off);
    return true;
}

/* A record of the file, [start_off, end_off), through the pipeline to the
   output. 0 handled (sent, dropped or filtered), -EAGAIN paused (nothing
   consumed). */
static int emit(agent_file_t *f, const char *msg, size_t len, uint64_t start_off, uint64_t end_off,
                bool partial)
{
    agent_input_t *in = f->in;
    agent_pipeline_t *pl = in->pl;
    agent_input_host_t *a = in->host;

    if (agent_output_full(a->out)) {
        pause_reading(a);
        return -EAGAIN;
    }
    agent_event_t ev;
    /* the time of the read (once per chunk of the file) */
    if (agent_event_begin(&ev, pl, in->conf, a->tails->wall_ms, f->jpath, f->jpath_len, true, msg,
                          len, len * 2 + 1024) != 0) {
        return -EAGAIN;
    }
    ev.partial = partial;
    if (pl->event_id) {
        ev.has_id = event_id(f, start_off, end_off, ev.id);
    }
    agent_source_t src = {"tail", "path", f->path, in->ist};
    agent_msg_t m;
    bool routed = false;
    int rc = agent_pipeline_process(pl, &ev, &src, &m, &routed);
    if (rc < 0) {
        return -EAGAIN; /* out of memory: retried later */
    }
    if (rc == 1) {
        return agent_ring_done(f, end_off) != 0 ? -EAGAIN : 0;
    }
    if (agent_ring_reserve(f) != 0) {
        return -EAGAIN;
    }
    if (a->dry_run) {
        in->ist->events++;
        in->ist->parse_routed += routed;
        agent_output_print(a->out, &m);
        (void)agent_ring_done(f, end_off); /* reserved above */
        return 0;
    }
    uint64_t seq = f->tail;
    uint64_t cookie = ((uint64_t)f->slot << AGENT_SEQ_BITS) | (seq & AGENT_SEQ_MASK);
    rc = agent_output_produce(a->out, &m, a->tail_owner, cookie);
    if (rc == -EAGAIN) {
        pause_reading(a);
        return -EAGAIN;
    }
    in->ist->events++;
    in->ist->parse_routed += routed;
    if (rc != 0) {
        (void)agent_ring_done(f, end_off); /* dropped (counted); reserved above */
        return 0;
    }
    agent_ring_push(f, end_off);
    f->inflight++;
    return 0;
}

void agent_tail_ack(void *arg, uint64_t cookie, int status, const char *why)
{
    agent_input_host_t *a = arg;
    uint32_t slot = (uint32_t)(cookie >> AGENT_SEQ_BITS);
    agent_file_t *f = slot < a->tails->nslots ? a->tails->slots[slot] : NULL;
    if (f == NULL) {
        return; /* cannot happen: a slot lives while its events are in flight */
    }
    uint64_t seq = (f->head & ~AGENT_SEQ_MASK) | (cookie & AGENT_SEQ_MASK);
    if (seq < f->head) {
        seq += 1ull << AGENT_SEQ_BITS;
    }
    switch (status) {
    case AGENT_ACK_DELIVERED:
        agent_ring_ack(f, seq);
        break;
    case AGENT_ACK_UNSENT: /* not passed over: the checkpoint stays before it */
        break;
    case AGENT_ACK_EXPIRED:
        a->st->drop_delivery_permanent++;
        TRIB_LOG_RL(&rl_delivery, TRIB_LOG_WARN, "output",
                    "event from %s dropped: timed out and could not be queued again: %s", f->path,
                    why);
        agent_ring_ack(f, seq);
        break;
    default:
        TRIB_LOG_RL(&rl_delivery, TRIB_LOG_WARN, "output",
                    "event from %s dropped after a permanent delivery error: %s", f->path, why);
        agent_ring_ack(f, seq);
        break;
    }
    f->inflight--;
    if (f->inflight == 0 && f->fd < 0) {
        agent_file_release(f);
    }
}

static bool excluded(const agent_input_conf_t *c, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < c->exclude.count; i++) {
        const char *pat = c->exclude.items[i];
        if (fnmatch(pat, strchr(pat, '/') ? path : base, 0) == 0) {
            return true;
        }
    }
    return false;
}

static agent_file_t *find_file(agent_input_t *in, uint64_t dev, uint64_t ino)
{
    for (agent_file_t *f = tail_of(in)->files; f != NULL; f = f->next) {
        if (f->dev == dev && f->ino == ino) {
            return f;
        }
    }
    return NULL;
}

static int fp_compute(agent_input_host_t *a, int fd, uint32_t len, uint32_t *crc)
{
    ssize_t n = pread(fd, a->tails->fpbuf, len, 0);
    if (n != (ssize_t)len) {
        return -1;
    }
    *crc = trib_crc32c(0, a->tails->fpbuf, len);
    return 0;
}

static void fp_update(agent_file_t *f)
{
    agent_input_host_t *a = f->in->host;
    uint64_t want = f->in->conf->fingerprint_bytes;
    if (f->ck == NULL || f->fd < 0 || f->ck->fp_len >= want || f->size <= f->ck->fp_len) {
        return;
    }
    uint32_t len = (uint32_t)(f->size < want ? f->size : want);
    uint32_t crc;
    if (fp_compute(a, f->fd, len, &crc) == 0) {
        f->ck->fp_len = len;
        f->ck->fp_crc = crc;
        a->ckpts->dirty = true;
    }
}

static int slot_alloc(agent_input_host_t *a, agent_file_t *f)
{
    for (size_t i = 0; i < a->tails->nslots; i++) {
        if (a->tails->slots[i] == NULL) {
            a->tails->slots[i] = f;
            f->slot = (uint32_t)i;
            return 0;
        }
    }
    size_t n = a->tails->nslots ? a->tails->nslots * 2 : 16;
    if (n > (1u << 23)) {
        return -ENOMEM;
    }
    agent_file_t **s = realloc(a->tails->slots, n * sizeof(*s));
    if (s == NULL) {
        return -ENOMEM;
    }
    memset(s + a->tails->nslots, 0, (n - a->tails->nslots) * sizeof(*s));
    a->tails->slots = s;
    f->slot = (uint32_t)a->tails->nslots;
    a->tails->slots[a->tails->nslots] = f;
    a->tails->nslots = n;
    return 0;
}

/*
 * Opens a file for reading: at its checkpoint when one matches, else at 0
 * (or at its end for read_from: end at start-up), or at `start_off` when
 * that is not -1 (the copy of a truncated file, read from where the
 * original was left).
 */
static agent_file_t *open_file_at(agent_input_t *in, const char *path, bool startup, bool detached,
                                  int64_t start_off)
{
    agent_input_host_t *a = in->host;
    agent_input_conf_t *c = in->conf;
    if (tail_of(in)->nopen >= c->max_open_files) {
        a->st->open_capped++;
        tail_of(in)->capped = true;
        TRIB_LOG_RL(&rl_tail, TRIB_LOG_WARN, "tail",
                    "input %s: %zu files open (max_open_files); %s waits", c->id,
                    tail_of(in)->nopen, path);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT) {
            TRIB_LOG_RL(&rl_tail, TRIB_LOG_WARN, "tail", "cannot open %s: %s", path,
                        strerror(errno));
        }
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return NULL;
    }
    agent_file_t *f = calloc(1, sizeof(*f));
    char *p = strdup(path);
    if (f == NULL || p == NULL || slot_alloc(a, f) != 0) {
        free(f);
        free(p);
        close(fd);
        return NULL;
    }
    agent_sbuf_t jp = {0};
    agent_sbuf_putc(&jp, '"');
    agent_sbuf_json_str(&jp, p, strlen(p));
    agent_sbuf_putc(&jp, '"');
    if (jp.err) {
        agent_sbuf_fini(&jp);
        a->tails->slots[f->slot] = NULL;
        free(f);
        free(p);
        close(fd);
        return NULL;
    }
    f->jpath = jp.p;
    f->jpath_len = jp.len;
    f->in = in;
    f->path = p;
    f->fd = fd;
    f->dev = (uint64_t)st.st_dev;
    f->ino = (uint64_t)st.st_ino;
    f->size = (uint64_t)st.st_size;
    f->last_growth_ms = (int64_t)uv_now(a->loop);
    f->detached_ms = detached ? (int64_t)uv_now(a->loop) : 0;
    f->deleted = st.st_nlink == 0;
    agent_ckpt_t *ck = agent_ckpt_find(a->ckpts, c->id, f->dev, f->ino);
    uint64_t off = 0;
    const char *from = "its beginning";
    if (ck != NULL) {
        uint32_t crc = 0;
        bool same =
            ck->fp_len == 0 || (ck->fp_len <= f->size && fp_compute(a, fd, ck->fp_len, &crc) == 0 &&
                                crc == ck->fp_crc);
        if (same && ck->offset <= f->size) {
            off = ck->offset;
            from = "its checkpoint";
        } else if (same) {
            /* shorter than what was delivered: truncated while we were away */
            a->st->truncations++;
            TRIB_LOG(TRIB_LOG_WARN, "tail", "%s is shorter than its checkpoint: read from 0", path);
            ck->fp_len = 0;
        } else {
            TRIB_LOG(TRIB_LOG_INFO, "tail",
                     "%s: inode reused by a new file (fingerprint differs): read from 0", path);
            ck->fp_len = 0;
        }
        if (strcmp(ck->path, path) != 0 && !detached) {
            char *np = strdup(path);
            if (np != NULL) {
                free(ck->path);
                ck->path = np;
            }
        }
    } else {
        ck = agent_ckpt_add(a->ckpts, c->id, path, f->dev, f->ino);
        if (ck == NULL) {
            a->tails->slots[f->slot] = NULL;
            free(f->jpath);
            free(f->path);
            free(f);
            close(fd);
            return NULL;
        }
        off = (startup && c->read_from == AGENT_READ_END) ? f->size : 0;
        if (off > 0) {
            from = "its end (read_from: end)";
        }
        if (start_off >= 0 && (uint64_t)start_off <= f->size) {
            off = (uint64_t)start_off;
            from = "where its truncated original was left";
        }
    }
    ck->offset = off;
    ck->file = f;
    ck->closed_ms = 0;
    a->ckpts->dirty = true;
    f->ck = ck;
    f->off = f->examined = f->acked_off = off;
    f->want_read = f->size > off;
    f->next = tail_of(in)->files;
    tail_of(in)->files = f;
    tail_of(in)->nopen++;
    a->st->files_opened++;
    fp_update(f);
    TRIB_LOG(TRIB_LOG_INFO, "tail", "input %s: opened %s at offset %llu of %llu (%s)", c->id, path,
             (unsigned long long)off, (unsigned long long)f->size, from);
    return f;
}

static agent_file_t *open_file(agent_input_t *in, const char *path, bool startup, bool detached)
{
    return open_file_at(in, path, startup, detached, -1);
}

static void close_fd(agent_file_t *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
        tail_of(f->in)->nopen--;
        f->in->host->st->files_closed++;
    }
}

/* Frees a closed file once nothing of it is in flight. */
static void agent_file_release(agent_file_t *f)
{
    if (f->fd >= 0 || f->inflight > 0) {
        return;
    }
    agent_input_t *in = f->in;
    agent_input_host_t *a = in->host;
    for (agent_file_t **pp = &tail_of(in)->files; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    if (f->ck != NULL) {
        f->ck->file = NULL;
        f->ck->closed_ms = agent_wall_ms();
        a->ckpts->dirty = true;
    }
    a->tails->slots[f->slot] = NULL;
    agent_sbuf_fini(&f->ml);
    free(f->ring);
    free(f->jpath);
    free(f->path);
    free(f);
}

static void agent_tail_flush_ml(agent_file_t *f)
{
    if (f->ml.len == 0 && f->ml_lines == 0) {
        return;
    }
    if (emit(f, f->ml.p, f->ml.len, f->ml_start, f->ml_end, false) == 0) {
        f->in->host->st->multiline_records++;
        f->ml.len = 0;
        f->ml_lines = 0;
    }
}

/* One line (without its newline) ending at end_off. 0 or -EAGAIN. */
static int on_line(agent_file_t *f, const char *s, size_t n, uint64_t end_off, bool partial)
{
    agent_input_conf_t *c = f->in->conf;
    agent_input_host_t *a = f->in->host;
    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    if (c->multiline.re == NULL || partial) {
        if (partial && f->ml_lines > 0) {
            agent_tail_flush_ml(f);
            if (f->ml_lines > 0) {
                return -EAGAIN;
            }
        }
        return emit(f, s, n, f->off, end_off, partial);
    }
    bool start = agent_regex_match(c->multiline.re, s, n) > 0;
    if (f->ml_lines > 0 &&
        (start || f->ml_lines >= c->multiline.max_lines || f->ml.len + n + 1 > c->max_line_bytes)) {
        agent_tail_flush_ml(f);
        if (f->ml_lines > 0) {
            return -EAGAIN;
        }
    }
    if (f->ml_lines > 0) {
        agent_sbuf_putc(&f->ml, '\n');
    } else {
        f->ml_start = f->off;
    }
    agent_sbuf_put(&f->ml, s, n);
    if (f->ml.err) {
        f->ml.err = 0;
        f->ml.len = 0;
        return -EAGAIN;
    }
    f->ml_lines++;
    f->ml_end = end_off;
    f->ml_last_ms = (int64_t)uv_now(a->loop);
    return 0;
}

static size_t agent_tail_read(agent_file_t *f, size_t budget)
{
    agent_input_host_t *a = f->in->host;
    agent_input_conf_t *c = f->in->conf;
    size_t done = 0;
    f->want_read = false;
    if (f->fd < 0) {
        return 0;
    }
    while (done < budget && !*a->paused && a->running(a->arg)) {
        ssize_t n = pread(f->fd, a->tails->rbuf, a->tails->rbuf_cap, (off_t)f->off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            TRIB_LOG_RL(&rl_tail, TRIB_LOG_WARN, "tail", "read %s: %s", f->path, strerror(errno));
            break;
        }
        if (n == 0) {
            f->examined = f->off;
            break;
        }
        a->tails->wall_ms = agent_wall_ms();
        if (f->off + (uint64_t)n > f->size) {
            f->size = f->off + (uint64_t)n;
        }
        const char *buf = a->tails->rbuf;
        size_t pos = 0;
        bool stop = false;
        while (pos < (size_t)n) {
            const char *nl = memchr(buf + pos, '\n', (size_t)n - pos);
            size_t len = nl ? (size_t)(nl - (buf + pos)) : (size_t)n - pos;
            if (len >= c->max_line_bytes) {
                /* a part of a long line */
                len = c->max_line_bytes;
                if (on_line(f, buf + pos, len, f->off + len, true) != 0) {
                    stop = true;
                    break;
                }
                a->st->lines_split++;
                a->st->bytes_read += len;
                f->off += len;
                pos += len;
                continue;
            }
            if (nl == NULL) {
                break; /* a partial line: wait for the rest */
            }
            if (on_line(f, buf + pos, len, f->off + len + 1, false) != 0) {
                stop = true;
                break;
            }
            a->st->lines_read++;
            f->in->ist->lines_read++;
            a->st->bytes_read += len + 1;
            f->off += len + 1;
            pos += len + 1;
        }
        done += pos;
        if (f->off > f->examined) {
            f->examined = f->off;
        }
        if (stop) {
            f->want_read = true;
            break;
        }
        if ((size_t)n < a->tails->rbuf_cap) {
            /* at the end: what is left is a partial line */
            f->examined = f->off + ((size_t)n - pos);
            break;
        }
        if (done >= budget) {
            f->want_read = true;
        }
    }
    if (*a->paused || !a->running(a->arg)) {
        f->want_read = true;
    }
    return done;
}

/* Emits the last line of a file that ends without a newline (closing files only). */
static int flush_partial(agent_file_t *f)
{
    agent_input_host_t *a = f->in->host;
    if (f->fd < 0 || f->off >= f->size) {
        return 0;
    }
    size_t want = (size_t)(f->size - f->off);
    if (want > a->tails->rbuf_cap) {
        return -EAGAIN; /* not read yet */
    }
    ssize_t n = pread(f->fd, a->tails->rbuf, want, (off_t)f->off);
    if (n <= 0) {
        return 0;
    }
    a->tails->wall_ms = agent_wall_ms();
    if (memchr(a->tails->rbuf, '\n', (size_t)n) != NULL) {
        return -EAGAIN; /* whole lines left: read them first */
    }
    int rc = on_line(f, a->tails->rbuf, (size_t)n, f->off + (uint64_t)n, false);
    if (rc == 0) {
        a->st->lines_read++;
        f->in->ist->lines_read++;
        a->st->bytes_read += (uint64_t)n;
        f->off += (uint64_t)n;
        f->examined = f->off;
    }
    return rc;
}

/*
 * copytruncate: the copy holds the original's first bytes. Looks in the
 * file's directory for another file whose first fp_len bytes hash to the
 * original's fingerprint and that reaches past what was read; returns its
 * size (0 when none) after opening it at the original's offset.
 */
static uint64_t find_copy(agent_file_t *f)
{
    agent_input_host_t *a = f->in->host;
    if (f->ck == NULL || f->ck->fp_len == 0) {
        return 0;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", f->path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        return 0;
    }
    *slash = '\0';
    DIR *d = opendir(dir[0] ? dir : "/");
    if (d == NULL) {
        return 0;
    }
    uint64_t found = 0;
    struct dirent *de;
    while (found == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char p[8192];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_ino == f->ino ||
            (uint64_t)st.st_size <= f->off || (uint64_t)st.st_size < f->ck->fp_len ||
            find_file(f->in, (uint64_t)st.st_dev, (uint64_t)st.st_ino) != NULL ||
            agent_ckpt_find(a->ckpts, f->in->conf->id, (uint64_t)st.st_dev, (uint64_t)st.st_ino) !=
                NULL) {
            continue;
        }
        int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
            continue;
        }
        uint32_t crc;
        bool same = fp_compute(a, fd, f->ck->fp_len, &crc) == 0 && crc == f->ck->fp_crc;
        close(fd);
        if (same && open_file_at(f->in, p, false, true, (int64_t)f->off) != NULL) {
            TRIB_LOG(TRIB_LOG_INFO, "tail", "%s was truncated: reading its rest from its copy %s",
                     f->path, p);
            found = (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return found;
}

static void truncated(agent_file_t *f, uint64_t newsize)
{
    agent_input_host_t *a = f->in->host;
    uint64_t seen = f->size > f->examined ? f->size : f->examined;
    uint64_t copy = find_copy(f);
    uint64_t from = copy > f->off ? copy : f->off;
    uint64_t lost = seen > from ? seen - from : 0;
    a->st->truncations++;
    a->st->bytes_lost_truncation += lost;
    TRIB_LOG(TRIB_LOG_WARN, "tail",
             "%s was truncated (copytruncate?) from %llu to %llu bytes; %s; %llu bytes seen "
             "and not read are lost",
             f->path, (unsigned long long)seen, (unsigned long long)newsize,
             copy ? "its copy is read from where it was left" : "no copy found",
             (unsigned long long)lost);
    agent_tail_flush_ml(f);
    f->ml.len = 0;
    f->ml_lines = 0;
    if (f->head == f->tail) {
        f->acked_off = 0;
        f->trunc_pending = false;
    } else {
        f->trunc_seq = f->tail;
        f->trunc_pending = true;
    }
    f->off = f->examined = 0;
    f->size = newsize;
    f->id_known = false; /* new content from 0: a new identity */
    if (f->ck != NULL) {
        f->ck->fp_len = 0;
        f->ck->fp_crc = 0;
        f->ck->offset = 0;
        a->ckpts->dirty = true;
    }
    f->want_read = newsize > 0;
    f->last_growth_ms = (int64_t)uv_now(a->loop);
}

static void agent_tail_poll(agent_input_t *in)
{
    agent_input_host_t *a = in->host;
    agent_input_conf_t *c = in->conf;
    int64_t now = (int64_t)uv_now(a->loop);
    agent_file_t *next;
    for (agent_file_t *f = tail_of(in)->files; f != NULL; f = next) {
        next = f->next;
        if (f->fd < 0) {
            continue;
        }
        struct stat st;
        if (fstat(f->fd, &st) != 0) {
            continue;
        }
        uint64_t size = (uint64_t)st.st_size;
        if (st.st_nlink == 0 && !f->deleted) {
            f->deleted = true;
            if (f->detached_ms == 0) {
                f->detached_ms = now;
            }
        }
        if (size < f->examined || size < f->off) {
            truncated(f, size);
        } else if (size > f->examined) {
            f->want_read = true;
            f->last_growth_ms = now;
        }
        if (size != f->size) {
            f->last_growth_ms = now;
        }
        f->size = size;
        fp_update(f);
        if (f->ml_lines > 0 && now - f->ml_last_ms >= c->multiline.timeout_ms) {
            agent_tail_flush_ml(f);
        }
        bool at_end = !f->want_read && f->examined == f->size;
        int64_t idle = now - f->last_growth_ms;
        if (f->deleted && f->detached_ms && now - f->detached_ms >= c->deleted_max_age_ms &&
            !at_end && (f->ml_lines == 0 || (agent_tail_flush_ml(f), f->ml_lines == 0))) {
            a->st->drop_deleted_unread_bytes += f->size - f->off;
            TRIB_LOG(TRIB_LOG_WARN, "tail",
                     "%s: deleted %lld ms ago and not read to its end: %llu bytes dropped", f->path,
                     (long long)(now - f->detached_ms), (unsigned long long)(f->size - f->off));
            agent_tail_flush_ml(f);
            close_fd(f);
        } else if (at_end && (f->detached_ms || f->deleted) && idle >= c->rotate_wait_ms) {
            if (flush_partial(f) == 0) {
                agent_tail_flush_ml(f);
                if (f->ml_lines == 0) {
                    close_fd(f);
                }
            }
        } else if (at_end && idle >= c->close_inactive_ms && f->off == f->size) {
            agent_tail_flush_ml(f);
            if (f->ml_lines == 0) {
                close_fd(f);
            }
        }
        if (f->fd < 0) {
            agent_file_release(f);
        }
    }
}

static void scan_siblings(agent_input_t *in)
{
    agent_input_host_t *a = in->host;
    for (agent_ckpt_t *ck = a->ckpts->head; ck != NULL; ck = ck->next) {
        if (ck->file != NULL || strcmp(ck->input_id, in->conf->id) != 0) {
            continue;
        }
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", ck->path);
        char *slash = strrchr(dir, '/');
        if (slash == NULL) {
            continue;
        }
        *slash = '\0';
        DIR *d = opendir(dir[0] ? dir : "/");
        if (d == NULL) {
            continue;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if ((uint64_t)de->d_ino != ck->ino) {
                continue;
            }
            char p[8192];
            snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
            struct stat st;
            if (stat(p, &st) == 0 && (uint64_t)st.st_dev == ck->dev &&
                (uint64_t)st.st_ino == ck->ino && (uint64_t)st.st_size > ck->offset) {
                TRIB_LOG(TRIB_LOG_INFO, "tail", "resuming %s (was %s) at %llu", p, ck->path,
                         (unsigned long long)ck->offset);
                open_file(in, p, false, true);
            }
            break;
        }
        closedir(d);
    }
}

static void agent_tail_scan(agent_input_t *in, bool startup, bool siblings)
{
    agent_input_host_t *a = in->host;
    agent_input_conf_t *c = in->conf;
    int64_t now = (int64_t)uv_now(a->loop);
    for (agent_file_t *f = tail_of(in)->files; f != NULL; f = f->next) {
        f->seen = false;
    }
    tail_of(in)->capped = false;
    if (tail_of(in)->unmatched == NULL && c->paths.count > 0) {
        tail_of(in)->unmatched = calloc(c->paths.count, 1);
    }
    size_t npats = tail_of(in)->only_path != NULL ? 1 : c->paths.count;
    for (size_t i = 0; i < npats; i++) {
        glob_t g;
        char *only[2] = {(char *)tail_of(in)->only_path, NULL};
        int rc = 0;
        if (tail_of(in)->only_path != NULL) {
            /* a dry run's --input: the file as named, never a pattern */
            memset(&g, 0, sizeof(g));
            g.gl_pathc = 1;
            g.gl_pathv = only;
        } else {
            rc = glob(c->paths.items[i], GLOB_NOSORT, NULL, &g);
        }
        size_t matched = 0;
        if (rc != 0) {
            if (rc != GLOB_NOMATCH) {
                TRIB_LOG_RL(&rl_tail, TRIB_LOG_WARN, "tail", "glob %s failed", c->paths.items[i]);
            }
            globfree(&g);
            g.gl_pathc = 0;
        }
        for (size_t j = 0; j < g.gl_pathc; j++) {
            const char *p = g.gl_pathv[j];
            if (tail_of(in)->only_path == NULL && excluded(c, p)) {
                continue;
            }
            struct stat st;
            if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
                continue;
            }
            matched++;
            agent_file_t *f = find_file(in, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
            if (f != NULL) {
                f->seen = true;
                if (f->fd < 0 && (uint64_t)st.st_size != f->off) {
                    /* closed while events were in flight, and grew again */
                    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                    if (fd >= 0) {
                        f->fd = fd;
                        tail_of(in)->nopen++;
                        f->want_read = true;
                        f->detached_ms = 0;
                    }
                }
                continue;
            }
            agent_ckpt_t *ck =
                agent_ckpt_find(a->ckpts, c->id, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
            if (ck != NULL && ck->file == NULL && (uint64_t)st.st_size == ck->offset &&
                ck->fp_len > 0) {
                /* known and read to its end: reopened when it changes. It still
                   exists, so its checkpoint must not expire (a file untouched
                   for state_ttl would be read again from 0). */
                ck->closed_ms = agent_wall_ms();
                continue;
            }
            f = open_file(in, p, startup, false);
            if (f != NULL) {
                f->seen = true;
            }
        }
        if (tail_of(in)->only_path == NULL) {
            if (rc == 0) {
                globfree(&g);
            }
            /* said once when a pattern starts matching nothing, not at every scan */
            bool none = matched == 0;
            if (tail_of(in)->unmatched != NULL && none != (tail_of(in)->unmatched[i] != 0)) {
                tail_of(in)->unmatched[i] = none;
                if (none) {
                    TRIB_LOG(TRIB_LOG_INFO, "tail", "input %s: path %s matches no file%s", c->id,
                             c->paths.items[i], c->exclude.count ? " (after exclude)" : "");
                }
            }
        }
    }
    for (agent_file_t *f = tail_of(in)->files; f != NULL; f = f->next) {
        if (!f->seen && f->fd >= 0 && f->detached_ms == 0) {
            f->detached_ms = now;
            a->st->rotations++;
            TRIB_LOG(TRIB_LOG_INFO, "tail",
                     "input %s: %s was rotated or removed at offset %llu of %llu: reading it to "
                     "its end",
                     c->id, f->path, (unsigned long long)f->off, (unsigned long long)f->size);
        }
    }
    if (siblings) {
        scan_siblings(in);
    }
    tail_of(in)->scanned = true;
}

static bool agent_tail_idle(agent_input_t *in)
{
    if (!tail_of(in)->started) {
        return true;
    }
    for (agent_file_t *f = tail_of(in)->files; f != NULL; f = f->next) {
        if (f->want_read || f->ml_lines > 0 || f->inflight > 0 ||
            (f->fd >= 0 && f->examined < f->size)) {
            return false;
        }
    }
    return tail_of(in)->scanned && !tail_of(in)->capped;
}

static void agent_tail_close_all(agent_input_t *in)
{
    while (tail_of(in)->files != NULL) {
        agent_file_t *f = tail_of(in)->files;
        close_fd(f);
        f->inflight = 0; /* the producer is gone: nothing will report */
        agent_file_release(f);
    }
}

/* ---------------------------------------------------------------------- */
/* The shared state and inotify                                           */

static void inotify_cb(uv_poll_t *h, int status, int events)
{
    agent_tails_t *t = h->data;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(t->inotify_fd, buf, sizeof(buf));
        if (n <= 0) {
            break;
        }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW) {
                TRIB_LOG(TRIB_LOG_INFO, "tail", "inotify queue overflow: full rescan");
            }
            p += sizeof(*ev) + ev->len;
        }
        any = true;
    }
    if (!any) {
        return;
    }
    t->scan_gen++; /* every input scans and polls at its next tick */
    /* act now rather than at the next tick, at most every 50 ms (a busy
       directory sends an event per write) */
    int64_t now = (int64_t)uv_now(t->h->loop);
    if (now - t->last_wake_ms >= 50) {
        t->last_wake_ms = now;
        t->h->tick_now(t->h->arg);
    }
}

int agent_tails_new(agent_tails_t **out, agent_input_host_t *a)
{
    agent_tails_t *t = calloc(1, sizeof(*t));
    *out = t;
    if (t == NULL) {
        return -ENOMEM;
    }
    t->h = a;
    t->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (t->inotify_fd >= 0) {
        uv_poll_init(a->loop, &t->inotify_poll, t->inotify_fd);
        t->inotify_poll.data = t;
        uv_poll_start(&t->inotify_poll, UV_READABLE, inotify_cb);
    } else {
        TRIB_LOG(TRIB_LOG_WARN, "tail", "inotify unavailable (%s): polling every poll_interval",
                 strerror(errno));
        a->st->inotify_fallbacks++;
    }
    return 0;
}

void agent_tails_close(agent_tails_t *t)
{
    if (t != NULL && t->inotify_fd >= 0 && !uv_is_closing((uv_handle_t *)&t->inotify_poll)) {
        uv_close((uv_handle_t *)&t->inotify_poll, NULL);
    }
}

void agent_tails_free(agent_tails_t *t)
{
    if (t == NULL) {
        return;
    }
    if (t->inotify_fd >= 0) {
        close(t->inotify_fd);
    }
    free(t->wds);
    free(t->slots);
    free(t->rbuf);
    free(t->fpbuf);
    free(t->inputs);
    free(t);
}

int agent_tails_prepare(agent_tails_t *t, const agent_conf_t *k)
{
    size_t maxline = 0;
    uint64_t maxfp = 0;
    for (size_t i = 0; i < k->npipelines; i++) {
        for (size_t j = 0; j < k->pipelines[i].ninputs; j++) {
            const agent_input_conf_t *c = &k->pipelines[i].inputs[j];
            maxline = c->max_line_bytes > maxline ? c->max_line_bytes : maxline;
            maxfp = c->fingerprint_bytes > maxfp ? c->fingerprint_bytes : maxfp;
        }
    }
    size_t cap = maxline * 2 < (256u << 10) ? (256u << 10) : maxline * 2;
    if (cap != t->rbuf_cap) {
        free(t->rbuf);
        t->rbuf = malloc(cap);
        t->rbuf_cap = cap;
    }
    free(t->fpbuf);
    t->fpbuf = malloc(maxfp);
    if (t->rbuf == NULL || t->fpbuf == NULL) {
        return -ENOMEM;
    }
    return 0;
}

size_t agent_tails_read_buffer(const agent_tails_t *t)
{
    return t->rbuf_cap;
}

/* Directory part of a glob up to its first wildcard component. */
void agent_tails_watch(agent_tails_t *t)
{
    agent_input_host_t *a = t->h;
    if (t->inotify_fd < 0 || a->input_path != NULL) {
        return;
    }
    for (size_t i = 0; i < t->nwds; i++) {
        inotify_rm_watch(t->inotify_fd, t->wds[i]);
    }
    t->nwds = 0;
    for (size_t i = 0; i < t->ninputs; i++) {
        agent_input_conf_t *c = t->inputs[i]->conf;
        if (!c->inotify) {
            continue;
        }
        for (size_t k = 0; k < c->paths.count; k++) {
            char dir[4096];
            snprintf(dir, sizeof(dir), "%s", c->paths.items[k]);
            char *wild = strpbrk(dir, "*?[");
            if (wild != NULL) {
                *wild = '\0';
            }
            char *slash = strrchr(dir, '/');
            if (slash == NULL) {
                continue;
            }
            slash[slash == dir ? 1 : 0] = '\0';
            int wd = inotify_add_watch(t->inotify_fd, dir,
                                       IN_MODIFY | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO |
                                           IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB);
            if (wd < 0) {
                if (!t->inotify_failed) {
                    TRIB_LOG(TRIB_LOG_WARN, "tail",
                             "inotify watch on %s: %s; falling back to polling every "
                             "poll_interval",
                             dir, strerror(errno));
                }
                t->inotify_failed = true;
                a->st->inotify_fallbacks++;
                continue;
            }
            int *n = realloc(t->wds, (t->nwds + 1) * sizeof(*n));
            if (n != NULL) {
                t->wds = n;
                t->wds[t->nwds++] = wd;
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* The input's operations                                                 */

void agent_tail_set_only(agent_input_t *in, const char *path)
{
    tail_of(in)->only_path = path;
}

agent_file_t *agent_tail_files(agent_input_t *in)
{
    return in->ops == &agent_tail_ops && in->impl != NULL ? tail_of(in)->files : NULL;
}

size_t agent_tail_open_count(agent_input_t *in)
{
    return in->ops == &agent_tail_ops && in->impl != NULL ? tail_of(in)->nopen : 0;
}

static int tail_init(agent_input_t *in)
{
    in->impl = calloc(1, sizeof(agent_tail_t));
    return in->impl != NULL ? 0 : -ENOMEM;
}

static int tail_start(agent_input_t *in)
{
    agent_input_host_t *a = in->host;
    agent_tails_t *sh = a->tails;
    agent_tail_t *t = tail_of(in);
    if (sh->ninputs == sh->cap) {
        size_t n = sh->cap ? sh->cap * 2 : 8;
        agent_input_t **p = realloc(sh->inputs, n * sizeof(*p));
        if (p == NULL) {
            return -ENOMEM;
        }
        sh->inputs = p;
        sh->cap = n;
    }
    sh->inputs[sh->ninputs++] = in;
    t->started = true;
    int64_t now = (int64_t)uv_now(a->loop);
    /* read_from applies to an input's first run only: once it has
       checkpoints, a file without one is new (it may have appeared while
       the agent was down) and is read from its beginning */
    bool first = t->only_path == NULL;
    for (agent_ckpt_t *ck = a->ckpts->head; ck != NULL && first; ck = ck->next) {
        first = strcmp(ck->input_id, in->conf->id) != 0;
    }
    agent_tail_scan(in, first, true);
    t->next_scan_ms = now + in->conf->scan_interval_ms;
    t->next_poll_ms = now + in->conf->poll_interval_ms;
    t->scan_gen = sh->scan_gen;
    int64_t tick = in->conf->poll_interval_ms;
    const agent_multiline_conf_t *ml = &in->conf->multiline;
    if (ml->re != NULL && ml->timeout_ms / 2 < tick) {
        tick = ml->timeout_ms / 2 ? ml->timeout_ms / 2 : 1;
    }
    in->tick_ms = tick;
    return 0;
}

static void tail_tick(agent_input_t *in, int64_t now)
{
    agent_tail_t *t = tail_of(in);
    agent_tails_t *sh = in->host->tails;
    bool scan_now = t->scan_gen != sh->scan_gen;
    t->scan_gen = sh->scan_gen;
    if (scan_now || now >= t->next_scan_ms) {
        agent_tail_scan(in, false, false);
        t->next_scan_ms = now + in->conf->scan_interval_ms;
    }
    if (scan_now || now >= t->next_poll_ms) {
        agent_tail_poll(in);
        t->next_poll_ms = now + in->conf->poll_interval_ms;
    }
    for (agent_file_t *f = t->files; f != NULL; f = f->next) {
        if (f->want_read) {
            in->host->kick(in->host->arg);
            break;
        }
    }
}

static bool tail_work(agent_input_t *in, size_t budget)
{
    agent_input_host_t *a = in->host;
    bool more = false;
    for (agent_file_t *f = tail_of(in)->files; f != NULL && !*a->paused; f = f->next) {
        if (f->want_read) {
            agent_tail_read(f, budget);
            more |= f->want_read;
        }
    }
    return more;
}

/* Sends pending multiline records; true when some are left (the output is full). */
static bool tail_drain(agent_input_t *in)
{
    bool left = false;
    for (agent_file_t *f = tail_of(in)->files; f != NULL; f = f->next) {
        if (f->ml_lines > 0) {
            agent_tail_flush_ml(f); /* produces: frees no file */
            left |= f->ml_lines > 0;
        }
    }
    return left;
}

static void tail_stop(agent_input_t *in, bool keep)
{
    (void)keep;
    agent_tail_t *t = tail_of(in);
    agent_tails_t *sh = in->host->tails;
    if (t == NULL) {
        return;
    }
    agent_tail_close_all(in);
    for (size_t i = 0; i < sh->ninputs; i++) {
        if (sh->inputs[i] == in) {
            sh->inputs[i] = sh->inputs[--sh->ninputs];
            break;
        }
    }
    t->started = false;
}

static void tail_fini(agent_input_t *in)
{
    agent_tail_t *t = tail_of(in);
    if (t != NULL) {
        free(t->unmatched);
        free(t);
        in->impl = NULL;
    }
}

const agent_input_ops_t agent_tail_ops = {
    .name = "tail",
    .init = tail_init,
    .start = tail_start,
    .tick = tail_tick,
    .work = tail_work,
    .idle = agent_tail_idle,
    .drain = tail_drain,
    .stop = tail_stop,
    .fini = tail_fini,
};
