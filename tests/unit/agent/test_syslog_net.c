/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The syslog listeners on a real libuv loop with clients in the same
 * process (datagrams sent from the test thread, stream clients on a second
 * thread with blocking sockets): UDP (truncation, refusals, the kernel drop
 * counter, IPv6 and the every-address form), TCP with newline and octet
 * framing split across writes, backpressure with resume, connection caps,
 * idle timeout, TLS with a certificate made here (client certificates too),
 * unix stream and datagram sockets, start-up errors (certificate, key,
 * encrypted key, address, an address in use by TCP, UDP or unix listeners),
 * stop and pause from inside the callback, a final message refused at end
 * of stream, and hostile clients (garbage, huge lines, cut TLS records,
 * connect/close storms, random bytes from concurrent clients). Every test
 * stops its listener and checks uv_loop_close() == 0. TEST_FILTER=<glob>
 * runs some; TEST_LOG=1 logs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "input/syslog_net.h"
#include "syslog/syslog.h"
#include "tributary/log.h"

static char tmpdir[256];
static char cert_path[300], key_path[300];

/* ---------------------------------------------------------------------- */
/* What the callback saw                                                  */

typedef struct got_msg {
    char *s;
    size_t n;
    bool trunc;
    char peer[64];
    uint16_t port;
} got_msg_t;

typedef struct rec {
    got_msg_t *m;
    size_t n, cap;
    bool full;    /* refuse (-EAGAIN) while set */
    size_t burst; /* > 0: become full after accepting this many */
    size_t since; /* accepted since the last resume */
    uint64_t refusals;
    agent_sl_t *l; /* for the tick */
    bool resume_on_tick;
    int fail_with;  /* a non-EAGAIN error to return (drops_error) */
    size_t stop_at; /* > 0: agent_sl_stop() from the callback at this count */
} rec_t;

static int on_msg(void *ud, const char *msg, size_t len, bool trunc, const agent_sl_peer_t *peer)
{
    rec_t *r = ud;
    if (r->full) {
        r->refusals++;
        return -EAGAIN;
    }
    if (r->fail_with != 0) {
        return r->fail_with;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->m = realloc(r->m, r->cap * sizeof(*r->m));
        assert_non_null(r->m);
    }
    got_msg_t *g = &r->m[r->n++];
    g->s = malloc(len + 1);
    assert_non_null(g->s);
    memcpy(g->s, msg, len);
    g->s[len] = '\0';
    g->n = len;
    g->trunc = trunc;
    snprintf(g->peer, sizeof(g->peer), "%s", peer->addr);
    g->port = peer->port;
    if (r->stop_at > 0 && r->n == r->stop_at) {
        agent_sl_stop(r->l);
    }
    if (r->burst > 0 && ++r->since >= r->burst) {
        r->full = true;
        r->since = 0;
    }
    return 0;
}

static void rec_free(rec_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->m[i].s);
    }
    free(r->m);
    memset(r, 0, sizeof(*r));
}

/* ---------------------------------------------------------------------- */
/* The loop                                                               */

static void tick_cb(uv_timer_t *t)
{
    rec_t *r = t->data;
    if (r != NULL && r->resume_on_tick && r->full) {
        r->full = false;
        agent_sl_resume(r->l);
    }
}

/* Runs the loop until cond() holds or timeout_ms pass; a 1 ms tick checks
   the condition while clients on other threads do their part. */
static void (*dump)(void *);
static bool want_cond(void *arg);

