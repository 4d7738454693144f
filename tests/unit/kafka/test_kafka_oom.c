/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Out-of-memory loop over the request decoder, after SQLite's OOM tests.
 *
 * Every frame is decoded as the collector's dispatch does (request header,
 * then the body with the API's codec into the request's arena; a Produce's
 * batches are then walked record by record, compressed ones decompressed
 * into the same arena). First without a failure, counting the arena's
 * allocations; then, for N = 1, 2, … until a decode makes fewer than N
 * allocations, with the Nth allocation failing, once ("transient") and
 * from the Nth on ("persistent"). Each run must either succeed with no
 * failure injected, or return -ENOMEM: an injected failure that the
 * decoder does not notice (a success) or turns into another error is a
 * fault, and so is a crash. Every run ends in trib_arena_fini(); the
 * sanitizer build's LeakSanitizer reports anything left behind.
 *
 * The frames: the request seeds of the fuzz corpus (tests/fuzz/corpus/
 * request, built by a real client library) and frames built here with the
 * encoders: flexible Produce with several topics, partitions and batches
 * (uncompressed, gzip, zstd) and unknown tagged fields, JoinGroup v6,
 * CreateTopics v5 with assignments and configs, SaslAuthenticate v2.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <dirent.h>
#include <cmocka.h>
#include "kafka/gen/kafka_messages.h"
#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/compress.h"
#include "tributary/error.h"
#include "tributary/kafka.h"
#include "tributary/record.h"
#include "tributary/slice.h"

#ifndef TRIB_REQUEST_CORPUS
#error "TRIB_REQUEST_CORPUS (the fuzz corpus' request directory) must be defined"
#endif

#define MAX_FRAMES 64
#define MAX_DECOMPRESSED (1u << 20)

typedef struct frame {
    char name[64];
    uint8_t *p;
    size_t len;
} frame_t;

static frame_t frames[MAX_FRAMES];
static size_t nframes;

/* ---- failure injection ---------------------------------------------------- */

typedef struct oom {
    size_t calls;   /* allocations asked for so far */
    size_t fail_at; /* 1-based; 0 = never */
    bool persistent;
    size_t failed; /* allocations failed */
} oom_t;

static bool oom_hook(void *arg, size_t n)
{
    oom_t *o = arg;
    o->calls++;
    if (o->fail_at != 0 && (o->calls == o->fail_at || (o->persistent && o->calls > o->fail_at))) {
        o->failed++;
        return true;
    }
    return false;
}

/* ---- the decode under test ------------------------------------------------ */

static int walk_records(const trib_kbytes_t *records, trib_arena_t *a)
{
    if (records->len <= 0) {
        return 0;
    }
    trib_batch_iter_t bi;
    trib_batch_iter_init(&bi, records->ptr, (size_t)records->len, 0);
    trib_batch_t b;
    int rc;
    while ((rc = trib_batch_iter_next(&bi, &b)) == 1) {
        trib_record_iter_t ri;
        rc = trib_record_iter_init(&ri, &b, a, MAX_DECOMPRESSED);
        trib_record_t r;
        while (rc == 0 && (rc = trib_record_iter_next(&ri, &r)) == 1) {
            rc = 0;
        }
        trib_record_iter_fini(&ri);
        if (rc < 0) {
            return rc;
        }
    }
    return rc;
}

