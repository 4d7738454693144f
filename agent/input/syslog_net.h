/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syslog listeners on the agent's libuv loop: UDP, TCP, TLS (RFC 5425,
 * OpenSSL) and unix sockets (stream or datagram). They hand each framed
 * message to a callback; what the callback does with it (parse, buffer)
 * is the agent's business.
 *
 * Backpressure: when the callback returns -EAGAIN, a stream connection
 * keeps that message, stops reading its socket and waits for
 * agent_sl_resume(); a datagram is dropped and counted (drops_full).
 */
#ifndef TRIBUTARY_AGENT_SYSLOG_NET_H
#define TRIBUTARY_AGENT_SYSLOG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum {
    AGENT_SL_UDP = 0,
    AGENT_SL_TCP = 1,
    AGENT_SL_TLS = 2,
    AGENT_SL_UNIX = 3,       /* stream unix socket */
    AGENT_SL_UNIX_DGRAM = 4, /* datagram unix socket, as /dev/log */
};

typedef struct agent_sl_conf {
    int mode;
    const char *address; /* "host:port" ("[::1]:514", ":514" = every address), or a path for unix */
    int framing;         /* AGENT_SYSLOG_FRAME_* (stream modes) */
    size_t max_message_bytes;
    uint64_t max_connections;          /* total open stream connections */
    uint64_t max_connections_per_peer; /* per remote address (0: no cap) */
    uint64_t rcvbuf;                   /* SO_RCVBUF (0: the kernel's default) */
    int64_t idle_timeout_ms;           /* close idle stream connections (0: never) */
    const char *tls_cert, *tls_key;    /* PEM files (TLS) */
    const char *tls_ca; /* PEM: when set, clients must present a certificate signed by it */
    /* with tls_ca: the client certificate must also name one of these
       (a DNS subjectAltName, or the CN when it has none; as X509_check_host) */
    const char *const *tls_peer_names;
    size_t tls_npeer_names;
    uint32_t unix_mode; /* permissions of a unix socket (0: 0666) */
} agent_sl_conf_t;

typedef struct agent_sl_peer {
    const char *addr; /* "10.0.0.5", "::1", or the socket path */
    uint16_t port;
} agent_sl_peer_t;

/* 0: accepted. -EAGAIN: no room now (see above). Any other value: the
   message is counted as dropped (drops_error) and reading goes on. */
typedef int (*agent_sl_msg_fn)(void *ud, const char *msg, size_t len, bool truncated,
                               const agent_sl_peer_t *peer);

typedef struct agent_sl_stats {
    uint64_t messages, bytes;
    uint64_t truncated;
    uint64_t drops_full;   /* datagrams refused by the callback (-EAGAIN) */
    uint64_t drops_kernel; /* UDP: the socket's receive queue overflowed (SO_RXQ_OVFL) */
    uint64_t drops_error;
    uint64_t connections_accepted, connections_refused, connections_open;
    uint64_t framing_errors, tls_errors;
    uint64_t paused; /* times a stream connection stopped reading */
} agent_sl_stats_t;

typedef struct agent_sl agent_sl_t;

/* Binds and starts listening. 0, or -errno / -1 with a message in err
   (address in use, bad certificate, ...). */
int agent_sl_start(agent_sl_t **out, uv_loop_t *loop, const agent_sl_conf_t *conf,
                   agent_sl_msg_fn cb, void *ud, char *err, size_t errlen);
/* The bound port (after an ephemeral ":0"), 0 for unix sockets. */
uint16_t agent_sl_port(const agent_sl_t *l);
/* Paused connections try their kept message again and read on. */
void agent_sl_resume(agent_sl_t *l);
/* Stops accepting and reading (e.g. while draining at shutdown). */
void agent_sl_pause_all(agent_sl_t *l);
void agent_sl_stats(const agent_sl_t *l, agent_sl_stats_t *st);
/* Closes the listener and every connection; frees it once libuv has closed
   every handle (run the loop afterwards). A stream connection's buffered,
   unframed bytes are dropped, as its peer had no acknowledgement. */
void agent_sl_stop(agent_sl_t *l);

#endif
