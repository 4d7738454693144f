/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector's Kafka-protocol server: listeners, connections, request
 * dispatch, the purgatory, partition runtime state and the metrics/health
 * endpoint. main.c opens the storage and the cluster metadata, starts the
 * server on them, and stops it on SIGTERM before closing the storage.
 */
#ifndef COLLECTOR_SERVER_SERVER_H
#define COLLECTOR_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster/cluster.h"
#include "group/group.h"
#include "storage/storage.h"
#include "tributary/error.h"
#include "tributary/http.h"

typedef struct coll_server coll_server_t;

/* A listener's security protocol (Kafka's security.protocol names, lower case). */
typedef enum coll_security {
    COLL_SEC_PLAINTEXT = 0,
    COLL_SEC_SSL = 1,
    COLL_SEC_SASL_PLAINTEXT = 2,
    COLL_SEC_SASL_SSL = 3,
} coll_security_t;

/* TLS client certificates (Kafka's ssl.client.auth). */
typedef enum coll_client_auth {
    COLL_CLIENT_AUTH_NONE = 0,
    COLL_CLIENT_AUTH_REQUESTED = 1,
    COLL_CLIENT_AUTH_REQUIRED = 2,
} coll_client_auth_t;

/* SASL mechanisms a listener accepts (bits). */
#define COLL_SASL_PLAIN 0x1u
#define COLL_SASL_SCRAM_SHA_256 0x2u
#define COLL_SASL_SCRAM_SHA_512 0x4u

/* One Kafka listener (collector.yaml listeners[]). */
typedef struct coll_listener_config {
    const char *name;           /* shown in logs and the ready file */
    const char *host;           /* "" or NULL: any address */
    int port;                   /* 0: ephemeral */
    const char *advertise_host; /* NULL: as for the server's listen address */
    int advertise_port;         /* 0: the bound port */
    coll_security_t security;
    const char *tls_cert, *tls_key, *tls_ca; /* PEM files (ssl, sasl_ssl) */
    coll_client_auth_t client_auth;
    unsigned sasl_mechanisms; /* COLL_SASL_* (sasl_plaintext, sasl_ssl) */
} coll_listener_config_t;

static inline bool coll_security_tls(coll_security_t s)
{
    return s == COLL_SEC_SSL || s == COLL_SEC_SASL_SSL;
}

static inline bool coll_security_sasl(coll_security_t s)
{
    return s == COLL_SEC_SASL_PLAINTEXT || s == COLL_SEC_SASL_SSL;
}

typedef struct coll_server_config {
    /*
     * The listeners. With none, listen_host/listen_port and the advertise
     * fields make one plaintext listener (the --listen flag).
     */
    const coll_listener_config_t *listeners;
    size_t nlisteners;
    const char *data_dir;           /* the SCRAM credential store's directory; NULL: no users */
    int64_t failed_auth_delay_ms;   /* a failed SASL login is answered this late (100 ms) */
    bool authorizer;                /* requests are checked against the ACLs (server/acl.h) */
    const char *const *super_users; /* principals allowed everything */
    size_t nsuper_users;
    const char *listen_host;    /* "" or NULL: any address */
    int listen_port;            /* 0: ephemeral */
    const char *advertise_host; /* NULL: the listen host (or the hostname if any) */
    int advertise_port;         /* 0: the bound port */
    bool metrics_enabled;
    const char *metrics_host;
    int metrics_port;                  /* 0: ephemeral */
    const char *ready_file;            /* NULL: none */
    size_t max_request_bytes;          /* a larger frame closes the connection (100 MiB) */
    uint64_t queued_max_request_bytes; /* request memory of all connections (256 MiB); 0 = any */
    int64_t request_timeout_ms;        /* a request stalled this long closes (30 s); 0 = never */
    int32_t fetch_max_bytes;           /* fetch.max.bytes: Fetch MaxBytes cap (55 MiB) */
    uint32_t max_inflight;             /* requests per connection before reads pause (64) */
    size_t max_connections;            /* further accepts are closed at once (10000) */
    int64_t idle_timeout_ms;           /* connections.max.idle.ms (10 min); 0 = never */
    int64_t producer_expiration_ms;    /* producer.id.expiration.ms (1 day) */
    int64_t producer_snapshot_interval_ms; /* producer state snapshots (60 s) */
    int64_t shutdown_timeout_ms;           /* in-flight requests get this long at SIGTERM (10 s) */
    coll_fsync_policy_t fsync;             /* storage.fsync: acks=all waits for it when "ack" */
    int backlog;                           /* listen(2) backlog (1024) */
    coll_group_config_t groups;            /* the group coordinator (collector.yaml groups:) */
    int64_t replica_lag_time_max_ms; /* a follower not caught up this long leaves the ISR (30 s) */
    int32_t replica_fetch_max_bytes; /* a follower's PartitionMaxBytes (1 MiB) */
    uint64_t reassignment_throttle;  /* bytes/s to replicas a reassignment adds; 0 = off */
} coll_server_config_t;