/* As collector/server/dispatch.c decodes a frame (without its size). */
static int decode_frame(const frame_t *f, trib_arena_t *a)
{
    trib_slice_t s = trib_slice_make(f->p + 4, f->len - 4);
    trib_kafka_request_header_t h;
    int16_t hv = -1;
    int rc = trib_kafka_request_header_parse(&h, &s, a, &hv);
    if (rc != 0) {
        return rc;
    }
    const trib_kafka_api_t *api = trib_kafka_api_find(h.api_key);
    if (!api || !api->request) {
        return TRIB_EUNSUPPORTED;
    }
    const trib_kafka_codec_t *c = api->request;
    void *body = trib_arena_alloc(a, c->size);
    if (!body) {
        return -ENOMEM;
    }
    c->init(body);
    rc = c->decode(body, &s, h.api_version, a);
    if (rc != 0) {
        return rc;
    }
    if (trib_slice_remaining(&s) != 0) {
        return TRIB_EMALFORMED;
    }
    if (h.api_key == 0) {
        const ProduceRequest *p = body;
        for (int32_t t = 0; t < p->TopicData.count; t++) {
            const ProduceRequest_TopicProduceData *td = &p->TopicData.items[t];
            for (int32_t i = 0; i < td->PartitionData.count; i++) {
                rc = walk_records(&td->PartitionData.items[i].Records, a);
                if (rc != 0) {
                    return rc;
                }
            }
        }
    }
    return 0;
}

/* ---- frames ---------------------------------------------------------------- */

static void add_frame(const char *name, const void *p, size_t len)
{
    assert_true(nframes < MAX_FRAMES);
    frame_t *f = &frames[nframes++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->p = malloc(len);
    assert_non_null(f->p);
    memcpy(f->p, p, len);
    f->len = len;
}

static void load_corpus(void)
{
    DIR *d = opendir(TRIB_REQUEST_CORPUS);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", TRIB_REQUEST_CORPUS, e->d_name);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        uint8_t buf[65536];
        size_t n = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        add_frame(e->d_name, buf, n);
    }
    closedir(d);
}

static uint8_t tag_data[] = {0x01, 0x02, 0x03};
static trib_ktag_t unknown_tag_items[] = {
    {.tag = 90, .data = {tag_data, 3}},
    {.tag = 91, .data = {tag_data, 1}},
};

/* Header (v2 frames get unknown tags too) + body, with the size in front. */
static void build_frame(const char *name, int16_t key, int16_t version, const void *m)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(key);
    assert_non_null(api);
    trib_kafka_request_header_t h;
    trib_kafka_request_header_init(&h);
    h.api_key = key;
    h.api_version = version;
    h.correlation_id = (int32_t)nframes + 100;
    h.client_id = trib_kstr("oom-test");
    int16_t hv = trib_kafka_request_header_version(key, version);
    if (hv == 2) {
        h.tags.items = unknown_tag_items;
        h.tags.count = 2;
    }
    trib_buf_t b;
    trib_buf_init(&b);
    trib_buf_put_i32(&b, 0);
    assert_int_equal(trib_kafka_request_header_encode(&h, &b, hv), 0);
    assert_int_equal(api->request->encode(m, &b, version), 0);
    size_t n;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &n);
    assert_non_null(p);
    uint32_t size = (uint32_t)(n - 4);
    p[0] = (uint8_t)(size >> 24);
    p[1] = (uint8_t)(size >> 16);
    p[2] = (uint8_t)(size >> 8);
    p[3] = (uint8_t)size;
    add_frame(name, p, n);
    trib_buf_fini(&b);
}

/* Three batches of `records` records each: uncompressed, gzip, zstd. */
static void build_batches(trib_buf_t *out, int records)
{
    static const int codecs[] = {TRIB_CODEC_NONE, TRIB_CODEC_GZIP, TRIB_CODEC_ZSTD};
    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        trib_batch_opts_t o;
        trib_batch_opts_init(&o);
        o.codec = codecs[c];
        trib_batch_builder_t bb;
        assert_int_equal(trib_batch_builder_init(&bb, out, &o), 0);
        for (int i = 0; i < records; i++) {
            char value[64];
            int vn = snprintf(value, sizeof(value), "event %d of batch %zu", i, c);
            trib_record_header_t hdr = {trib_record_bytes("h", 1), trib_record_bytes("v", 1)};
            trib_record_in_t r = {
                .key = trib_record_bytes("k", 1),
                .value = trib_record_bytes(value, vn),
                .timestamp = 1700000000000 + i,
                .headers = &hdr,
                .header_count = 1,
            };
            assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
        }
        assert_int_equal(trib_batch_builder_finish(&bb), 0);
        trib_batch_builder_fini(&bb);
    }
}