static bool run_until(uv_loop_t *loop, rec_t *r, bool (*cond)(void *), void *arg, int timeout_ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    t.data = r;
    uv_timer_start(&t, tick_cb, 1, 1);
    uv_update_time(loop);
    uint64_t deadline = uv_now(loop) + (uint64_t)timeout_ms;
    bool ok;
    while (!(ok = cond(arg)) && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    if (!ok && dump != NULL && cond == want_cond) {
        dump(arg);
    }
    return ok;
}

typedef struct want {
    rec_t *r;
    agent_sl_t *l;
    size_t msgs;                    /* at least this many messages */
    uint64_t accepted;              /* at least */
    uint64_t refused;               /* at least */
    bool closed;                    /* and no connection open */
    uint64_t framing, tls;          /* at least */
    uint64_t refusals, drops_error; /* at least */
    uint64_t total;                 /* accepted + refused, at least */
} want_t;

static bool want_cond(void *arg)
{
    want_t *w = arg;
    agent_sl_stats_t st;
    agent_sl_stats(w->l, &st);
    return w->r->n >= w->msgs && st.connections_accepted >= w->accepted &&
           st.connections_refused >= w->refused && (!w->closed || st.connections_open == 0) &&
           st.framing_errors >= w->framing && st.tls_errors >= w->tls &&
           w->r->refusals >= w->refusals && st.drops_error >= w->drops_error &&
           st.connections_accepted + st.connections_refused >= w->total;
}

static void want_dump(void *arg)
{
    want_t *w = arg;
    agent_sl_stats_t st;
    agent_sl_stats(w->l, &st);
    fprintf(stderr,
            "# msgs %zu/%zu accepted %llu/%llu refused %llu/%llu open %llu framing %llu tls %llu "
            "refusals %llu paused %llu\n",
            w->r->n, w->msgs, (unsigned long long)st.connections_accepted,
            (unsigned long long)w->accepted, (unsigned long long)st.connections_refused,
            (unsigned long long)w->refused, (unsigned long long)st.connections_open,
            (unsigned long long)st.framing_errors, (unsigned long long)st.tls_errors,
            (unsigned long long)w->r->refusals, (unsigned long long)st.paused);
}

static void stop_and_close(uv_loop_t *loop, agent_sl_t *l)
{
    agent_sl_stop(l);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static agent_sl_conf_t conf_of(int mode, const char *address)
{
    agent_sl_conf_t c;
    memset(&c, 0, sizeof(c));
    c.mode = mode;
    c.address = address;
    c.framing = AGENT_SYSLOG_FRAME_AUTO;
    c.max_message_bytes = 8192;
    c.max_connections = 100;
    return c;
}

static agent_sl_t *start(uv_loop_t *loop, const agent_sl_conf_t *c, rec_t *r)
{
    char err[256] = "";
    agent_sl_t *l = NULL;
    int rc = agent_sl_start(&l, loop, c, on_msg, r, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "agent_sl_start: %d %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    assert_non_null(l);
    r->l = l;
    return l;
}

/* ---------------------------------------------------------------------- */
/* Clients                                                                */

static int udp_client(int family)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    return fd;
}

static void udp_send(int fd, int family, uint16_t port, const char *s, size_t n)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    assert_int_equal(sendto(fd, s, n, 0, (struct sockaddr *)&ss, sl), (ssize_t)n);
}

static int tcp_connect(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int unix_connect(const char *path, int type)
{
    int fd = socket(AF_UNIX, type, 0);
    struct sockaddr_un su;
    memset(&su, 0, sizeof(su));
    su.sun_family = AF_UNIX;
    snprintf(su.sun_path, sizeof(su.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&su, sizeof(su)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* A stream client on its own thread: connects, writes each chunk (with a
   short pause between, so they arrive as separate reads), closes. */
typedef struct client {
    pthread_t th;
    int family; /* AF_INET, AF_INET6 or AF_UNIX */
    uint16_t port;
    const char *path;
    const char **chunks;
    size_t *lens; /* NULL: strlen */
    size_t nchunks;
    int pause_us;
    bool tls;
    const char *cert, *key; /* client certificate */
    int repeat;             /* connect/close cycles (storm) */
    bool ok;
} client_t;

static void *client_main(void *arg)
{
    client_t *c = arg;
    c->ok = true;
    int cycles = c->repeat > 0 ? c->repeat : 1;
    for (int k = 0; k < cycles; k++) {
        int fd = c->family == AF_UNIX ? unix_connect(c->path, SOCK_STREAM)
                                      : tcp_connect(c->family, c->port);
        if (fd < 0) {
            c->ok = false;
            return NULL;
        }
        SSL_CTX *ctx = NULL;
        SSL *ssl = NULL;
        if (c->tls) {
            ctx = SSL_CTX_new(TLS_client_method());
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
            if (c->cert != NULL) {
                SSL_CTX_use_certificate_file(ctx, c->cert, SSL_FILETYPE_PEM);
                SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM);
            }
            ssl = SSL_new(ctx);
            SSL_set_fd(ssl, fd);
            if (SSL_connect(ssl) != 1) {
                c->ok = false;
            }
        }
        for (size_t i = 0; i < c->nchunks && c->ok; i++) {
            size_t n = c->lens ? c->lens[i] : strlen(c->chunks[i]);
            if (ssl != NULL) {
                c->ok = SSL_write(ssl, c->chunks[i], (int)n) == (int)n;
            } else {
                c->ok = write_all(fd, c->chunks[i], n);
            }
            if (c->pause_us > 0) {
                usleep((useconds_t)c->pause_us);
            }
        }
        if (ssl != NULL) {
            /* close_notify, then read to the end: closing with the
               server's session tickets unread would send a reset. */
            SSL_shutdown(ssl);
            shutdown(fd, SHUT_WR);
            char sink[4096];
            while (recv(fd, sink, sizeof(sink), 0) > 0) {
            }
            SSL_free(ssl);
            SSL_CTX_free(ctx);
        }
        close(fd);
    }
    ERR_clear_error();
    OPENSSL_thread_stop();
    return NULL;
}

static void client_start(client_t *c)
{
    assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
}

static void client_join(client_t *c)
{
    pthread_join(c->th, NULL);
}

/* ---------------------------------------------------------------------- */
/* UDP                                                                    */

static void test_udp(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_UDP, "127.0.0.1:0");
    c.max_message_bytes = 16;
    c.rcvbuf = 1 << 20;
    agent_sl_t *l = start(&loop, &c, &r);
    uint16_t port = agent_sl_port(l);
    assert_true(port != 0);

    int fd = udp_client(AF_INET);
    udp_send(fd, AF_INET, port, "<13>one\n", 8);
    udp_send(fd, AF_INET, port, "<13>two", 7);
    udp_send(fd, AF_INET, port, "<13>0123456789abcdefghij\n", 25); /* longer than 16 */
    udp_send(fd, AF_INET, port, "<13>exactly16by\n", 16);          /* 15 + '\n' */
    want_t w = {.r = &r, .l = l, .msgs = 4};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[0].s, "<13>one");
    assert_false(r.m[0].trunc);
    assert_string_equal(r.m[0].peer, "127.0.0.1");
    assert_true(r.m[0].port != 0);
    assert_string_equal(r.m[1].s, "<13>two");
    assert_string_equal(r.m[2].s, "<13>0123456789ab");
    assert_true(r.m[2].trunc);
    assert_string_equal(r.m[3].s, "<13>exactly16by");
    assert_false(r.m[3].trunc);

    /* Refused datagrams are dropped and counted; errors too. */
    r.full = true;
    udp_send(fd, AF_INET, port, "<13>lost", 8);
    udp_send(fd, AF_INET, port, "<13>lost", 8);
    want_t wr = {.r = &r, .l = l, .refusals = 2};
    assert_true(run_until(&loop, &r, want_cond, &wr, 5000));
    r.full = false;
    r.fail_with = -EINVAL;
    udp_send(fd, AF_INET, port, "<13>bad", 7);
    want_t we = {.r = &r, .l = l, .drops_error = 1};
    assert_true(run_until(&loop, &r, want_cond, &we, 5000));
    r.fail_with = 0;
    udp_send(fd, AF_INET, port, "<13>last", 8);
    w.msgs = 5;
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[4].s, "<13>last");
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_int_equal(st.messages, 5);
    assert_int_equal(st.drops_full, 2);
    assert_int_equal(st.drops_error, 1);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.drops_kernel, 0);
    close(fd);
    stop_and_close(&loop, l);
    rec_free(&r);
}

