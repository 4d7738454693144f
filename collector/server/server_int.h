/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's private structures, shared by server/ and the API
 * handlers in server/api/.
 *
 * Lifetimes:
 *
 *   coll_server_t  1 --- n  coll_conn_t  1 --- n  coll_req_t
 *
 * A request is born when its 4-byte size prefix arrives, owns its frame
 * (the bytes after the prefix), a per-request arena (the decoded request
 * and the response struct) and its encoded response, and is freed when
 * that response has been written (or at once for acks=0 produce). Requests
 * sit in their connection's queue in arrival order; responses leave in that
 * order whatever order they complete in. A connection is freed when its
 * handle is closed and its last request is gone: a produce request waiting
 * for an fsync outlives the socket it came from.
 *
 * Handlers run on the loop thread. Each one ends in exactly one of:
 *   coll_req_respond()  the response struct is encoded and queued;
 *   coll_req_no_response()  acks=0;
 *   coll_req_reject()   the request is hostile or undecodable: the
 *                       connection closes (Kafka does the same);
 *   parking             a fetch in the purgatory or a produce waiting on
 *                       durability, which later does one of the above.
 */
#ifndef COLLECTOR_SERVER_SERVER_INT_H
#define COLLECTOR_SERVER_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "replica/replica.h"
#include "server/acl.h"
#include "server/metrics.h"
#include "server/credentials.h"
#include "server/producer_state.h"
#include "server/server.h"
#include "storage/storage.h"
#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/kafka.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"
#include "tributary/scram.h"

#define COLL_SERVER_FACILITY "server"

typedef struct coll_conn coll_conn_t;
typedef struct coll_req coll_req_t;
typedef struct coll_api coll_api_t;
typedef struct coll_prt coll_prt_t;
typedef struct coll_parked coll_parked_t;
typedef struct coll_watch coll_watch_t;
typedef struct coll_zresp coll_zresp_t;
typedef struct coll_listener coll_listener_t;

/* ---- the API table (dispatch.c) ------------------------------------------------- */

typedef void (*coll_api_handler)(coll_req_t *r);

struct coll_api {
    int16_t key;
    int16_t min_version, max_version; /* advertised in ApiVersions, all implemented */
    coll_api_handler handle;
};

/* The APIs this build implements, by key; NULL if not implemented. */
const coll_api_t *coll_api_find(int16_t key);
/* All of them, in key order (ApiVersions lists these). */
extern const coll_api_t coll_apis[];
extern const size_t coll_api_count;

/* Handlers, one file each in server/api/. */
void coll_api_produce(coll_req_t *r);
void coll_api_fetch(coll_req_t *r);
/* Fetch response header and top fields (api/fetch.c), for tests of the encoding. */
void coll_fetch_encode_header(coll_zresp_t *z, int16_t v, int32_t correlation_id,
                              int16_t top_error);
void coll_api_list_offsets(coll_req_t *r);
void coll_api_metadata(coll_req_t *r);
void coll_api_api_versions(coll_req_t *r);
void coll_api_create_topics(coll_req_t *r);
void coll_api_delete_topics(coll_req_t *r);
void coll_api_init_producer_id(coll_req_t *r);
void coll_api_offset_for_leader_epoch(coll_req_t *r);
void coll_api_describe_configs(coll_req_t *r);
void coll_api_alter_configs(coll_req_t *r);
void coll_api_delete_records(coll_req_t *r);
void coll_api_create_partitions(coll_req_t *r);
void coll_api_elect_leaders(coll_req_t *r);
void coll_api_alter_partition_reassignments(coll_req_t *r);
void coll_api_list_partition_reassignments(coll_req_t *r);
void coll_api_incremental_alter_configs(coll_req_t *r);
void coll_api_describe_cluster(coll_req_t *r);
/* The group coordinator's APIs (group/coordinator.c holds the state machine). */
void coll_api_find_coordinator(coll_req_t *r);
void coll_api_join_group(coll_req_t *r);
void coll_api_sync_group(coll_req_t *r);
void coll_api_heartbeat(coll_req_t *r);
void coll_api_leave_group(coll_req_t *r);
void coll_api_offset_commit(coll_req_t *r);
void coll_api_offset_fetch(coll_req_t *r);
void coll_api_list_groups(coll_req_t *r);
void coll_api_describe_groups(coll_req_t *r);
void coll_api_delete_groups(coll_req_t *r);
void coll_api_offset_delete(coll_req_t *r);
/* SASL (api/sasl_*.c, server/sasl.c) and the SCRAM credential APIs. */
void coll_api_sasl_handshake(coll_req_t *r);
void coll_api_sasl_authenticate(coll_req_t *r);
void coll_api_describe_user_scram_credentials(coll_req_t *r);
void coll_api_alter_user_scram_credentials(coll_req_t *r);
/* ACLs (api/acls.c). */
void coll_api_describe_acls(coll_req_t *r);
void coll_api_create_acls(coll_req_t *r);
void coll_api_delete_acls(coll_req_t *r);

