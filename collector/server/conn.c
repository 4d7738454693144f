/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client connections: 4-byte framing, the in-order response queue,
 * backpressure, and the request lifecycle (see server_int.h).
 *
 * Reading. Every frame is `size:int32 | size bytes`. Bytes first land in
 * a 64 KiB connection buffer, from which complete small frames are copied
 * into their own allocation (cheap, and it lets a request outlive the
 * buffer). When a frame is only partly there, its buffer is allocated and
 * the rest of it is read straight into it by the next reads (alloc_cb
 * returns the frame's free space): a large produce request's records are
 * copied once from the socket into the frame, and once more by write(2)
 * into the page cache, and never again. The frame buffer starts at
 * min(size, 1 MiB) and doubles as bytes arrive, so a client that
 * announces 100 MiB and sends nothing pins 1 MiB, not 100.
 *
 *   [size][frame 1 ....][size][frame 2 ..|.. rest of frame 2 ......]
 *   <---- connection buffer (64 KiB) ---->  read directly into frame 2
 *
 * Request memory. All connections share queued_max_request_bytes (Kafka's
 * queued.max.request.bytes memory pool). A frame's declared size is
 * reserved before its buffer is allocated and returned when the request is
 * freed (its response written); the buffer itself still grows only as
 * bytes arrive. When the reservation does not fit, the connection stops
 * reading (uv_read_stop, as Kafka's selector mutes a channel) with the size
 * prefix left in its buffer, and joins a list; each release wakes the
 * waiters whose frame now fits, oldest first. What fits:
 *
 *   frame <= 1 MiB   small share (a quarter of the limit) has room, or the
 *                    whole limit has: a normal produce or fetch never waits
 *                    behind stalled large requests
 *   larger           the large requests' share (three quarters) has room,
 *                    or no large request holds memory: one request larger
 *                    than the share proceeds alone, as Kafka's pool lets a
 *                    request proceed when any memory is free
 *   any size         nothing is reserved at all (a limit below one request)
 *
 * so the memory held is at most the limit plus one request's overshoot
 * (max_request_bytes). A request whose bytes stop arriving for
 * request_timeout closes its connection (server.c), returning its
 * reservation; waiting connections hold none and just wait.
 *
 * A size below 8 bytes (no room for a header) or above max_request_bytes
 * closes the connection with a logged reason, like any request that does
 * not decode: Kafka does the same, and a peer that sends garbage is not
 * a Kafka client.
 *
 * Ordering and backpressure. Requests are handled as they arrive (several
 * may be in flight, for instance a parked fetch and a produce behind it)
 * but answered strictly in order: coll_conn_pump() writes completed
 * responses from the head of the queue only. Once max_inflight requests are
 * queued, or 64 MiB of responses wait to be written, reading stops until
 * the queue drains to half, so a client that pipelines without reading
 * cannot grow the collector's memory.
 *
 * Metadata is the exception to "handled as it arrives": its answer is a
 * snapshot of the cluster (leaders, ISRs) that the client acts on when it
 * reads it, so one that arrives behind a request still being handled (an
 * acks=all produce waiting for the ISR, a parked fetch) is decoded but
 * handled only once every request before it has its answer
 * (coll_req_defer_until_turn, run_deferred), as Kafka handles one request
 * per connection at a time. Otherwise a Metadata request sent while a
 * leader was failing waits behind a produce parked until the election and
 * then names the dead leader, after the newer answers of another
 * connection: a client without KIP-320 epoch checks (librdkafka 2.0)
 * moves the partition back to the dead broker and stays there.
 *
 * Fetch responses are sent from the segment files (zero copy) on
 * plaintext connections. A fetch builds a coll_zresp_t: its
 * framing (size, header, the per-partition fields) in a small buffer and,
 * between the framing bytes, file ranges of whole batches, each holding a
 * reference on its segment (coll_read_t), so retention may unlink the file
 * meanwhile but its bytes stay readable until the part is sent.
 *
 *   hdr: [size|corr|...|topic|p0 fields|len] [p1 fields|len] [tags]
 *   parts:  \---- hdr_end ----/ file 0       \- hdr_end -/ file 1  ...
 *
 * Writing. libuv owns the socket, so the send is ours only while libuv's
 * write queue is empty: a zresp at the head of the queue waits until every
 * earlier uv_write completed (written() pumps again), and nothing after
 * it is written (uv_write or ours) until it is finished. Then framing
 * bytes go out with send(MSG_MORE) and file ranges with sendfile(2), on
 * the socket libuv already made non-blocking. When the socket is full
 * (EAGAIN, or any partial write) the send parks on a uv_poll of a dup of
 * the socket (libuv refuses two watchers on one fd, and a dup is a second
 * epoll registration of the same socket) and resumes when it is writable.
 * The size prefix counts exactly the framing plus the file ranges measured
 * when the response was built; a file that ends before its range (truncated
 * meanwhile) cannot send those bytes, so the connection is closed rather
 * than answering with fewer bytes than announced. Built responses and their
 * buffers return to the connection (a few spares) for the next fetch, so a
 * steady consumer allocates nothing per response.
 *
 * TLS. A TLS connection's SSL object reads ciphertext from a memory BIO
 * and writes it to the socket through a socket BIO:
 *
 *   socket -> read_cb -> rbio (memory) -> SSL_read -> frames, as above
 *   response -> SSL_write -> socket BIO -> send(2) on libuv's socket
 *
 * so libuv's write queue is never used on a TLS connection and every
 * response, of either kind, is sent the way a zresp is: by us, resuming on
 * the writable dup when the socket is full (SSL_write's WANT_WRITE, retried
 * with the same bytes). A zresp's framing is encrypted straight from its
 * buffer; its file ranges cannot be sent with sendfile, so each is read
 * (coll_read_copy) in 64 KiB pieces into a buffer taken from the server's
 * pool for the time of the send, and encrypted from there: one copy, and
 * no allocation per response once the pool has its buffers. Plaintext from
 * SSL_read lands where a plaintext read would: in the connection buffer or
 * straight in a large frame. When reading pauses (backpressure, request
 * memory), ciphertext waits in the memory BIO and is decrypted on resume.
 */
#include "server/server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "server/tls.h"

#define RBUF_SIZE (64u * 1024)
#define FRAME_INITIAL_MAX (1u << 20)
#define MIN_FRAME 8 /* a request header v0 */
#define MAX_QUEUED_OUT (64u << 20)
#define MEM_SMALL (1u << 20) /* frames up to this size draw on the small share */
/*
 * Built responses a connection keeps for reuse: a consumer has one or two
 * fetches in flight. Larger ones (fetches of thousands of partitions) are
 * freed: an ordinary consumer's connection keeps a few KiB.
 */
#define ZSPARE_MAX 2
#define ZSPARE_HDR_MAX (64u * 1024)
#define ZSPARE_PARTS_MAX 1024

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- frame buffer pool ---------------------------------------------------------------- */

/*
 * Large frames (64 KiB .. 4 MiB) reuse buffers of earlier requests, at most
 * COLL_FRAME_POOL of them server-wide (64 MiB at worst, and only after that
 * many large requests were in flight at once). Small frames use malloc.
 */
static uint8_t *frame_alloc(coll_server_t *s, size_t want, size_t *cap)
{
    if (want >= COLL_FRAME_POOL_MIN) {
        /* The smallest pooled buffer that fits. */
        int best = -1;
        for (int i = 0; i < s->frame_pool_n; i++) {
            if (s->frame_pool_cap[i] >= want &&
                (best < 0 || s->frame_pool_cap[i] < s->frame_pool_cap[best])) {
                best = i;
            }
        }
        if (best >= 0) {
            uint8_t *p = s->frame_pool[best];
            *cap = s->frame_pool_cap[best];
            s->frame_pool_n--;
            s->frame_pool[best] = s->frame_pool[s->frame_pool_n];
            s->frame_pool_cap[best] = s->frame_pool_cap[s->frame_pool_n];
            return p;
        }
    }
    *cap = want;
    return malloc(want ? want : 1);
}

static void frame_release(coll_server_t *s, uint8_t *p, size_t cap)
{
    if (p && cap >= COLL_FRAME_POOL_MIN && cap <= COLL_FRAME_POOL_MAX && !s->stopping) {
        if (s->frame_pool_n < COLL_FRAME_POOL) {
            s->frame_pool[s->frame_pool_n] = p;
            s->frame_pool_cap[s->frame_pool_n] = cap;
            s->frame_pool_n++;
            return;
        }
        /* Full: keep the larger buffer, which serves more requests. */
        for (int i = 0; i < s->frame_pool_n; i++) {
            if (s->frame_pool_cap[i] < cap) {
                uint8_t *old = s->frame_pool[i];
                s->frame_pool[i] = p;
                s->frame_pool_cap[i] = cap;
                p = old;
                break;
            }
        }
    }
    free(p);
}

void coll_frame_pool_drain(coll_server_t *s)
{
    for (int i = 0; i < s->frame_pool_n; i++) {
        free(s->frame_pool[i]);
    }
    s->frame_pool_n = 0;
}

/* ---- request memory ----------------------------------------------------------------- */

static bool mem_fits(const coll_server_t *s, size_t size)
{
    uint64_t limit = s->cfg.queued_max_request_bytes;
    if (limit == 0 || s->mem_used == 0) {
        return true; /* no limit, or nothing reserved: any request proceeds */
    }
    uint64_t small_share = limit / 4;
    if (size <= MEM_SMALL) {
        uint64_t small_used = s->mem_used - s->mem_large_used;
        return small_used + size <= small_share || s->mem_used + size <= limit;
    }
    return s->mem_large_used == 0 ||
           (s->mem_large_used + size <= limit - small_share && s->mem_used + size <= limit);
}

static void mem_take(coll_server_t *s, size_t size)
{
    s->mem_used += size;
    if (size > MEM_SMALL) {
        s->mem_large_used += size;
    }
}

static void mem_unwait(coll_conn_t *c)
{
    if (!c->mem_wait) {
        return;
    }
    coll_server_t *s = c->srv;
    for (coll_conn_t **pp = &s->mem_wait_head; *pp; pp = &(*pp)->mem_next) {
        if (*pp == c) {
            *pp = c->mem_next;
            break;
        }
    }
    c->mem_next = NULL;
    c->mem_wait = 0;
    s->mem_waiting--;
}

static void mem_wait(coll_conn_t *c, size_t size)
{
    coll_server_t *s = c->srv;
    c->mem_wait = size;
    c->mem_next = NULL;
    coll_conn_t **pp = &s->mem_wait_head;
    while (*pp) {
        pp = &(*pp)->mem_next;
    }
    *pp = c;
    s->mem_waiting++;
    if (!c->paused && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = true;
    }
}

static void parse_rbuf(coll_conn_t *c);
static void conn_maybe_resume(coll_conn_t *c);

/* Lets the oldest waiters whose frame fits now go on; safe to re-enter. */
static void mem_wake(coll_server_t *s)
{
    if (s->mem_waking) {
        s->mem_wake_again = true;
        return;
    }
    s->mem_waking = true;
    do {
        s->mem_wake_again = false;
        coll_conn_t *c = s->mem_wait_head;
        while (c) {
            if (c->closing || !mem_fits(s, c->mem_wait)) {
                c = c->mem_next;
                continue;
            }
            mem_unwait(c);
            parse_rbuf(c); /* reserves the frame, or waits again */
            conn_maybe_resume(c);
            c = s->mem_wait_head; /* the list may have changed: start over */
        }
    } while (s->mem_wake_again);
    s->mem_waking = false;
}

static void mem_give(coll_server_t *s, size_t size)
{
    if (size == 0) {
        return;
    }
    s->mem_used -= size;
    if (size > MEM_SMALL) {
        s->mem_large_used -= size;
    }
    if (s->mem_wait_head) {
        mem_wake(s);
    }
}

/* ---- responses sent from files ------------------------------------------------------- */

static void zresp_free(coll_zresp_t *z)
{
    free(z->hdr);
    free(z->parts);
    free(z);
}

static void zresp_release_reads(coll_zresp_t *z)
{
    for (size_t i = 0; i < z->nparts; i++) {
        coll_read_release(&z->parts[i].rd);
    }
    z->nparts = 0;
}

/* The response is done with: its segments are let go, its buffers kept for the next. */
static void zresp_give(coll_conn_t *c, coll_zresp_t *z)
{
    zresp_release_reads(z);
    if (c->closed || c->closing || c->nzspare >= ZSPARE_MAX || z->hdr_cap > ZSPARE_HDR_MAX ||
        z->parts_cap > ZSPARE_PARTS_MAX) {
        zresp_free(z);
        return;
    }
    z->next = c->zspare;
    c->zspare = z;
    c->nzspare++;
}

static void zresp_drain(coll_conn_t *c)
{
    while (c->zspare) {
        coll_zresp_t *z = c->zspare;
        c->zspare = z->next;
        zresp_free(z);
    }
    c->nzspare = 0;
}

coll_zresp_t *coll_req_zresp(coll_req_t *r)
{
    coll_conn_t *c = r->conn;
    coll_zresp_t *z = r->zr;
    if (!z) {
        z = c->zspare;
        if (z) {
            c->zspare = z->next;
            c->nzspare--;
        } else if (!(z = calloc(1, sizeof(*z)))) {
            return NULL;
        }
        r->zr = z;
    }
    zresp_release_reads(z);
    z->next = NULL;
    z->hdr_len = 0;
    z->total = 0;
    z->err = 0;
    z->part = z->hpos = z->fpos = 0;
    coll_zresp_put_i32(z, 0); /* the size, filled in by coll_req_respond_zresp() */
    return z;
}

static uint8_t *zresp_space(coll_zresp_t *z, size_t n)
{
    if (z->err) {
        return NULL;
    }
    if (z->hdr_cap - z->hdr_len < n) {
        size_t cap = z->hdr_cap ? z->hdr_cap : 1024;
        while (cap - z->hdr_len < n) {
            cap *= 2;
        }
        uint8_t *p = realloc(z->hdr, cap);
        if (!p) {
            z->err = -ENOMEM;
            return NULL;
        }
        z->hdr = p;
        z->hdr_cap = cap;
    }
    uint8_t *p = z->hdr + z->hdr_len;
    z->hdr_len += n;
    return p;
}

void coll_zresp_put(coll_zresp_t *z, const void *p, size_t n)
{
    uint8_t *d = zresp_space(z, n);
    if (d && n) {
        memcpy(d, p, n);
    }
}

static void zresp_put_be(coll_zresp_t *z, uint64_t v, size_t n)
{
    uint8_t *d = zresp_space(z, n);
    if (d) {
        for (size_t i = 0; i < n; i++) {
            d[n - 1 - i] = (uint8_t)(v >> (8 * i));
        }
    }
}

void coll_zresp_put_i16(coll_zresp_t *z, int16_t v)
{
    zresp_put_be(z, (uint16_t)v, 2);
}

void coll_zresp_put_i32(coll_zresp_t *z, int32_t v)
{
    zresp_put_be(z, (uint32_t)v, 4);
}

void coll_zresp_put_i64(coll_zresp_t *z, int64_t v)
{
    zresp_put_be(z, (uint64_t)v, 8);
}

void coll_zresp_put_uvarint(coll_zresp_t *z, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    coll_zresp_put(z, tmp, n);
}

void coll_zresp_file(coll_zresp_t *z, coll_read_t *rd)
{
    if (rd->len == 0 || z->err) {
        coll_read_release(rd);
        return;
    }
    if (z->nparts == z->parts_cap) {
        size_t cap = z->parts_cap ? z->parts_cap * 2 : 16;
        coll_zpart_t *p = realloc(z->parts, cap * sizeof(*p));
        if (!p) {
            z->err = -ENOMEM;
            coll_read_release(rd);
            return;
        }
        z->parts = p;
        z->parts_cap = cap;
    }
    coll_zpart_t *p = &z->parts[z->nparts++];
    p->hdr_end = z->hdr_len;
    p->rd = *rd;
    memset(rd, 0, sizeof(*rd));
    rd->fd = -1;
}

/* ---- requests ----------------------------------------------------------------------- */

static coll_req_t *req_new(coll_conn_t *c, size_t size)
{
    coll_req_t *r = calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->frame =
        frame_alloc(c->srv, size < FRAME_INITIAL_MAX ? size : FRAME_INITIAL_MAX, &r->frame_cap);
    if (!r->frame) {
        free(r);
        return NULL;
    }
    r->frame_len = size;
    r->mem = size;
    mem_take(c->srv, size);
    r->conn = c;
    r->srv = c->srv;
    r->state = COLL_REQ_READING;
    r->api_key = -1;
    r->first_error = TRIB_KAFKA_NONE;
    trib_arena_init(&r->arena);
    /* Decoding may allocate this much; a hostile count fails here instead of growing memory. */
    size_t limit = (1u << 20) + 16 * size;
    trib_arena_set_limit(&r->arena, limit < (256u << 20) ? limit : (256u << 20));
    trib_buf_init(&r->out);
    c->nalive++;
    return r;
}

static void conn_maybe_free(coll_conn_t *c);

static void req_free(coll_req_t *r)
{
    coll_conn_t *c = r->conn;
    size_t mem = r->mem;
    if (r->ctx_free) {
        r->ctx_free(r); /* before the arena goes: ctx usually lives in it */
    }
    if (r->zr) {
        zresp_give(c, r->zr);
        r->zr = NULL;
    }
    trib_buf_fini(&r->out);
    trib_arena_fini(&r->arena);
    frame_release(c->srv, r->frame, r->frame_cap);
    free(r->iov);
    free(r);
    c->nalive--;
    coll_server_t *s = c->srv;
    if (c->closed) {
        conn_maybe_free(c);
    } else {
        conn_maybe_resume(c);
        if (s->stopping) {
            /* A stopping server closes a connection as soon as it has nothing in flight. */
            coll_server_check_stop(s);
        }
    }
    mem_give(s, mem); /* last: it may wake other connections */
}

/* Removes r from the queue (it must be in it). */
static void queue_unlink(coll_conn_t *c, coll_req_t *r)
{
    coll_req_t **pp = &c->head;
    coll_req_t *prev = NULL;
    while (*pp && *pp != r) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) {
        return;
    }
    *pp = r->next;
    if (c->tail == r) {
        c->tail = prev;
    }
    r->next = NULL;
    c->nactive--;
}

void *coll_req_alloc(coll_req_t *r, size_t n)
{
    return trib_arena_calloc(&r->arena, 1, n ? n : 1);
}

char *coll_req_strdup(coll_req_t *r, trib_kstr_t s)
{
    if (s.len < 0) {
        return NULL;
    }
    return trib_arena_strndup(&r->arena, s.ptr ? s.ptr : "", (size_t)s.len);
}

void coll_req_note_error(coll_req_t *r, int16_t code)
{
    if (code == TRIB_KAFKA_NONE) {
        return;
    }
    coll_metrics_error(&r->srv->metrics, r->api_key, code);
    if (r->first_error == TRIB_KAFKA_NONE) {
        r->first_error = code;
    }
}

bool coll_req_orphaned(const coll_req_t *r)
{
    return r->conn->closing;
}

static void finish(coll_req_t *r)
{
    coll_conn_t *c = r->conn;
    double secs = (double)(now_ns() - r->start_ns) / 1e9;
    coll_metrics_request(&r->srv->metrics, r->api_key, secs);
    if (r->first_error != TRIB_KAFKA_NONE) {
        TRIB_LOG(TRIB_LOG_DEBUG, COLL_SERVER_FACILITY, "%s: %s v%d (correlation %" PRId32 "): %s",
                 c->peer, r->kapi ? r->kapi->name : "?", (int)r->api_version, r->correlation_id,
                 trib_kafka_err_name(r->first_error));
    }
    r->state = COLL_REQ_DONE;
    if (c->closing) {
        if (c->closed && r->pending == 0) {
            queue_unlink(c, r);
            req_free(r);
        }
        return;
    }
    coll_conn_pump(c);
}

void coll_req_respond(coll_req_t *r, const trib_kafka_codec_t *codec, const void *resp)
{
    trib_buf_t *b = &r->out;
    trib_buf_reset(b);
    size_t pos = trib_buf_reserve(b, 4);
    trib_kafka_response_header_t h;
    trib_kafka_response_header_init(&h);
    h.correlation_id = r->correlation_id;
    int rc = trib_kafka_response_header_encode(
        &h, b, trib_kafka_response_header_version(r->api_key, r->api_version));
    if (rc == 0) {
        rc = codec->encode(resp, b, r->api_version);
    }
    if (rc == 0) {
        rc = trib_buf_error(b);
    }
    if (rc != 0 || trib_buf_len(b) - 4 > INT32_MAX) {
        /* A bug or out of memory: the client cannot be answered correctly. */
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s: encoding %s v%d response: %s",
                 r->conn->peer, codec->name, (int)r->api_version, trib_strerror(rc));
        trib_buf_reset(b);
        r->close_after = true;
        r->conn->rejected = true;
        coll_conn_stop_reading(r->conn);
    } else {
        trib_buf_patch_i32(b, pos, (int32_t)(trib_buf_len(b) - 4));
        r->conn->queued_out += trib_buf_len(b);
    }
    finish(r);
}