/* A tiny receive buffer flooded before the loop runs: the kernel drops, and
   the next datagram carries the count (SO_RXQ_OVFL). */
static void test_udp_kernel_drops(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_UDP, "127.0.0.1:0");
    c.rcvbuf = 1; /* the kernel's minimum */
    agent_sl_t *l = start(&loop, &c, &r);
    uint16_t port = agent_sl_port(l);
    int fd = udp_client(AF_INET);
    char msg[512];
    memset(msg, 'x', sizeof(msg));
    const int flood = 500;
    for (int i = 0; i < flood; i++) {
        udp_send(fd, AF_INET, port, msg, sizeof(msg));
    }
    want_t w = {.r = &r, .l = l, .msgs = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    /* Drain what was queued, then one more datagram. */
    for (int i = 0; i < 20; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    size_t before = r.n;
    udp_send(fd, AF_INET, port, "<13>after", 9);
    w.msgs = before + 1;
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[r.n - 1].s, "<13>after");
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_true(st.drops_kernel > 0);
    assert_int_equal(st.messages + st.drops_kernel, (uint64_t)flood + 1);
    close(fd);
    stop_and_close(&loop, l);
    rec_free(&r);
}

static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* "[::1]:0" and ":0" (every address, IPv4 clients shown without ::ffff:). */
static void test_udp_ipv6_and_any(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_UDP, ":0");
    agent_sl_t *l = start(&loop, &c, &r);
    int fd = udp_client(AF_INET);
    udp_send(fd, AF_INET, agent_sl_port(l), "<13>any4", 8);
    want_t w = {.r = &r, .l = l, .msgs = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[0].peer, "127.0.0.1");
    close(fd);
    stop_and_close(&loop, l);
    rec_free(&r);

    if (!have_ipv6()) {
        return;
    }
    uv_loop_init(&loop);
    c = conf_of(AGENT_SL_UDP, "[::1]:0");
    l = start(&loop, &c, &r);
    fd = udp_client(AF_INET6);
    udp_send(fd, AF_INET6, agent_sl_port(l), "<13>six", 7);
    w.l = l;
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[0].peer, "::1");
    close(fd);
    stop_and_close(&loop, l);
    rec_free(&r);

    /* TCP on "[::1]:0" as well. */
    uv_loop_init(&loop);
    c = conf_of(AGENT_SL_TCP, "[::1]:0");
    l = start(&loop, &c, &r);
    const char *chunks[] = {"<13>tcp6\n"};
    client_t cl = {.family = AF_INET6, .port = agent_sl_port(l), .chunks = chunks, .nchunks = 1};
    client_start(&cl);
    w.l = l;
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&cl);
    assert_true(cl.ok);
    assert_string_equal(r.m[0].s, "<13>tcp6");
    assert_string_equal(r.m[0].peer, "::1");
    stop_and_close(&loop, l);
    rec_free(&r);
}

/* ---------------------------------------------------------------------- */
/* TCP                                                                    */

static void test_tcp_framing(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TCP, "127.0.0.1:0");
    agent_sl_t *l = start(&loop, &c, &r);
    /* Auto framing: newline and octet-counted frames, cut mid-count and
       mid-message across writes, and a last line without its LF. */
    const char *chunks[] = {"<13>first line\n<13>sec", "ond line\r\n1",      "7 <13>octet counted",
                            "12 <13>abcdefgh",         "14 <13>multi\nline", "<13>unterminated"};
    client_t cl = {.family = AF_INET,
                   .port = agent_sl_port(l),
                   .chunks = chunks,
                   .nchunks = 6,
                   .pause_us = 20000};
    client_start(&cl);
    want_t w = {.r = &r, .l = l, .msgs = 6, .accepted = 1, .closed = true};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&cl);
    assert_true(cl.ok);
    assert_int_equal(r.n, 6);
    assert_string_equal(r.m[0].s, "<13>first line");
    assert_string_equal(r.m[1].s, "<13>second line");
    assert_string_equal(r.m[2].s, "<13>octet counted");
    assert_string_equal(r.m[3].s, "<13>abcdefgh");
    assert_string_equal(r.m[4].s, "<13>multi\nline");
    assert_string_equal(r.m[5].s, "<13>unterminated");
    assert_string_equal(r.m[0].peer, "127.0.0.1");
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_int_equal(st.messages, 6);
    assert_int_equal(st.connections_accepted, 1);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(st.framing_errors, 0);
    stop_and_close(&loop, l);
    rec_free(&r);
}

/* The callback pushes back every 37 messages; a 1 ms tick resumes. Every
   message arrives once, in order, over several connections. */