void coll_server_config_init(coll_server_config_t *c);

/*
 * Binds the listeners (Kafka, and metrics unless disabled), attaches the
 * runtime state of every partition (rebuilding producer state from its
 * snapshot and the log tail), updates the cluster's advertised endpoint
 * and writes the ready file. The config is copied; its strings must
 * outlive the server. On an error after the first handle was opened, *out
 * is still set: stop it (coll_server_stop) and free it as usual.
 */
int coll_server_start(uv_loop_t *loop, const coll_server_config_t *cfg, coll_cluster_t *cluster,
                      coll_storage_t *st, coll_server_t **out, trib_error_t *err);

/*
 * Graceful stop: closes the listeners, stops reading requests, answers the
 * parked fetches, lets in-flight produce requests finish (at most
 * shutdown_timeout_ms), closes every connection and the metrics endpoint,
 * writes the producer state snapshots, then calls cb from the loop. Every
 * handle the server owns is closed by then.
 */
void coll_server_stop(coll_server_t *s, void (*cb)(void *arg), void *arg);

/* Frees a stopped server. NULL is fine. */
void coll_server_free(coll_server_t *s);

/*
 * Adds a component's samples at the end of /metrics (the sink host's).
 * fn NULL removes it; the component removes its hook before it goes away.
 */
typedef void (*coll_server_metrics_fn)(void *arg, struct trib_buf *b);
void coll_server_set_metrics_hook(coll_server_t *s, coll_server_metrics_fn fn, void *arg);

/*
 * Adds a component's state to /health: fn appends a line per degraded
 * part and returns true when there is none (then /health stays "ok");
 * otherwise /health answers 200 "degraded" with the lines. fn NULL removes it.
 */
typedef bool (*coll_server_health_fn)(void *arg, struct trib_buf *b);
void coll_server_set_health_hook(coll_server_t *s, coll_server_health_fn fn, void *arg);

/*
 * Answers HTTP requests on the metrics listener beyond /metrics and
 * /health (tributary/http.h, trib_http_admin_cb; the sink host's POST
 * /sinks/NAME/replay). NULL removes it. Nothing happens with metrics off.
 */
void coll_server_set_http_admin(coll_server_t *s, trib_http_admin_cb fn, void *arg);
/* The sink host whose status the console shows (server/console.h); NULL: none. */
struct coll_sinks;
void coll_server_set_console_sinks(coll_server_t *s, struct coll_sinks *sinks);

/*
 * SIGHUP: every TLS listener loads its certificate, key and CA files
 * again. A listener whose files do not load keeps its running ones (logged).
 * New connections use the new files; open ones keep theirs. Returns the
 * number of listeners that failed.
 */
int coll_server_reload_tls(coll_server_t *s);

/* The cluster metadata the server runs on, and its group coordinator (group/). */
coll_cluster_t *coll_server_cluster(const coll_server_t *s);
coll_groups_t *coll_server_groups(const coll_server_t *s);

/* "HOST:PORT" of the bound listeners ("off" for disabled metrics). */
const char *coll_server_kafka_address(const coll_server_t *s);
const char *coll_server_metrics_address(const coll_server_t *s);
int coll_server_kafka_port(const coll_server_t *s);
int coll_server_metrics_port(const coll_server_t *s);

#endif