void coll_req_respond_zresp(coll_req_t *r)
{
    coll_zresp_t *z = r->zr;
    size_t total = z->hdr_len;
    for (size_t i = 0; i < z->nparts; i++) {
        total += z->parts[i].rd.len;
    }
    if (z->err || total - 4 > INT32_MAX) {
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s: building a %s v%d response: %s",
                 r->conn->peer, r->kapi ? r->kapi->name : "?", (int)r->api_version,
                 z->err ? trib_strerror(z->err) : "too large");
        zresp_give(r->conn, z);
        r->zr = NULL;
        r->close_after = true;
        r->conn->rejected = true;
        coll_conn_stop_reading(r->conn);
    } else {
        uint32_t size = (uint32_t)(total - 4);
        z->hdr[0] = (uint8_t)(size >> 24);
        z->hdr[1] = (uint8_t)(size >> 16);
        z->hdr[2] = (uint8_t)(size >> 8);
        z->hdr[3] = (uint8_t)size;
        z->total = total;
        r->conn->queued_out += total;
    }
    finish(r);
}

void coll_req_respond_raw(coll_req_t *r, const void *p, size_t n)
{
    trib_buf_t *b = &r->out;
    trib_buf_reset(b);
    trib_buf_put_i32(b, (int32_t)n);
    trib_buf_append(b, p, n);
    if (trib_buf_error(b) != 0) {
        trib_buf_reset(b);
        r->close_after = true;
    } else {
        r->conn->queued_out += trib_buf_len(b);
    }
    finish(r);
}