/* ApiVersions for a version we cannot decode: error 35 with a v0 body. */
void coll_api_versions_unsupported(coll_req_t *r);

/*
 * A complete frame: parses the header, decodes the body in the request's
 * arena and calls the handler; rejects what cannot be parsed.
 */
void coll_dispatch(coll_req_t *r);

/* ---- requests --------------------------------------------------------------------- */

typedef enum coll_req_state {
    COLL_REQ_READING, /* frame incomplete */
    COLL_REQ_ACTIVE,  /* being handled, or parked */
    COLL_REQ_DONE,    /* response ready, waiting for its turn */
    COLL_REQ_WRITING, /* uv_write in flight */
} coll_req_state_t;

struct coll_req {
    coll_req_t *next; /* the connection's queue */
    coll_conn_t *conn;
    coll_server_t *srv;
    coll_req_state_t state;

    uint8_t *frame; /* after the size prefix: header | body */
    size_t frame_len, frame_have, frame_cap;
    size_t mem; /* reserved from the server's request memory (frame_len) */

    trib_arena_t arena;
    trib_kafka_request_header_t hdr;
    int16_t api_key, api_version;
    int32_t correlation_id;
    const coll_api_t *api;
    const trib_kafka_api_t *kapi;
    void *body;        /* the decoded request */
    trib_slice_t rest; /* body bytes (before decoding) */

    bool no_response;                /* acks=0 */
    bool close_after;                /* close the connection instead of answering */
    bool close_after_write;          /* answer, then close (a failed SASL login) */
    int pending;                     /* outstanding asynchronous steps (durability waits) */
    coll_parked_t *parked;           /* in the fetch purgatory */
    bool deferred;                   /* decoded, handled when its turn comes (conn.c) */
    void *ctx;                       /* the handler's state across parking */
    void (*ctx_free)(coll_req_t *r); /* releases what ctx holds outside the arena */

    trib_buf_t out;   /* the encoded response, size prefix included */
    coll_zresp_t *zr; /* or a response sent from files (coll_req_zresp), NULL */
    struct iovec *iov;
    int iovcnt;
    uv_write_t wreq;
    uint64_t start_ns;
    int16_t first_error; /* for the request log line */
    /* TLS: progress through iov (index, offset) while the response is encrypted and sent */
    size_t tls_idx, tls_off;
    /* a failed SASL login waits here for failed_auth_delay_ms (server.c) */
    coll_req_t *delay_next;
    uint64_t delay_due_ms;
    void (*delay_fire)(coll_req_t *r);
};

/*
 * A response written around file ranges (Fetch): framing bytes in `hdr`,
 * and parts, each sending hdr[previous part's hdr_end .. hdr_end) and then
 * its file range (rd.len may be 0). The whole of it is reused by the next
 * response on the connection, so a steady consumer allocates nothing per
 * response. See conn.c for how it is written.
 */
typedef struct coll_zpart {
    size_t hdr_end;
    coll_read_t rd; /* holds a reference on the segment until the part is sent */
} coll_zpart_t;

struct coll_zresp {
    coll_zresp_t *next; /* the connection's spares */
    uint8_t *hdr;
    size_t hdr_len, hdr_cap;
    coll_zpart_t *parts;
    size_t nparts, parts_cap;
    size_t total; /* bytes on the wire, size prefix included */
    int err;      /* sticky: -ENOMEM */
    /* progress of the send */
    size_t part, hpos, fpos;
};

