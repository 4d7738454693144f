/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The syslog input: a listener (input/syslog_net.c) per input, each
 * message parsed as RFC 5424 or RFC 3164 (syslog/syslog.h) into an event
 *
 *   {"@timestamp", "host", "agent", "source": "<peer address>",
 *    "message", "facility", "severity", "pri", "hostname", "app",
 *    "procid", "msgid", "structured_data": {"id": {"param": "value"}}}
 *
 * and appended to the disk buffer. @timestamp is the message's own time
 * when it has one, else the time it was received. A message that is
 * neither format keeps its whole text as the message with
 * "parse_error": true (lenient, the default) or is dropped and counted.
 *
 * When the buffer is full the callback refuses the message: a stream
 * connection stops reading until agent_syslog_resume_all(), a datagram is
 * dropped and counted by the listener.
 *
 * A reload (or a producer rebuild) keeps every listener whose socket
 * options did not change: its connections stay open and nothing queued in
 * its sockets is lost. The listener's callback argument is a source
 * object that outlives the input and is pointed at the new input; the
 * parsing options (timezone, lenient, keep_raw) are read from the input at
 * each message, so they change without a new socket.
 */
#include "input/syslog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "input/syslog_net.h"
#include "syslog/syslog_event.h"
#include "syslog/syslog.h"
#include "tributary/log.h"

static const int sl_modes[] = {
    [AGENT_SYSLOG_MODE_UDP] = AGENT_SL_UDP,
    [AGENT_SYSLOG_MODE_TCP] = AGENT_SL_TCP,
    [AGENT_SYSLOG_MODE_TLS] = AGENT_SL_TLS,
    [AGENT_SYSLOG_MODE_UNIX] = AGENT_SL_UNIX,
    [AGENT_SYSLOG_MODE_UNIX_DGRAM] = AGENT_SL_UNIX_DGRAM,
};

static const int sl_framings[] = {AGENT_SYSLOG_FRAME_AUTO, AGENT_SYSLOG_FRAME_OCTET,
                                  AGENT_SYSLOG_FRAME_NEWLINE};

/* A listener and what it reports to; `in` is NULL while no input owns it. */
typedef struct agent_syslog_src agent_syslog_src_t;
struct agent_syslog_src {
    struct agent_syslog_src *next; /* in the live or the kept list */
    agent_input_t *in;
    agent_sl_t *sl;
    char key[1024]; /* the options its socket was made with */
};

/* What the syslog inputs share. */
struct agent_syslogs {
    agent_syslog_src_t *live; /* listeners of running inputs */
    agent_syslog_src_t *kept; /* listeners kept across a reload, not yet taken */
    agent_sl_stats_t totals;  /* counters of listeners already stopped */
};

int agent_syslogs_new(agent_syslogs_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : -ENOMEM;
}

static void listener_key(const agent_input_conf_t *c, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%d|%s|%d|%llu|%llu|%llu|%llu|%lld|%s|%s|%s|%o", c->mode,
                     c->address, c->framing, (unsigned long long)c->max_message_bytes,
                     (unsigned long long)c->max_connections,
                     (unsigned long long)c->max_connections_per_peer,
                     (unsigned long long)c->receive_buffer, (long long)c->idle_timeout_ms,
                     c->tls.cert ? c->tls.cert : "", c->tls.key ? c->tls.key : "",
                     c->tls.ca ? c->tls.ca : "", (unsigned)c->socket_perm);
    for (size_t k = 0; k < c->tls.peer_names.count && n >= 0 && (size_t)n < outlen; k++) {
        n += snprintf(out + n, outlen - (size_t)n, "|%s", c->tls.peer_names.items[k]);
    }
}

static int on_message(void *ud, const char *msg, size_t len, bool truncated,
                      const agent_sl_peer_t *peer)
{
    agent_syslog_src_t *sx = ud;
    agent_input_t *in = sx->in;
    if (in == NULL) {
        return -EAGAIN; /* between two configurations */
    }
    agent_input_host_t *h = in->host;
    agent_input_conf_t *c = in->conf;
    int64_t now = agent_wall_ms();
    const char *src = peer != NULL && peer->addr != NULL ? peer->addr : "";
    agent_event_t ev;
    /* room for structured data as JSON (6 bytes per byte at most) */
    if (agent_event_begin(&ev, in->pl, c, now, src, strlen(src), false, msg, len, len * 6 + 1024) !=
        0) {
        return -EAGAIN;
    }
    int rc = agent_syslog_to_event(&ev, msg, len);
    if (rc != 0 && !c->lenient) {
        h->st->syslog_received++;
        h->st->syslog_parse_failures++;
        h->st->syslog_dropped_invalid++;
        return 0;
    }
    if (rc != 0) {
        (void)agent_event_set(&ev, "parse_error", 11, "true", 4, true);
        (void)agent_event_set(&ev, "parse_error_by", 14, "syslog", 6, false);
    }
    if (truncated) {
        (void)agent_event_set(&ev, "truncated", 9, "true", 4, true);
    }
    if (c->keep_raw) {
        (void)agent_event_set(&ev, "raw", 3, msg, len, false);
    }
    int erc = h->spool(h->arg, in, &ev, src);
    if (erc == -EAGAIN) {
        return -EAGAIN;
    }
    h->st->syslog_received++;
    in->ist->lines_read++;
    if (rc == 0) {
        h->st->syslog_parsed++;
    } else {
        h->st->syslog_parse_failures++;
    }
    return erc;
}

int agent_syslog_feed(agent_input_t *in, const char *msg, size_t len)
{
    agent_syslog_src_t sx = {.in = in};
    return on_message(&sx, msg, len, false, NULL);
}