void coll_req_no_response(coll_req_t *r)
{
    r->no_response = true;
    finish(r);
}

void coll_req_reject(coll_req_t *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    coll_server_t *s = r->srv;
    s->metrics.frames_rejected++;
    TRIB_LOG_RL(&s->rl_reject, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                "%s: closing the connection: %s", r->conn->peer, msg);
    r->close_after = true;
    r->no_response = true;
    /* Nothing after this request is read or handled: the connection closes at its turn. */
    r->conn->rejected = true;
    coll_conn_stop_reading(r->conn);
    finish(r);
}

void coll_req_step_done(coll_req_t *r)
{
    r->pending--;
}

/* ---- writing ------------------------------------------------------------------------ */

static bool zsend_continue(coll_conn_t *c);
static bool tls_send_continue(coll_conn_t *c);
static void tls_drain(coll_conn_t *c);

static void wpoll_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    coll_conn_t *c = h->data;
    uv_poll_stop(h);
    if (status < 0) {
        coll_conn_close(c, TRIB_LOG_DEBUG, uv_strerror(status));
        return;
    }
    if (c->ssl) {
        if (c->tls_read_wants_write) {
            c->tls_read_wants_write = false;
            tls_drain(c);
        }
        if (c->closing || (c->zsend && !tls_send_continue(c))) {
            return;
        }
        coll_conn_pump(c);
        return;
    }
    if (zsend_continue(c)) {
        coll_conn_pump(c);
    }
}

