/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the server unit tests: a fixture that runs a real storage,
 * cluster and server on a loop in the test's main thread, and a blocking
 * Kafka client that runs in a second thread and talks to it over
 * 127.0.0.1 with our own codec.
 *
 *   bt_fixture_t f;
 *   bt_init(&f);               // temp dir, loop, storage, cluster, server
 *   bt_run(&f, client_fn);     // client_fn(&f) in a thread; loop until it returns,
 *                              // then a graceful stop, storage close, loop close == 0
 *
 * Client helpers return through cmocka asserts only from the main thread:
 * the client thread records failures in f->failures (with a message) and
 * the main thread asserts on them after joining.
 */
#ifndef TRIB_TEST_BROKER_H
#define TRIB_TEST_BROKER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "cluster/cluster.h"
#include "kafka/gen/kafka_messages.h"
#include "server/server.h"
#include "storage/storage.h"
#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/kafka.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"
#include "tributary/record.h"

#define BT_HELPER static __attribute__((unused))

typedef struct bt_fixture bt_fixture_t;
typedef void (*bt_client_fn)(bt_fixture_t *f);

struct bt_fixture {
    uv_loop_t loop;
    char dir[256];
    coll_storage_config_t scfg;
    coll_cluster_config_t ccfg;
    coll_server_config_t svcfg;
    coll_storage_t *st;
    coll_cluster_t *cl;
    coll_server_t *srv;
    int port, metrics_port;
    uv_async_t done;
    pthread_t thread;
    bt_client_fn fn;
    int failures;
    char failure[1024];
    int stopped, storage_closed;
    void *user;
};

BT_HELPER int bt_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

