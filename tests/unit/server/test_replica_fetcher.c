/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The replica fetcher (replica/fetcher.c) against a real leader: two
 * collectors (storage, cluster, server) on one loop, each with its own
 * data directory. The leader is a single-node collector (node 2) that
 * leads the topic; the follower (node 1) is told that node 2 leads it
 * (the fields the zookeeper backend would set) and finds node 2 through a
 * cluster view. A client thread produces idempotent batches to the leader;
 * the follower must end with the same bytes, the leader's high watermark
 * and the producers' state (a new leader keeps deduplicating). Then
 * DeleteRecords on the leader moves the follower's log start as well.
 *
 * Between the follower and the leader runs a TCP relay on the same loop
 * that reads every Fetch the follower sends: with storage.fsync "ack" no
 * Fetch may ask from an offset the follower has not made durable (the
 * leader would count it as replicated).
 */
#include "broker_test.h"

#include <inttypes.h>

#include "replica/replica.h"
#include "server/server_int.h"

#define TOPIC "rep"
#define BATCHES 60
#define PID 4242

typedef struct node {
    char dir[256];
    coll_storage_config_t scfg;
    coll_cluster_config_t ccfg;
    coll_server_config_t svcfg;
    coll_storage_t *st;
    coll_cluster_t *cl;
    coll_server_t *srv;
    int stopped, closed;
} node_t;

/* A relay connection: follower side (in) and leader side (out). */
typedef struct relay_conn {
    uv_tcp_t in, out;
    uv_connect_t creq;
    int closed;
    uint8_t *fbuf; /* follower -> leader bytes not yet parsed into frames */
    size_t flen, fcap;
    uint8_t *obuf; /* leader -> follower bytes not yet forwarded (whole frames only) */
    size_t olen, ocap;
    struct relay_conn *next;
} relay_conn_t;

typedef struct fx {
    uv_loop_t loop;
    node_t leader, follower;
    uv_tcp_t relay;
    int relay_port;
    relay_conn_t *conns;
    uv_async_t produced;
    uv_timer_t poll;
    uint64_t deadline;
    pthread_t thread;
    int client_failures;
    char client_failure[256];
    /* what the relay saw */
    int fetches, fetch_offsets_ahead;
    int64_t worst_ahead;
    int converged;
    int64_t deleted_to;
    int start_followed;
    bool check_durable;
    bool corrupt; /* flip a byte in the first Fetch response that carries records */
    int corrupted;
    int32_t fetch_corr[64]; /* correlation ids of the follower's recent Fetch requests */
    unsigned nfetch_corr;
} fx_t;

static fx_t *g_fx;

/* ---- nodes ---------------------------------------------------------------------------------- */