static void backpressure_run(int mode, const char *cert, const char *key)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {.burst = 37, .resume_on_tick = true};
    agent_sl_conf_t c = conf_of(mode, "127.0.0.1:0");
    c.framing = AGENT_SYSLOG_FRAME_OCTET;
    c.max_message_bytes = 256;
    c.tls_cert = cert;
    c.tls_key = key;
    agent_sl_t *l = start(&loop, &c, &r);

    enum { N = 3000, PER = 100 };
    char *buf = malloc((size_t)N * 40);
    const char **chunks = malloc(sizeof(char *) * (N / PER));
    size_t *lens = malloc(sizeof(size_t) * (N / PER));
    size_t off = 0;
    for (int k = 0; k < N / PER; k++) {
        chunks[k] = buf + off;
        size_t start_off = off;
        for (int i = k * PER; i < (k + 1) * PER; i++) {
            char m[32];
            int n = snprintf(m, sizeof(m), "<13>msg %06d", i);
            off += (size_t)sprintf(buf + off, "%d %s", n, m);
        }
        lens[k] = off - start_off;
    }
    client_t cl = {.family = AF_INET,
                   .port = agent_sl_port(l),
                   .chunks = chunks,
                   .lens = lens,
                   .nchunks = N / PER,
                   .tls = mode == AGENT_SL_TLS};
    client_start(&cl);
    want_t w = {.r = &r, .l = l, .msgs = N, .closed = true, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 20000));
    client_join(&cl);
    assert_true(cl.ok);
    assert_int_equal(r.n, N);
    for (int i = 0; i < N; i++) {
        char m[32];
        snprintf(m, sizeof(m), "<13>msg %06d", i);
        assert_string_equal(r.m[i].s, m);
    }
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_int_equal(st.messages, N);
    assert_true(st.paused >= 1);
    assert_true(r.refusals >= N / 37 - 1);
    free(buf);
    free(chunks);
    free(lens);
    stop_and_close(&loop, l);
    rec_free(&r);
}

static void test_tcp_backpressure(void **state)
{
    (void)state;
    backpressure_run(AGENT_SL_TCP, NULL, NULL);
}

/* Stopped while connections hold kept messages and framed bytes. */
static void test_stop_while_paused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {.burst = 1};
    agent_sl_conf_t c = conf_of(AGENT_SL_TCP, "127.0.0.1:0");
    agent_sl_t *l = start(&loop, &c, &r);
    const char *chunks[] = {"<13>a\n<13>b\n<13>c\n<13>d\n"};
    client_t cl = {.family = AF_INET, .port = agent_sl_port(l), .chunks = chunks, .nchunks = 1};
    client_start(&cl);
    want_t w = {.r = &r, .l = l, .msgs = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    for (int i = 0; i < 20 && r.refusals == 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    client_join(&cl);
    agent_sl_pause_all(l);
    r.full = false;
    agent_sl_resume(l); /* paused for good: nothing more is delivered */
    assert_int_equal(r.n, 1);
    stop_and_close(&loop, l);
    rec_free(&r);
}

/* The last, unterminated message is refused at the end of the stream:
   kept, delivered on resume, then the connection closes. */
static void test_eof_while_paused(void **state)
{
    (void)state;
    for (int mode = AGENT_SL_TCP; mode <= AGENT_SL_TLS; mode++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        rec_t r = {.burst = 1, .resume_on_tick = true};
        agent_sl_conf_t c = conf_of(mode, "127.0.0.1:0");
        c.tls_cert = cert_path;
        c.tls_key = key_path;
        agent_sl_t *l = start(&loop, &c, &r);
        const char *chunks[] = {"<13>a\n<13>b\n13 <13>octet", " one<13>tail"};
        client_t cl = {.family = AF_INET,
                       .port = agent_sl_port(l),
                       .chunks = chunks,
                       .nchunks = 2,
                       .tls = mode == AGENT_SL_TLS};
        client_start(&cl);
        want_t w = {.r = &r, .l = l, .msgs = 4, .closed = true, .accepted = 1};
        assert_true(run_until(&loop, &r, want_cond, &w, 5000));
        client_join(&cl);
        assert_true(cl.ok);
        assert_int_equal(r.n, 4);
        assert_string_equal(r.m[0].s, "<13>a");
        assert_string_equal(r.m[1].s, "<13>b");
        assert_string_equal(r.m[2].s, "<13>octet one");
        assert_string_equal(r.m[3].s, "<13>tail");
        stop_and_close(&loop, l);
        rec_free(&r);
    }
}

/* Random bytes in random pieces from many clients at once, plain and TLS:
   whatever is framed is delivered, nothing crashes or leaks. */
static void test_random_bytes(void **state)
{
    (void)state;
    enum { CLIENTS = 12, PIECES = 40 };
    srand(12345);
    static char data[CLIENTS][PIECES][700];
    static const char *chunks[CLIENTS][PIECES];
    static size_t lens[CLIENTS][PIECES];
    for (int i = 0; i < CLIENTS; i++) {
        for (int k = 0; k < PIECES; k++) {
            lens[i][k] = 1 + (size_t)rand() % sizeof(data[i][k]);
            for (size_t b = 0; b < lens[i][k]; b++) {
                /* Mostly digits, spaces and newlines: frames, cut frames and
                   bad counts all happen. */
                int x = rand() % 8;
                data[i][k][b] = x < 3   ? (char)('0' + rand() % 10)
                                : x < 4 ? ' '
                                : x < 5 ? '\n'
                                        : (char)rand();
            }
            chunks[i][k] = data[i][k];
        }
    }
    for (int mode = AGENT_SL_TCP; mode <= AGENT_SL_TLS; mode++) {
        for (int framing = AGENT_SYSLOG_FRAME_AUTO; framing <= AGENT_SYSLOG_FRAME_NEWLINE;
             framing++) {
            uv_loop_t loop;
            uv_loop_init(&loop);
            rec_t r = {.burst = 100, .resume_on_tick = true};
            agent_sl_conf_t c = conf_of(mode, "127.0.0.1:0");
            c.framing = framing;
            c.max_message_bytes = 100;
            c.tls_cert = cert_path;
            c.tls_key = key_path;
            agent_sl_t *l = start(&loop, &c, &r);
            client_t cl[CLIENTS];
            for (int i = 0; i < CLIENTS; i++) {
                cl[i] = (client_t){.family = AF_INET,
                                   .port = agent_sl_port(l),
                                   .chunks = chunks[i],
                                   .lens = lens[i],
                                   .nchunks = PIECES,
                                   .tls = mode == AGENT_SL_TLS};
                client_start(&cl[i]);
            }
            want_t w = {.r = &r, .l = l, .closed = true, .accepted = CLIENTS};
            assert_true(run_until(&loop, &r, want_cond, &w, 20000));
            for (int i = 0; i < CLIENTS; i++) {
                client_join(&cl[i]);
            }
            agent_sl_stats_t st;
            agent_sl_stats(l, &st);
            assert_int_equal(st.messages, r.n);
            assert_int_equal(st.tls_errors, 0);
            assert_true(r.n < 100 || r.refusals > 0); /* the backpressure path ran */
            for (size_t i = 0; i < r.n; i++) {
                assert_true(r.m[i].n <= 100);
            }
            stop_and_close(&loop, l);
            rec_free(&r);
        }
    }
}

static bool is_true(void *arg)
{
    return *(bool *)arg;
}

/* agent_sl_stop() from inside the callback, with more input pending. */
static void test_stop_from_callback(void **state)
{
    (void)state;
    for (int mode = AGENT_SL_UDP; mode <= AGENT_SL_TLS; mode++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        rec_t r = {.stop_at = 3};
        agent_sl_conf_t c = conf_of(mode, "127.0.0.1:0");
        c.tls_cert = cert_path;
        c.tls_key = key_path;
        c.idle_timeout_ms = 10000;
        agent_sl_t *l = start(&loop, &c, &r);
        const char *chunks[] = {"<13>1\n<13>2\n<13>3\n<13>4\n<13>5\n"};
        client_t cl = {.family = AF_INET,
                       .port = agent_sl_port(l),
                       .chunks = chunks,
                       .nchunks = 1,
                       .tls = mode == AGENT_SL_TLS};
        if (mode == AGENT_SL_UDP) {
            int fd = udp_client(AF_INET);
            for (int i = 0; i < 5; i++) {
                udp_send(fd, AF_INET, agent_sl_port(l), "<13>d", 5);
            }
            close(fd);
        } else {
            client_start(&cl);
        }
        bool never = false;
        for (int i = 0; i < 5000 && r.n < 3; i++) {
            run_until(&loop, &r, is_true, &never, 1);
        }
        assert_int_equal(r.n, 3);
        uv_run(&loop, UV_RUN_DEFAULT); /* the listener is gone: the loop ends */
        assert_int_equal(uv_loop_close(&loop), 0);
        if (mode != AGENT_SL_UDP) {
            client_join(&cl);
        }
        rec_free(&r);
    }
}

/* pause_all on a datagram listener: nothing is read until stop. */
static void test_udp_pause_all(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_UDP, "127.0.0.1:0");
    agent_sl_t *l = start(&loop, &c, &r);
    agent_sl_pause_all(l);
    int fd = udp_client(AF_INET);
    udp_send(fd, AF_INET, agent_sl_port(l), "<13>held", 8);
    bool never = false;
    run_until(&loop, &r, is_true, &never, 50);
    agent_sl_resume(l);
    run_until(&loop, &r, is_true, &never, 20);
    assert_int_equal(r.n, 0);
    close(fd);
    stop_and_close(&loop, l);
    rec_free(&r);
}

