/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syslog listeners: UDP, TCP, TLS (RFC 5425) and unix sockets, on the
 * agent's libuv loop.
 *
 * Datagrams (UDP, unix datagram). A socket made here, non-blocking, and
 * watched with a uv_poll_t. The poll callback reads with recvmmsg() in
 * batches of up to SL_DGRAM_BATCH and stops after SL_DGRAM_PER_POLL
 * datagrams so that one busy socket cannot starve the loop (the poll is
 * level-triggered: the rest waits for the next turn). A datagram is one
 * message, one trailing '\n' removed; each receive buffer is
 * max_message_bytes + 1 long, so a longer datagram shows as longer than
 * the limit (or as MSG_TRUNC) and is cut and flagged. UDP sockets have
 * SO_RXQ_OVFL: the kernel attaches its cumulative count of datagrams
 * dropped for a full receive queue to each datagram, and drops_kernel is
 * the latest count seen. A datagram the callback refuses (-EAGAIN) is
 * lost: there is nobody to push back on (drops_full).
 *
 * Streams (TCP, TLS, unix stream). One sl_conn_t per connection with its
 * own RFC 6587 framer. Bytes flow socket -> [TLS: memory BIO -> SSL_read]
 * -> framer -> callback. Invariants:
 *  - While a connection is reading, its framer holds no complete message:
 *    every read is followed by a drain, so the framer's room is positive
 *    and a plain read never asks for more than that room (whatever the
 *    socket hands over is always taken whole).
 *  - When the callback answers -EAGAIN, the message is copied into the
 *    connection ("kept") and the connection stops reading: its socket's
 *    receive queue (and the kernel's flow control) holds the rest.
 *    agent_sl_resume() delivers the kept message first, then what the
 *    framer (and, for TLS, the SSL object and its ciphertext BIO) still
 *    holds, and only then reads again. So messages are delivered once
 *    each, in order, and a paused connection holds at most one read's
 *    worth of bytes beyond the framer's bound.
 *  - TLS runs over memory BIOs: ciphertext read from the socket is written
 *    into rbio; whatever OpenSSL puts into wbio (handshake, tickets,
 *    alerts) is written to the socket after every SSL call. SSL_read()
 *    asks for no more than the framer's room.
 *  - End of stream (or a reset: what arrived before it was sent): the
 *    framer's final unterminated message is delivered
 *    (agent_syslog_framer_finish), then the connection closes. A bad
 *    octet count (-EPROTO) closes the connection at once. A TLS client
 *    that connects and leaves without a byte is no TLS error.
 *  - Caps: a connection past max_connections or max_connections_per_peer
 *    (0: none; per peer is by IP, not for unix sockets) is accepted and
 *    closed at once. Idle connections close after idle_timeout_ms; a
 *    connection paused by the callback is not idle.
 *
 * agent_sl_pause_all() is for shutdown and stays: agent_sl_resume() no
 * longer restarts reading afterwards. Listening stops too: the pending
 * connection stays in the kernel's backlog (libuv stops watching a
 * listener whose connection callback did not accept).
 *
 * Lifetime: the listener handle and every connection (its stream and idle
 * timer, freed when both are closed; refused ones too) count in nhandles;
 * memory is freed only in close callbacks, the listener object once its
 * last handle is closed. A callback may call agent_sl_stop() or
 * agent_sl_pause_all(): `closing`/`stopping` are checked after every
 * callback, and no callback is made once agent_sl_stop() has returned.
 */
#include "syslog_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "syslog/syslog.h"
#include "tributary/error.h"
#include "tributary/log.h"

#define SL_FAC "syslog"
#define SL_READ_CHUNK 65536
#define SL_DGRAM_BATCH 32
#define SL_DGRAM_PER_POLL 256
#define SL_DGRAM_MEM (4u << 20) /* cap on the batch's receive buffers */
#define SL_BACKLOG 511
#define SL_MAX_WRITE_QUEUE (1u << 20)
#define SL_CTL_SPACE CMSG_SPACE(sizeof(uint32_t))

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

typedef struct sl_conn sl_conn_t;

/* What a drain or a TLS step left the connection in. */
enum { SL_GO = 0, SL_PAUSED = 1, SL_CLOSED = 2 };

struct sl_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_timer_t idle;
    agent_sl_t *l;
    sl_conn_t *prev, *next;
    agent_syslog_framer_t fr;
    agent_sl_peer_t peer;
    char addr[INET6_ADDRSTRLEN];
    SSL *ssl;
    BIO *rbio;  /* ciphertext from the socket, read by OpenSSL */
    BIO *wbio;  /* ciphertext from OpenSSL, to write to the socket */
    char *kept; /* a message the callback refused, delivered first on resume */
    size_t kept_len, kept_cap;
    bool kept_trunc, has_kept;
    int nopen; /* this connection's handles not yet closed */
    bool fr_init, has_timer, listed;
    bool reading, closing, busy;
    bool sock_eof;  /* the socket reached its end */
    bool eof;       /* no more bytes will reach the framer */
    bool finished;  /* the framer's final message was taken out */
    bool handshake; /* TLS handshake done */
    bool got_bytes; /* anything arrived */
};

/* A write of TLS output; the bytes follow the struct. */
typedef struct sl_write {
    uv_write_t req;
    char data[];
} sl_write_t;