static void node_init(node_t *n, int32_t id)
{
    memset(n, 0, sizeof(*n));
    const char *tmp = getenv("TMPDIR");
    snprintf(n->dir, sizeof(n->dir), "%s/trib-replica-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(n->dir));
    coll_storage_config_init(&n->scfg);
    n->scfg.data_dir = n->dir;
    n->scfg.log_defaults.segment_index_bytes = 64 * 1024;
    n->scfg.log_defaults.segment_bytes = 16 * 1024; /* several segments */
    coll_cluster_config_init(&n->ccfg);
    n->ccfg.data_dir = n->dir;
    n->ccfg.node_id = id;
    n->ccfg.defaults.v[COLL_TCFG_SEGMENT_INDEX_BYTES].i = 64 * 1024;
    n->ccfg.defaults.v[COLL_TCFG_SEGMENT_BYTES].i = 16 * 1024;
    coll_server_config_init(&n->svcfg);
    n->svcfg.listen_port = 0;
    n->svcfg.metrics_enabled = false;
}

static void node_start(uv_loop_t *loop, node_t *n)
{
    trib_error_t err;
    trib_error_clear(&err);
    int rc = coll_storage_open(loop, &n->scfg, &n->st, &err);
    assert_int_equal(rc, 0);
    rc = coll_cluster_open(n->st, &n->ccfg, &n->cl, &err);
    if (rc) {
        fprintf(stderr, "cluster: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    rc = coll_server_start(loop, &n->svcfg, n->cl, n->st, &n->srv, &err);
    if (rc) {
        fprintf(stderr, "server: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    coll_topic_t *t = NULL;
    coll_admin_result_t res;
    coll_cluster_create_topic(n->cl, TOPIC, strlen(TOPIC), 1, 1, NULL, 0, false, &t, &res);
    assert_int_equal(res.code, 0);
}

static coll_partition_t *node_partition(node_t *n)
{
    coll_topic_t *t = coll_cluster_topic(n->cl, TOPIC, strlen(TOPIC));
    assert_non_null(t);
    return coll_cluster_partition(t, 0);
}

static void node_storage_closed(void *arg, int status)
{
    node_t *n = arg;
    assert_int_equal(status, 0);
    n->closed = 1;
}

static void node_stopped(void *arg)
{
    node_t *n = arg;
    n->stopped = 1;
    assert_int_equal(coll_storage_close(n->st, node_storage_closed, n), 0);
}

static void node_free(node_t *n)
{
    coll_server_free(n->srv);
    coll_cluster_free(n->cl);
    bt_rm_rf(n->dir);
}

/* ---- the follower's view of the cluster: node 2 is the relay ----------------------------------
 */

static int32_t view_controller(void *arg)
{
    (void)arg;
    return 2;
}

static size_t view_brokers(void *arg, coll_broker_info_t *out, size_t max)
{
    fx_t *fx = arg;
    if (out && max >= 2) {
        out[0] = (coll_broker_info_t){1, "127.0.0.1", 1, NULL};
        out[1] = (coll_broker_info_t){2, "127.0.0.1", fx->relay_port, NULL};
    }
    return 2;
}

/* ---- the relay
 * ------------------------------------------------------------------------------------ */

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

typedef struct relay_write {
    uv_write_t w;
    char *data;
} relay_write_t;

static void relay_written(uv_write_t *w, int status)
{
    (void)status;
    relay_write_t *rw = (relay_write_t *)w;
    free(rw->data);
    free(rw);
}

static void relay_forward(uv_tcp_t *to, char *data, size_t n)
{
    relay_write_t *rw = malloc(sizeof(*rw));
    assert_non_null(rw);
    rw->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)n);
    if (uv_write(&rw->w, (uv_stream_t *)to, &b, 1, relay_written) != 0) {
        free(data);
        free(rw);
    }
}

static void relay_conn_closed(uv_handle_t *h)
{
    relay_conn_t *c = h->data;
    if (++c->closed == 2) {
        free(c->fbuf);
        free(c->obuf);
        free(c);
    }
}

static void relay_close(relay_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->in)) {
        uv_close((uv_handle_t *)&c->in, relay_conn_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&c->out)) {
        uv_close((uv_handle_t *)&c->out, relay_conn_closed);
    }
    for (relay_conn_t **pp = &g_fx->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
}

/* Every complete frame from the follower: a Fetch's offsets against the follower's durability. */
static void relay_inspect(fx_t *fx, relay_conn_t *c)
{
    size_t at = 0;
    while (c->flen - at >= 4) {
        const uint8_t *p = c->fbuf + at;
        uint32_t size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (c->flen - at - 4 < size) {
            break;
        }
        trib_slice_t s = trib_slice_make(p + 4, size);
        trib_arena_t a;
        trib_arena_init(&a);
        trib_kafka_request_header_t h;
        trib_kafka_request_header_init(&h);
        int16_t key = (int16_t)(p[4] << 8 | p[5]), ver = (int16_t)(p[6] << 8 | p[7]);
        if (key == 1 && trib_kafka_request_header_decode(
                            &h, &s, trib_kafka_request_header_version(key, ver), &a) == 0) {
            FetchRequest req;
            if (FetchRequest_decode(&req, &s, ver, &a) == 0) {
                fx->fetches++;
                fx->fetch_corr[fx->nfetch_corr++ % 64] = h.correlation_id;
                assert_int_equal(req.ReplicaId, 1);
                coll_log_t *log = node_partition(&fx->follower)->log;
                for (int32_t i = 0; i < req.Topics.count; i++) {
                    for (int32_t k = 0; k < req.Topics.items[i].Partitions.count; k++) {
                        int64_t off = req.Topics.items[i].Partitions.items[k].FetchOffset;
                        int64_t durable = coll_log_durable_offset(log);
                        if (off > durable) {
                            fx->fetch_offsets_ahead++;
                            if (off - durable > fx->worst_ahead) {
                                fx->worst_ahead = off - durable;
                            }
                        }
                    }
                }
            }
        }
        trib_arena_fini(&a);
        at += 4 + size;
    }
    memmove(c->fbuf, c->fbuf + at, c->flen - at);
    c->flen -= at;
}

static void relay_read_in(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    relay_conn_t *c = st->data;
    if (n < 0) {
        free(buf->base);
        relay_close(c);
        return;
    }
    if (n == 0) {
        free(buf->base);
        return;
    }
    if (c->flen + (size_t)n > c->fcap) {
        c->fcap = (c->flen + (size_t)n) * 2;
        c->fbuf = realloc(c->fbuf, c->fcap);
        assert_non_null(c->fbuf);
    }
    memcpy(c->fbuf + c->flen, buf->base, (size_t)n);
    c->flen += (size_t)n;
    relay_inspect(g_fx, c);
    relay_forward(&c->out, buf->base, (size_t)n);
}

static bool is_fetch_answer(fx_t *fx, int32_t corr)
{
    for (unsigned i = 0; i < 64 && i < fx->nfetch_corr; i++) {
        if (fx->fetch_corr[i] == corr) {
            return true;
        }
    }
    return false;
}

/* Leader -> follower: whole frames, one of them corrupted when the test asks. */
static void relay_read_out(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    relay_conn_t *c = st->data;
    fx_t *fx = g_fx;
    if (n < 0) {
        free(buf->base);
        relay_close(c);
        return;
    }
    if (n == 0) {
        free(buf->base);
        return;
    }
    if (c->olen + (size_t)n > c->ocap) {
        c->ocap = (c->olen + (size_t)n) * 2;
        c->obuf = realloc(c->obuf, c->ocap);
        assert_non_null(c->obuf);
    }
    memcpy(c->obuf + c->olen, buf->base, (size_t)n);
    c->olen += (size_t)n;
    free(buf->base);
    size_t at = 0;
    while (c->olen - at >= 8) {
        uint8_t *p = c->obuf + at;
        uint32_t size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (c->olen - at - 4 < size) {
            break;
        }
        int32_t corr =
            (int32_t)((uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7]);
        if (fx->corrupt && !fx->corrupted && size > 400 && is_fetch_answer(fx, corr)) {
            /* Inside the last record of the last batch: its CRC no longer matches. */
            p[4 + size - 10] ^= 0x5a;
            fx->corrupted++;
        }
        char *copy = malloc(4 + size);
        assert_non_null(copy);
        memcpy(copy, p, 4 + size);
        relay_forward(&c->in, copy, 4 + size);
        at += 4 + size;
    }
    memmove(c->obuf, c->obuf + at, c->olen - at);
    c->olen -= at;
}

static void relay_connected(uv_connect_t *req, int status)
{
    relay_conn_t *c = req->data;
    if (status < 0) {
        relay_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->in, relay_alloc, relay_read_in);
    uv_read_start((uv_stream_t *)&c->out, relay_alloc, relay_read_out);
}

static void relay_accept(uv_stream_t *server, int status)
{
    fx_t *fx = server->data;
    assert_int_equal(status, 0);
    relay_conn_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    uv_tcp_init(&fx->loop, &c->in);
    uv_tcp_init(&fx->loop, &c->out);
    c->in.data = c->out.data = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->in), 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", coll_server_kafka_port(fx->leader.srv), &sa);
    c->creq.data = c;
    c->next = fx->conns;
    fx->conns = c;
    assert_int_equal(uv_tcp_connect(&c->creq, &c->out, (struct sockaddr *)&sa, relay_connected), 0);
}

/* ---- the client thread: idempotent batches to the leader
 * ------------------------------------------- */

static void *client(void *arg)
{
    fx_t *fx = arg;
    int fd = bt_connect(coll_server_kafka_port(fx->leader.srv));
    if (fd < 0) {
        fx->client_failures++;
        snprintf(fx->client_failure, sizeof(fx->client_failure), "cannot connect");
    }
    int32_t seq = 0;
    for (int i = 0; fd >= 0 && i < BATCHES; i++) {
        trib_buf_t b;
        trib_buf_init(&b);
        int n = 1 + i % 17;
        char tag[48];
        snprintf(tag, sizeof(tag), "batch-%d-padding-padding-padding", i);
        bt_batch(&b, n, tag, PID, 0, seq, 0);
        size_t len;
        const uint8_t *p = trib_buf_flatten(&b, &len);
        int16_t err = -1;
        int64_t base = -1;
        int rc = bt_produce(fd, 9, -1, TOPIC, 0, p, len, &err, &base);
        if (rc != 0 || err != 0) {
            fx->client_failures++;
            snprintf(fx->client_failure, sizeof(fx->client_failure), "produce %d: rc %d error %d",
                     i, rc, err);
        }
        seq += n;
        trib_buf_fini(&b);
    }
    if (fd >= 0) {
        close(fd);
    }
    uv_async_send(&fx->produced);
    return NULL;
}

/* ---- checks
 * ------------------------------------------------------------------------------------------- */

static uint8_t *log_bytes(coll_log_t *log, size_t *len)
{
    trib_buf_t b;
    trib_buf_init(&b);
    int64_t off = coll_log_start_offset(log), end = coll_log_end_offset(log);
    while (off < end) {
        coll_read_t r;
        assert_int_equal(coll_log_read(log, off, 1 << 20, INT64_MAX, 0, &r), 0);
        if (r.len == 0) {
            coll_read_release(&r);
            break;
        }
        uint8_t *tmp = malloc(r.len);
        assert_non_null(tmp);
        assert_int_equal(coll_read_copy(&r, 0, tmp, r.len), (ssize_t)r.len);
        trib_buf_append(&b, tmp, r.len);
        free(tmp);
        off = r.next_offset;
        coll_read_release(&r);
    }
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    uint8_t *out = malloc(n ? n : 1);
    assert_non_null(out);
    memcpy(out, p, n);
    trib_buf_fini(&b);
    *len = n;
    return out;
}

static void stop_all(fx_t *fx)
{
    uv_timer_stop(&fx->poll);
    uv_close((uv_handle_t *)&fx->poll, NULL);
    uv_close((uv_handle_t *)&fx->relay, NULL);
    while (fx->conns) {
        relay_close(fx->conns);
    }
    coll_server_stop(fx->follower.srv, node_stopped, &fx->follower);
    coll_server_stop(fx->leader.srv, node_stopped, &fx->leader);
}

static void check_logs(fx_t *fx);

static void poll_cb(uv_timer_t *t)
{
    fx_t *fx = t->data;
    coll_partition_t *lp = node_partition(&fx->leader), *fp = node_partition(&fx->follower);
    if (fx->converged) {
        /* Phase 2: DeleteRecords on the leader moves the follower's log start too. */
        if (coll_log_start_offset(fp->log) == fx->deleted_to) {
            fx->start_followed = 1;
        } else if (uv_now(&fx->loop) < fx->deadline) {
            return;
        }
        stop_all(fx);
        return;
    }
    int64_t lleo = coll_log_end_offset(lp->log), fleo = coll_log_end_offset(fp->log);
    bool caught_up = fleo == lleo && coll_log_high_watermark(fp->log) == lleo;
    if (!caught_up && uv_now(&fx->loop) < fx->deadline) {
        return;
    }
    fx->converged = caught_up;
    if (!caught_up) {
        stop_all(fx);
        return;
    }
    check_logs(fx);
    int64_t low = -1;
    assert_int_equal(coll_log_delete_records(lp->log, lleo / 2, &low), 0);
    fx->deleted_to = low;
    assert_true(low > 0);
    fx->deadline = uv_now(&fx->loop) + 30000;
}

static void on_produced(uv_async_t *a)
{
    fx_t *fx = a->data;
    uv_close((uv_handle_t *)a, NULL);
    fx->deadline = uv_now(&fx->loop) + 30000;
    uv_timer_start(&fx->poll, poll_cb, 20, 20);
}

/*
 * Where the checks that need both logs run: after the follower caught up
 * (or the deadline), before the servers stop.
 */
static void check_logs(fx_t *fx)
{
    coll_partition_t *lp = node_partition(&fx->leader), *fp = node_partition(&fx->follower);
    assert_true(coll_log_end_offset(lp->log) > 0);
    assert_int_equal(coll_log_end_offset(fp->log), coll_log_end_offset(lp->log));
    size_t ln, fn;
    uint8_t *lb = log_bytes(lp->log, &ln), *fb = log_bytes(fp->log, &fn);
    assert_int_equal(ln, fn);
    assert_memory_equal(lb, fb, ln);
    free(lb);
    free(fb);
    assert_true(coll_log_segment_count(fp->log) > 1);
    /* The producer's state came with the batches: the next leader deduplicates its retries. */
    coll_producer_t *pe = coll_pstate_find(&coll_prt(fp)->producers, PID);
    coll_producer_t *le = coll_pstate_find(&coll_prt(lp)->producers, PID);
    assert_non_null(pe);
    assert_non_null(le);
    assert_int_equal(pe->n, le->n);
    assert_int_equal(pe->batches[pe->n - 1].last_seq, le->batches[le->n - 1].last_seq);
    assert_int_equal(pe->batches[pe->n - 1].last_offset, le->batches[le->n - 1].last_offset);
    assert_int_equal(coll_prt(fp)->max_timestamp, coll_prt(lp)->max_timestamp);
    /* The metrics show the partition followed and caught up. */
    trib_buf_t m;
    trib_buf_init(&m);
    coll_fetchers_render_metrics(fx->follower.srv->fetchers, &m);
    trib_buf_put_u8(&m, 0);
    size_t mlen;
    const char *text = (const char *)trib_buf_flatten(&m, &mlen);
    assert_non_null(strstr(text, "tributary_replica_follower_lag{topic=\"rep\",partition=\"0\","
                                 "leader=\"2\"} 0\n"));
    assert_non_null(strstr(text, fx->corrupt ? "tributary_replica_invalid_batches_total 1\n"
                                             : "tributary_replica_invalid_batches_total 0\n"));
    trib_buf_fini(&m);
}

static void replicate(bool fsync_ack, bool corrupt)
{
    fx_t fx;
    memset(&fx, 0, sizeof(fx));
    g_fx = &fx;
    trib_log_set_level(getenv("TRIB_TEST_VERBOSE") ? TRIB_LOG_DEBUG : TRIB_LOG_ERROR);
    assert_int_equal(uv_loop_init(&fx.loop), 0);
    node_init(&fx.leader, 2);
    node_init(&fx.follower, 1);
    fx.follower.svcfg.fsync = fsync_ack ? COLL_FSYNC_ACK : COLL_FSYNC_NEVER;
    fx.follower.scfg.fsync = fx.follower.svcfg.fsync;
    fx.check_durable = fsync_ack;
    fx.corrupt = corrupt;
    node_start(&fx.loop, &fx.leader);
    node_start(&fx.loop, &fx.follower);

    uv_tcp_init(&fx.loop, &fx.relay);
    fx.relay.data = &fx;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&fx.relay, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx.relay, 16, relay_accept), 0);
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&fx.relay, (struct sockaddr *)&bound, &blen);
    fx.relay_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    /* The follower learns that node 2 leads at epoch 0 (as the zookeeper backend would say). */
    coll_cluster_view_t view = {
        .controller_id = view_controller, .brokers = view_brokers, .arg = &fx};
    coll_cluster_set_view(fx.follower.cl, &view);
    coll_partition_t *p = node_partition(&fx.follower);
    p->leader = 2;
    p->leader_epoch = 0;
    assert_int_equal(coll_server_start_fetchers(fx.follower.srv), 0);
    coll_fetchers_follow(fx.follower.srv->fetchers, p);

    uv_timer_init(&fx.loop, &fx.poll);
    fx.poll.data = &fx;
    assert_int_equal(uv_async_init(&fx.loop, &fx.produced, on_produced), 0);
    fx.produced.data = &fx;
    assert_int_equal(pthread_create(&fx.thread, NULL, client, &fx), 0);
    /* Until poll_cb saw the follower catch up (and checked it) and everything stopped. */
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    pthread_join(fx.thread, NULL);
    if (fx.client_failures) {
        fail_msg("client: %s", fx.client_failure);
    }
    if (fx.check_durable && fx.fetch_offsets_ahead) {
        fail_msg("%d fetches asked from an offset the follower had not made durable (by up to "
                 "%" PRId64 " offsets)",
                 fx.fetch_offsets_ahead, fx.worst_ahead);
    }
    assert_true(fx.converged);
    assert_true(fx.start_followed);
    assert_true(fx.leader.closed && fx.follower.closed);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    node_free(&fx.leader);
    node_free(&fx.follower);
    assert_true(fx.fetches > 0);
    if (corrupt) {
        assert_int_equal(fx.corrupted, 1);
    }
}

static void test_replicates_fsync_ack(void **state)
{
    (void)state;
    replicate(true, false);
}

static void test_replicates_fsync_never(void **state)
{
    (void)state;
    replicate(false, false);
}

/*
 * A Fetch answer whose records fail their CRC: nothing of it is written,
 * the partition is counted, backs off and fetches again, and ends equal.
 */
static void test_bad_data_from_leader(void **state)
{
    (void)state;
    replicate(true, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicates_fsync_ack),
        cmocka_unit_test(test_replicates_fsync_never),
        cmocka_unit_test(test_bad_data_from_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