static void test_max_connections(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TCP, "127.0.0.1:0");
    c.max_connections = 1;
    agent_sl_t *l = start(&loop, &c, &r);
    int a = tcp_connect(AF_INET, agent_sl_port(l));
    assert_true(a >= 0);
    assert_true(write_all(a, "<13>one\n", 8));
    want_t w = {.r = &r, .l = l, .msgs = 1, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    int b = tcp_connect(AF_INET, agent_sl_port(l));
    assert_true(b >= 0);
    w.refused = 1;
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    char x;
    assert_true(recv(b, &x, 1, 0) <= 0); /* closed by the listener */
    close(b);
    close(a);
    w.closed = true;
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));

    /* Per peer: every client here is 127.0.0.1. */
    agent_sl_stop(l);
    uv_run(&loop, UV_RUN_DEFAULT);
    c.max_connections = 10;
    c.max_connections_per_peer = 2;
    l = start(&loop, &c, &r);
    int s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = tcp_connect(AF_INET, agent_sl_port(l));
        assert_true(s[i] >= 0);
    }
    want_t w2 = {.r = &r, .l = l, .accepted = 2, .refused = 1};
    assert_true(run_until(&loop, &r, want_cond, &w2, 5000));
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_int_equal(st.connections_open, 2);
    for (int i = 0; i < 3; i++) {
        close(s[i]);
    }
    w2.closed = true;
    assert_true(run_until(&loop, &r, want_cond, &w2, 5000));
    stop_and_close(&loop, l);
    rec_free(&r);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TCP, "127.0.0.1:0");
    c.idle_timeout_ms = 50;
    agent_sl_t *l = start(&loop, &c, &r);
    int a = tcp_connect(AF_INET, agent_sl_port(l));
    assert_true(a >= 0);
    assert_true(write_all(a, "<13>hello\n", 10));
    want_t w = {.r = &r, .l = l, .accepted = 1, .closed = true, .msgs = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[0].s, "<13>hello");
    char x;
    assert_true(recv(a, &x, 1, 0) <= 0);
    close(a);
    stop_and_close(&loop, l);
    rec_free(&r);
}