/* The socket is full: call wpoll_cb when it is writable again. */
static int wait_writable(coll_conn_t *c, int sock)
{
    if (c->wpoll_state == 0) {
        c->wfd = dup(sock);
        if (c->wfd < 0) {
            return -errno;
        }
        int rc = uv_poll_init(c->srv->loop, &c->wpoll, c->wfd);
        if (rc != 0) {
            close(c->wfd);
            c->wfd = -1;
            return rc;
        }
        c->wpoll.data = c;
        c->wpoll_state = 1;
    }
    return uv_poll_start(&c->wpoll, UV_WRITABLE, wpoll_cb);
}

static int zsend_wait(coll_conn_t *c, int sock)
{
    c->srv->metrics.fetch_send_waits++;
    return wait_writable(c, sock);
}

/* ---- TLS ---------------------------------------------------------------------------- */

static uint8_t *tls_chunk_take(coll_server_t *s)
{
    if (s->ntls_chunks > 0) {
        return s->tls_chunks[--s->ntls_chunks];
    }
    return malloc(COLL_TLS_CHUNK);
}

static void tls_chunk_give(coll_server_t *s, uint8_t *p)
{
    if (p && s->ntls_chunks < COLL_TLS_CHUNK_POOL && !s->stopping) {
        s->tls_chunks[s->ntls_chunks++] = p;
        return;
    }
    free(p);
}

void coll_tls_chunks_drain(coll_server_t *s)
{
    while (s->ntls_chunks > 0) {
        free(s->tls_chunks[--s->ntls_chunks]);
    }
}

static int tls_wait(coll_conn_t *c)
{
    uv_os_fd_t sock;
    int rc = uv_fileno((uv_handle_t *)&c->tcp, &sock);
    return rc ? rc : wait_writable(c, sock);
}

/*
 * The next bytes of r to encrypt: *p and *n, and true; false when r is
 * all sent. A zresp's file bytes are read into the connection's chunk
 * (refilled only once it is all written: a retried SSL_write must see
 * the same bytes). *why on an error.
 */