static int agent_syslog_input_start(agent_input_t *in)
{
    agent_input_conf_t *c = in->conf;
    agent_syslogs_t *s = in->host->syslogs;
    char key[sizeof(((agent_syslog_src_t *)0)->key)];
    listener_key(c, key, sizeof(key));
    for (agent_syslog_src_t **pp = &s->kept; *pp != NULL; pp = &(*pp)->next) {
        agent_syslog_src_t *sx = *pp;
        if (strcmp(sx->key, key) == 0) {
            *pp = sx->next;
            sx->next = s->live;
            s->live = sx;
            sx->in = in;
            in->impl = sx;
            agent_sl_resume(sx->sl);
            TRIB_LOG(TRIB_LOG_DEBUG, "syslog", "input %s: kept the listener on %s", c->id,
                     c->address);
            return 0;
        }
    }
    agent_syslog_src_t *sx = calloc(1, sizeof(*sx));
    if (sx == NULL) {
        return -ENOMEM;
    }
    memcpy(sx->key, key, sizeof(key));
    sx->in = in;
    agent_sl_conf_t sc = {
        .mode = sl_modes[c->mode],
        .address = c->address,
        .framing = sl_framings[c->framing],
        .max_message_bytes = c->max_message_bytes,
        .max_connections = c->max_connections,
        .max_connections_per_peer = c->max_connections_per_peer,
        .rcvbuf = c->receive_buffer,
        .idle_timeout_ms = c->idle_timeout_ms,
        .tls_cert = c->tls.cert,
        .tls_key = c->tls.key,
        .tls_ca = c->tls.ca,
        .tls_peer_names = c->tls.peer_names.items,
        .tls_npeer_names = c->tls.peer_names.count,
        .unix_mode = c->socket_perm,
    };
    char err[512] = "";
    int rc = agent_sl_start(&sx->sl, in->host->loop, &sc, on_message, sx, err, sizeof(err));
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, "syslog", "input %s: cannot listen on %s: %s", c->id, c->address,
                 err[0] ? err : trib_strerror(rc));
        free(sx);
        return rc < 0 ? rc : -EINVAL;
    }
    in->impl = sx;
    sx->next = s->live;
    s->live = sx;
    TRIB_LOG(TRIB_LOG_INFO, "syslog", "input %s: listening on %s (%s)", c->id, c->address,
             (const char *[]){"udp", "tcp", "tls", "unix", "unix_dgram"}[c->mode]);
    return 0;
}

static void stats_add(agent_sl_stats_t *to, const agent_sl_stats_t *x)
{
    to->messages += x->messages;
    to->bytes += x->bytes;
    to->truncated += x->truncated;
    to->drops_full += x->drops_full;
    to->drops_kernel += x->drops_kernel;
    to->drops_error += x->drops_error;
    to->connections_accepted += x->connections_accepted;
    to->connections_refused += x->connections_refused;
    to->connections_open += x->connections_open;
    to->framing_errors += x->framing_errors;
    to->tls_errors += x->tls_errors;
    to->paused += x->paused;
}

static void stop_listener(agent_syslogs_t *s, agent_syslog_src_t *sx)
{
    /* the listener's counters outlive it in the totals */
    agent_sl_stats_t st;
    agent_sl_stats(sx->sl, &st);
    st.connections_open = 0; /* a gauge: they close with it */
    stats_add(&s->totals, &st);
    agent_sl_stop(sx->sl);
    free(sx);
}

void agent_syslogs_stats(agent_syslogs_t *s, agent_sl_stats_t *out)
{
    *out = s->totals;
    for (agent_syslog_src_t *sx = s->live; sx != NULL; sx = sx->next) {
        agent_sl_stats_t x;
        agent_sl_stats(sx->sl, &x);
        stats_add(out, &x);
    }
}

static void agent_syslog_input_stop(agent_input_t *in, bool keep)
{
    agent_syslog_src_t *sx = in->impl;
    if (sx == NULL) {
        return;
    }
    agent_syslogs_t *s = in->host->syslogs;
    for (agent_syslog_src_t **pp = &s->live; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sx) {
            *pp = sx->next;
            break;
        }
    }
    in->impl = NULL;
    sx->in = NULL;
    if (keep) {
        sx->next = s->kept;
        s->kept = sx;
    } else {
        stop_listener(s, sx);
    }
}

void agent_syslogs_release_kept(agent_syslogs_t *s)
{
    while (s != NULL && s->kept != NULL) {
        agent_syslog_src_t *sx = s->kept;
        s->kept = sx->next;
        stop_listener(s, sx);
    }
}

void agent_syslogs_free(agent_syslogs_t *s)
{
    agent_syslogs_release_kept(s);
    free(s);
}

void agent_syslogs_resume(agent_syslogs_t *s)
{
    for (agent_syslog_src_t *sx = s->live; sx != NULL; sx = sx->next) {
        agent_sl_resume(sx->sl);
    }
}

void agent_syslogs_pause(agent_syslogs_t *s)
{
    for (agent_syslog_src_t *sx = s->live; sx != NULL; sx = sx->next) {
        agent_sl_pause_all(sx->sl);
    }
}

bool agent_syslog_listening(agent_input_t *in)
{
    return in->ops == &agent_syslog_ops && in->impl != NULL;
}

/* The listener is made at start (or taken from those a reload kept): no
   state before. */
static int syslog_init(agent_input_t *in)
{
    in->impl = NULL;
    return 0;
}

static void syslog_fini(agent_input_t *in)
{
    (void)in;
}

const agent_input_ops_t agent_syslog_ops = {
    .name = "syslog",
    .init = syslog_init,
    .start = agent_syslog_input_start,
    .stop = agent_syslog_input_stop,
    .fini = syslog_fini,
};