/* Hostile clients: nothing crashes or leaks, the counters say what happened. */
static void test_tcp_hostile(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TCP, "127.0.0.1:0");
    c.framing = AGENT_SYSLOG_FRAME_OCTET;
    c.max_message_bytes = 1024;
    agent_sl_t *l = start(&loop, &c, &r);
    uint16_t port = agent_sl_port(l);

    /* Garbage where an octet count belongs: framing error, closed. */
    const char *garbage[] = {"5 <13>x", "xyz garbage\n", "12 <13>never"};
    client_t g = {
        .family = AF_INET, .port = port, .chunks = garbage, .nchunks = 3, .pause_us = 10000};
    client_start(&g);
    want_t w = {.r = &r, .l = l, .msgs = 1, .framing = 1, .closed = true, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&g);
    assert_string_equal(r.m[0].s, "<13>x");
    stop_and_close(&loop, l);
    rec_free(&r);

    /* Newline framing: a 1 MiB line is cut, the next line arrives whole. */
    uv_loop_init(&loop);
    c.framing = AGENT_SYSLOG_FRAME_NEWLINE;
    l = start(&loop, &c, &r);
    port = agent_sl_port(l);
    size_t big = 1 << 20;
    char *huge = malloc(big);
    memset(huge, 'a', big);
    const char *hchunks[] = {huge, "\n<13>after\n"};
    size_t hlens[] = {big, 11};
    client_t h = {.family = AF_INET, .port = port, .chunks = hchunks, .lens = hlens, .nchunks = 2};
    client_start(&h);
    w = (want_t){.r = &r, .l = l, .msgs = 2, .closed = true, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 10000));
    client_join(&h);
    assert_true(h.ok);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.m[0].n, 1024);
    assert_true(r.m[0].trunc);
    assert_string_equal(r.m[1].s, "<13>after");
    free(huge);
    rec_free(&r);

    /* A storm of connect/close cycles, each leaving a partial message
       behind; connections past max_connections (100) are refused. */
    const char *partial[] = {"<13>partial"};
    client_t storm = {
        .family = AF_INET, .port = port, .chunks = partial, .nchunks = 1, .repeat = 2000};
    client_start(&storm);
    w = (want_t){.r = &r, .l = l, .closed = true, .total = 2001};
    assert_true(run_until(&loop, &r, want_cond, &w, 30000));
    client_join(&storm);
    assert_true(storm.ok);
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_int_equal(r.n, st.connections_accepted - 1);
    assert_true(r.n > 0);
    for (size_t i = 0; i < r.n; i++) {
        assert_string_equal(r.m[i].s, "<13>partial");
    }
    stop_and_close(&loop, l);
    rec_free(&r);
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                    */

/* A self-signed P-256 certificate for "localhost", written as PEM. */
static void make_cert(const char *cert, const char *key)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(pk);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, nm);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    FILE *fp = fopen(cert, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_X509(fp, x), 1);
    fclose(fp);
    fp = fopen(key, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static void test_tls(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TLS, "127.0.0.1:0");
    c.tls_cert = cert_path;
    c.tls_key = key_path;
    agent_sl_t *l = start(&loop, &c, &r);
    const char *chunks[] = {"<13>over tls\n1", "3 <13>octet tls", "<13>last"};
    client_t cl = {.family = AF_INET,
                   .port = agent_sl_port(l),
                   .chunks = chunks,
                   .nchunks = 3,
                   .tls = true,
                   .pause_us = 10000};
    client_start(&cl);
    want_t w = {.r = &r, .l = l, .msgs = 3, .closed = true, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&cl);
    assert_true(cl.ok);
    assert_string_equal(r.m[0].s, "<13>over tls");
    assert_string_equal(r.m[1].s, "<13>octet tls");
    assert_string_equal(r.m[2].s, "<13>last");

    /* Not TLS at all, and a TLS record cut short: handshake errors. */
    const char *junk[] = {"<13>plain text, not a ClientHello\n"};
    client_t j = {.family = AF_INET, .port = agent_sl_port(l), .chunks = junk, .nchunks = 1};
    client_start(&j);
    w = (want_t){.r = &r, .l = l, .tls = 1, .closed = true, .accepted = 2};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&j);
    const char *cut[] = {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"};
    client_t k = {.family = AF_INET, .port = agent_sl_port(l), .chunks = cut, .nchunks = 1};
    client_start(&k);
    w = (want_t){.r = &r, .l = l, .tls = 2, .closed = true, .accepted = 3};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&k);
    /* Connect and leave without a word: not an error. */
    client_t probe = {.family = AF_INET, .port = agent_sl_port(l), .repeat = 50};
    client_start(&probe);
    w = (want_t){.r = &r, .l = l, .closed = true, .accepted = 53};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&probe);
    agent_sl_stats_t st;
    agent_sl_stats(l, &st);
    assert_int_equal(st.tls_errors, 2);
    assert_int_equal(st.messages, 3);
    stop_and_close(&loop, l);
    rec_free(&r);
}

static void test_tls_backpressure(void **state)
{
    (void)state;
    backpressure_run(AGENT_SL_TLS, cert_path, key_path);
}

/* tls_ca: a client with a certificate signed by it gets in, one without
   does not. */