static bool tls_next(coll_conn_t *c, coll_req_t *r, const uint8_t **p, size_t *n, bool *file,
                     const char **why)
{
    *file = false;
    if (!r->zr) {
        while (r->tls_idx < (size_t)r->iovcnt) {
            const struct iovec *v = &r->iov[r->tls_idx];
            if (r->tls_off < v->iov_len) {
                *p = (const uint8_t *)v->iov_base + r->tls_off;
                *n = v->iov_len - r->tls_off;
                return true;
            }
            r->tls_idx++;
            r->tls_off = 0;
        }
        return false;
    }
    coll_zresp_t *z = r->zr;
    while (z->part <= z->nparts) {
        bool tail = z->part == z->nparts;
        size_t hdr_end = tail ? z->hdr_len : z->parts[z->part].hdr_end;
        size_t flen = tail ? 0 : z->parts[z->part].rd.len;
        if (z->hpos < hdr_end) {
            *p = z->hdr + z->hpos;
            *n = hdr_end - z->hpos;
            return true;
        }
        if (z->fpos < flen) {
            /* r->tls_off: bytes of the chunk already written; r->tls_idx: its length. */
            if (r->tls_off == r->tls_idx) {
                if (!c->tls_chunk && !(c->tls_chunk = tls_chunk_take(c->srv))) {
                    *why = "out of memory";
                    return false;
                }
                size_t want = flen - z->fpos < COLL_TLS_CHUNK ? flen - z->fpos : COLL_TLS_CHUNK;
                ssize_t got = coll_read_copy(&z->parts[z->part].rd, z->fpos, c->tls_chunk, want);
                if (got < 0 || (size_t)got < want) {
                    *why = got < 0 ? "cannot read a segment for a fetch response"
                                   : "a segment was truncated while a fetch response was sent "
                                     "from it";
                    return false;
                }
                r->tls_idx = want;
                r->tls_off = 0;
            }
            *p = c->tls_chunk + r->tls_off;
            *n = r->tls_idx - r->tls_off;
            *file = true;
            return true;
        }
        if (!tail) {
            coll_read_release(&z->parts[z->part].rd);
            z->parts[z->part].rd.len = 0;
        }
        z->part++;
        z->fpos = 0;
    }
    return false;
}

static void tls_advance(coll_req_t *r, size_t w, bool file)
{
    if (!r->zr) {
        r->tls_off += w;
    } else if (!file) {
        r->zr->hpos += w;
    } else {
        r->tls_off += w;
        r->zr->fpos += w;
        if (r->tls_off == r->tls_idx) {
            r->tls_off = r->tls_idx = 0;
        }
    }
}

/*
 * Encrypts and sends what is left of c->zsend on a TLS connection: true
 * when all of it is sent (and the request freed), false when it waits for
 * writability or the connection was closed.
 */
static bool tls_send_continue(coll_conn_t *c)
{
    coll_req_t *r = c->zsend;
    const char *why = NULL;
    char ebuf[300];
    for (;;) {
        const uint8_t *p;
        size_t n;
        bool file;
        if (!tls_next(c, r, &p, &n, &file, &why)) {
            break;
        }
        ERR_clear_error();
        int w = SSL_write(c->ssl, p, n > (1u << 30) ? (int)(1u << 30) : (int)n);
        if (w > 0) {
            tls_advance(r, (size_t)w, file);
            continue;
        }
        int e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE) {
            c->last_active_ms = uv_now(c->srv->loop);
            if (r->zr) {
                c->srv->metrics.fetch_send_waits++;
            }
            int err = tls_wait(c);
            if (err == 0) {
                return false;
            }
            why = uv_strerror(err);
        } else {
            why = coll_tls_error(c->ssl, w, ebuf, sizeof(ebuf));
        }
        break;
    }
    size_t total = r->zr ? r->zr->total : trib_buf_len(&r->out);
    c->zsend = NULL;
    c->queued_out -= total < c->queued_out ? total : c->queued_out;
    tls_chunk_give(c->srv, c->tls_chunk);
    c->tls_chunk = NULL;
    bool close_now = r->close_after_write;
    if (why) {
        coll_conn_close(c, TRIB_LOG_DEBUG, why);
        req_free(r);
        return false;
    }
    c->last_active_ms = uv_now(c->srv->loop);
    r->srv->metrics.net_bytes_sent += total;
    req_free(r);
    if (close_now) {
        coll_conn_close(c, TRIB_LOG_DEBUG, "authentication failed");
        return false;
    }
    return true;
}

/*
 * Sends what is left of c->zsend: true when it is all sent (and freed);
 * false when it waits for writability or the connection was closed.
 */
static bool zsend_continue(coll_conn_t *c)
{
    coll_req_t *r = c->zsend;
    coll_zresp_t *z = r->zr;
    uv_os_fd_t sock;
    const char *why = NULL;
    int err = 0;
    if (uv_fileno((uv_handle_t *)&c->tcp, &sock) != 0) {
        coll_conn_close(c, TRIB_LOG_WARN, "no socket for a fetch response");
        return false;
    }
    while (z->part <= z->nparts) {
        bool tail = z->part == z->nparts;
        size_t hdr_end = tail ? z->hdr_len : z->parts[z->part].hdr_end;
        size_t flen = tail ? 0 : z->parts[z->part].rd.len;
        bool framing = z->hpos < hdr_end;
        if (framing || z->fpos < flen) {
            ssize_t n;
            if (framing) {
                int flags = MSG_NOSIGNAL | (flen > 0 || !tail ? MSG_MORE : 0);
                n = send(sock, z->hdr + z->hpos, hdr_end - z->hpos, flags);
            } else {
                const coll_read_t *rd = &z->parts[z->part].rd;
                off_t off = (off_t)(rd->pos + z->fpos);
                n = sendfile(sock, rd->fd, &off, flen - z->fpos);
            }
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    c->last_active_ms = uv_now(c->srv->loop); /* progress is activity */
                    err = zsend_wait(c, sock);
                    if (err == 0) {
                        return false;
                    }
                    why = uv_strerror(err);
                    break;
                }
                why = strerror(errno);
                break;
            }
            if (framing) {
                z->hpos += (size_t)n;
            } else if (n == 0) {
                /* The segment ends before the range measured: the size sent cannot be kept. */
                why = "a segment was truncated while a fetch response was sent from it";
                break;
            } else {
                z->fpos += (size_t)n;
            }
            continue;
        }
        if (!tail) {
            /* This range is sent: its segment may go now. */
            coll_read_release(&z->parts[z->part].rd);
            z->parts[z->part].rd.len = 0;
        }
        z->part++;
        z->fpos = 0;
    }
    c->zsend = NULL;
    c->queued_out -= z->total < c->queued_out ? z->total : c->queued_out;
    if (why) {
        coll_conn_close(c, TRIB_LOG_DEBUG, why);
        req_free(r);
        return false;
    }
    c->last_active_ms = uv_now(c->srv->loop); /* as Kafka: a completed send is activity */
    r->srv->metrics.net_bytes_sent += z->total;
    req_free(r);
    return true;
}