static void build_frames(void)
{
    /* Produce: two topics of two partitions, three batches each. */
    trib_buf_t rb;
    trib_buf_init(&rb);
    build_batches(&rb, 5);
    size_t rn;
    const uint8_t *rp = trib_buf_flatten(&rb, &rn);
    assert_non_null(rp);
    ProduceRequest_PartitionProduceData parts[2];
    ProduceRequest_TopicProduceData topics[2];
    for (int i = 0; i < 2; i++) {
        ProduceRequest_PartitionProduceData_init(&parts[i]);
        parts[i].Index = i;
        parts[i].Records.ptr = rp;
        parts[i].Records.len = (int32_t)rn;
        ProduceRequest_TopicProduceData_init(&topics[i]);
        topics[i].Name = trib_kstr(i ? "web" : "app");
        topics[i].PartitionData.items = parts;
        topics[i].PartitionData.count = 2;
    }
    ProduceRequest pr;
    ProduceRequest_init(&pr);
    pr.Acks = -1;
    pr.TimeoutMs = 1000;
    pr.TransactionalId = trib_kstr("tx-1");
    pr.TopicData.items = topics;
    pr.TopicData.count = 2;
    build_frame("built/produce-v3", 0, 3, &pr);
    parts[1].unknown_tags.items = unknown_tag_items;
    parts[1].unknown_tags.count = 1;
    pr.unknown_tags.items = unknown_tag_items;
    pr.unknown_tags.count = 2;
    build_frame("built/produce-v9", 0, 9, &pr);
    trib_buf_fini(&rb);

    /* JoinGroup v6 (flexible) with three protocols. */
    JoinGroupRequest_JoinGroupRequestProtocol protos[3];
    static const char *const pnames[] = {"range", "roundrobin", "cooperative-sticky"};
    for (int i = 0; i < 3; i++) {
        JoinGroupRequest_JoinGroupRequestProtocol_init(&protos[i]);
        protos[i].Name = trib_kstr(pnames[i]);
        protos[i].Metadata.ptr = tag_data;
        protos[i].Metadata.len = 3;
    }
    JoinGroupRequest jg;
    JoinGroupRequest_init(&jg);
    jg.GroupId = trib_kstr("group-a");
    jg.SessionTimeoutMs = 10000;
    jg.RebalanceTimeoutMs = 30000;
    jg.MemberId = trib_kstr("");
    jg.GroupInstanceId = trib_kstr("instance-1");
    jg.ProtocolType = trib_kstr("consumer");
    jg.Protocols.items = protos;
    jg.Protocols.count = 3;
    build_frame("built/joingroup-v6", 11, 6, &jg);

    /* CreateTopics v5 (flexible): two topics, assignments and configs. */
    int32_t brokers[] = {1, 2, 3};
    CreateTopicsRequest_CreatableReplicaAssignment asg[2];
    for (int i = 0; i < 2; i++) {
        CreateTopicsRequest_CreatableReplicaAssignment_init(&asg[i]);
        asg[i].PartitionIndex = i;
        asg[i].BrokerIds.items = brokers;
        asg[i].BrokerIds.count = 3;
    }
    CreateTopicsRequest_CreatableTopicConfig cfg[2];
    CreateTopicsRequest_CreatableTopicConfig_init(&cfg[0]);
    cfg[0].Name = trib_kstr("retention.ms");
    cfg[0].Value = trib_kstr("86400000");
    CreateTopicsRequest_CreatableTopicConfig_init(&cfg[1]);
    cfg[1].Name = trib_kstr("cleanup.policy");
    cfg[1].Value = trib_kstr("compact");
    CreateTopicsRequest_CreatableTopic ct[2];
    CreateTopicsRequest_CreatableTopic_init(&ct[0]);
    ct[0].Name = trib_kstr("assigned");
    ct[0].NumPartitions = -1;
    ct[0].ReplicationFactor = -1;
    ct[0].Assignments.items = asg;
    ct[0].Assignments.count = 2;
    CreateTopicsRequest_CreatableTopic_init(&ct[1]);
    ct[1].Name = trib_kstr("configured");
    ct[1].NumPartitions = 3;
    ct[1].ReplicationFactor = 1;
    ct[1].Configs.items = cfg;
    ct[1].Configs.count = 2;
    CreateTopicsRequest ctr;
    CreateTopicsRequest_init(&ctr);
    ctr.Topics.items = ct;
    ctr.Topics.count = 2;
    ctr.timeoutMs = 1000;
    build_frame("built/createtopics-v5", 19, 5, &ctr);

    /* SaslAuthenticate v2 (flexible). */
    static const char token[] = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
    SaslAuthenticateRequest sa;
    SaslAuthenticateRequest_init(&sa);
    sa.AuthBytes.ptr = (const uint8_t *)token;
    sa.AuthBytes.len = (int32_t)(sizeof(token) - 1);
    build_frame("built/saslauthenticate-v2", 36, 2, &sa);
}