struct agent_sl {
    uv_loop_t *loop;
    agent_sl_conf_t conf; /* address points to `address`; TLS paths unset */
    char *address;
    char name[96];           /* "tcp 127.0.0.1:5514", for log lines */
    trib_log_ratelimit_t rl; /* for lines a client can cause */
    agent_sl_msg_fn cb;
    void *ud;
    agent_sl_stats_t st;
    uint16_t port;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_poll_t poll;
    } h;
    bool h_open;
    int fd; /* datagram socket (closed after its poll handle), or -1 */
    bool unlink_path;
    dev_t path_dev;
    ino_t path_ino;
    SSL_CTX *ctx;
    sl_conn_t *conns;
    size_t nhandles;
    bool stopping, all_paused;
    agent_sl_peer_t unix_peer;
    /* datagram batches */
    unsigned dg_batch;
    size_t dg_bufsz;
    char *dg_buf;
    struct mmsghdr *dg_mm;
    struct iovec *dg_iov;
    struct sockaddr_storage *dg_names;
    char *dg_ctl;
    char dg_addr[INET6_ADDRSTRLEN];
    /* Scratch: a socket read is taken whole by its read callback. */
    char rbuf[SL_READ_CHUNK];
    char dbuf[SL_READ_CHUNK]; /* decrypted TLS bytes */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *mode_name(int mode)
{
    switch (mode) {
    case AGENT_SL_UDP:
        return "udp";
    case AGENT_SL_TCP:
        return "tcp";
    case AGENT_SL_TLS:
        return "tls";
    case AGENT_SL_UNIX:
        return "unix";
    case AGENT_SL_UNIX_DGRAM:
        return "unix-dgram";
    }
    return "?";
}

static bool is_unix(int mode)
{
    return mode == AGENT_SL_UNIX || mode == AGENT_SL_UNIX_DGRAM;
}

static bool is_dgram(int mode)
{
    return mode == AGENT_SL_UDP || mode == AGENT_SL_UNIX_DGRAM;
}

/* The text of an address and its port; IPv4-mapped IPv6 shown as IPv4. */
static uint16_t sa_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)cap);
        return ntohs(s4->sin_port);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, (socklen_t)cap);
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)cap);
        }
        return ntohs(s6->sin6_port);
    }
    snprintf(buf, cap, "?");
    return 0;
}

/*
 * "host:port", "[v6]:port", ":port" or "host" (default port) to a socket
 * address. An empty host is every address: "::" accepting IPv4 too when the
 * host has IPv6, else "0.0.0.0".
 */
static int resolve(const char *address, int mode, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen)
{
    char host[256];
    const char *port = NULL;
    const char *a = address;
    size_t hl;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            set_err(err, errlen, "%s address '%s': missing ']' after an IPv6 address",
                    mode_name(mode), address);
            return -EINVAL;
        }
        hl = (size_t)(close - a - 1);
        if (hl >= sizeof(host)) {
            goto bad;
        }
        memcpy(host, a + 1, hl);
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strrchr(a, ':');
        if (colon != NULL && strchr(a, ':') != colon) {
            set_err(err, errlen, "%s address '%s': write an IPv6 address in brackets ([::1]:514)",
                    mode_name(mode), address);
            return -EINVAL;
        }
        hl = colon ? (size_t)(colon - a) : strlen(a);
        if (hl >= sizeof(host)) {
            goto bad;
        }
        memcpy(host, a, hl);
        port = colon ? colon + 1 : NULL;
    }
    host[hl] = '\0';

    long pn = mode == AGENT_SL_TLS ? 6514 : 514;
    if (port != NULL) {
        char *end;
        errno = 0;
        pn = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || errno != 0 || pn < 0 || pn > 65535) {
            goto bad;
        }
    }

    memset(ss, 0, sizeof(*ss));
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        int probe = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
            close(probe);
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_addr = in6addr_any;
            s6->sin6_port = htons((uint16_t)pn);
            *sslen = sizeof(*s6);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
            s4->sin_family = AF_INET;
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
            s4->sin_port = htons((uint16_t)pn);
            *sslen = sizeof(*s4);
        }
        return 0;
    }

    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = mode == AGENT_SL_UDP ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof(ps), "%ld", pn);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0 || res == NULL) {
        set_err(err, errlen, "%s address '%s': %s", mode_name(mode), address,
                rc != 0 ? gai_strerror(rc) : "no address");
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;

bad:
    set_err(err, errlen, "%s address '%s': expected host:port, [ipv6]:port or :port",
            mode_name(mode), address);
    return -EINVAL;
}

/* SO_RCVBUF from the configuration; the kernel doubles it and caps it at
   net.core.rmem_max, so the value it took is logged. */