static void written(uv_write_t *w, int status)
{
    coll_req_t *r = w->data;
    coll_conn_t *c = r->conn;
    size_t len = trib_buf_len(&r->out);
    c->queued_out -= len < c->queued_out ? len : c->queued_out;
    c->uv_writes--;
    if (status == 0) {
        r->srv->metrics.net_bytes_sent += len;
    } else if (!c->closing) {
        coll_conn_close(c, TRIB_LOG_DEBUG, uv_strerror(status));
    }
    /* A response sent from files may have waited for libuv's queue to empty. */
    bool kick = !c->closing && c->uv_writes == 0 && c->head && c->head->zr;
    bool close_now = r->close_after_write && !c->closing;
    req_free(r);
    if (close_now) {
        coll_conn_close(c, TRIB_LOG_DEBUG, "authentication failed");
    } else if (kick) {
        coll_conn_pump(c);
    }
}

bool coll_req_defer_until_turn(coll_req_t *r)
{
    for (coll_req_t *q = r->conn->head; q && q != r; q = q->next) {
        if (q->state == COLL_REQ_ACTIVE) {
            r->deferred = true;
            return true;
        }
    }
    return false;
}

/*
 * Handles the deferred requests whose turn has come: every request before
 * them has its answer. A handler may answer at once and pump (written
 * requests are freed), so the walk starts over after each one; a pump
 * from inside a handler leaves the walk to the outer call.
 */
static void run_deferred(coll_conn_t *c)
{
    if (c->running_deferred) {
        return;
    }
    c->running_deferred = true;
    bool again = true;
    while (again && !c->closing) {
        again = false;
        for (coll_req_t *r = c->head; r; r = r->next) {
            if (r->state != COLL_REQ_ACTIVE) {
                continue; /* answered, waiting for its turn to be written */
            }
            if (!r->deferred) {
                break; /* still being handled: what comes after it waits */
            }
            r->deferred = false;
            r->api->handle(r);
            again = true;
            break;
        }
    }
    c->running_deferred = false;
}

void coll_conn_pump(coll_conn_t *c)
{
    run_deferred(c);
    while (!c->closing && !c->zsend && c->head && c->head->state == COLL_REQ_DONE) {
        coll_req_t *r = c->head;
        if (r->zr && !r->close_after && !r->no_response && c->uv_writes > 0) {
            return; /* written() comes back when libuv's queue is empty */
        }
        queue_unlink(c, r);
        if (r->close_after) {
            req_free(r);
            coll_conn_close(c, TRIB_LOG_DEBUG, "request rejected");
            return;
        }
        if (r->zr && !c->ssl) {
            r->state = COLL_REQ_WRITING;
            c->zsend = r;
            if (!zsend_continue(c)) {
                return;
            }
            continue;
        }
        if (!r->zr && (r->no_response || trib_buf_len(&r->out) == 0)) {
            bool close_now = r->close_after_write;
            req_free(r);
            if (close_now) {
                coll_conn_close(c, TRIB_LOG_DEBUG, "authentication failed");
                return;
            }
            continue;
        }
        if (!r->zr) {
            int cnt = trib_buf_iovcnt(&r->out);
            r->iov = malloc((size_t)cnt * sizeof(*r->iov));
            if (!r->iov) {
                req_free(r);
                coll_conn_close(c, TRIB_LOG_ERROR, "out of memory");
                return;
            }
            trib_buf_iovec(&r->out, r->iov, cnt);
            r->iovcnt = cnt;
        }
        if (c->ssl) {
            /* TLS: every response is encrypted and sent by us (see the opening comment). */
            r->state = COLL_REQ_WRITING;
            r->tls_idx = r->tls_off = 0;
            c->zsend = r;
            if (!tls_send_continue(c)) {
                return;
            }
            continue;
        }
        int cnt = r->iovcnt;
        /* uv_buf_t and struct iovec share their layout on Unix (libuv documents it). */
        r->state = COLL_REQ_WRITING;
        r->wreq.data = r;
        int rc =
            uv_write(&r->wreq, (uv_stream_t *)&c->tcp, (uv_buf_t *)r->iov, (unsigned)cnt, written);
        if (rc != 0) {
            req_free(r);
            coll_conn_close(c, TRIB_LOG_DEBUG, uv_strerror(rc));
            return;
        }
        c->uv_writes++;
    }
}

/* ---- reading ------------------------------------------------------------------------ */

static bool over_limits(const coll_conn_t *c)
{
    return c->nactive >= c->srv->cfg.max_inflight || c->queued_out >= MAX_QUEUED_OUT;
}