static void test_tls_client_cert(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TLS, "127.0.0.1:0");
    c.tls_cert = cert_path;
    c.tls_key = key_path;
    c.tls_ca = cert_path;
    agent_sl_t *l = start(&loop, &c, &r);
    const char *chunks[] = {"<13>with a cert\n"};
    client_t ok = {.family = AF_INET,
                   .port = agent_sl_port(l),
                   .chunks = chunks,
                   .nchunks = 1,
                   .tls = true,
                   .cert = cert_path,
                   .key = key_path};
    client_start(&ok);
    want_t w = {.r = &r, .l = l, .msgs = 1, .closed = true, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&ok);
    assert_string_equal(r.m[0].s, "<13>with a cert");

    const char *nope[] = {"<13>without\n"};
    client_t bad = {
        .family = AF_INET, .port = agent_sl_port(l), .chunks = nope, .nchunks = 1, .tls = true};
    client_start(&bad);
    w = (want_t){.r = &r, .l = l, .tls = 1, .closed = true, .accepted = 2};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&bad);
    assert_int_equal(r.n, 1);
    stop_and_close(&loop, l);

    /* Peer names: the certificate (CN=localhost) must name one of them. */
    const char *names_ok[] = {"syslog.example", "localhost"};
    const char *names_no[] = {"syslog.example"};
    for (int pass = 0; pass < 2; pass++) {
        rec_t r2 = {0};
        uv_loop_init(&loop);
        c.tls_peer_names = pass == 0 ? names_ok : names_no;
        c.tls_npeer_names = pass == 0 ? 2 : 1;
        l = start(&loop, &c, &r2);
        client_t cl = {.family = AF_INET,
                       .port = agent_sl_port(l),
                       .chunks = chunks,
                       .nchunks = 1,
                       .tls = true,
                       .cert = cert_path,
                       .key = key_path};
        client_start(&cl);
        w = pass == 0 ? (want_t){.r = &r2, .l = l, .msgs = 1, .closed = true, .accepted = 1}
                      : (want_t){.r = &r2, .l = l, .tls = 1, .closed = true, .accepted = 1};
        assert_true(run_until(&loop, &r2, want_cond, &w, 5000));
        client_join(&cl);
        assert_int_equal(r2.n, pass == 0 ? 1 : 0);
        stop_and_close(&loop, l);
        rec_free(&r2);
    }
    /* names without a CA: refused at start */
    c.tls_ca = NULL;
    c.tls_peer_names = names_no;
    c.tls_npeer_names = 1;
    char err[256];
    uv_loop_init(&loop);
    assert_true(agent_sl_start(&l, &loop, &c, on_msg, NULL, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "tls_ca"));
    assert_int_equal(uv_loop_close(&loop), 0);
    rec_free(&r);
}