static void set_rcvbuf(agent_sl_t *l, int fd)
{
    int have = 0;
    socklen_t sl = sizeof(have);
    if (l->conf.rcvbuf > 0) {
        int want = l->conf.rcvbuf > (uint64_t)(INT32_MAX / 2) ? INT32_MAX / 2 : (int)l->conf.rcvbuf;
        /* SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; else the cap applies. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) != 0) {
            TRIB_LOG(TRIB_LOG_WARN, SL_FAC, "%s: SO_RCVBUF %d: %s", l->name, want, strerror(errno));
        }
        if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &have, &sl) == 0) {
            TRIB_LOG((uint64_t)have < l->conf.rcvbuf ? TRIB_LOG_WARN : TRIB_LOG_INFO, SL_FAC,
                     "%s: receive buffer %d bytes (asked %llu%s)", l->name, have,
                     (unsigned long long)l->conf.rcvbuf,
                     (uint64_t)have < l->conf.rcvbuf ? "; raise net.core.rmem_max" : "");
        }
    } else if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &have, &sl) == 0) {
        TRIB_LOG(TRIB_LOG_INFO, SL_FAC, "%s: receive buffer %d bytes (the kernel's default)",
                 l->name, have);
    }
}

/* ---------------------------------------------------------------------- */
/* Lifetime                                                               */

static void sl_free(agent_sl_t *l)
{
    if (l->ctx != NULL) {
        SSL_CTX_free(l->ctx);
    }
    free(l->dg_buf);
    free(l->dg_mm);
    free(l->dg_iov);
    free(l->dg_names);
    free(l->dg_ctl);
    free(l->address);
    free(l);
}

static void sl_handle_closed(agent_sl_t *l)
{
    if (--l->nhandles == 0 && l->stopping) {
        sl_free(l);
    }
}

static void listener_on_close(uv_handle_t *h)
{
    agent_sl_t *l = h->data;
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    sl_handle_closed(l);
}

static void conn_on_close(uv_handle_t *h)
{
    sl_conn_t *c = h->data;
    if (--c->nopen > 0) {
        return;
    }
    agent_sl_t *l = c->l;
    if (c->fr_init) {
        agent_syslog_framer_fini(&c->fr);
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl); /* frees both BIOs */
    }
    free(c->kept);
    free(c);
    sl_handle_closed(l);
}

static void conn_close(sl_conn_t *c)
{
    if (c->closing) {
        return;
    }
    agent_sl_t *l = c->l;
    c->closing = true;
    c->reading = false;
    if (c->listed) {
        if (c->prev != NULL) {
            c->prev->next = c->next;
        } else {
            l->conns = c->next;
        }
        if (c->next != NULL) {
            c->next->prev = c->prev;
        }
        c->listed = false;
        l->st.connections_open--;
    }
    uv_close(&c->h.handle, conn_on_close);
    if (c->has_timer) {
        uv_close((uv_handle_t *)&c->idle, conn_on_close);
    }
}

/* ---------------------------------------------------------------------- */
/* Delivery                                                               */

/* 0 when the message is taken (accepted or counted as dropped), -EAGAIN. */
static int deliver(agent_sl_t *l, const char *m, size_t n, bool trunc, const agent_sl_peer_t *p)
{
    int rc = l->cb(l->ud, m, n, trunc, p);
    if (rc == -EAGAIN) {
        return -EAGAIN;
    }
    if (trunc) {
        l->st.truncated++;
    }
    if (rc != 0) {
        l->st.drops_error++;
        return 0;
    }
    l->st.messages++;
    l->st.bytes += n;
    return 0;
}

static int conn_keep(sl_conn_t *c, const char *m, size_t n, bool trunc)
{
    if (n > c->kept_cap) {
        size_t cap = n < 256 ? 256 : n;
        char *p = realloc(c->kept, cap);
        if (p == NULL) {
            return -ENOMEM;
        }
        c->kept = p;
        c->kept_cap = cap;
    }
    if (n > 0) {
        memcpy(c->kept, m, n);
    }
    c->kept_len = n;
    c->kept_trunc = trunc;
    c->has_kept = true;
    return 0;
}

/* Delivers the kept message, then what the framer holds. */
static int conn_drain(sl_conn_t *c)
{
    agent_sl_t *l = c->l;
    if (c->has_kept) {
        if (l->all_paused) {
            return SL_PAUSED;
        }
        int rc = deliver(l, c->kept, c->kept_len, c->kept_trunc, &c->peer);
        if (c->closing) {
            return SL_CLOSED;
        }
        if (rc == -EAGAIN) {
            return SL_PAUSED;
        }
        c->has_kept = false;
    }
    for (;;) {
        if (c->finished) {
            conn_close(c);
            return SL_CLOSED;
        }
        if (l->all_paused) {
            return SL_PAUSED;
        }
        const char *m = NULL;
        size_t n = 0;
        bool trunc = false;
        int r = agent_syslog_framer_next(&c->fr, &m, &n, &trunc);
        if (r == 0 && c->eof) {
            c->finished = true;
            r = agent_syslog_framer_finish(&c->fr, &m, &n, &trunc);
        }
        if (r < 0) {
            l->st.framing_errors++;
            TRIB_LOG_RL(&l->rl, TRIB_LOG_WARN, SL_FAC, "%s: %s:%u: framing error (%s): closed",
                        l->name, c->peer.addr, c->peer.port,
                        r == -EPROTO ? "bad octet count" : strerror(-r));
            conn_close(c);
            return SL_CLOSED;
        }
        if (r == 0) {
            if (c->finished) {
                conn_close(c);
                return SL_CLOSED;
            }
            return SL_GO;
        }
        int rc = deliver(l, m, n, trunc, &c->peer);
        if (c->closing) {
            return SL_CLOSED;
        }
        if (rc == -EAGAIN) {
            if (conn_keep(c, m, n, trunc) != 0) {
                l->st.drops_error++;
                TRIB_LOG_RL(&l->rl, TRIB_LOG_ERROR, SL_FAC,
                            "%s: %s:%u: out of memory keeping a message: closed", l->name,
                            c->peer.addr, c->peer.port);
                conn_close(c);
                return SL_CLOSED;
            }
            return SL_PAUSED;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* TLS                                                                    */

static void write_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows on the read side too */
    free(req);
}

/* Sends what OpenSSL wrote into wbio. */
static int tls_flush(sl_conn_t *c)
{
    size_t pending;
    /* Only handshakes, tickets and alerts go out: a peer that makes us
       write (key updates) but never reads is cut off. */
    if (uv_stream_get_write_queue_size(&c->h.stream) > SL_MAX_WRITE_QUEUE) {
        return -ENOBUFS;
    }
    while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
        sl_write_t *w = malloc(sizeof(*w) + pending);
        if (w == NULL) {
            return -ENOMEM;
        }
        int n = BIO_read(c->wbio, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            return -EIO;
        }
        uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
        int rc = uv_write(&w->req, &c->h.stream, &b, 1, write_cb);
        if (rc != 0) {
            free(w);
            return rc;
        }
    }
    return 0;
}

static void tls_fail(sl_conn_t *c, const char *what)
{
    agent_sl_t *l = c->l;
    char reason[160];
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
    } else {
        snprintf(reason, sizeof(reason), "%s", c->sock_eof ? "connection closed" : "error");
    }
    long vr = SSL_get_verify_result(c->ssl);
    l->st.tls_errors++;
    TRIB_LOG_RL(&l->rl, TRIB_LOG_WARN, SL_FAC, "%s: %s:%u: TLS %s failed: %s%s%s", l->name,
                c->peer.addr, c->peer.port, what, reason, vr != X509_V_OK ? "; certificate: " : "",
                vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
    ERR_clear_error();
    (void)tls_flush(c); /* the alert, if the socket takes it now */
    conn_close(c);
}

/*
 * One TLS step: handshake, then decrypt at most the framer's room into it.
 * 1 when bytes reached the framer (or the end of the stream was found), 0
 * when OpenSSL needs more ciphertext, SL_CLOSED as -1.
 */
static int tls_step(sl_conn_t *c)
{
    agent_sl_t *l = c->l;
    if (!c->handshake) {
        ERR_clear_error();
        int r = SSL_do_handshake(c->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
        if (tls_flush(c) != 0) {
            conn_close(c);
            return -1;
        }
        if (r != 1) {
            if (e == SSL_ERROR_WANT_READ && !c->sock_eof) {
                return 0;
            }
            if (e == SSL_ERROR_WANT_READ && !c->got_bytes) {
                conn_close(c); /* connected and left without a word: a probe */
                return -1;
            }
            tls_fail(c, "handshake");
            return -1;
        }
        c->handshake = true;
        TRIB_LOG(TRIB_LOG_DEBUG, SL_FAC, "%s: %s:%u: %s %s", l->name, c->peer.addr, c->peer.port,
                 SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
    }
    size_t room = agent_syslog_framer_room(&c->fr);
    if (room == 0) {
        return 0; /* cannot happen after a drain; the caller treats it as stalled */
    }
    if (room > sizeof(l->dbuf)) {
        room = sizeof(l->dbuf);
    }
    ERR_clear_error();
    int n = SSL_read(c->ssl, l->dbuf, (int)room);
    int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, n);
    if (tls_flush(c) != 0) {
        conn_close(c);
        return -1;
    }
    if (n > 0) {
        size_t took = agent_syslog_framer_push(&c->fr, l->dbuf, (size_t)n);
        if (TRIB_NEVER(took != (size_t)n)) {
            /* We asked for no more than the room. */
            l->st.framing_errors++;
            conn_close(c);
            return -1;
        }
        return 1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_WANT_READ && c->sock_eof)) {
        if (e == SSL_ERROR_ZERO_RETURN) {
            /* Our close_notify in answer; the peer may have gone already. */
            (void)SSL_shutdown(c->ssl);
            ERR_clear_error();
            (void)tls_flush(c);
        }
        c->eof = true;
        return 1;
    }
    if (e == SSL_ERROR_WANT_READ) {
        return 0;
    }
    tls_fail(c, "read");
    return -1;
}

/* Drains the framer and, for TLS, decrypts until input runs out. */
static int conn_process(sl_conn_t *c)
{
    c->busy = true;
    int r;
    for (;;) {
        r = conn_drain(c);
        if (r != SL_GO || c->ssl == NULL) {
            break;
        }
        int t = tls_step(c);
        if (t < 0) {
            r = SL_CLOSED;
            break;
        }
        if (t == 0) {
            r = SL_GO;
            break;
        }
    }
    c->busy = false;
    return r;
}

/* ---------------------------------------------------------------------- */
/* Stream connections                                                     */

static void idle_cb(uv_timer_t *t)
{
    sl_conn_t *c = t->data;
    TRIB_LOG(TRIB_LOG_DEBUG, SL_FAC, "%s: %s:%u: idle for %lld ms: closed", c->l->name,
             c->peer.addr, c->peer.port, (long long)c->l->conf.idle_timeout_ms);
    conn_close(c);
}

static void conn_touch(sl_conn_t *c)
{
    if (c->has_timer) {
        uv_timer_start(&c->idle, idle_cb, (uint64_t)c->l->conf.idle_timeout_ms, 0);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sl_conn_t *c = h->data;
    agent_sl_t *l = c->l;
    size_t n = sizeof(l->rbuf);
    if (c->ssl == NULL) {
        size_t room = agent_syslog_framer_room(&c->fr);
        if (room < n) {
            n = room;
        }
    }
    *buf = uv_buf_init(l->rbuf, (unsigned)n);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_stop_reading(sl_conn_t *c)
{
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
    if (c->has_timer) {
        uv_timer_stop(&c->idle);
    }
}

static void conn_start_reading(sl_conn_t *c)
{
    if (c->reading || c->closing || c->sock_eof || c->l->all_paused) {
        return;
    }
    if (uv_read_start(&c->h.stream, alloc_cb, read_cb) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    conn_touch(c);
}

/* After conn_process(): go on, or stop reading while the callback pushes back. */
static void conn_after(sl_conn_t *c, int r)
{
    if (r == SL_PAUSED) {
        if (c->reading && !c->l->all_paused) {
            c->l->st.paused++;
        }
        conn_stop_reading(c);
    } else if (r == SL_GO && !c->reading) {
        conn_start_reading(c);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_conn_t *c = s->data;
    agent_sl_t *l = c->l;
    if (c->closing || nread == 0) {
        return;
    }
    if (nread < 0) {
        if (nread == UV_ENOBUFS) {
            /* NEVER: a drained framer has room. Drain again rather than spin. */
            conn_after(c, conn_process(c));
            if (!c->closing && c->reading && agent_syslog_framer_room(&c->fr) == 0) {
                l->st.framing_errors++;
                conn_close(c);
            }
            return;
        }
        if (nread != UV_EOF) {
            /* A reset: what arrived before it is delivered as at an end. */
            TRIB_LOG(TRIB_LOG_DEBUG, SL_FAC, "%s: %s:%u: %s", l->name, c->peer.addr, c->peer.port,
                     uv_strerror((int)nread));
        }
        c->sock_eof = true;
        conn_stop_reading(c);
        if (c->ssl == NULL) {
            c->eof = true;
        }
        conn_after(c, conn_process(c));
        return;
    }
    conn_touch(c);
    c->got_bytes = true;
    if (c->ssl != NULL) {
        if (BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
            conn_close(c);
            return;
        }
    } else {
        size_t took = agent_syslog_framer_push(&c->fr, buf->base, (size_t)nread);
        if (TRIB_NEVER(took != (size_t)nread)) {
            /* The read asked for no more than the room. */
            l->st.framing_errors++;
            conn_close(c);
            return;
        }
    }
    conn_after(c, conn_process(c));
}

static size_t peer_count(agent_sl_t *l, const char *addr)
{
    size_t n = 0;
    for (sl_conn_t *c = l->conns; c != NULL; c = c->next) {
        if (strcmp(c->addr, addr) == 0) {
            n++;
        }
    }
    return n;
}

static void on_connection(uv_stream_t *server, int status)
{
    agent_sl_t *l = server->data;
    if (status < 0) {
        TRIB_LOG_RL(&l->rl, TRIB_LOG_WARN, SL_FAC, "%s: accept: %s", l->name, uv_strerror(status));
        return;
    }
    if (l->stopping || l->all_paused) {
        return; /* libuv stops watching the listener until uv_accept() */
    }
    sl_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        TRIB_LOG_RL(&l->rl, TRIB_LOG_ERROR, SL_FAC, "%s: out of memory for a connection", l->name);
        return;
    }
    c->l = l;
    int rc = l->conf.mode == AGENT_SL_UNIX ? uv_pipe_init(l->loop, &c->h.pipe, 0)
                                           : uv_tcp_init(l->loop, &c->h.tcp);
    if (rc != 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    c->nopen = 1;
    l->nhandles++;
    if (uv_accept(server, &c->h.stream) != 0) {
        conn_close(c);
        return;
    }

    if (l->conf.mode == AGENT_SL_UNIX) {
        c->peer = l->unix_peer;
        c->addr[0] = '\0';
    } else {
        struct sockaddr_storage ss;
        int sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &sl) == 0) {
            c->peer.port = sa_text((struct sockaddr *)&ss, c->addr, sizeof(c->addr));
        } else {
            snprintf(c->addr, sizeof(c->addr), "?");
        }
        c->peer.addr = c->addr;
        uv_tcp_keepalive(&c->h.tcp, 1, 60);
    }

    const char *why = NULL;
    if (l->conf.max_connections > 0 && l->st.connections_open >= l->conf.max_connections) {
        why = "max_connections";
    } else if (l->conf.max_connections_per_peer > 0 && l->conf.mode != AGENT_SL_UNIX &&
               peer_count(l, c->addr) >= l->conf.max_connections_per_peer) {
        why = "max_connections_per_peer";
    }
    if (why != NULL) {
        l->st.connections_refused++;
        TRIB_LOG_RL(&l->rl, TRIB_LOG_WARN, SL_FAC, "%s: %s:%u: refused (%s reached)", l->name,
                    c->peer.addr, c->peer.port, why);
        conn_close(c);
        return;
    }

    if (agent_syslog_framer_init(&c->fr, l->conf.framing, l->conf.max_message_bytes) != 0) {
        goto oom;
    }
    c->fr_init = true;
    if (l->ctx != NULL) {
        c->ssl = SSL_new(l->ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
            BIO_free(c->rbio);
            BIO_free(c->wbio);
            if (c->ssl != NULL) {
                SSL_free(c->ssl);
                c->ssl = NULL;
            }
            goto oom;
        }
        /* An empty rbio means "wait for more", not end of file. */
        BIO_set_mem_eof_return(c->rbio, -1);
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    if (l->conf.idle_timeout_ms > 0) {
        uv_timer_init(l->loop, &c->idle);
        c->idle.data = c;
        c->has_timer = true;
        c->nopen++;
    }

    c->next = l->conns;
    if (l->conns != NULL) {
        l->conns->prev = c;
    }
    l->conns = c;
    c->listed = true;
    l->st.connections_open++;
    l->st.connections_accepted++;
    TRIB_LOG(TRIB_LOG_DEBUG, SL_FAC, "%s: connection from %s:%u", l->name, c->peer.addr,
             c->peer.port);
    conn_start_reading(c);
    return;

oom:
    TRIB_LOG_RL(&l->rl, TRIB_LOG_ERROR, SL_FAC, "%s: out of memory for a connection", l->name);
    conn_close(c);
}

/* ---------------------------------------------------------------------- */
/* Datagrams                                                              */

static void dgram_one(agent_sl_t *l, unsigned i)
{
    struct mmsghdr *mm = &l->dg_mm[i];
    struct msghdr *h = &mm->msg_hdr;
    if (l->conf.mode == AGENT_SL_UDP) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL &&
                cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
                uint32_t v;
                memcpy(&v, CMSG_DATA(cm), sizeof(v));
                l->st.drops_kernel = v;
            }
        }
    }
    const char *m = l->dg_buf + (size_t)i * l->dg_bufsz;
    size_t n = mm->msg_len;
    bool trunc = (h->msg_flags & MSG_TRUNC) != 0;
    if (!trunc && n > 0 && m[n - 1] == '\n') {
        n--;
    }
    if (n > l->conf.max_message_bytes) {
        n = l->conf.max_message_bytes;
        trunc = true;
    }
    if (n == 0 && !trunc) {
        return;
    }
    agent_sl_peer_t peer;
    if (l->conf.mode == AGENT_SL_UDP) {
        peer.port = sa_text((struct sockaddr *)&l->dg_names[i], l->dg_addr, sizeof(l->dg_addr));
        peer.addr = l->dg_addr;
    } else {
        peer = l->unix_peer;
    }
    if (deliver(l, m, n, trunc, &peer) == -EAGAIN) {
        l->st.drops_full++;
        if (trunc) {
            l->st.truncated++;
        }
    }
}

static void dgram_poll_cb(uv_poll_t *p, int status, int events)
{
    agent_sl_t *l = p->data;
    (void)events;
    if (status < 0) {
        TRIB_LOG_RL(&l->rl, TRIB_LOG_WARN, SL_FAC, "%s: poll: %s", l->name, uv_strerror(status));
        return;
    }
    unsigned total = 0;
    while (total < SL_DGRAM_PER_POLL && !l->stopping && !l->all_paused) {
        unsigned want = l->dg_batch;
        for (unsigned i = 0; i < want; i++) {
            l->dg_iov[i].iov_base = l->dg_buf + (size_t)i * l->dg_bufsz;
            l->dg_iov[i].iov_len = l->dg_bufsz;
            struct msghdr *h = &l->dg_mm[i].msg_hdr;
            memset(h, 0, sizeof(*h));
            h->msg_iov = &l->dg_iov[i];
            h->msg_iovlen = 1;
            if (l->conf.mode == AGENT_SL_UDP) {
                h->msg_name = &l->dg_names[i];
                h->msg_namelen = sizeof(l->dg_names[i]);
                h->msg_control = l->dg_ctl + (size_t)i * SL_CTL_SPACE;
                h->msg_controllen = SL_CTL_SPACE;
            }
            l->dg_mm[i].msg_len = 0;
        }
        int n = recvmmsg(l->fd, l->dg_mm, want, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                TRIB_LOG_RL(&l->rl, TRIB_LOG_WARN, SL_FAC, "%s: recvmmsg: %s", l->name,
                            strerror(errno));
            }
            break;
        }
        for (int i = 0; i < n; i++) {
            dgram_one(l, (unsigned)i);
            if (l->stopping) {
                return;
            }
        }
        total += (unsigned)n;
        if ((unsigned)n < want) {
            break;
        }
    }
}

static int dgram_alloc(agent_sl_t *l)
{
    l->dg_bufsz = l->conf.max_message_bytes + 1;
    size_t batch = SL_DGRAM_MEM / l->dg_bufsz;
    if (batch > SL_DGRAM_BATCH) {
        batch = SL_DGRAM_BATCH;
    }
    if (batch == 0) {
        batch = 1;
    }
    l->dg_batch = (unsigned)batch;
    l->dg_buf = malloc(batch * l->dg_bufsz);
    l->dg_mm = calloc(batch, sizeof(*l->dg_mm));
    l->dg_iov = calloc(batch, sizeof(*l->dg_iov));
    l->dg_names = calloc(batch, sizeof(*l->dg_names));
    l->dg_ctl = calloc(batch, SL_CTL_SPACE);
    if (l->dg_buf == NULL || l->dg_mm == NULL || l->dg_iov == NULL || l->dg_names == NULL ||
        l->dg_ctl == NULL) {
        return -ENOMEM;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Sockets                                                                */

/* A unix socket path: a stale socket is removed, anything else is left
   alone and reported. */
static int unix_prepare(agent_sl_t *l, struct sockaddr_un *su, char *err, size_t errlen)
{
    const char *path = l->address;
    memset(su, 0, sizeof(*su));
    su->sun_family = AF_UNIX;
    if (path[0] == '\0' || strlen(path) >= sizeof(su->sun_path)) {
        set_err(err, errlen, "%s socket path '%s': empty or longer than %zu bytes",
                mode_name(l->conf.mode), path, sizeof(su->sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(su->sun_path, path, strlen(path));
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            set_err(err, errlen, "%s socket path '%s' exists and is not a socket",
                    mode_name(l->conf.mode), path);
            return -EEXIST;
        }
        /* A socket someone still listens on belongs to another process
           (a second agent with the same configuration): taking its path
           would silently steal its messages. */
        int probe = socket(
            AF_UNIX,
            (is_dgram(l->conf.mode) ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (probe >= 0) {
            int live = connect(probe, (struct sockaddr *)su, sizeof(*su)) == 0 ||
                       errno == EINPROGRESS || errno == EAGAIN;
            close(probe);
            if (live) {
                set_err(err, errlen,
                        "%s socket '%s': address in use: another process listens on it",
                        mode_name(l->conf.mode), path);
                return -EADDRINUSE;
            }
        }
        if (unlink(path) != 0) {
            int e = errno;
            set_err(err, errlen, "%s socket path '%s': cannot remove the old socket: %s",
                    mode_name(l->conf.mode), path, strerror(e));
            return -e;
        }
    }
    return 0;
}

static int unix_bound(agent_sl_t *l, char *err, size_t errlen)
{
    mode_t mode = l->conf.unix_mode ? (mode_t)l->conf.unix_mode : 0666;
    struct stat st;
    l->unlink_path = true;
    /* The path's mode is what connect() and sendto() check (fchmod() on a
       socket would not change it). */
    if (chmod(l->address, mode) != 0) {
        int e = errno;
        set_err(err, errlen, "%s socket '%s': chmod %o: %s", mode_name(l->conf.mode), l->address,
                (unsigned)mode, strerror(e));
        return -e;
    }
    if (lstat(l->address, &st) == 0) {
        l->path_dev = st.st_dev;
        l->path_ino = st.st_ino;
    }
    return 0;
}

/* Makes, configures and binds the listening socket; returns the fd. */
static int open_socket(agent_sl_t *l, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int mode = l->conf.mode;
    int type = is_dgram(mode) ? SOCK_DGRAM : SOCK_STREAM;
    int rc;
    if (is_unix(mode)) {
        struct sockaddr_un *su = (struct sockaddr_un *)&ss;
        rc = unix_prepare(l, su, err, errlen);
        if (rc != 0) {
            return rc;
        }
        sslen = sizeof(*su);
    } else {
        rc = resolve(l->address, mode, &ss, &sslen, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        set_err(err, errlen, "%s '%s': socket: %s", mode_name(mode), l->address, strerror(-rc));
        return rc;
    }
    int one = 1, zero = 0;
    if (!is_unix(mode)) {
        /* Only a stream listener may reuse its address (to rebind past
           connections in TIME_WAIT). On a datagram socket SO_REUSEADDR
           would let a second agent bind the same port beside the first
           and take its datagrams: its bind must fail instead. */
        if (!is_dgram(mode)) {
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        }
        if (ss.ss_family == AF_INET6 &&
            IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&ss)->sin6_addr)) {
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        }
    }
    if (mode == AGENT_SL_UDP && setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, SL_FAC, "%s: SO_RXQ_OVFL: %s (kernel drops are not counted)",
                 l->name, strerror(errno));
    }
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        rc = -errno;
        set_err(err, errlen, "%s '%s': bind: %s%s", mode_name(mode), l->address, strerror(-rc),
                rc == -EADDRINUSE ? " (another agent or program listens there)" : "");
        close(fd);
        return rc;
    }
    if (is_unix(mode)) {
        rc = unix_bound(l, err, errlen);
        if (rc != 0) {
            close(fd);
            return rc;
        }
    } else {
        struct sockaddr_storage b;
        socklen_t bl = sizeof(b);
        if (getsockname(fd, (struct sockaddr *)&b, &bl) == 0) {
            char tmp[INET6_ADDRSTRLEN];
            l->port = sa_text((struct sockaddr *)&b, tmp, sizeof(tmp));
        }
    }
    if (is_dgram(mode) || l->conf.rcvbuf > 0) {
        set_rcvbuf(l, fd);
    }
    /* listen() here, before any handle exists, so that what can fail fails
       while failing is simple; uv_listen() repeats it harmlessly. */
    if (!is_dgram(mode) && listen(fd, SL_BACKLOG) != 0) {
        rc = -errno;
        set_err(err, errlen, "%s '%s': listen: %s", mode_name(mode), l->address, strerror(-rc));
        close(fd);
        return rc;
    }
    return fd;
}

static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return 0;
}

static int tls_load(agent_sl_t *l, const agent_sl_conf_t *conf, char *err, size_t errlen)
{
    char reason[200];
    const char *what = NULL, *file = NULL;
    if (conf->tls_cert == NULL || conf->tls_key == NULL || conf->tls_cert[0] == '\0' ||
        conf->tls_key[0] == '\0') {
        set_err(err, errlen, "tls listener '%s': tls_cert and tls_key are required", conf->address);
        return -EINVAL;
    }
    const char *files[3][2] = {
        {"tls_cert", conf->tls_cert}, {"tls_key", conf->tls_key}, {"tls_ca", conf->tls_ca}};
    for (int i = 0; i < 3; i++) {
        if (files[i][1] != NULL && files[i][1][0] != '\0' && access(files[i][1], R_OK) != 0) {
            int e = errno;
            set_err(err, errlen, "%s '%s': %s", files[i][0], files[i][1], strerror(e));
            return -e;
        }
    }
    ERR_clear_error();
    l->ctx = SSL_CTX_new(TLS_server_method());
    if (l->ctx == NULL) {
        what = "tls";
        file = "context";
        goto fail;
    }
    /* An encrypted key fails to load instead of OpenSSL asking on the tty. */
    SSL_CTX_set_default_passwd_cb(l->ctx, no_passphrase);
    SSL_CTX_set_min_proto_version(l->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(l->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(l->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(l->ctx, conf->tls_cert) != 1) {
        what = "tls_cert";
        file = conf->tls_cert;
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(l->ctx, conf->tls_key, SSL_FILETYPE_PEM) != 1) {
        what = "tls_key";
        file = conf->tls_key;
        goto fail;
    }
    if (SSL_CTX_check_private_key(l->ctx) != 1) {
        set_err(err, errlen, "tls_key '%s' does not match tls_cert '%s'", conf->tls_key,
                conf->tls_cert);
        ERR_clear_error();
        return -EINVAL;
    }
    static const unsigned char sid[] = "tributary-syslog";
    SSL_CTX_set_session_id_context(l->ctx, sid, sizeof(sid) - 1);
    if (conf->tls_ca != NULL && conf->tls_ca[0] != '\0') {
        if (SSL_CTX_load_verify_locations(l->ctx, conf->tls_ca, NULL) != 1) {
            what = "tls_ca";
            file = conf->tls_ca;
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->tls_ca);
        if (names != NULL) {
            SSL_CTX_set_client_CA_list(l->ctx, names);
        }
        SSL_CTX_set_verify(l->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* the chain check also matches the certificate against the names */
        X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(l->ctx);
        for (size_t i = 0; i < conf->tls_npeer_names; i++) {
            if (X509_VERIFY_PARAM_add1_host(vp, conf->tls_peer_names[i], 0) != 1) {
                set_err(err, errlen, "tls peer name '%s' cannot be used", conf->tls_peer_names[i]);
                ERR_clear_error();
                return -EINVAL;
            }
        }
    } else if (conf->tls_npeer_names > 0) {
        set_err(err, errlen, "tls peer names need tls_ca (the CA that signs the clients)");
        return -EINVAL;
    }
    ERR_clear_error();
    return 0;

fail:;
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
    } else {
        snprintf(reason, sizeof(reason), "cannot be loaded");
    }
    ERR_clear_error();
    set_err(err, errlen, "%s '%s': %s", what, file, reason);
    return -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* The API                                                                */

int agent_sl_start(agent_sl_t **out, uv_loop_t *loop, const agent_sl_conf_t *conf,
                   agent_sl_msg_fn cb, void *ud, char *err, size_t errlen)
{
    int rc;
    int fd = -1;
    *out = NULL;
    if (conf->address == NULL || cb == NULL) {
        set_err(err, errlen, "syslog listener: no address");
        return -EINVAL;
    }
    if (conf->mode < AGENT_SL_UDP || conf->mode > AGENT_SL_UNIX_DGRAM) {
        set_err(err, errlen, "syslog listener '%s': unknown mode %d", conf->address, conf->mode);
        return -EINVAL;
    }
    if (conf->max_message_bytes == 0 || conf->max_message_bytes > (256u << 20)) {
        set_err(err, errlen, "syslog listener '%s': max_message_bytes %zu out of range",
                conf->address, conf->max_message_bytes);
        return -EINVAL;
    }
    if (!is_dgram(conf->mode) &&
        (conf->framing < AGENT_SYSLOG_FRAME_AUTO || conf->framing > AGENT_SYSLOG_FRAME_NEWLINE)) {
        set_err(err, errlen, "syslog listener '%s': unknown framing %d", conf->address,
                conf->framing);
        return -EINVAL;
    }
    agent_sl_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    l->loop = loop;
    l->conf = *conf;
    l->cb = cb;
    l->ud = ud;
    l->fd = -1;
    l->rl = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 10);
    l->address = strdup(conf->address);
    if (l->address == NULL) {
        rc = -ENOMEM;
        set_err(err, errlen, "out of memory");
        goto fail;
    }
    l->conf.address = l->address;
    l->conf.tls_cert = l->conf.tls_key = l->conf.tls_ca = NULL;
    l->conf.tls_peer_names = NULL; /* used at start only, by tls_load() */
    l->conf.tls_npeer_names = 0;
    l->unix_peer.addr = l->address;
    l->unix_peer.port = 0;
    snprintf(l->name, sizeof(l->name), "%s %s", mode_name(conf->mode), conf->address);

    if (conf->mode == AGENT_SL_TLS) {
        rc = tls_load(l, conf, err, errlen);
        if (rc != 0) {
            goto fail;
        }
    }
    if (is_dgram(conf->mode)) {
        rc = dgram_alloc(l);
        if (rc != 0) {
            set_err(err, errlen, "out of memory");
            goto fail;
        }
    }
    fd = open_socket(l, err, errlen);
    if (fd < 0) {
        rc = fd;
        fd = -1;
        goto fail;
    }

    if (is_dgram(conf->mode)) {
        rc = uv_poll_init(loop, &l->h.poll, fd);
        if (rc != 0) {
            set_err(err, errlen, "%s: uv_poll_init: %s", l->name, uv_strerror(rc));
            goto fail;
        }
        l->fd = fd;
        fd = -1;
        l->h.handle.data = l;
        l->h_open = true;
        l->nhandles++;
        rc = uv_poll_start(&l->h.poll, UV_READABLE, dgram_poll_cb);
    } else {
        rc = conf->mode == AGENT_SL_UNIX ? uv_pipe_init(loop, &l->h.pipe, 0)
                                         : uv_tcp_init(loop, &l->h.tcp);
        if (rc != 0) {
            set_err(err, errlen, "%s: %s", l->name, uv_strerror(rc));
            goto fail;
        }
        l->h.handle.data = l;
        l->h_open = true;
        l->nhandles++;
        rc =
            conf->mode == AGENT_SL_UNIX ? uv_pipe_open(&l->h.pipe, fd) : uv_tcp_open(&l->h.tcp, fd);
        if (rc == 0) {
            fd = -1; /* the handle owns it now */
            rc = uv_listen(&l->h.stream, SL_BACKLOG, on_connection);
        }
    }
    if (rc != 0) {
        set_err(err, errlen, "%s: listen: %s", l->name, uv_strerror(rc));
        goto fail;
    }
    if (is_unix(conf->mode)) {
        TRIB_LOG(TRIB_LOG_INFO, SL_FAC, "listening on %s", l->name);
    } else {
        TRIB_LOG(TRIB_LOG_INFO, SL_FAC, "listening on %s (port %u)", l->name, l->port);
    }
    *out = l;
    return 0;

fail:
    if (fd >= 0) {
        close(fd);
    }
    if (l->unlink_path) {
        unlink(l->address);
    }
    if (l->h_open) {
        /* Freed in the close callback: the caller runs the loop. */
        l->stopping = true;
        uv_close(&l->h.handle, listener_on_close);
    } else {
        sl_free(l);
    }
    return rc < 0 ? rc : -1;
}

uint16_t agent_sl_port(const agent_sl_t *l)
{
    return l != NULL && !is_unix(l->conf.mode) ? l->port : 0;
}

void agent_sl_resume(agent_sl_t *l)
{
    if (l == NULL || l->stopping) {
        return;
    }
    sl_conn_t *next;
    for (sl_conn_t *c = l->conns; c != NULL; c = next) {
        next = c->next;
        if (c->reading || c->busy || c->closing) {
            continue;
        }
        conn_after(c, conn_process(c));
        if (l->stopping) {
            return;
        }
    }
}

void agent_sl_pause_all(agent_sl_t *l)
{
    if (l == NULL || l->all_paused) {
        return;
    }
    l->all_paused = true;
    if (is_dgram(l->conf.mode)) {
        if (l->h_open && !l->stopping) {
            uv_poll_stop(&l->h.poll);
        }
        return;
    }
    for (sl_conn_t *c = l->conns; c != NULL; c = c->next) {
        conn_stop_reading(c);
    }
}

void agent_sl_stats(const agent_sl_t *l, agent_sl_stats_t *st)
{
    if (l == NULL) {
        memset(st, 0, sizeof(*st));
        return;
    }
    *st = l->st;
}

void agent_sl_stop(agent_sl_t *l)
{
    if (l == NULL || l->stopping) {
        return;
    }
    l->stopping = true;
    l->all_paused = true;
    while (l->conns != NULL) {
        conn_close(l->conns);
    }
    if (l->unlink_path) {
        /* Only our own socket: another process may have bound the path since. */
        struct stat st;
        if (lstat(l->address, &st) == 0 && st.st_dev == l->path_dev && st.st_ino == l->path_ino) {
            unlink(l->address);
        }
        l->unlink_path = false;
    }
    TRIB_LOG(TRIB_LOG_INFO, SL_FAC, "stopped %s", l->name);
    if (l->h_open) {
        uv_close(&l->h.handle, listener_on_close);
    } else if (l->nhandles == 0) {
        sl_free(l);
    }
}