static void pause_reading(coll_conn_t *c)
{
    if (!c->paused && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = true;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_maybe_resume(coll_conn_t *c)
{
    if (!c->paused || c->closing || c->rejected || c->mem_wait || c->srv->stopping) {
        return;
    }
    if (c->nactive <= c->srv->cfg.max_inflight / 2 && c->queued_out < MAX_QUEUED_OUT / 2) {
        c->paused = false;
        c->last_active_ms = uv_now(c->srv->loop); /* request_timeout counts from here */
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
            coll_conn_close(c, TRIB_LOG_WARN, "cannot resume reading");
        } else if (c->ssl) {
            tls_drain(c); /* requests already decrypted or waiting in the memory BIO */
        }
    }
}

void coll_conn_metadata_ready(coll_server_t *s)
{
    for (coll_conn_t *c = s->conns; c; c = c->next) {
        if (c->await_metadata) {
            c->await_metadata = false;
            conn_maybe_resume(c);
        }
    }
}

void coll_conn_stop_reading(coll_conn_t *c)
{
    if (!c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->paused = true;
    }
}

static void enqueue(coll_conn_t *c, coll_req_t *r)
{
    r->next = NULL;
    if (c->tail) {
        c->tail->next = r;
    } else {
        c->head = r;
    }
    c->tail = r;
    c->nactive++;
}

/* A frame is complete: queue it and handle it. */
static void frame_ready(coll_conn_t *c, coll_req_t *r)
{
    r->state = COLL_REQ_ACTIVE;
    r->start_ns = now_ns();
    enqueue(c, r);
    coll_dispatch(r);
    if (!c->closing && over_limits(c)) {
        pause_reading(c);
    }
}

static void bad_frame(coll_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bad_frame(coll_conn_t *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->srv->metrics.frames_rejected++;
    TRIB_LOG_RL(&c->srv->rl_reject, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                "%s: closing the connection: %s", c->peer, msg);
    coll_conn_close(c, TRIB_LOG_DEBUG, msg);
}

/* Grows a partly read frame's buffer so the next read has room. */
static int frame_grow(coll_req_t *r)
{
    size_t cap = r->frame_cap * 2;
    if (cap > r->frame_len) {
        cap = r->frame_len;
    }
    uint8_t *p = realloc(r->frame, cap);
    if (!p) {
        return -ENOMEM;
    }
    r->frame = p;
    r->frame_cap = cap;
    return 0;
}

static void parse_rbuf(coll_conn_t *c)
{
    const uint8_t *p = c->rbuf;
    size_t n = c->rlen;
    while (!c->closing && !c->rejected && !c->reading && !c->mem_wait && n >= 4) {
        uint32_t size = be32(p);
        /* A bare SASL token (after SaslHandshake v0) may be shorter than a request header. */
        uint32_t min = c->sasl_state == COLL_SASL_RAW ? 1 : MIN_FRAME;
        if (size < min || size > INT32_MAX) {
            bad_frame(c, "invalid frame size %" PRId32, (int32_t)size);
            return;
        }
        if (size > c->srv->cfg.max_request_bytes) {
            bad_frame(c, "frame of %" PRIu32 " bytes exceeds max_request_bytes (%zu)", size,
                      c->srv->cfg.max_request_bytes);
            return;
        }
        if (!mem_fits(c->srv, size)) {
            mem_wait(c, size); /* the size prefix stays in rbuf for the next try */
            break;
        }
        coll_req_t *r = req_new(c, size);
        if (!r) {
            bad_frame(c, "out of memory for a %" PRIu32 "-byte frame", size);
            return;
        }
        size_t take = n - 4 < size ? n - 4 : size;
        if (take > r->frame_cap) {
            uint8_t *np = realloc(r->frame, take);
            if (!np) {
                req_free(r);
                bad_frame(c, "out of memory for a %" PRIu32 "-byte frame", size);
                return;
            }
            r->frame = np;
            r->frame_cap = take;
        }
        memcpy(r->frame, p + 4, take);
        r->frame_have = take;
        p += 4 + take;
        n -= 4 + take;
        if (take == size) {
            frame_ready(c, r);
        } else {
            c->reading = r;
        }
    }
    if (c->closing) {
        return;
    }
    if (n > 0 && p != c->rbuf) {
        memmove(c->rbuf, p, n);
    }
    c->rlen = n;
}

/* Where the next request bytes go: the frame being filled, or the connection buffer. */
static void plain_buf(coll_conn_t *c, uv_buf_t *buf)
{
    coll_req_t *r = c->reading;
    if (r) {
        if (r->frame_have == r->frame_cap && frame_grow(r) != 0) {
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        /* A pooled buffer may be larger than the frame: never read past the frame. */
        size_t end = r->frame_cap < r->frame_len ? r->frame_cap : r->frame_len;
        *buf = uv_buf_init((char *)r->frame + r->frame_have, (unsigned)(end - r->frame_have));
        return;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(RBUF_SIZE - c->rlen));
}

/* n request bytes arrived at base (given by plain_buf). */
static void plain_arrived(coll_conn_t *c, const uint8_t *base, size_t n)
{
    coll_req_t *r = c->reading;
    if (r && base == r->frame + r->frame_have) {
        r->frame_have += n;
        if (r->frame_have == r->frame_len) {
            c->reading = NULL;
            frame_ready(c, r);
        }
        return;
    }
    c->rlen += n;
    parse_rbuf(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    coll_conn_t *c = h->data;
    if (c->ssl) {
        /* Ciphertext: copied into the memory BIO at once, so one buffer serves all. */
        *buf = uv_buf_init((char *)c->srv->tls_cbuf, RBUF_SIZE);
        return;
    }
    plain_buf(c, buf);
}

static void tls_established(coll_conn_t *c)
{
    c->tls_established = true;
    c->srv->metrics.tls_handshakes++;
    coll_tls_principal(c->ssl, c->principal, sizeof(c->principal));
    TRIB_LOG(TRIB_LOG_DEBUG, COLL_SERVER_FACILITY, "%s: %s %s on listener %s, %s", c->peer,
             SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), c->lst->cfg.name, c->principal);
}

/*
 * Decrypts what the memory BIO holds into requests, while the connection
 * reads (paused: it stays there until conn_maybe_resume). Re-entrant calls
 * (a request handled here resuming the connection) only ask for another pass.
 */
static void tls_drain(coll_conn_t *c)
{
    if (c->tls_draining) {
        c->tls_drain_again = true;
        return;
    }
    c->tls_draining = true;
    char ebuf[300];
    do {
        c->tls_drain_again = false;
        while (!c->closing && !c->rejected && !c->mem_wait && !c->paused &&
               !c->tls_read_wants_write) {
            int rc, e;
            ERR_clear_error();
            if (!c->tls_established) {
                rc = SSL_do_handshake(c->ssl);
                if (rc == 1) {
                    tls_established(c);
                    continue;
                }
            } else {
                uv_buf_t b;
                plain_buf(c, &b);
                if (b.len == 0) {
                    coll_conn_close(c, TRIB_LOG_ERROR, "out of memory");
                    break;
                }
                rc = SSL_read(c->ssl, b.base, (int)b.len);
                if (rc > 0) {
                    plain_arrived(c, (const uint8_t *)b.base, (size_t)rc);
                    continue;
                }
            }
            e = SSL_get_error(c->ssl, rc);
            if (e == SSL_ERROR_WANT_READ) {
                break;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                c->tls_read_wants_write = true;
                int err = tls_wait(c);
                if (err != 0) {
                    coll_conn_close(c, TRIB_LOG_DEBUG, uv_strerror(err));
                }
                break;
            }
            if (e == SSL_ERROR_ZERO_RETURN) {
                coll_conn_close(c, TRIB_LOG_DEBUG, "closed by the peer (TLS close_notify)");
                break;
            }
            const char *why = coll_tls_error(c->ssl, rc, ebuf, sizeof(ebuf));
            if (!c->tls_established) {
                c->srv->metrics.tls_handshake_failures++;
                TRIB_LOG_RL(&c->srv->rl_conn, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                            "%s: TLS handshake on listener %s failed: %s", c->peer,
                            c->lst->cfg.name, why);
            }
            coll_conn_close(c, TRIB_LOG_DEBUG, why);
            break;
        }
    } while (c->tls_drain_again && !c->closing);
    c->tls_draining = false;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    coll_conn_t *c = s->data;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (nread == UV_EOF) {
            /*
             * As Kafka: the connection goes. Every complete request read so
             * far has been handled already (appends happened); a produce
             * still waiting for its fsync finishes without its answer.
             */
            coll_conn_close(c, TRIB_LOG_DEBUG, "closed by the peer");
        } else {
            coll_conn_close(c, TRIB_LOG_DEBUG, uv_strerror((int)nread));
        }
        return;
    }
    c->srv->metrics.net_bytes_received += (uint64_t)nread;
    c->last_active_ms = uv_now(c->srv->loop);
    if (c->ssl) {
        if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
            coll_conn_close(c, TRIB_LOG_ERROR, "out of memory for TLS input");
            return;
        }
        tls_drain(c);
        return;
    }
    plain_arrived(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- accept and close ----------------------------------------------------------------- */

static void conn_maybe_free(coll_conn_t *c)
{
    if (!c->closed || c->nalive > 0 || c->wpoll_state != 0) {
        return;
    }
    coll_server_t *s = c->srv;
    zresp_drain(c);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    s->nconns--;
    free(c->rbuf);
    SSL_free(c->ssl); /* and its BIOs */
    tls_chunk_give(s, c->tls_chunk);
    if (c->scram) {
        OPENSSL_cleanse(c->scram, sizeof(*c->scram));
        free(c->scram);
    }
    free(c);
    coll_server_check_stop(s);
}

static void on_closed(uv_handle_t *h)
{
    coll_conn_t *c = h->data;
    c->closed = true;
    c->nalive++; /* hold the connection while the queue is swept */
    if (c->zsend) {
        coll_req_t *z = c->zsend;
        c->zsend = NULL;
        /* A zresp, or on a TLS connection any response, waiting for writability. */
        size_t total = z->zr ? z->zr->total : trib_buf_len(&z->out);
        c->queued_out -= total < c->queued_out ? total : c->queued_out;
        req_free(z);
    }
    if (c->reading) {
        coll_req_t *r = c->reading;
        c->reading = NULL;
        req_free(r);
    }
    coll_req_t *r = c->head;
    while (r) {
        coll_req_t *next = r->next;
        if (r->parked) {
            coll_purgatory_remove(&c->srv->purgatory, r->parked);
            r->parked = NULL;
        }
        if (r->pending == 0) {
            queue_unlink(c, r);
            req_free(r);
        }
        /* Requests still waiting for an fsync are freed when it completes (finish()). */
        r = next;
    }
    c->nalive--;
    conn_maybe_free(c);
}

static void wpoll_closed(uv_handle_t *h)
{
    coll_conn_t *c = h->data;
    close(c->wfd);
    c->wfd = -1;
    c->wpoll_state = 0;
    conn_maybe_free(c);
}

void coll_conn_close(coll_conn_t *c, trib_log_level_t level, const char *reason)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    mem_unwait(c);
    if (c->wpoll_state == 1) {
        uv_poll_stop(&c->wpoll);
        c->wpoll_state = 2;
        uv_close((uv_handle_t *)&c->wpoll, wpoll_closed);
    }
    TRIB_LOG(level, COLL_SERVER_FACILITY, "%s: connection closed: %s", c->peer, reason);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void peer_name(uv_tcp_t *t, char *out, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(out, n, "[%s]:%d", ip, port);
            return;
        }
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(out, n, "%s:%d", ip, port);
}

/* The TLS state of a new connection on a TLS listener. 0 or -ENOMEM. */
static int tls_attach(coll_conn_t *c)
{
    coll_server_t *s = c->srv;
    uv_os_fd_t sock;
    if (!s->tls_cbuf && !(s->tls_cbuf = malloc(RBUF_SIZE))) {
        return -ENOMEM;
    }
    if (uv_fileno((uv_handle_t *)&c->tcp, &sock) != 0) {
        return -EBADF;
    }
    SSL *ssl = SSL_new(c->lst->ctx);
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new_socket(sock, BIO_NOCLOSE);
    if (!ssl || !rbio || !wbio) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(rbio, -1); /* empty: "want read", not end of file */
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    c->rbio = rbio;
    return 0;
}

void coll_conn_accept(coll_server_t *s, coll_listener_t *l)
{
    uv_stream_t *listener = (uv_stream_t *)&l->tcp;
    coll_conn_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->rbuf = malloc(RBUF_SIZE))) {
        free(c);
        TRIB_LOG_RL(&s->rl_conn, TRIB_LOG_ERROR, COLL_SERVER_FACILITY,
                    "out of memory accepting a connection");
        return;
    }
    c->srv = s;
    c->lst = l;
    c->id = ++s->next_conn_id;
    c->wfd = -1;
    snprintf(c->principal, sizeof(c->principal), "User:ANONYMOUS");
    c->needs_sasl = coll_security_sasl(l->cfg.security);
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c->rbuf);
        free(c);
        return;
    }
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->nconns++;
    c->last_active_ms = uv_now(s->loop);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        snprintf(c->peer, sizeof(c->peer), "connection %" PRIu64, c->id);
        coll_conn_close(c, TRIB_LOG_DEBUG, "accept failed");
        return;
    }
    peer_name(&c->tcp, c->peer, sizeof(c->peer));
    if (s->stopping) {
        coll_conn_close(c, TRIB_LOG_DEBUG, "shutting down");
        return;
    }
    if (s->cfg.max_connections && s->nconns > s->cfg.max_connections) {
        s->metrics.connections_rejected++;
        TRIB_LOG_RL(&s->rl_conn, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                    "%s: refused: %zu connections open (max_connections)", c->peer, s->nconns - 1);
        coll_conn_close(c, TRIB_LOG_DEBUG, "max_connections");
        return;
    }
    if (coll_security_tls(l->cfg.security) && tls_attach(c) != 0) {
        coll_conn_close(c, TRIB_LOG_ERROR, "cannot set up TLS (out of memory)");
        return;
    }
    s->metrics.connections_accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    TRIB_LOG(TRIB_LOG_DEBUG, COLL_SERVER_FACILITY, "%s: connected", c->peer);
    if (!coll_cluster_metadata_ready(s->cluster)) {
        /* Requests wait in the socket until the topics are known. */
        c->paused = true;
        c->await_metadata = true;
        return;
    }
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rc != 0) {
        coll_conn_close(c, TRIB_LOG_WARN, uv_strerror(rc));
    }
}