static int setup(void **state)
{
    load_corpus();
    build_frames();
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < nframes; i++) {
        free(frames[i].p);
    }
    nframes = 0;
    return 0;
}

/* ---- the tests ------------------------------------------------------------- */

/* One decode of frame f with the Nth allocation failing (0: none). */
static int run_once(const frame_t *f, size_t fail_at, bool persistent, oom_t *o)
{
    memset(o, 0, sizeof(*o));
    o->fail_at = fail_at;
    o->persistent = persistent;
    trib_arena_t a;
    trib_arena_init(&a);
    trib_arena_set_limit(&a, 4u << 20);
    trib_arena_set_fail_hook(&a, oom_hook, o);
    int rc = decode_frame(f, &a);
    trib_arena_fini(&a);
    return rc;
}

static void test_frames_decode(void **state)
{
    /* The corpus' 17 seeds and the 6 frames built here. */
    assert_true(nframes >= 20);
    for (size_t i = 0; i < nframes; i++) {
        oom_t o;
        int rc = run_once(&frames[i], 0, false, &o);
        if (rc != 0) {
            print_error("%s: %s\n", frames[i].name, trib_strerror(rc));
        }
        assert_int_equal(rc, 0);
        assert_true(o.calls > 0);
    }
}

static void oom_loop(bool persistent)
{
    size_t runs = 0;
    for (size_t i = 0; i < nframes; i++) {
        const frame_t *f = &frames[i];
        for (size_t n = 1;; n++) {
            oom_t o;
            int rc = run_once(f, n, persistent, &o);
            runs++;
            if (o.failed == 0) {
                /* The decode made fewer than n allocations: done with this frame. */
                if (rc != 0) {
                    print_error("%s: no failure injected, got %s\n", f->name, trib_strerror(rc));
                }
                assert_int_equal(rc, 0);
                assert_true(n > 1);
                break;
            }
            if (rc != -ENOMEM) {
                print_error("%s: allocation %zu of %zu failed (%s): decode returned %d (%s)\n",
                            f->name, n, o.calls, persistent ? "persistent" : "transient", rc,
                            rc ? trib_strerror(rc) : "success");
            }
            assert_int_equal(rc, -ENOMEM);
        }
    }
    print_message("%zu decodes over %zu frames (%s failures)\n", runs, nframes,
                  persistent ? "persistent" : "transient");
}

static void test_oom_transient(void **state)
{
    oom_loop(false);
}

static void test_oom_persistent(void **state)
{
    oom_loop(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_decode),
        cmocka_unit_test(test_oom_transient),
        cmocka_unit_test(test_oom_persistent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