static void test_tls_bad_cert(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    agent_sl_t *l = (agent_sl_t *)1;
    agent_sl_conf_t c = conf_of(AGENT_SL_TLS, "127.0.0.1:0");
    c.tls_cert = "/nonexistent/cert.pem";
    c.tls_key = key_path;
    assert_true(agent_sl_start(&l, &loop, &c, on_msg, NULL, err, sizeof(err)) < 0);
    assert_null(l);
    assert_non_null(strstr(err, "tls_cert '/nonexistent/cert.pem'"));

    /* A readable file that is no certificate. */
    char notpem[300];
    snprintf(notpem, sizeof(notpem), "%s/notpem.txt", tmpdir);
    FILE *fp = fopen(notpem, "w");
    fputs("hello\n", fp);
    fclose(fp);
    c.tls_cert = notpem;
    assert_true(agent_sl_start(&l, &loop, &c, on_msg, NULL, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, notpem));
    assert_non_null(strstr(err, "tls_cert"));

    /* The key is not the certificate's. */
    char cert2[300], key2[300];
    snprintf(cert2, sizeof(cert2), "%s/other.crt", tmpdir);
    snprintf(key2, sizeof(key2), "%s/other.key", tmpdir);
    make_cert(cert2, key2);
    c.tls_cert = cert_path;
    c.tls_key = key2;
    assert_true(agent_sl_start(&l, &loop, &c, on_msg, NULL, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, key2));

    /* An encrypted key: an error, not a prompt. */
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char enckey[300];
    snprintf(enckey, sizeof(enckey), "%s/enc.key", tmpdir);
    fp = fopen(enckey, "w");
    assert_int_equal(PEM_write_PrivateKey(fp, pk, EVP_aes_128_cbc(), NULL, 0, NULL, "secret"), 1);
    fclose(fp);
    EVP_PKEY_free(pk);
    c.tls_key = enckey;
    assert_true(agent_sl_start(&l, &loop, &c, on_msg, NULL, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, enckey));

    /* And the address checks. */
    agent_sl_conf_t u = conf_of(AGENT_SL_UDP, "::1:514");
    assert_true(agent_sl_start(&l, &loop, &u, on_msg, NULL, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "brackets"));
    u.address = "127.0.0.1:99999";
    assert_true(agent_sl_start(&l, &loop, &u, on_msg, NULL, err, sizeof(err)) < 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_address_in_use(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    agent_sl_conf_t c = conf_of(AGENT_SL_TCP, "127.0.0.1:0");
    agent_sl_t *l = start(&loop, &c, &r);
    char addr[64], err[256];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", agent_sl_port(l));
    agent_sl_conf_t c2 = conf_of(AGENT_SL_TCP, addr);
    agent_sl_t *l2 = NULL;
    assert_int_equal(agent_sl_start(&l2, &loop, &c2, on_msg, &r, err, sizeof(err)), -EADDRINUSE);
    assert_non_null(strstr(err, addr));
    stop_and_close(&loop, l);
    /* UDP: no SO_REUSEADDR, so a second listener cannot share the port
       (and take the first one's datagrams) */
    uv_loop_init(&loop);
    c = conf_of(AGENT_SL_UDP, "127.0.0.1:0");
    l = start(&loop, &c, &r);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", agent_sl_port(l));
    c2 = conf_of(AGENT_SL_UDP, addr);
    err[0] = '\0';
    assert_int_equal(agent_sl_start(&l2, &loop, &c2, on_msg, &r, err, sizeof(err)), -EADDRINUSE);
    assert_non_null(strstr(err, addr));
    stop_and_close(&loop, l);
    /* unix sockets: a path someone listens on is not taken over */
    static const int umodes[] = {AGENT_SL_UNIX, AGENT_SL_UNIX_DGRAM};
    for (size_t i = 0; i < 2; i++) {
        char path[300];
        snprintf(path, sizeof(path), "%s/inuse.sock", tmpdir);
        uv_loop_init(&loop);
        c = conf_of(umodes[i], path);
        l = start(&loop, &c, &r);
        err[0] = '\0';
        assert_int_equal(agent_sl_start(&l2, &loop, &c, on_msg, &r, err, sizeof(err)), -EADDRINUSE);
        assert_non_null(strstr(err, path));
        struct stat st;
        assert_int_equal(stat(path, &st), 0); /* still the first listener's */
        stop_and_close(&loop, l);
    }
    rec_free(&r);
}

/* ---------------------------------------------------------------------- */
/* Unix sockets                                                           */

static void test_unix_stream(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    char path[300];
    snprintf(path, sizeof(path), "%s/log.sock", tmpdir);
    /* A stale socket file from an earlier run is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof(su.sun_path));
    memcpy(su.sun_path, path, strlen(path));
    assert_int_equal(bind(stale, (struct sockaddr *)&su, sizeof(su)), 0);
    close(stale);

    agent_sl_conf_t c = conf_of(AGENT_SL_UNIX, path);
    c.unix_mode = 0620;
    agent_sl_t *l = start(&loop, &c, &r);
    assert_int_equal(agent_sl_port(l), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0620);
    const char *chunks[] = {"<13>over unix\n<13>sec", "ond\n"};
    client_t cl = {
        .family = AF_UNIX, .path = path, .chunks = chunks, .nchunks = 2, .pause_us = 10000};
    client_start(&cl);
    want_t w = {.r = &r, .l = l, .msgs = 2, .closed = true, .accepted = 1};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    client_join(&cl);
    assert_true(cl.ok);
    assert_string_equal(r.m[0].s, "<13>over unix");
    assert_string_equal(r.m[0].peer, path);
    assert_string_equal(r.m[1].s, "<13>second");
    stop_and_close(&loop, l);
    assert_int_equal(stat(path, &st), -1); /* removed at stop */
    rec_free(&r);

    /* A regular file at the path is not removed. */
    uv_loop_init(&loop);
    FILE *fp = fopen(path, "w");
    fclose(fp);
    char err[256];
    agent_sl_t *l2 = NULL;
    assert_true(agent_sl_start(&l2, &loop, &c, on_msg, &r, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "not a socket"));
    assert_int_equal(stat(path, &st), 0);
    unlink(path);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A unix datagram socket's queue is short (net.unix.max_dgram_qlen): the
   loop runs while the sender waits. */
static void dgram_send(uv_loop_t *loop, int fd, const char *p, size_t n)
{
    for (int i = 0; i < 100000; i++) {
        ssize_t w = send(fd, p, n, MSG_DONTWAIT);
        if (w == (ssize_t)n) {
            return;
        }
        assert_true(w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        uv_run(loop, UV_RUN_NOWAIT);
    }
    fail_msg("the datagram socket never took a datagram");
}

static void test_unix_dgram(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    rec_t r = {0};
    char path[300];
    snprintf(path, sizeof(path), "%s/dev-log", tmpdir);
    agent_sl_conf_t c = conf_of(AGENT_SL_UNIX_DGRAM, path);
    c.max_message_bytes = 32;
    agent_sl_t *l = start(&loop, &c, &r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0666);
    int fd = unix_connect(path, SOCK_DGRAM);
    assert_true(fd >= 0);
    dgram_send(&loop, fd, "<13>Nov 26 12:00:00 app: hi", 27);
    char big[100];
    memset(big, 'b', sizeof(big));
    dgram_send(&loop, fd, big, sizeof(big));
    for (int i = 0; i < 600; i++) {
        char m[32];
        int n = snprintf(m, sizeof(m), "<13>d %d\n", i);
        dgram_send(&loop, fd, m, (size_t)n);
    }
    want_t w = {.r = &r, .l = l, .msgs = 602};
    assert_true(run_until(&loop, &r, want_cond, &w, 5000));
    assert_string_equal(r.m[0].s, "<13>Nov 26 12:00:00 app: hi");
    assert_string_equal(r.m[0].peer, path);
    assert_int_equal(r.m[1].n, 32);
    assert_true(r.m[1].trunc);
    assert_string_equal(r.m[601].s, "<13>d 599");
    close(fd);
    stop_and_close(&loop, l);
    assert_int_equal(stat(path, &st), -1);
    rec_free(&r);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_syslog_net.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    snprintf(cert_path, sizeof(cert_path), "%s/server.crt", tmpdir);
    snprintf(key_path, sizeof(key_path), "%s/server.key", tmpdir);
    make_cert(cert_path, key_path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    trib_log_set_level(getenv("TEST_LOG") ? TRIB_LOG_DEBUG : TRIB_LOG_ERROR);
    dump = want_dump;
    if (getenv("TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_udp_kernel_drops),
        cmocka_unit_test(test_udp_ipv6_and_any),
        cmocka_unit_test(test_tcp_framing),
        cmocka_unit_test(test_tcp_backpressure),
        cmocka_unit_test(test_stop_while_paused),
        cmocka_unit_test(test_stop_from_callback),
        cmocka_unit_test(test_eof_while_paused),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_udp_pause_all),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_tcp_hostile),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_tls_backpressure),
        cmocka_unit_test(test_tls_client_cert),
        cmocka_unit_test(test_tls_bad_cert),
        cmocka_unit_test(test_address_in_use),
        cmocka_unit_test(test_unix_stream),
        cmocka_unit_test(test_unix_dgram),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