/* A response of r built around file ranges: empty, the 4-byte size reserved. NULL: no memory. */
coll_zresp_t *coll_req_zresp(coll_req_t *r);
/* Appends framing bytes. */
void coll_zresp_put(coll_zresp_t *z, const void *p, size_t n);
void coll_zresp_put_i16(coll_zresp_t *z, int16_t v);
void coll_zresp_put_i32(coll_zresp_t *z, int32_t v);
void coll_zresp_put_i64(coll_zresp_t *z, int64_t v);
void coll_zresp_put_uvarint(coll_zresp_t *z, uint64_t v);
/* Appends a file range, taking over the read's segment reference (rd is emptied). */
void coll_zresp_file(coll_zresp_t *z, coll_read_t *rd);
/* Queues r's zresp (the size prefix is filled in here), as coll_req_respond(). */
void coll_req_respond_zresp(coll_req_t *r);
/* Queues a frame of raw bytes (size prefix + bytes): SASL tokens after SaslHandshake v0. */
void coll_req_respond_raw(coll_req_t *r, const void *p, size_t n);

/* Zeroed memory from the request's arena; NULL when out of memory. */
void *coll_req_alloc(coll_req_t *r, size_t n);
/* A NUL-terminated copy of a Kafka string (NULL for null) in the arena. */
char *coll_req_strdup(coll_req_t *r, trib_kstr_t s);
/* Counts a Kafka error code in the metrics (per API). NONE is not counted. */
void coll_req_note_error(coll_req_t *r, int16_t code);