BT_HELPER void bt_rm_rf(const char *path)
{
    nftw(path, bt_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Records a failure from the client thread (first message kept). */
#define BT_CHECK(f, cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if ((f)->failures++ == 0) {                                                            \
                snprintf((f)->failure, sizeof((f)->failure), "%s:%d: %s", __FILE__, __LINE__,      \
                         #cond);                                                                   \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Fills the configs with test defaults; change them before bt_start(). */
BT_HELPER void bt_init(bt_fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/trib-server-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    coll_storage_config_init(&f->scfg);
    f->scfg.data_dir = f->dir;
    f->scfg.log_defaults.segment_index_bytes = 64 * 1024;
    coll_cluster_config_init(&f->ccfg);
    f->ccfg.data_dir = f->dir;
    f->ccfg.defaults.v[COLL_TCFG_SEGMENT_INDEX_BYTES].i = 64 * 1024;
    coll_server_config_init(&f->svcfg);
    f->svcfg.listen_port = 0;
    f->svcfg.metrics_port = 0;
    trib_log_set_level(getenv("TRIB_TEST_VERBOSE") ? TRIB_LOG_DEBUG : TRIB_LOG_ERROR);
}

BT_HELPER void bt_start(bt_fixture_t *f)
{
    trib_error_t err;
    trib_error_clear(&err);
    int rc = coll_storage_open(&f->loop, &f->scfg, &f->st, &err);
    if (rc) {
        fprintf(stderr, "storage: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    rc = coll_cluster_open(f->st, &f->ccfg, &f->cl, &err);
    if (rc) {
        fprintf(stderr, "cluster: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    rc = coll_server_start(&f->loop, &f->svcfg, f->cl, f->st, &f->srv, &err);
    if (rc) {
        fprintf(stderr, "server: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    f->port = coll_server_kafka_port(f->srv);
    f->metrics_port = coll_server_metrics_port(f->srv);
}

BT_HELPER void bt_storage_closed(void *arg, int status)
{
    bt_fixture_t *f = arg;
    assert_int_equal(status, 0);
    f->storage_closed = 1;
}

BT_HELPER void bt_stopped(void *arg)
{
    bt_fixture_t *f = arg;
    f->stopped = 1;
    assert_int_equal(coll_storage_close(f->st, bt_storage_closed, f), 0);
}

BT_HELPER void bt_async_closed(uv_handle_t *h)
{
    (void)h;
}

BT_HELPER void bt_on_done(uv_async_t *a)
{
    bt_fixture_t *f = a->data;
    uv_close((uv_handle_t *)&f->done, bt_async_closed);
    coll_server_stop(f->srv, bt_stopped, f);
}

BT_HELPER void *bt_thread(void *arg)
{
    bt_fixture_t *f = arg;
    f->fn(f);
    uv_async_send(&f->done);
    return NULL;
}

/* Runs fn in a client thread; then stops everything and checks the loop closes clean. */
BT_HELPER void bt_run(bt_fixture_t *f, bt_client_fn fn)
{
    f->fn = fn;
    assert_int_equal(uv_async_init(&f->loop, &f->done, bt_on_done), 0);
    f->done.data = f;
    assert_int_equal(pthread_create(&f->thread, NULL, bt_thread, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->thread, NULL);
    assert_true(f->stopped);
    assert_true(f->storage_closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    coll_server_free(f->srv);
    coll_cluster_free(f->cl);
    f->srv = NULL;
    f->cl = NULL;
    f->st = NULL;
    if (f->failures) {
        fail_msg("%d client check(s) failed; first: %s", f->failures, f->failure);
    }
}

BT_HELPER void bt_fini(bt_fixture_t *f)
{
    bt_rm_rf(f->dir);
}

/* ---- the blocking client ------------------------------------------------------------- */

BT_HELPER int bt_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

BT_HELPER int bt_send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms; 0, -1 on error, -2 on EOF, -3 on timeout. */
BT_HELPER int bt_recv_all(int fd, void *p, size_t n, int timeout_ms)
{
    uint8_t *b = p;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0) {
            return -3;
        }
        if (pr < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        ssize_t r = recv(fd, b, n, 0);
        if (r == 0) {
            return -2;
        }
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* True when the server closed the connection (EOF or reset) within timeout_ms. */
BT_HELPER bool bt_closed_by_peer(int fd, int timeout_ms)
{
    uint8_t b[256];
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr <= 0) {
            return false;
        }
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r <= 0) {
            return true;
        }
    }
}

/* Encodes a request frame (size | header | body) into out. */
BT_HELPER int bt_encode_request(trib_buf_t *out, int16_t key, int16_t version, int32_t corr,
                                const void *body)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(key);
    if (!api) {
        return -1;
    }
    size_t pos = trib_buf_reserve(out, 4);
    trib_kafka_request_header_t h;
    trib_kafka_request_header_init(&h);
    h.api_key = key;
    h.api_version = version;
    h.correlation_id = corr;
    h.client_id = trib_kstr("unit-test");
    int rc =
        trib_kafka_request_header_encode(&h, out, trib_kafka_request_header_version(key, version));
    if (rc == 0) {
        rc = api->request->encode(body, out, version);
    }
    trib_buf_patch_i32(out, pos, (int32_t)(trib_buf_len(out) - pos - 4));
    return rc ? rc : trib_buf_error(out);
}

BT_HELPER int bt_send_buf(int fd, trib_buf_t *b)
{
    size_t n;
    const uint8_t *p = trib_buf_flatten(b, &n);
    return p ? bt_send_all(fd, p, n) : -1;
}

/*
 * Reads one response frame; decodes its header (checking the correlation
 * id) and body into resp (a struct of the API's response type) in arena a,
 * which must outlive resp. The frame memory is kept in the arena too.
 */
BT_HELPER int bt_read_response(int fd, int16_t key, int16_t version, int32_t corr, void *resp,
                               trib_arena_t *a)
{
    uint8_t sz[4];
    int rc = bt_recv_all(fd, sz, 4, 10000);
    if (rc) {
        return rc;
    }
    uint32_t n = ((uint32_t)sz[0] << 24) | ((uint32_t)sz[1] << 16) | ((uint32_t)sz[2] << 8) | sz[3];
    if (n > (256u << 20)) {
        return -4;
    }
    uint8_t *p = trib_arena_alloc(a, n ? n : 1);
    if (!p || (rc = bt_recv_all(fd, p, n, 10000)) != 0) {
        return rc ? rc : -1;
    }
    trib_slice_t s = trib_slice_make(p, n);
    trib_kafka_response_header_t h;
    rc = trib_kafka_response_header_decode(&h, &s, trib_kafka_response_header_version(key, version),
                                           a);
    if (rc || h.correlation_id != corr) {
        return rc ? rc : -5;
    }
    const trib_kafka_api_t *api = trib_kafka_api_find(key);
    return api->response->decode(resp, &s, version, a);
}

/* One request and its response on fd. */
BT_HELPER int bt_call(int fd, int16_t key, int16_t version, const void *req, void *resp,
                      trib_arena_t *a)
{
    static int32_t corr = 1000;
    int32_t c = __atomic_add_fetch(&corr, 1, __ATOMIC_RELAXED);
    trib_buf_t b;
    trib_buf_init(&b);
    int rc = bt_encode_request(&b, key, version, c, req);
    if (rc == 0) {
        rc = bt_send_buf(fd, &b);
    }
    trib_buf_fini(&b);
    if (rc == 0) {
        rc = bt_read_response(fd, key, version, c, resp, a);
    }
    return rc;
}

/* n records "k<i>" -> "<tag>-<i>" in one batch, optionally with producer fields. */
BT_HELPER void bt_batch(trib_buf_t *out, int n, const char *tag, int64_t pid, int16_t epoch,
                        int32_t seq, int codec)
{
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.producer_id = pid;
    o.producer_epoch = epoch;
    o.base_sequence = seq;
    o.codec = codec;
    trib_batch_builder_t bb;
    trib_batch_builder_init(&bb, out, &o);
    for (int i = 0; i < n; i++) {
        char k[32], v[64];
        int kl = snprintf(k, sizeof(k), "k%d", i);
        int vl = snprintf(v, sizeof(v), "%s-%d", tag, i);
        trib_record_in_t r = {
            .key = trib_record_bytes(k, kl),
            .value = trib_record_bytes(v, vl),
            .timestamp = 1700000000000LL + i,
        };
        trib_batch_builder_add(&bb, &r);
    }
    trib_batch_builder_finish(&bb);
    trib_batch_builder_fini(&bb);
}

/*
 * Produces `records` (a flattened buffer of batches) to topic/partition at
 * the given version and acks; fills *error and *base_offset from the
 * response (acks=0: returns without reading).
 */
BT_HELPER int bt_produce(int fd, int16_t version, int16_t acks, const char *topic,
                         int32_t partition, const void *records, size_t len, int16_t *error,
                         int64_t *base_offset)
{
    trib_arena_t a;
    trib_arena_init(&a);
    ProduceRequest req;
    ProduceRequest_init(&req);
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    ProduceRequest_PartitionProduceData pd;
    ProduceRequest_PartitionProduceData_init(&pd);
    pd.Index = partition;
    pd.Records.ptr = records;
    pd.Records.len = (int32_t)len;
    td.Name = trib_kstr(topic);
    td.PartitionData.items = &pd;
    td.PartitionData.count = 1;
    req.Acks = acks;
    req.TimeoutMs = 5000;
    req.TopicData.items = &td;
    req.TopicData.count = 1;
    int rc;
    if (acks == 0) {
        trib_buf_t b;
        trib_buf_init(&b);
        rc = bt_encode_request(&b, 0, version, 1, &req);
        if (rc == 0) {
            rc = bt_send_buf(fd, &b);
        }
        trib_buf_fini(&b);
        trib_arena_fini(&a);
        return rc;
    }
    ProduceResponse resp;
    rc = bt_call(fd, 0, version, &req, &resp, &a);
    if (rc == 0) {
        if (resp.Responses.count != 1 || resp.Responses.items[0].PartitionResponses.count != 1) {
            rc = -10;
        } else {
            const ProduceResponse_PartitionProduceResponse *p =
                &resp.Responses.items[0].PartitionResponses.items[0];
            *error = p->ErrorCode;
            *base_offset = p->BaseOffset;
        }
    }
    trib_arena_fini(&a);
    return rc;
}

/* Metadata v<version> for one topic (NULL: all); returns its error and partition count. */
BT_HELPER int bt_metadata(int fd, int16_t version, const char *topic, bool allow_create,
                          int16_t *error, int32_t *partitions)
{
    trib_arena_t a;
    trib_arena_init(&a);
    MetadataRequest req;
    MetadataRequest_init(&req);
    MetadataRequest_MetadataRequestTopic t;
    MetadataRequest_MetadataRequestTopic_init(&t);
    t.Name = trib_kstr(topic);
    if (topic) {
        req.Topics.items = &t;
        req.Topics.count = 1;
    } else {
        req.Topics.count = version == 0 ? 0 : -1;
    }
    if (version >= 4) {
        req.AllowAutoTopicCreation = allow_create;
    }
    MetadataResponse resp;
    int rc = bt_call(fd, 3, version, &req, &resp, &a);
    if (rc == 0 && topic) {
        if (resp.Topics.count != 1) {
            rc = -10;
        } else {
            *error = resp.Topics.items[0].ErrorCode;
            *partitions = resp.Topics.items[0].Partitions.count;
        }
    }
    trib_arena_fini(&a);
    return rc;
}

/* Fetch (v<version>) of one partition; copies the records into out. */
BT_HELPER int bt_fetch(int fd, int16_t version, const char *topic, int32_t partition,
                       int64_t offset, int32_t max_wait, int32_t min_bytes, int32_t part_max,
                       int16_t *error, int64_t *hw, trib_buf_t *out)
{
    trib_arena_t a;
    trib_arena_init(&a);
    FetchRequest req;
    FetchRequest_init(&req);
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchTopic_init(&ft);
    FetchRequest_FetchPartition fp;
    FetchRequest_FetchPartition_init(&fp);
    fp.Partition = partition;
    fp.FetchOffset = offset;
    fp.PartitionMaxBytes = part_max;
    ft.Topic = trib_kstr(topic);
    ft.Partitions.items = &fp;
    ft.Partitions.count = 1;
    req.ReplicaId = -1;
    req.MaxWaitMs = max_wait;
    req.MinBytes = min_bytes;
    req.MaxBytes = 50 << 20;
    req.SessionEpoch = -1;
    req.Topics.items = &ft;
    req.Topics.count = 1;
    FetchResponse resp;
    int rc = bt_call(fd, 1, version, &req, &resp, &a);
    if (rc == 0) {
        if (resp.Responses.count != 1 || resp.Responses.items[0].Partitions.count != 1) {
            rc = resp.ErrorCode ? resp.ErrorCode : -10;
        } else {
            const FetchResponse_PartitionData *p = &resp.Responses.items[0].Partitions.items[0];
            *error = p->ErrorCode;
            *hw = p->HighWatermark;
            if (out && p->Records.len > 0) {
                trib_buf_append(out, p->Records.ptr, (size_t)p->Records.len);
            }
        }
    }
    trib_arena_fini(&a);
    return rc;
}

/* Counts the records in a buffer of batches (their headers' counts). */
BT_HELPER int64_t bt_count_records(trib_buf_t *b)
{
    size_t n;
    const uint8_t *p = trib_buf_flatten(b, &n);
    int64_t c = 0;
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, p, n, 0);
    trib_batch_t bt;
    while (trib_batch_iter_next(&it, &bt) == 1) {
        c += bt.record_count;
    }
    return c;
}

BT_HELPER uint64_t bt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