/* Encodes resp with codec at the request's version and queues it. */
void coll_req_respond(coll_req_t *r, const trib_kafka_codec_t *codec, const void *resp);
/* Completes without a response (acks=0). */
void coll_req_no_response(coll_req_t *r);
/* Gives up on the request and closes its connection, with a (rate-limited) log line. */
void coll_req_reject(coll_req_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when the request's connection is gone (parked work should just finish). */
bool coll_req_orphaned(const coll_req_t *r);
/* A parked request's async step finished; frees the request if its connection is gone. */
void coll_req_step_done(coll_req_t *r);
/*
 * True when a request before r on its connection is still being handled
 * (parked, or waiting for the ISR or an fsync); r is then marked deferred
 * and coll_conn_pump() calls its handler once every request before it has
 * its answer. For requests whose answer is a snapshot of the cluster's
 * state (Metadata): computed when it is about to be sent, not when it
 * arrived (see conn.c).
 */
bool coll_req_defer_until_turn(coll_req_t *r);

/* ---- connections (conn.c) ------------------------------------------------------------- */

/* SASL state of a connection (server/sasl.c). */
typedef enum coll_sasl_state {
    COLL_SASL_NONE = 0,  /* no SaslHandshake yet */
    COLL_SASL_AUTH = 1,  /* SaslHandshake v1 done: SaslAuthenticate requests carry the tokens */
    COLL_SASL_RAW = 2,   /* SaslHandshake v0 done: the next frames are bare tokens */
    COLL_SASL_DONE = 3,  /* authenticated */
    COLL_SASL_FAILED = 4 /* a login failed: the connection closes */
} coll_sasl_state_t;

struct coll_conn {
    uv_tcp_t tcp;
    coll_server_t *srv;
    coll_listener_t *lst; /* the listener it came from */
    coll_conn_t *prev, *next;
    uint64_t id;
    char peer[64];

    uint8_t *rbuf; /* small reads land here, then are copied into frames */
    size_t rlen;
    coll_req_t *reading; /* the frame being filled */

    coll_req_t *head, *tail; /* requests not yet written, in order */
    unsigned nactive;        /* requests in the queue */
    unsigned nalive;         /* requests not yet freed (queue + writing + orphaned) */
    size_t queued_out;       /* response bytes queued or being written */

    size_t mem_wait;       /* size of the frame waiting for request memory; 0: none */
    coll_conn_t *mem_next; /* the server's list of connections waiting for memory */
    bool paused;           /* reading stopped for backpressure or memory */
    bool await_metadata;   /* accepted before the cluster metadata was read: not reading yet */
    bool rejected;         /* a request was refused: read nothing more, close at its turn */
    bool closing;          /* uv_close called */
    bool closed;           /* close callback ran */
    bool running_deferred; /* coll_conn_pump is handling a deferred request */
    uint64_t last_active_ms;

    /* Responses sent from files (conn.c): */
    unsigned uv_writes;   /* uv_write requests in flight */
    coll_req_t *zsend;    /* the response being sent with send/sendfile */
    coll_zresp_t *zspare; /* built responses kept for reuse */
    unsigned nzspare;
    uv_poll_t wpoll; /* writability of a dup of the socket, while zsend waits */
    int wfd;         /* the dup; -1 until the first wait */
    int wpoll_state; /* 0 none, 1 open, 2 closing */

    /* TLS (conn.c): ciphertext in through a memory BIO, out through a socket BIO. */
    SSL *ssl;                  /* NULL: plaintext */
    BIO *rbio;                 /* ciphertext read from the socket, for SSL_read */
    bool tls_established;      /* the handshake is done */
    bool tls_read_wants_write; /* SSL_read must be called again once the socket is writable */
    bool tls_draining, tls_drain_again;
    uint8_t *tls_chunk; /* pooled buffer the current fetch response's file bytes are read into */

    /*
     * Idempotent batches this connection's Produce refused before appending
     * with a retriable error (api/produce.c): a batch of the same producer
     * pipelined behind one of them gets the same error, not
     * OUT_OF_ORDER_SEQUENCE_NUMBER. A ring; `p` is compared, never followed.
     */
    struct coll_produce_gap {
        const void *p;
        int64_t pid;
        int16_t epoch;
        int16_t err;
        int32_t first_seq;
    } produce_gaps[8];
    unsigned produce_gap_next;

    /* Who the peer is: User:ANONYMOUS, the certificate's subject, or the SASL user. */
    char principal[300];
    bool needs_sasl; /* a SASL listener: only ApiVersions and SASL until authenticated */
    coll_sasl_state_t sasl_state;
    unsigned sasl_mech; /* COLL_SASL_* chosen by SaslHandshake */
    trib_scram_server_t *scram;
};

void coll_conn_accept(coll_server_t *s, coll_listener_t *l);
/* The cluster metadata is read: connections accepted before it start reading. */
void coll_conn_metadata_ready(coll_server_t *s);
/* Closes the connection (idempotent); reason is logged at `level`. */
void coll_conn_close(coll_conn_t *c, trib_log_level_t level, const char *reason);
/* Writes every completed response at the head of the queue. */
void coll_conn_pump(coll_conn_t *c);
/* Stops reading new requests (shutdown). */
void coll_conn_stop_reading(coll_conn_t *c);

/* ---- partition runtime (partition.c) -------------------------------------------------- */

/* One parked fetch's interest in one partition. */
struct coll_watch {
    coll_watch_t *prev, *next;
    coll_parked_t *parked;
    coll_prt_t *prt;
};

typedef struct coll_leader coll_leader_t;
typedef struct coll_hwait coll_hwait_t;

struct coll_prt {
    coll_partition_t *p;
    coll_server_t *srv;
    coll_watch_t *watchers;
    coll_leader_t *leader;  /* replica.c: set while this node leads a replicated partition */
    coll_hwait_t *hwaiters; /* acks=all appends waiting for the high watermark */
    coll_pstate_t producers;
    int64_t max_timestamp;      /* largest batch maxTimestamp, -1 when empty */
    int64_t max_timestamp_base; /* base offset of the batch that holds it */
    bool snapshot_dirty;
    uint64_t watch_mark; /* dedupes one fetch's watches */
    /* partition.c: a single node's wait for its log end to be durable (storage.fsync ack) */
    struct coll_hdurable *hdurable;
    /* counters for the metrics */
    uint64_t bytes_in, records_in, batches_in;
    uint64_t bytes_out, records_out;
};

/* The runtime of a partition (never NULL for a partition the cluster knows). */
static inline coll_prt_t *coll_prt(const coll_partition_t *p)
{
    return (coll_prt_t *)p->rt;
}

void coll_prt_attach(coll_server_t *s, coll_partition_t *p);
/* Drops the runtime; `deleted` also removes the snapshot file (the topic is gone). */
void coll_prt_detach(coll_server_t *s, coll_partition_t *p, bool deleted);
/*
 * The log's durable offset moved (an acks=-1 produce's wait ended): on a
 * single node with storage.fsync ack the high watermark follows before
 * the producer is answered, so it can read what it was told is written.
 */
void coll_prt_durable(coll_prt_t *prt);
/*
 * Batches just appended, data[0..len) as stored (offsets assigned), into
 * the partition's producer state, largest timestamp and counters (with
 * `produce`, the server's Produce totals too). coll_prt_append() does it
 * for a leader's append; the replica fetcher for what it copied.
 */
void coll_prt_account(coll_prt_t *prt, const void *data, size_t len, bool produce);
/* After the log was truncated (a follower): producer state rebuilt, parked fetches woken. */
void coll_prt_truncated(coll_prt_t *prt);
/* Creates s->fetchers (replica/replica.h), with the server as their coll_fetch_host_t. */
int coll_server_start_fetchers(coll_server_t *s);
/* Writes the producer state snapshot if it changed (or always with force). */
int coll_prt_snapshot(coll_prt_t *prt, bool force);
/*
 * ListOffsets MAX_TIMESTAMP: the offset of the first record holding the
 * partition's largest timestamp, and that timestamp; -1/-1 when empty.
 */
int coll_prt_max_timestamp(coll_prt_t *prt, int64_t *offset, int64_t *timestamp);

/* ---- the leader side of replication (replica.c) ------------------------------------------ */

/*
 * One partition of an acks=all produce waiting for the high watermark to
 * pass `required` (its last offset + 1), Kafka's DelayedProduce. Linked in
 * prt->hwaiters until done() runs, exactly once, with NONE,
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER or
 * REQUEST_TIMED_OUT (coll_replica_hwait_cancel).
 */
struct coll_hwait {
    coll_hwait_t *prev, *next;
    coll_prt_t *prt; /* NULL once done */
    int64_t required;
    int32_t min_isr;
    void (*done)(coll_hwait_t *w, int16_t error);
    void *data;
};

/* True when prt's high watermark moves with the ISR (this node leads a replicated partition). */
static inline bool coll_prt_replicated_leader(const coll_prt_t *prt)
{
    return prt->leader != NULL;
}
/* The ISR the high watermark and acks=all count now: committed plus a pending change (KIP-497). */
int32_t coll_replica_maximal_isr_size(const coll_prt_t *prt);
/* Parks w on prt (w->required, min_isr, done set); done may run at once. */
void coll_replica_hwait(coll_prt_t *prt, coll_hwait_t *w);
/* Milliseconds since this node took the partition's current leader epoch (UINT64_MAX: not leading).
 */
uint64_t coll_replica_leading_ms(const coll_prt_t *prt);
/* Answers w with error now, if it is still waiting. */
void coll_replica_hwait_cancel(coll_hwait_t *w, int16_t error);
/*
 * A fetch from follower `replica` at fetch_offset (its log end): records
 * it, may add it to the ISR and move the high watermark. Returns NONE,
 * NOT_LEADER_OR_FOLLOWER (not a replica, or not leading) or
 * OFFSET_OUT_OF_RANGE; *hw_moved tells whether the high watermark moved.
 */
int16_t coll_replica_follower_fetch(coll_prt_t *prt, int32_t replica, int64_t fetch_offset,
                                    bool *hw_moved);
/* A leader's append: moves the high watermark if the ISR allows and wakes what waits. */
void coll_replica_leader_appended(coll_prt_t *prt, size_t bytes);
/* The partition goes away: answers its waiters, drops the leader state. */
void coll_replica_detach(coll_prt_t *prt);
/* Housekeeping (the server's tick): ISR shrinks, retries of failed ISR changes. */
void coll_replica_tick(coll_server_t *s, coll_partition_t *p, uint64_t now_ms);
/* Prometheus samples of the partitions this node leads. */
void coll_replica_metrics(coll_server_t *s, trib_buf_t *b);

/* ---- the fetch purgatory (purgatory.c) ------------------------------------------------- */

typedef void (*coll_parked_cb)(coll_parked_t *pk);

struct coll_parked {
    coll_req_t *req;
    uint64_t deadline_ms; /* uv_now() based */
    size_t heap_index;
    int64_t bytes;     /* available so far, grown by appends */
    int64_t min_bytes; /* complete when bytes >= this */
    coll_watch_t *watches;
    size_t nwatches;
    coll_parked_cb complete; /* answers the request (removed from the purgatory first) */
    /*
     * A follower's fetch (ReplicaId >= 0): woken by appends to the log
     * end and by high watermark moves. A consumer's is woken by high
     * watermark moves only, through recheck (bytes available now, or -1
     * to complete at once; NULL: complete at once).
     */
    bool replica;
    int64_t (*recheck)(coll_parked_t *pk);
    uint64_t hw_mark;
};

typedef struct coll_purgatory {
    uv_timer_t timer;
    coll_parked_t **heap;
    size_t n, cap;
    bool closing;
    uint64_t hw_serial;
} coll_purgatory_t;

int coll_purgatory_init(uv_loop_t *loop, coll_purgatory_t *pg);
/* Closes the timer (the purgatory must be empty). */
void coll_purgatory_close(coll_purgatory_t *pg, uv_close_cb cb);
/*
 * Parks pk until its deadline or until appends bring bytes to min_bytes;
 * pk->watches[0..nwatches) must be filled (prt set, one per partition).
 */
int coll_purgatory_park(coll_purgatory_t *pg, coll_parked_t *pk, uint64_t now_ms);
/* Removes pk (its watches and its timer entry); no callback. */
void coll_purgatory_remove(coll_purgatory_t *pg, coll_parked_t *pk);
/* New bytes on a partition: grows its watchers' counts and completes the satisfied. */
void coll_purgatory_notify(coll_purgatory_t *pg, coll_prt_t *prt, size_t bytes);
/* New bytes at the log end of a leader: only followers' fetches count them. */
void coll_purgatory_notify_replicas(coll_purgatory_t *pg, coll_prt_t *prt, size_t bytes);
/*
 * The partition's high watermark moved: followers' fetches complete (so
 * they learn it), consumers' complete when their recheck finds MinBytes.
 */
void coll_purgatory_hw_moved(coll_purgatory_t *pg, coll_prt_t *prt);
/* Completes every fetch watching the partition (deleted, truncated). */
void coll_purgatory_wake(coll_purgatory_t *pg, coll_prt_t *prt);
/* Completes everything (shutdown). */
void coll_purgatory_wake_all(coll_purgatory_t *pg);
size_t coll_purgatory_size(const coll_purgatory_t *pg);

/* ---- the server ----------------------------------------------------------------------- */

/* Frame buffers kept for reuse: how many, and the largest one kept. */
#define COLL_FRAME_POOL 16
#define COLL_FRAME_POOL_MIN (64u * 1024)
#define COLL_FRAME_POOL_MAX (4u << 20)

/* Frees the frame buffers the server keeps for reuse. */
void coll_frame_pool_drain(coll_server_t *s);
/* Frees the TLS chunk buffers the server keeps for reuse. */
void coll_tls_chunks_drain(coll_server_t *s);

/* A bound Kafka listener (server.c). */
struct coll_listener {
    uv_tcp_t tcp;
    coll_server_t *srv;
    coll_listener_config_t cfg;
    SSL_CTX *ctx; /* TLS listeners; replaced on SIGHUP */
    bool open;
    int port;
    char addr[300];     /* HOST:PORT bound */
    char adv_host[256]; /* what Metadata and FindCoordinator give its clients */
    int adv_port;
};

/* The TLS chunk pool (conn.c): file bytes of fetch responses over TLS are read into these. */
#define COLL_TLS_CHUNK (64u * 1024)
#define COLL_TLS_CHUNK_POOL 16

/*
 * SASL (server/sasl.c): runs the mechanism on a token. Returns 1 when the
 * client is authenticated (with *out the final server token, maybe empty),
 * 0 when another round follows (*out the challenge), or a negative error
 * with *why (logged and counted by the caller). *out lives in the
 * request's arena.
 */
int coll_sasl_step(coll_req_t *r, const uint8_t *in, size_t n, trib_kbytes_t *out,
                   const char **why);
/* "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512" for a COLL_SASL_* bit. */
const char *coll_sasl_mech_name(unsigned bit);
/* A frame after SaslHandshake v0: a bare SASL token, answered by a bare token. */
void coll_sasl_raw_token(coll_req_t *r);
/* SaslHandshake's choice: the COLL_SASL_* bit of a mechanism name the listener enables, or 0. */
unsigned coll_sasl_mech_of(const coll_conn_t *c, const char *name);
/*
 * Parks r for failed_auth_delay_ms (a failed login is answered late, as
 * Kafka's connection.failed.authentication.delay.ms), then calls fire(r),
 * which answers it. At shutdown fire runs at once.
 */
void coll_req_delay(coll_req_t *r, void (*fire)(coll_req_t *r));

/* The leader's budget for replicas being added by a reassignment (a token bucket). */
typedef struct coll_throttle {
    double tokens;    /* bytes that may be sent now; below 0 after an oversized batch */
    uint64_t last_ms; /* when tokens were last topped up */
    uint64_t throttled_bytes, throttled_fetches;
} coll_throttle_t;

struct coll_server {
    uv_loop_t *loop;
    coll_server_config_t cfg;
    coll_throttle_t throttle;
    coll_cluster_t *cluster;
    coll_storage_t *st;
    coll_metrics_t metrics;
    trib_http_t http;
    coll_purgatory_t purgatory;
    coll_groups_t *groups;     /* the group coordinator (group/) */
    coll_fetchers_t *fetchers; /* replica fetchers (replica/); NULL on the local backend */
    uv_timer_t tick;
    bool tick_open;

    coll_listener_t **listeners;
    size_t nlisteners;
    coll_creds_t *creds; /* SCRAM credentials (data_dir/scram-credentials) */
    coll_acls_t *acls;   /* ACLs (data_dir/acls; in memory without a data dir) */
    uint8_t *tls_cbuf;   /* ciphertext lands here before it goes into a memory BIO */
    uint8_t *tls_chunks[COLL_TLS_CHUNK_POOL];
    int ntls_chunks;
    uv_timer_t auth_timer; /* answers failed SASL logins after the delay */
    bool auth_timer_open;
    coll_req_t *auth_delayed, *auth_delayed_tail;

    coll_conn_t *conns;
    size_t nconns;
    uint64_t next_conn_id;
    size_t produce_waiting; /* produce requests waiting for durability */

    char kafka_addr[300];
    char metrics_addr[300];
    char advertised_host[256];
    int kafka_port, metrics_port;
    uint64_t last_snapshot_ms;

    bool stopping;
    int stop_phase;   /* 1 draining connections, 2 closing handles, 3 stopped */
    int stop_handles; /* handles whose close callbacks are outstanding */
    uint64_t stop_deadline_ms;
    void (*stop_cb)(void *arg);
    void *stop_arg;

    trib_log_ratelimit_t rl_reject;
    trib_log_ratelimit_t rl_conn;

    /*
     * Large frame buffers kept for reuse (conn.c): a fresh allocation per
     * produce request costs page faults on every request, which showed as
     * a fifth of the collector's CPU at 1 KiB records.
     */
    coll_server_metrics_fn metrics_hook; /* extra /metrics samples (the sinks') */
    void *metrics_hook_arg;
    coll_server_health_fn health_hook; /* degraded parts for /health (the sinks') */
    void *health_hook_arg;
    struct coll_console *console;     /* the web console on the HTTP port (console.c) */
    struct coll_sinks *console_sinks; /* what it shows of the sinks */

    uint8_t *frame_pool[COLL_FRAME_POOL];
    size_t frame_pool_cap[COLL_FRAME_POOL];
    int frame_pool_n;

    /* Request memory shared by all connections (queued_max_request_bytes, conn.c). */
    uint64_t mem_used, mem_large_used;
    coll_conn_t *mem_wait_head; /* connections waiting for it, oldest first */
    size_t mem_waiting;
    bool mem_waking, mem_wake_again;
};

/* Milliseconds of the wall clock (record timestamps, producer expiry). */
int64_t coll_server_wall_ms(void);
/* A connection or request finished: let a stopping server make progress. */
void coll_server_check_stop(coll_server_t *s);

/* ---- helpers shared by the handlers (api/common.c) ---------------------------------------- */

/*
 * Authorization (server/acl.h): whether r's principal, from its address,
 * may do op (COLL_OP_*) on the resource type (COLL_RES_*) named
 * name[0..len). True when the authorizer is off or the principal is a
 * super user. A refusal is counted and logged at debug.
 */
bool coll_authorized(coll_req_t *r, int op, int type, const char *name, size_t len);
/* The same check, neither counted nor logged (probes: Metadata's authorized operations). */
bool coll_authorized_quiet(coll_req_t *r, int op, int type, const char *name, size_t len);
/* The operations of the bit set ops (1 << COLL_OP_*) allowed on the resource. */
int32_t coll_authorized_ops(coll_req_t *r, int type, const char *name, size_t len, int32_t ops);
static inline bool coll_authorized_k(coll_req_t *r, int op, int type, trib_kstr_t name)
{
    return coll_authorized(r, op, type, name.len > 0 ? name.ptr : "",
                           name.len > 0 ? (size_t)name.len : 0);
}
static inline bool coll_authorized_cluster(coll_req_t *r, int op)
{
    return coll_authorized(r, op, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME,
                           sizeof(COLL_ACL_CLUSTER_NAME) - 1);
}
/* Whether op is allowed on some resource of type (InitProducerId's WRITE on any topic). */
bool coll_authorized_any(coll_req_t *r, int op, int type);

/*
 * The address a broker is given to r's client: for this node, the
 * advertised address of the listener the request came in on (Kafka gives
 * each listener's clients that listener's endpoint); others unchanged.
 */
void coll_req_endpoint(coll_req_t *r, int32_t node, trib_kstr_t *host, int32_t *port);

/*
 * r as a call to the group coordinator (group/group.h), in r's arena: the
 * coordinator answers through it, now or later, and forgets it if r's
 * connection goes first. NULL when out of memory.
 */
coll_gcall_t *coll_req_gcall(coll_req_t *r);

/*
 * The partition a request names, or NULL with *error set
 * (UNKNOWN_TOPIC_OR_PARTITION). Topic auto-creation applies when `create`.
 */
coll_topic_t *coll_find_topic(coll_req_t *r, trib_kstr_t name, bool create, int16_t *error);

/* ConfigSource of a topic config: TOPIC_CONFIG, STATIC_BROKER_CONFIG or DEFAULT_CONFIG. */
int8_t coll_topic_config_source(const coll_cluster_t *cl, uint32_t override_mask, int key);
/* A config value as Kafka prints it, in the request's arena. */
char *coll_config_value(coll_req_t *r, const coll_tcfg_t *c, int key);

/*
 * AlterConfigs / IncrementalAlterConfigs for one resource (alter_configs.c):
 * ops NULL means the legacy replace-all form. Fills the result's code and
 * message (arena), and counts the error.
 */
/*
 * An admin request whose cluster changes complete later (the zookeeper
 * backend, coll_cluster_admin_async): it parks until every change it
 * started has answered, then `resp` is encoded with `codec`. _new counts
 * one step for the handler itself, ended by its _done after the loop.
 */
typedef struct coll_admin_wait {
    coll_req_t *r;
    const trib_kafka_codec_t *codec;
    void *resp;
    int left;
} coll_admin_wait_t;
/* NULL (nothing to wait for) on the local backend, or when out of memory. */
coll_admin_wait_t *coll_admin_wait_new(coll_req_t *r, const trib_kafka_codec_t *codec, void *resp);
void coll_admin_wait_done(coll_admin_wait_t *w);
/* One change's result slot: cb fills *code and *msg (arena) and ends the step. */
typedef struct coll_admin_slot {
    coll_admin_wait_t *w;
    int16_t *code;
    trib_kstr_t *msg;
} coll_admin_slot_t;
/* A slot for one more step of w; NULL when out of memory. */
coll_admin_slot_t *coll_admin_slot_new(coll_admin_wait_t *w, int16_t *code, trib_kstr_t *msg);
void coll_admin_slot_cb(void *arg, const coll_admin_result_t *res);

/* With w set (the zookeeper backend), the change answers through a slot of w. */
void coll_alter_topic_configs(coll_req_t *r, int8_t type, trib_kstr_t name,
                              const coll_config_kv_t *kv, const int8_t *ops, size_t n,
                              bool validate_only, bool duplicate, int16_t *code, trib_kstr_t *msg,
                              coll_admin_wait_t *w);

/* Checks a request's CurrentLeaderEpoch against the partition's (-1 = not checked). */
int16_t coll_check_leader_epoch(const coll_partition_t *p, int32_t current_leader_epoch);
/*
 * What every data request checks of a partition it names, in Kafka's
 * order: hosted here (else NOT_LEADER_OR_FOLLOWER on a cluster,
 * KAFKA_STORAGE_ERROR on a single node), CurrentLeaderEpoch (KIP-320:
 * FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH; -1 = not checked), then led
 * here (NOT_LEADER_OR_FOLLOWER). NONE when the request may use it.
 */
int16_t coll_check_partition(const coll_req_t *r, const coll_partition_t *p,
                             int32_t current_leader_epoch);

#endif
