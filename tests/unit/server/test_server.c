/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server end to end in one process: a real storage, cluster metadata
 * and server on a loop, driven over 127.0.0.1 by a blocking client thread
 * that speaks our codec (broker_test.h). Each test stops the server
 * gracefully, closes the storage and checks uv_loop_close() == 0.
 */
#include "broker_test.h"

#include <inttypes.h>

/* ---- ApiVersions --------------------------------------------------------------------- */

static bool has_api(const ApiVersionsResponse *r, int16_t key, int16_t min, int16_t max)
{
    for (int32_t i = 0; i < r->ApiKeys.count; i++) {
        if (r->ApiKeys.items[i].ApiKey == key) {
            return r->ApiKeys.items[i].MinVersion == min && r->ApiKeys.items[i].MaxVersion == max;
        }
    }
    return false;
}

static void client_api_versions(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    BT_CHECK(f, fd >= 0);
    for (int16_t v = 0; v <= 4; v++) {
        trib_arena_t a;
        trib_arena_init(&a);
        ApiVersionsRequest req;
        ApiVersionsRequest_init(&req);
        req.ClientSoftwareName = trib_kstr("unit-test");
        req.ClientSoftwareVersion = trib_kstr("1.0");
        ApiVersionsResponse resp;
        BT_CHECK(f, bt_call(fd, 18, v, &req, &resp, &a) == 0);
        BT_CHECK(f, resp.ErrorCode == 0);
        BT_CHECK(f, has_api(&resp, 0, 0, 11));
        BT_CHECK(f, has_api(&resp, 1, 4, 12));
        BT_CHECK(f, has_api(&resp, 2, 1, 7));
        BT_CHECK(f, has_api(&resp, 3, 0, 12));
        BT_CHECK(f, has_api(&resp, 18, 0, 4));
        BT_CHECK(f, has_api(&resp, 22, 0, 4));
        /* The group APIs: FindCoordinator from v0 (librdkafka's feature gates). */
        BT_CHECK(f, has_api(&resp, 10, 0, 4));
        BT_CHECK(f, has_api(&resp, 11, 0, 9));
        BT_CHECK(f, has_api(&resp, 8, 0, 9) && has_api(&resp, 9, 0, 9));
        trib_arena_fini(&a);
    }
    /* A version from the future: error 35 and a v0 body listing ApiVersions. */
    trib_buf_t b;
    trib_buf_init(&b);
    ApiVersionsRequest req;
    ApiVersionsRequest_init(&req);
    BT_CHECK(f, bt_encode_request(&b, 18, 4, 77, &req) == 0);
    size_t n;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &n);
    p[7] = 9; /* api version 4 -> 9: same flexible header layout */
    BT_CHECK(f, bt_send_all(fd, p, n) == 0);
    trib_buf_fini(&b);
    trib_arena_t a;
    trib_arena_init(&a);
    ApiVersionsResponse resp;
    BT_CHECK(f, bt_read_response(fd, 18, 0, 77, &resp, &a) == 0);
    BT_CHECK(f, resp.ErrorCode == TRIB_KAFKA_UNSUPPORTED_VERSION);
    BT_CHECK(f, resp.ApiKeys.count == 1 && has_api(&resp, 18, 0, 4));
    /* v3 with a software name Kafka's pattern refuses: INVALID_REQUEST, still answered. */
    ApiVersionsRequest_init(&req);
    req.ClientSoftwareName = trib_kstr("-bad name-");
    req.ClientSoftwareVersion = trib_kstr("1");
    BT_CHECK(f, bt_call(fd, 18, 3, &req, &resp, &a) == 0);
    BT_CHECK(f, resp.ErrorCode == TRIB_KAFKA_INVALID_REQUEST);
    trib_arena_fini(&a);
    close(fd);
}

static void test_api_versions(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    bt_start(&f);
    bt_run(&f, client_api_versions);
    bt_fini(&f);
}

/* ---- Metadata -------------------------------------------------------------------------- */

static void client_metadata(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t e = -2;
    int32_t np = -1;
    /* v1: auto-creation always. */
    BT_CHECK(f, bt_metadata(fd, 1, "auto-one", false, &e, &np) == 0);
    BT_CHECK(f, e == 0 && np == 1);
    /* v4 without AllowAutoTopicCreation: unknown. */
    BT_CHECK(f, bt_metadata(fd, 4, "not-created", false, &e, &np) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION && np == 0);
    BT_CHECK(f, bt_metadata(fd, 12, "created-v12", true, &e, &np) == 0);
    BT_CHECK(f, e == 0 && np == 1);
    BT_CHECK(f, bt_metadata(fd, 9, "bad/name", true, &e, &np) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    /* All topics, broker and controller, topic ids. */
    for (int16_t v = 0; v <= 12; v++) {
        trib_arena_t a;
        trib_arena_init(&a);
        MetadataRequest req;
        MetadataRequest_init(&req);
        req.Topics.count = v == 0 ? 0 : -1;
        MetadataResponse resp;
        BT_CHECK(f, bt_call(fd, 3, v, &req, &resp, &a) == 0);
        BT_CHECK(f, resp.Brokers.count == 1 && resp.Brokers.items[0].NodeId == 1);
        BT_CHECK(f, resp.Brokers.items[0].Port == f->port);
        BT_CHECK(f, resp.Topics.count == 2);
        if (v >= 1) {
            BT_CHECK(f, resp.ControllerId == 1);
        }
        if (v >= 2) {
            BT_CHECK(f, resp.ClusterId.len == 22);
        }
        for (int32_t i = 0; i < resp.Topics.count; i++) {
            const MetadataResponse_MetadataResponseTopic *t = &resp.Topics.items[i];
            BT_CHECK(f, t->Partitions.count == 1);
            BT_CHECK(f, t->Partitions.items[0].LeaderId == 1);
            BT_CHECK(f, t->Partitions.items[0].IsrNodes.count == 1);
            if (v >= 10) {
                trib_uuid_t zero;
                memset(&zero, 0, sizeof(zero));
                BT_CHECK(f, memcmp(&t->TopicId, &zero, 16) != 0);
            }
        }
        trib_arena_fini(&a);
    }
    close(fd);
}

static void test_metadata(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    bt_start(&f);
    bt_run(&f, client_metadata);
    bt_fini(&f);
}

static void client_metadata_no_autocreate(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t e = -2;
    int32_t np = -1;
    BT_CHECK(f, bt_metadata(fd, 1, "nope", true, &e, &np) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, 3, "x", -1, -1, -1, 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    int64_t off = -2;
    BT_CHECK(f, bt_produce(fd, 7, 1, "nope", 0, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION && off == -1);
    trib_buf_fini(&b);
    close(fd);
}

static void test_metadata_no_autocreate(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    f.ccfg.auto_create_topics = false;
    bt_start(&f);
    bt_run(&f, client_metadata_no_autocreate);
    bt_fini(&f);
}

/* ---- Produce and Fetch ------------------------------------------------------------------- */

static void client_produce_fetch(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t e = -2;
    int64_t off = -2, hw = -2;
    int64_t expect = 0;
    static const int16_t versions[] = {3, 5, 7, 8, 9, 10, 11};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        trib_buf_t b;
        trib_buf_init(&b);
        bt_batch(&b, 10, "v", -1, -1, -1, (int)(i % 5));
        size_t n;
        const uint8_t *p = trib_buf_flatten(&b, &n);
        BT_CHECK(f, bt_produce(fd, versions[i], 1, "pf", 0, p, n, &e, &off) == 0);
        BT_CHECK(f, e == 0 && off == expect);
        expect += 10;
        trib_buf_fini(&b);
    }
    static const int16_t fversions[] = {4, 7, 11, 12};
    for (size_t i = 0; i < sizeof(fversions) / sizeof(fversions[0]); i++) {
        trib_buf_t out;
        trib_buf_init(&out);
        BT_CHECK(f, bt_fetch(fd, fversions[i], "pf", 0, 0, 0, 1, 1 << 20, &e, &hw, &out) == 0);
        BT_CHECK(f, e == 0 && hw == expect);
        BT_CHECK(f, bt_count_records(&out) == expect);
        trib_buf_fini(&out);
    }
    /* Mid-batch offset: whole batches from the one holding it. */
    trib_buf_t out;
    trib_buf_init(&out);
    BT_CHECK(f, bt_fetch(fd, 11, "pf", 0, 15, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == 0 && bt_count_records(&out) == expect - 10);
    trib_buf_reset(&out);
    /* A small partition limit still returns the first batch whole. */
    BT_CHECK(f, bt_fetch(fd, 11, "pf", 0, 0, 0, 1, 10, &e, &hw, &out) == 0);
    BT_CHECK(f, e == 0 && bt_count_records(&out) == 10);
    trib_buf_reset(&out);
    /* Out of range. */
    BT_CHECK(f, bt_fetch(fd, 11, "pf", 0, expect + 5, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_OFFSET_OUT_OF_RANGE);
    BT_CHECK(f, bt_fetch(fd, 11, "pf", 7, 0, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    BT_CHECK(f, bt_fetch(fd, 11, "nothere", 0, 0, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    trib_buf_fini(&out);

    /* ListOffsets: earliest, latest, by timestamp, max timestamp. */
    for (int16_t v = 1; v <= 7; v++) {
        static const int64_t ts[] = {-2, -1, 1700000000005LL, 1800000000000LL, -3};
        for (size_t k = 0; k < 5; k++) {
            if (ts[k] == -3 && v < 7) {
                continue;
            }
            trib_arena_t a;
            trib_arena_init(&a);
            ListOffsetsRequest req;
            ListOffsetsRequest_init(&req);
            ListOffsetsRequest_ListOffsetsTopic lt;
            ListOffsetsRequest_ListOffsetsTopic_init(&lt);
            ListOffsetsRequest_ListOffsetsPartition lp;
            ListOffsetsRequest_ListOffsetsPartition_init(&lp);
            lp.PartitionIndex = 0;
            lp.Timestamp = ts[k];
            lt.Name = trib_kstr("pf");
            lt.Partitions.items = &lp;
            lt.Partitions.count = 1;
            req.ReplicaId = -1;
            req.Topics.items = &lt;
            req.Topics.count = 1;
            ListOffsetsResponse resp;
            BT_CHECK(f, bt_call(fd, 2, v, &req, &resp, &a) == 0);
            const ListOffsetsResponse_ListOffsetsPartitionResponse *r =
                &resp.Topics.items[0].Partitions.items[0];
            BT_CHECK(f, r->ErrorCode == 0);
            int64_t want = ts[k] == -2                ? 0
                           : ts[k] == -1              ? expect
                           : ts[k] == 1700000000005LL ? 5
                           : ts[k] == -3              ? 9 /* the first record with ts ...009 */
                                                      : -1;
            BT_CHECK(f, r->Offset == want);
            trib_arena_fini(&a);
        }
    }

    /* Errors leave the connection usable. */
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, 2, "e", -1, -1, -1, 0);
    size_t n;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &n);
    BT_CHECK(f, bt_produce(fd, 2, 1, "pf", 0, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNSUPPORTED_VERSION);
    BT_CHECK(f, bt_produce(fd, 7, 2, "pf", 0, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_INVALID_REQUIRED_ACKS);
    BT_CHECK(f, bt_produce(fd, 7, 1, "pf", 3, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    BT_CHECK(f, bt_produce(fd, 7, 1, "pf", 0, p, n - 3, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_CORRUPT_MESSAGE);
    p[n - 1] ^= 0x55; /* CRC mismatch */
    BT_CHECK(f, bt_produce(fd, 7, 1, "pf", 0, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_CORRUPT_MESSAGE);
    p[n - 1] ^= 0x55;
    BT_CHECK(f, bt_produce(fd, 7, 1, "bad topic!", 0, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    BT_CHECK(f, bt_produce(fd, 7, 1, "pf", 0, p, n, &e, &off) == 0);
    BT_CHECK(f, e == 0 && off == expect);
    trib_buf_fini(&b);
    close(fd);
}

static void test_produce_fetch(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    /* Consumers see appends at once: no fsync ack (which holds the high watermark back). */
    f.scfg.fsync = f.svcfg.fsync = COLL_FSYNC_NEVER;
    bt_start(&f);
    bt_run(&f, client_produce_fetch);
    bt_fini(&f);
}

/* acks=0: no response; an error closes the connection. */
static void client_acks0(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, 5, "z", -1, -1, -1, 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    int16_t e = -2;
    int64_t off = -2, hw = -2;
    for (int i = 0; i < 4; i++) {
        BT_CHECK(f, bt_produce(fd, 7, 0, "a0", 0, p, n, &e, &off) == 0);
    }
    /* The next response on the connection is Metadata's: produce sent none. */
    int32_t np;
    BT_CHECK(f, bt_metadata(fd, 1, "a0", false, &e, &np) == 0);
    BT_CHECK(f, e == 0);
    BT_CHECK(f, bt_fetch(fd, 11, "a0", 0, 0, 0, 1, 1 << 20, &e, &hw, NULL) == 0);
    BT_CHECK(f, e == 0 && hw == 20);
    BT_CHECK(f, bt_produce(fd, 7, 0, "a0", 9, p, n, &e, &off) == 0);
    BT_CHECK(f, bt_closed_by_peer(fd, 5000));
    close(fd);
    trib_buf_fini(&b);
}

static void test_acks0(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    /* Consumers see appends at once: no fsync ack (which holds the high watermark back). */
    f.scfg.fsync = f.svcfg.fsync = COLL_FSYNC_NEVER;
    bt_start(&f);
    bt_run(&f, client_acks0);
    bt_fini(&f);
}

/* acks=-1 waits for the fsync (storage.fsync: ack); min.insync.replicas > 1 refuses. */
static void client_acks_all(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, 5, "all", -1, -1, -1, 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    int16_t e = -2;
    int64_t off = -2;
    for (int i = 0; i < 5; i++) {
        BT_CHECK(f, bt_produce(fd, 9, -1, "all", 0, p, n, &e, &off) == 0);
        BT_CHECK(f, e == 0 && off == i * 5);
    }
    /* Pipelined: several acks=all requests share fsyncs and come back in order. */
    trib_buf_t many;
    trib_buf_init(&many);
    ProduceRequest req;
    ProduceRequest_init(&req);
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    ProduceRequest_PartitionProduceData pd;
    ProduceRequest_PartitionProduceData_init(&pd);
    pd.Records.ptr = p;
    pd.Records.len = (int32_t)n;
    td.Name = trib_kstr("all");
    td.PartitionData.items = &pd;
    td.PartitionData.count = 1;
    req.Acks = -1;
    req.TopicData.items = &td;
    req.TopicData.count = 1;
    for (int i = 0; i < 20; i++) {
        bt_encode_request(&many, 0, 7, 500 + i, &req);
    }
    BT_CHECK(f, bt_send_buf(fd, &many) == 0);
    for (int i = 0; i < 20; i++) {
        trib_arena_t a;
        trib_arena_init(&a);
        ProduceResponse resp;
        BT_CHECK(f, bt_read_response(fd, 0, 7, 500 + i, &resp, &a) == 0);
        BT_CHECK(f, resp.Responses.items[0].PartitionResponses.items[0].BaseOffset == 25 + i * 5);
        trib_arena_fini(&a);
    }
    trib_buf_fini(&many);
    trib_buf_fini(&b);
    close(fd);
}

static void test_acks_all(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    bt_start(&f);
    bt_run(&f, client_acks_all);
    bt_fini(&f);
}

/* ---- hostile input ----------------------------------------------------------------------- */

static void send_raw(bt_fixture_t *f, const void *p, size_t n, bool expect_close)
{
    int fd = bt_connect(f->port);
    BT_CHECK(f, fd >= 0);
    BT_CHECK(f, bt_send_all(fd, p, n) == 0);
    if (expect_close) {
        BT_CHECK(f, bt_closed_by_peer(fd, 5000));
    }
    close(fd);
}

static void frame(trib_buf_t *b, int16_t key, int16_t ver, const void *body, size_t n)
{
    trib_buf_put_i32(b, (int32_t)(8 + 2 + n));
    trib_buf_put_i16(b, key);
    trib_buf_put_i16(b, ver);
    trib_buf_put_i32(b, 42);
    trib_buf_put_i16(b, -1); /* null client id */
    trib_buf_append(b, body, n);
}

static void client_malformed(bt_fixture_t *f)
{
    /* A healthy connection held across all of it. */
    int keep = bt_connect(f->port);
    int16_t e;
    int32_t np;
    BT_CHECK(f, bt_metadata(keep, 1, "keep", true, &e, &np) == 0 && e == 0);

    static const uint8_t negative[] = {0xff, 0xff, 0xff, 0xf0, 1, 2, 3};
    send_raw(f, negative, sizeof(negative), true);
    static const uint8_t tiny[] = {0, 0, 0, 3, 0, 18, 0};
    send_raw(f, tiny, sizeof(tiny), true);
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0};
    send_raw(f, huge, sizeof(huge), true);
    /* Over max_request_bytes (1 MiB in this test), with a valid header. */
    static const uint8_t big[] = {0x00, 0x20, 0x00, 0x00, 0, 0, 0, 7, 0, 0, 0, 1};
    send_raw(f, big, sizeof(big), true);

    trib_buf_t b;
    trib_buf_init(&b);
    frame(&b, 999, 0, NULL, 0); /* unknown API key */
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    send_raw(f, p, n, true);
    trib_buf_reset(&b);
    frame(&b, 11, 2, NULL, 0); /* JoinGroup: known, not implemented */
    p = trib_buf_flatten(&b, &n);
    send_raw(f, p, n, true);
    trib_buf_reset(&b);
    frame(&b, 1, 2, NULL, 0); /* Fetch v2: below the advertised range */
    p = trib_buf_flatten(&b, &n);
    send_raw(f, p, n, true);
    trib_buf_reset(&b);
    static const uint8_t junk[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01};
    frame(&b, 0, 7, junk, sizeof(junk)); /* Produce v7 with a body that does not decode */
    p = trib_buf_flatten(&b, &n);
    send_raw(f, p, n, true);
    trib_buf_reset(&b);
    /* A truncated frame, then the client goes away. */
    frame(&b, 3, 1, junk, sizeof(junk));
    p = trib_buf_flatten(&b, &n);
    send_raw(f, p, n - 3, false);
    trib_buf_fini(&b);
    /* Random bytes. */
    uint8_t rnd[4096];
    uint32_t x = 12345;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof(rnd); i++) {
            x = x * 1103515245u + 12345u;
            rnd[i] = (uint8_t)(x >> 16);
        }
        /* A plausible size prefix half of the time. */
        if (round % 2) {
            rnd[0] = 0;
            rnd[1] = 0;
            rnd[2] = (uint8_t)(round & 0x0f);
        }
        send_raw(f, rnd, sizeof(rnd), false);
    }
    /* Pipelined: a fetch that waits, a request that does not decode, then ApiVersions. */
    {
        int fd = bt_connect(f->port);
        trib_buf_t pb;
        trib_buf_init(&pb);
        FetchRequest req;
        FetchRequest_FetchTopic ft;
        FetchRequest_FetchPartition fp;
        FetchRequest_init(&req);
        FetchRequest_FetchTopic_init(&ft);
        FetchRequest_FetchPartition_init(&fp);
        fp.PartitionMaxBytes = 1 << 20;
        ft.Topic = trib_kstr("keep");
        ft.Partitions.items = &fp;
        ft.Partitions.count = 1;
        req.ReplicaId = -1;
        req.MaxWaitMs = 300;
        req.MinBytes = 1;
        req.MaxBytes = 1 << 20;
        req.Topics.items = &ft;
        req.Topics.count = 1;
        BT_CHECK(f, bt_encode_request(&pb, 1, 11, 31, &req) == 0);
        frame(&pb, 0, 7, junk, sizeof(junk));
        /* A produce after the bad request: it must not be appended. */
        trib_buf_t recs;
        trib_buf_init(&recs);
        bt_batch(&recs, 4, "after-bad", -1, -1, -1, 0);
        size_t rn;
        const uint8_t *rp = trib_buf_flatten(&recs, &rn);
        ProduceRequest preq;
        ProduceRequest_init(&preq);
        ProduceRequest_TopicProduceData td;
        ProduceRequest_TopicProduceData_init(&td);
        ProduceRequest_PartitionProduceData pd;
        ProduceRequest_PartitionProduceData_init(&pd);
        pd.Records.ptr = rp;
        pd.Records.len = (int32_t)rn;
        td.Name = trib_kstr("keep");
        td.PartitionData.items = &pd;
        td.PartitionData.count = 1;
        preq.Acks = 1;
        preq.TopicData.items = &td;
        preq.TopicData.count = 1;
        BT_CHECK(f, bt_encode_request(&pb, 0, 7, 33, &preq) == 0);
        trib_buf_fini(&recs);
        BT_CHECK(f, bt_send_buf(fd, &pb) == 0);
        trib_buf_fini(&pb);
        trib_arena_t fa;
        trib_arena_init(&fa);
        FetchResponse fr;
        BT_CHECK(f, bt_read_response(fd, 1, 11, 31, &fr, &fa) == 0);
        /* Then the close, with no ApiVersions answer before it. */
        struct pollfd pfd = {fd, POLLIN, 0};
        BT_CHECK(f, poll(&pfd, 1, 5000) == 1);
        uint8_t byte;
        BT_CHECK(f, recv(fd, &byte, 1, 0) <= 0);
        trib_arena_fini(&fa);
        close(fd);
        int64_t hw = -1;
        BT_CHECK(f, bt_fetch(keep, 11, "keep", 0, 0, 0, 1, 1 << 20, &e, &hw, NULL) == 0);
        BT_CHECK(f, e == 0 && hw == 0);
    }

    /* Still serving: the kept connection and new ones. */
    BT_CHECK(f, bt_metadata(keep, 1, "keep", true, &e, &np) == 0 && e == 0);
    int fd = bt_connect(f->port);
    trib_arena_t a;
    trib_arena_init(&a);
    ApiVersionsRequest req;
    ApiVersionsRequest_init(&req);
    ApiVersionsResponse resp;
    BT_CHECK(f, bt_call(fd, 18, 0, &req, &resp, &a) == 0 && resp.ErrorCode == 0);
    trib_arena_fini(&a);
    close(fd);
    close(keep);
}

static void test_malformed(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    f.svcfg.max_request_bytes = 1u << 20;
    bt_start(&f);
    bt_run(&f, client_malformed);
    bt_fini(&f);
}

/* ---- the Fetch response's hand-written encoding ------------------------------------------- */

/*
 * Fetch responses are encoded by api/fetch.c around file ranges, not by
 * the generated codec: for every version, with records, an unknown
 * partition, an unknown topic, both isolation levels and a partition whose
 * records span two segments, the bytes received must be exactly what the
 * generated codec encodes from their decoding.
 */
static void client_fetch_encoding(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t e = -2;
    int32_t np = 0;
    int64_t off = -1;
    BT_CHECK(f, bt_metadata(fd, 1, "enc", true, &e, &np) == 0 && e == 0);
    for (int i = 0; i < 6; i++) {
        trib_buf_t b;
        trib_buf_init(&b);
        bt_batch(&b, 20, "enc-record-with-a-longer-value", -1, -1, -1, 0);
        size_t n;
        const uint8_t *p = trib_buf_flatten(&b, &n);
        BT_CHECK(f, bt_produce(fd, 7, 1, "enc", 0, p, n, &e, &off) == 0 && e == 0);
        trib_buf_fini(&b);
    }
    for (int16_t v = 4; v <= 12; v++) {
        for (int8_t iso = 0; iso <= 1; iso++) {
            FetchRequest req;
            FetchRequest_FetchTopic ft[2];
            FetchRequest_FetchPartition fp[3];
            FetchRequest_init(&req);
            for (int i = 0; i < 2; i++) {
                FetchRequest_FetchTopic_init(&ft[i]);
            }
            for (int i = 0; i < 3; i++) {
                FetchRequest_FetchPartition_init(&fp[i]);
                fp[i].PartitionMaxBytes = 1 << 20;
                fp[i].FetchOffset = 0;
            }
            fp[1].Partition = 9; /* unknown */
            ft[0].Topic = trib_kstr("enc");
            ft[0].Partitions.items = fp;
            ft[0].Partitions.count = 2;
            ft[1].Topic = trib_kstr("no-such-topic");
            ft[1].Partitions.items = &fp[2];
            ft[1].Partitions.count = 1;
            req.ReplicaId = -1;
            req.MaxBytes = 1 << 24;
            req.SessionEpoch = -1;
            req.IsolationLevel = iso;
            req.Topics.items = ft;
            req.Topics.count = 2;
            trib_buf_t b;
            trib_buf_init(&b);
            BT_CHECK(f, bt_encode_request(&b, 1, v, 500 + v, &req) == 0);
            BT_CHECK(f, bt_send_buf(fd, &b) == 0);
            trib_buf_fini(&b);
            uint8_t sz[4];
            BT_CHECK(f, bt_recv_all(fd, sz, 4, 10000) == 0);
            uint32_t n =
                ((uint32_t)sz[0] << 24) | ((uint32_t)sz[1] << 16) | ((uint32_t)sz[2] << 8) | sz[3];
            BT_CHECK(f, n > 0 && n < (1u << 20));
            uint8_t *got = malloc(n);
            BT_CHECK(f, got && bt_recv_all(fd, got, n, 10000) == 0);
            trib_arena_t a;
            trib_arena_init(&a);
            trib_slice_t sl = trib_slice_make(got, n);
            trib_kafka_response_header_t h;
            int hv = trib_kafka_response_header_version(1, v);
            FetchResponse resp;
            BT_CHECK(f, trib_kafka_response_header_decode(&h, &sl, hv, &a) == 0);
            BT_CHECK(f, h.correlation_id == 500 + v);
            BT_CHECK(f, FetchResponse_codec.decode(&resp, &sl, v, &a) == 0);
            BT_CHECK(f, resp.Responses.count == 2 && resp.Responses.items[0].Partitions.count == 2);
            const FetchResponse_PartitionData *pd = resp.Responses.items[0].Partitions.items;
            BT_CHECK(f,
                     pd[0].ErrorCode == 0 && pd[0].HighWatermark == 120 && pd[0].Records.len > 0);
            BT_CHECK(f, pd[1].ErrorCode == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
            BT_CHECK(f, resp.Responses.items[1].Partitions.items[0].ErrorCode ==
                            TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
            /* The records cross segments: all 6 batches (120 records) come back. */
            int64_t records = 0;
            trib_batch_iter_t it;
            trib_batch_iter_init(&it, pd[0].Records.ptr, (size_t)pd[0].Records.len, 0);
            trib_batch_t bt;
            while (trib_batch_iter_next(&it, &bt) == 1) {
                records += bt.record_count;
            }
            BT_CHECK(f, records == 120);
            trib_buf_t re;
            trib_buf_init(&re);
            BT_CHECK(f, trib_kafka_response_header_encode(&h, &re, hv) == 0);
            BT_CHECK(f, FetchResponse_codec.encode(&resp, &re, v) == 0);
            size_t rn;
            const uint8_t *rp = trib_buf_flatten(&re, &rn);
            BT_CHECK(f, rp && rn == n && memcmp(rp, got, n) == 0);
            trib_buf_fini(&re);
            trib_arena_fini(&a);
            free(got);
        }
    }
    close(fd);
}

static void test_fetch_encoding(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    /* Small segments: the 6 batches of ~1 KiB land in several of them. */
    f.scfg.log_defaults.segment_bytes = 2048;
    f.ccfg.defaults.v[COLL_TCFG_SEGMENT_BYTES].i = 2048;
    /* Consumers see appends at once: no fsync ack (which holds the high watermark back). */
    f.scfg.fsync = f.svcfg.fsync = COLL_FSYNC_NEVER;
    bt_start(&f);
    bt_run(&f, client_fetch_encoding);
    bt_fini(&f);
}

/* ---- ordering and long polls ---------------------------------------------------------------- */

static void fetch_req(FetchRequest *req, FetchRequest_FetchTopic *ft,
                      FetchRequest_FetchPartition *fp, const char *topic, int64_t offset,
                      int32_t max_wait, int32_t min_bytes)
{
    FetchRequest_init(req);
    FetchRequest_FetchTopic_init(ft);
    FetchRequest_FetchPartition_init(fp);
    fp->FetchOffset = offset;
    fp->PartitionMaxBytes = 1 << 20;
    ft->Topic = trib_kstr(topic);
    ft->Partitions.items = fp;
    ft->Partitions.count = 1;
    req->ReplicaId = -1;
    req->MaxWaitMs = max_wait;
    req->MinBytes = min_bytes;
    req->MaxBytes = 1 << 24;
    req->SessionEpoch = -1;
    req->Topics.items = ft;
    req->Topics.count = 1;
}

static void client_long_poll(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), prod = bt_connect(f->port);
    int16_t e;
    int32_t np;
    BT_CHECK(f, bt_metadata(prod, 1, "lp", true, &e, &np) == 0 && e == 0);

    /* Nothing arrives: the fetch waits about MaxWaitMs, then answers empty. */
    uint64_t t0 = bt_now_ms();
    int64_t hw = -2;
    trib_buf_t out;
    trib_buf_init(&out);
    BT_CHECK(f, bt_fetch(fd, 11, "lp", 0, 0, 300, 1, 1 << 20, &e, &hw, &out) == 0);
    uint64_t took = bt_now_ms() - t0;
    BT_CHECK(f, e == 0 && hw == 0 && trib_buf_len(&out) == 0);
    BT_CHECK(f, took >= 250 && took < 3000);

    /* A parked fetch, then an ApiVersions behind it: answered in order, after the produce. */
    FetchRequest req;
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchPartition fp;
    fetch_req(&req, &ft, &fp, "lp", 0, 20000, 1);
    trib_buf_t b;
    trib_buf_init(&b);
    BT_CHECK(f, bt_encode_request(&b, 1, 12, 9001, &req) == 0);
    ApiVersionsRequest av;
    ApiVersionsRequest_init(&av);
    BT_CHECK(f, bt_encode_request(&b, 18, 2, 9002, &av) == 0);
    BT_CHECK(f, bt_send_buf(fd, &b) == 0);
    trib_buf_fini(&b);
    /* The ApiVersions answer must not overtake the parked fetch. */
    struct pollfd pfd = {fd, POLLIN, 0};
    BT_CHECK(f, poll(&pfd, 1, 300) == 0);
    t0 = bt_now_ms();
    trib_buf_t batch;
    trib_buf_init(&batch);
    bt_batch(&batch, 3, "lp", -1, -1, -1, 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&batch, &n);
    int64_t off;
    BT_CHECK(f, bt_produce(prod, 7, 1, "lp", 0, p, n, &e, &off) == 0 && e == 0);
    trib_arena_t a;
    trib_arena_init(&a);
    FetchResponse fresp;
    BT_CHECK(f, bt_read_response(fd, 1, 12, 9001, &fresp, &a) == 0);
    BT_CHECK(f, bt_now_ms() - t0 < 5000);
    BT_CHECK(f, fresp.Responses.count == 1 &&
                    fresp.Responses.items[0].Partitions.items[0].Records.len == (int32_t)n);
    ApiVersionsResponse avr;
    BT_CHECK(f, bt_read_response(fd, 18, 2, 9002, &avr, &a) == 0 && avr.ErrorCode == 0);

    /* MinBytes above what arrives: one small append does not wake it; time does. */
    fetch_req(&req, &ft, &fp, "lp", 3, 400, 1 << 20);
    trib_buf_init(&b);
    BT_CHECK(f, bt_encode_request(&b, 1, 11, 9003, &req) == 0);
    BT_CHECK(f, bt_send_buf(fd, &b) == 0);
    trib_buf_fini(&b);
    BT_CHECK(f, bt_produce(prod, 7, 1, "lp", 0, p, n, &e, &off) == 0 && e == 0);
    t0 = bt_now_ms();
    BT_CHECK(f, bt_read_response(fd, 1, 11, 9003, &fresp, &a) == 0);
    BT_CHECK(f, fresp.Responses.items[0].Partitions.items[0].Records.len == (int32_t)n);
    trib_arena_fini(&a);

    /* Sessions are declined. */
    trib_arena_init(&a);
    fetch_req(&req, &ft, &fp, "lp", 0, 0, 1);
    req.SessionId = 12;
    BT_CHECK(f, bt_call(fd, 1, 12, &req, &fresp, &a) == 0);
    BT_CHECK(f, fresp.ErrorCode == TRIB_KAFKA_FETCH_SESSION_ID_NOT_FOUND);
    req.SessionId = 0;
    req.SessionEpoch = 3;
    BT_CHECK(f, bt_call(fd, 1, 12, &req, &fresp, &a) == 0);
    BT_CHECK(f, fresp.ErrorCode == TRIB_KAFKA_INVALID_FETCH_SESSION_EPOCH);
    trib_arena_fini(&a);

    /* Left parked at the end: the graceful stop answers it. */
    fetch_req(&req, &ft, &fp, "lp", 6, 60000, 1);
    trib_buf_init(&b);
    BT_CHECK(f, bt_encode_request(&b, 1, 11, 9004, &req) == 0);
    BT_CHECK(f, bt_send_buf(fd, &b) == 0);
    trib_buf_fini(&b);
    trib_buf_fini(&batch);
    trib_buf_fini(&out);
    close(prod);
    f->user = (void *)(intptr_t)fd; /* closed by the test after the stop */
}

static void test_long_poll(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    bt_start(&f);
    uint64_t t0 = bt_now_ms();
    bt_run(&f, client_long_poll);
    /* The 60 s fetch did not hold the stop up. */
    assert_true(bt_now_ms() - t0 < 30000);
    int fd = (int)(intptr_t)f.user;
    trib_arena_t a;
    trib_arena_init(&a);
    FetchResponse fresp;
    assert_int_equal(bt_read_response(fd, 1, 11, 9004, &fresp, &a), 0);
    trib_arena_fini(&a);
    close(fd);
    bt_fini(&f);
}

/*
 * A Metadata request behind a request still being handled (here a parked
 * fetch) is answered with the state when its turn comes, not the state
 * when it arrived: a topic created meanwhile is in the answer.
 */
static void client_metadata_behind_parked(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), other = bt_connect(f->port);
    int16_t e;
    int32_t np;
    BT_CHECK(f, bt_metadata(other, 1, "mb", true, &e, &np) == 0 && e == 0);

    FetchRequest req;
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchPartition fp;
    fetch_req(&req, &ft, &fp, "mb", 0, 20000, 1);
    trib_buf_t b;
    trib_buf_init(&b);
    BT_CHECK(f, bt_encode_request(&b, 1, 12, 9101, &req) == 0);
    MetadataRequest mreq;
    MetadataRequest_init(&mreq);
    mreq.Topics.count = -1; /* all topics */
    BT_CHECK(f, bt_encode_request(&b, 3, 9, 9102, &mreq) == 0);
    BT_CHECK(f, bt_send_buf(fd, &b) == 0);
    trib_buf_fini(&b);
    /* Both arrived and nothing is answered: the fetch is parked. */
    struct pollfd pfd = {fd, POLLIN, 0};
    BT_CHECK(f, poll(&pfd, 1, 300) == 0);

    /* The cluster changes while the Metadata request waits for its turn. */
    BT_CHECK(f, bt_metadata(other, 1, "mb-late", true, &e, &np) == 0 && e == 0);

    trib_buf_t batch;
    trib_buf_init(&batch);
    bt_batch(&batch, 1, "mb", -1, -1, -1, 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&batch, &n);
    int64_t off;
    BT_CHECK(f, bt_produce(other, 7, 1, "mb", 0, p, n, &e, &off) == 0 && e == 0);

    trib_arena_t a;
    trib_arena_init(&a);
    FetchResponse fresp;
    BT_CHECK(f, bt_read_response(fd, 1, 12, 9101, &fresp, &a) == 0);
    MetadataResponse mresp;
    BT_CHECK(f, bt_read_response(fd, 3, 9, 9102, &mresp, &a) == 0);
    bool late = false;
    for (int32_t i = 0; i < mresp.Topics.count; i++) {
        const trib_kstr_t *name = &mresp.Topics.items[i].Name;
        late |= name->len == 7 && memcmp(name->ptr, "mb-late", 7) == 0;
    }
    BT_CHECK(f, late);

    /* With nothing before it, Metadata is answered at once as before. */
    int32_t before = mresp.Topics.count;
    MetadataResponse again;
    BT_CHECK(f, bt_call(fd, 3, 9, &mreq, &again, &a) == 0);
    BT_CHECK(f, again.Topics.count == before);
    trib_arena_fini(&a);
    trib_buf_fini(&batch);
    close(other);
    close(fd);
}

static void test_metadata_behind_parked(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    bt_start(&f);
    bt_run(&f, client_metadata_behind_parked);
    bt_fini(&f);
}

/* ---- idempotent producers ----------------------------------------------------------------- */

static int64_t init_pid(bt_fixture_t *f, int fd, int16_t version)
{
    trib_arena_t a;
    trib_arena_init(&a);
    InitProducerIdRequest req;
    InitProducerIdRequest_init(&req);
    req.TransactionalId = trib_kstr(NULL);
    req.TransactionTimeoutMs = -1;
    InitProducerIdResponse resp;
    int64_t pid = -1;
    BT_CHECK(f, bt_call(fd, 22, version, &req, &resp, &a) == 0);
    BT_CHECK(f, resp.ErrorCode == 0 && resp.ProducerEpoch == 0);
    pid = resp.ProducerId;
    req.TransactionalId = trib_kstr("txn");
    BT_CHECK(f, bt_call(fd, 22, version, &req, &resp, &a) == 0);
    BT_CHECK(f, resp.ErrorCode == TRIB_KAFKA_INVALID_REQUEST);
    trib_arena_fini(&a);
    return pid;
}

static int16_t produce_seq(bt_fixture_t *f, int fd, int64_t pid, int16_t epoch, int32_t seq, int n,
                           int64_t *off)
{
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, n, "idem", pid, epoch, seq, 0);
    size_t len;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    int16_t e = -2;
    BT_CHECK(f, bt_produce(fd, 9, -1, "idem", 0, p, len, &e, off) == 0);
    trib_buf_fini(&b);
    return e;
}

static void client_idempotent_1(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int64_t pid = init_pid(f, fd, 0);
    int64_t pid2 = init_pid(f, fd, 4);
    BT_CHECK(f, pid >= 0 && pid2 > pid);
    int64_t off = -2;
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 0, 5, &off) == 0 && off == 0);
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 5, 5, &off) == 0 && off == 5);
    /* A retry of the first batch: its original offset, nothing appended. */
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 0, 5, &off) == 0 && off == 0);
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 5, 5, &off) == 0 && off == 5);
    /* A gap. */
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 20, 5, &off) == TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* Unknown producer mid-sequence. */
    BT_CHECK(f, produce_seq(f, fd, 999999, 0, 7, 5, &off) == TRIB_KAFKA_UNKNOWN_PRODUCER_ID);
    /* A new epoch must start at 0; the old epoch is fenced afterwards. */
    BT_CHECK(f, produce_seq(f, fd, pid, 1, 3, 5, &off) == TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    BT_CHECK(f, produce_seq(f, fd, pid, 1, 0, 5, &off) == 0 && off == 10);
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 10, 5, &off) == TRIB_KAFKA_INVALID_PRODUCER_EPOCH);
    /* Another producer in parallel. */
    BT_CHECK(f, produce_seq(f, fd, pid2, 0, 0, 5, &off) == 0 && off == 15);
    int16_t e;
    int64_t hw;
    BT_CHECK(f, bt_fetch(fd, 11, "idem", 0, 0, 0, 1, 1 << 20, &e, &hw, NULL) == 0 && hw == 20);
    f->user = (void *)(intptr_t)pid;
    close(fd);
}

static void client_idempotent_2(bt_fixture_t *f)
{
    /* After a restart: the state came back from the snapshot (or the log). */
    int fd = bt_connect(f->port);
    int64_t pid = (int64_t)(intptr_t)f->user;
    int64_t off = -2;
    BT_CHECK(f, produce_seq(f, fd, pid, 1, 0, 5, &off) == 0 && off == 10);
    BT_CHECK(f, produce_seq(f, fd, pid, 1, 5, 5, &off) == 0 && off == 20);
    BT_CHECK(f, produce_seq(f, fd, pid, 0, 15, 5, &off) == TRIB_KAFKA_INVALID_PRODUCER_EPOCH);
    /* Producer ids are never handed out twice across restarts. */
    int64_t again = init_pid(f, fd, 3);
    BT_CHECK(f, again > pid + 1);
    close(fd);
}

static void restart(bt_fixture_t *f, bool drop_snapshot)
{
    void *user = f->user;
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", f->dir);
    coll_storage_config_t scfg = f->scfg;
    coll_cluster_config_t ccfg = f->ccfg;
    coll_server_config_t svcfg = f->svcfg;
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->scfg = scfg;
    f->ccfg = ccfg;
    f->svcfg = svcfg;
    f->scfg.data_dir = f->ccfg.data_dir = f->dir;
    f->user = user;
    if (drop_snapshot) {
        char path[512];
        snprintf(path, sizeof(path), "%s/idem-0/tributary-producer-state", f->dir);
        assert_int_equal(unlink(path), 0);
    }
    bt_start(f);
}

static void test_idempotent(void **state)
{
    (void)state;
    for (int drop = 0; drop <= 1; drop++) {
        bt_fixture_t f;
        bt_init(&f);
        bt_start(&f);
        bt_run(&f, client_idempotent_1);
        restart(&f, drop == 1);
        bt_run(&f, client_idempotent_2);
        bt_fini(&f);
    }
}

/*
 * A producer snapshot past the log end (the log was truncated, or a power
 * loss took its tail) describes another history: it is ignored, and
 * removed, so that it cannot be taken for this history's state once the
 * log grows past its offset and the collector restarts before writing a
 * new snapshot.
 */
static void test_stale_snapshot_removed(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    bt_start(&f);
    bt_run(&f, client_idempotent_1); /* 20 records in idem-0 */
    char path[512];
    snprintf(path, sizeof(path), "%s/idem-0/tributary-producer-state", f.dir);
    void *user = f.user;
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "tributary-producer-state 1\noffset 30\nmax-timestamp -1 -1\n"
            "producer %" PRId64 " 7 0 1\nbatch 0 4 25 29\nend 1\n",
            (int64_t)(intptr_t)user);
    fclose(fp);
    f.user = user;
    restart(&f, false);
    assert_int_not_equal(access(path, F_OK), 0);
    bt_run(&f, client_idempotent_2); /* epoch 1 from the log, not 7 from the stale file */
    bt_fini(&f);
}

/* ---- admin APIs ------------------------------------------------------------------------- */

static int16_t create_topic(bt_fixture_t *f, int fd, int16_t v, const char *name, int32_t parts,
                            int16_t rf, const char *cfg_name, const char *cfg_value, bool validate,
                            int32_t *num_out)
{
    trib_arena_t a;
    trib_arena_init(&a);
    CreateTopicsRequest req;
    CreateTopicsRequest_init(&req);
    CreateTopicsRequest_CreatableTopic t;
    CreateTopicsRequest_CreatableTopic_init(&t);
    CreateTopicsRequest_CreatableTopicConfig c;
    CreateTopicsRequest_CreatableTopicConfig_init(&c);
    t.Name = trib_kstr(name);
    t.NumPartitions = parts;
    t.ReplicationFactor = rf;
    if (cfg_name) {
        c.Name = trib_kstr(cfg_name);
        c.Value = trib_kstr(cfg_value);
        t.Configs.items = &c;
        t.Configs.count = 1;
    }
    req.Topics.items = &t;
    req.Topics.count = 1;
    req.timeoutMs = 5000;
    req.validateOnly = validate;
    CreateTopicsResponse resp;
    int16_t e = -100;
    BT_CHECK(f, bt_call(fd, 19, v, &req, &resp, &a) == 0);
    if (resp.Topics.count == 1) {
        e = resp.Topics.items[0].ErrorCode;
        if (num_out) {
            *num_out = resp.Topics.items[0].NumPartitions;
        }
    }
    trib_arena_fini(&a);
    return e;
}

static const char *describe_one(bt_fixture_t *f, int fd, int16_t v, const char *topic,
                                const char *key, int8_t *source, trib_arena_t *a)
{
    DescribeConfigsRequest req;
    DescribeConfigsRequest_init(&req);
    DescribeConfigsRequest_DescribeConfigsResource res;
    DescribeConfigsRequest_DescribeConfigsResource_init(&res);
    res.ResourceType = 2;
    res.ResourceName = trib_kstr(topic);
    trib_kstr_t k = trib_kstr(key);
    res.ConfigurationKeys.items = &k;
    res.ConfigurationKeys.count = 1;
    req.Resources.items = &res;
    req.Resources.count = 1;
    req.IncludeSynonyms = true;
    req.IncludeDocumentation = v >= 3;
    DescribeConfigsResponse resp;
    BT_CHECK(f, bt_call(fd, 32, v, &req, &resp, a) == 0);
    if (resp.Results.count != 1 || resp.Results.items[0].ErrorCode != 0 ||
        resp.Results.items[0].Configs.count != 1) {
        return NULL;
    }
    const DescribeConfigsResponse_DescribeConfigsResourceResult *c =
        &resp.Results.items[0].Configs.items[0];
    *source = c->ConfigSource;
    return trib_arena_strndup(a, c->Value.ptr, (size_t)c->Value.len);
}

static void client_admin(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int32_t num = -5;
    BT_CHECK(f, create_topic(f, fd, 7, "adm", 3, 1, "retention.ms", "1000", false, &num) == 0);
    BT_CHECK(f, num == 3);
    BT_CHECK(f, create_topic(f, fd, 0, "adm", 3, 1, NULL, NULL, false, NULL) ==
                    TRIB_KAFKA_TOPIC_ALREADY_EXISTS);
    BT_CHECK(f, create_topic(f, fd, 4, "adm2", -1, -1, NULL, NULL, true, NULL) == 0);
    BT_CHECK(f, create_topic(f, fd, 4, "adm3", 1, 3, NULL, NULL, false, NULL) ==
                    TRIB_KAFKA_INVALID_REPLICATION_FACTOR);
    BT_CHECK(f, create_topic(f, fd, 4, "adm3", 0, 1, NULL, NULL, false, NULL) ==
                    TRIB_KAFKA_INVALID_PARTITIONS);
    BT_CHECK(f, create_topic(f, fd, 5, "adm3", 1, 1, "retention.ms", "-9", false, NULL) ==
                    TRIB_KAFKA_INVALID_CONFIG);
    BT_CHECK(f, create_topic(f, fd, 5, "adm3", 1, 1, "no.such.config", "1", false, NULL) ==
                    TRIB_KAFKA_INVALID_CONFIG);
    BT_CHECK(f, create_topic(f, fd, 5, "a/b", 1, 1, NULL, NULL, false, NULL) ==
                    TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    int16_t e;
    int32_t np;
    BT_CHECK(f, bt_metadata(fd, 4, "adm2", false, &e, &np) == 0 &&
                    e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION); /* validate_only */
    BT_CHECK(f, bt_metadata(fd, 4, "adm", false, &e, &np) == 0 && e == 0 && np == 3);

    trib_arena_t a;
    trib_arena_init(&a);
    int8_t src = -1;
    for (int16_t v = 1; v <= 4; v++) {
        const char *val = describe_one(f, fd, v, "adm", "retention.ms", &src, &a);
        BT_CHECK(f, val && strcmp(val, "1000") == 0 && src == 1);
        val = describe_one(f, fd, v, "adm", "segment.bytes", &src, &a);
        BT_CHECK(f, val && strcmp(val, "1073741824") == 0 && src == 5);
    }
    /* IncrementalAlterConfigs: SET, DELETE, APPEND. */
    IncrementalAlterConfigsRequest ireq;
    IncrementalAlterConfigsRequest_init(&ireq);
    IncrementalAlterConfigsRequest_AlterConfigsResource ires;
    IncrementalAlterConfigsRequest_AlterConfigsResource_init(&ires);
    IncrementalAlterConfigsRequest_AlterableConfig ic[3];
    for (int i = 0; i < 3; i++) {
        IncrementalAlterConfigsRequest_AlterableConfig_init(&ic[i]);
    }
    ic[0].Name = trib_kstr("segment.bytes");
    ic[0].ConfigOperation = 0;
    ic[0].Value = trib_kstr("1048576");
    ic[1].Name = trib_kstr("retention.ms");
    ic[1].ConfigOperation = 1;
    ic[2].Name = trib_kstr("cleanup.policy");
    ic[2].ConfigOperation = 2;
    ic[2].Value = trib_kstr("compact");
    ires.ResourceType = 2;
    ires.ResourceName = trib_kstr("adm");
    ires.Configs.items = ic;
    ires.Configs.count = 3;
    ireq.Resources.items = &ires;
    ireq.Resources.count = 1;
    IncrementalAlterConfigsResponse iresp;
    BT_CHECK(f, bt_call(fd, 44, 1, &ireq, &iresp, &a) == 0);
    BT_CHECK(f, iresp.Responses.count == 1 && iresp.Responses.items[0].ErrorCode == 0);
    const char *val = describe_one(f, fd, 4, "adm", "segment.bytes", &src, &a);
    BT_CHECK(f, val && strcmp(val, "1048576") == 0 && src == 1);
    val = describe_one(f, fd, 4, "adm", "retention.ms", &src, &a);
    BT_CHECK(f, val && strcmp(val, "604800000") == 0 && src == 5);
    val = describe_one(f, fd, 4, "adm", "cleanup.policy", &src, &a);
    BT_CHECK(f, val && strcmp(val, "compact,delete") == 0 && src == 1);
    ic[0].Value = trib_kstr("12"); /* below the minimum */
    BT_CHECK(f, bt_call(fd, 44, 0, &ireq, &iresp, &a) == 0);
    BT_CHECK(f, iresp.Responses.items[0].ErrorCode == TRIB_KAFKA_INVALID_CONFIG);
    ires.ResourceType = 4;
    ires.ResourceName = trib_kstr("1");
    BT_CHECK(f, bt_call(fd, 44, 1, &ireq, &iresp, &a) == 0);
    BT_CHECK(f, iresp.Responses.items[0].ErrorCode == TRIB_KAFKA_INVALID_REQUEST);

    /* AlterConfigs replaces the whole set. */
    AlterConfigsRequest areq;
    AlterConfigsRequest_init(&areq);
    AlterConfigsRequest_AlterConfigsResource ares;
    AlterConfigsRequest_AlterConfigsResource_init(&ares);
    AlterConfigsRequest_AlterableConfig ac;
    AlterConfigsRequest_AlterableConfig_init(&ac);
    ac.Name = trib_kstr("max.message.bytes");
    ac.Value = trib_kstr("200");
    ares.ResourceType = 2;
    ares.ResourceName = trib_kstr("adm");
    ares.Configs.items = &ac;
    ares.Configs.count = 1;
    areq.Resources.items = &ares;
    areq.Resources.count = 1;
    AlterConfigsResponse aresp;
    BT_CHECK(f, bt_call(fd, 33, 2, &areq, &aresp, &a) == 0);
    BT_CHECK(f, aresp.Responses.count == 1 && aresp.Responses.items[0].ErrorCode == 0);
    val = describe_one(f, fd, 3, "adm", "segment.bytes", &src, &a);
    BT_CHECK(f, val && strcmp(val, "1073741824") == 0 && src == 5);
    /* The new max.message.bytes applies to produce. */
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, 20, "big-enough-to-exceed-two-hundred-bytes", -1, -1, -1, 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    int64_t off;
    BT_CHECK(f, bt_produce(fd, 7, 1, "adm", 1, p, n, &e, &off) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_MESSAGE_TOO_LARGE);

    /* DescribeConfigs of the broker. */
    DescribeConfigsRequest dreq;
    DescribeConfigsRequest_init(&dreq);
    DescribeConfigsRequest_DescribeConfigsResource dres;
    DescribeConfigsRequest_DescribeConfigsResource_init(&dres);
    dres.ResourceType = 4;
    dres.ResourceName = trib_kstr("1");
    dres.ConfigurationKeys.count = -1;
    dreq.Resources.items = &dres;
    dreq.Resources.count = 1;
    DescribeConfigsResponse dresp;
    BT_CHECK(f, bt_call(fd, 32, 4, &dreq, &dresp, &a) == 0);
    BT_CHECK(f, dresp.Results.items[0].ErrorCode == 0 && dresp.Results.items[0].Configs.count > 10);
    dres.ResourceType = 2;
    dres.ResourceName = trib_kstr("missing");
    BT_CHECK(f, bt_call(fd, 32, 1, &dreq, &dresp, &a) == 0);
    BT_CHECK(f, dresp.Results.items[0].ErrorCode == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);

    /* CreatePartitions. */
    CreatePartitionsRequest cpreq;
    CreatePartitionsRequest_init(&cpreq);
    CreatePartitionsRequest_CreatePartitionsTopic cpt;
    CreatePartitionsRequest_CreatePartitionsTopic_init(&cpt);
    cpt.Name = trib_kstr("adm");
    cpt.Count = 5;
    cpt.Assignments.count = -1;
    cpreq.Topics.items = &cpt;
    cpreq.Topics.count = 1;
    CreatePartitionsResponse cpresp;
    BT_CHECK(f, bt_call(fd, 37, 3, &cpreq, &cpresp, &a) == 0);
    BT_CHECK(f, cpresp.Results.count == 1 && cpresp.Results.items[0].ErrorCode == 0);
    BT_CHECK(f, bt_call(fd, 37, 0, &cpreq, &cpresp, &a) == 0);
    BT_CHECK(f, cpresp.Results.items[0].ErrorCode == TRIB_KAFKA_INVALID_PARTITIONS);
    BT_CHECK(f, bt_metadata(fd, 4, "adm", false, &e, &np) == 0 && e == 0 && np == 5);

    /* DeleteRecords. */
    trib_buf_reset(&b);
    bt_batch(&b, 10, "d", -1, -1, -1, 0);
    p = trib_buf_flatten(&b, &n);
    BT_CHECK(f, bt_produce(fd, 7, 1, "adm", 4, p, n, &e, &off) == 0 && e == 0);
    DeleteRecordsRequest drreq;
    DeleteRecordsRequest_init(&drreq);
    DeleteRecordsRequest_DeleteRecordsTopic drt;
    DeleteRecordsRequest_DeleteRecordsTopic_init(&drt);
    DeleteRecordsRequest_DeleteRecordsPartition drp[2];
    DeleteRecordsRequest_DeleteRecordsPartition_init(&drp[0]);
    DeleteRecordsRequest_DeleteRecordsPartition_init(&drp[1]);
    drp[0].PartitionIndex = 4;
    drp[0].Offset = 10;
    drp[1].PartitionIndex = 3;
    drp[1].Offset = 50;
    drt.Name = trib_kstr("adm");
    drt.Partitions.items = drp;
    drt.Partitions.count = 2;
    drreq.Topics.items = &drt;
    drreq.Topics.count = 1;
    DeleteRecordsResponse drresp;
    BT_CHECK(f, bt_call(fd, 21, 2, &drreq, &drresp, &a) == 0);
    BT_CHECK(f, drresp.Topics.items[0].Partitions.items[0].ErrorCode == 0);
    BT_CHECK(f, drresp.Topics.items[0].Partitions.items[0].LowWatermark == 10);
    BT_CHECK(f, drresp.Topics.items[0].Partitions.items[1].ErrorCode ==
                    TRIB_KAFKA_OFFSET_OUT_OF_RANGE);
    int64_t hw;
    BT_CHECK(f, bt_fetch(fd, 11, "adm", 4, 0, 0, 1, 1 << 20, &e, &hw, NULL) == 0 &&
                    e == TRIB_KAFKA_OFFSET_OUT_OF_RANGE);

    /* message.timestamp.type=LogAppendTime: the broker's clock in the batch and the answer. */
    BT_CHECK(f, create_topic(f, fd, 7, "lat", 1, 1, "message.timestamp.type", "LogAppendTime",
                             false, NULL) == 0);
    {
        trib_buf_t lb;
        trib_buf_init(&lb);
        bt_batch(&lb, 3, "lat", -1, -1, -1, 2);
        size_t ln;
        const uint8_t *lp = trib_buf_flatten(&lb, &ln);
        ProduceRequest preq;
        ProduceRequest_init(&preq);
        ProduceRequest_TopicProduceData td;
        ProduceRequest_TopicProduceData_init(&td);
        ProduceRequest_PartitionProduceData pd;
        ProduceRequest_PartitionProduceData_init(&pd);
        pd.Records.ptr = lp;
        pd.Records.len = (int32_t)ln;
        td.Name = trib_kstr("lat");
        td.PartitionData.items = &pd;
        td.PartitionData.count = 1;
        preq.Acks = 1;
        preq.TopicData.items = &td;
        preq.TopicData.count = 1;
        ProduceResponse presp;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        BT_CHECK(f, bt_call(fd, 0, 7, &preq, &presp, &a) == 0);
        int64_t lat = presp.Responses.items[0].PartitionResponses.items[0].LogAppendTimeMs;
        BT_CHECK(f, lat >= before && lat < before + 60000);
        trib_buf_t fetched;
        trib_buf_init(&fetched);
        BT_CHECK(f, bt_fetch(fd, 11, "lat", 0, 0, 0, 1, 1 << 20, &e, &hw, &fetched) == 0);
        size_t fn;
        const uint8_t *fp = trib_buf_flatten(&fetched, &fn);
        trib_batch_t bb;
        BT_CHECK(f, fp && trib_batch_parse(&bb, fp, fn, 0) == 0); /* the CRC holds */
        BT_CHECK(f, trib_batch_timestamp_type(&bb) == TRIB_TIMESTAMP_LOG_APPEND_TIME);
        BT_CHECK(f, bb.max_timestamp == lat);
        trib_buf_fini(&fetched);
        trib_buf_fini(&lb);
    }

    /* DescribeCluster. */
    DescribeClusterRequest dcreq;
    DescribeClusterRequest_init(&dcreq);
    DescribeClusterResponse dcresp;
    BT_CHECK(f, bt_call(fd, 60, 1, &dcreq, &dcresp, &a) == 0);
    BT_CHECK(f, dcresp.ErrorCode == 0 && dcresp.ControllerId == 1 && dcresp.Brokers.count == 1);
    dcreq.EndpointType = 2;
    BT_CHECK(f, bt_call(fd, 60, 1, &dcreq, &dcresp, &a) == 0);
    BT_CHECK(f, dcresp.ErrorCode == TRIB_KAFKA_UNSUPPORTED_ENDPOINT_TYPE);

    /* DeleteTopics by name (v1) and by id (v6). */
    BT_CHECK(f, create_topic(f, fd, 7, "gone", 2, 1, NULL, NULL, false, NULL) == 0);
    MetadataRequest mreq;
    MetadataRequest_init(&mreq);
    MetadataRequest_MetadataRequestTopic mt;
    MetadataRequest_MetadataRequestTopic_init(&mt);
    mt.Name = trib_kstr("gone");
    mreq.Topics.items = &mt;
    mreq.Topics.count = 1;
    MetadataResponse mresp;
    BT_CHECK(f, bt_call(fd, 3, 12, &mreq, &mresp, &a) == 0);
    trib_uuid_t id = mresp.Topics.items[0].TopicId;
    DeleteTopicsRequest dtreq;
    DeleteTopicsRequest_init(&dtreq);
    DeleteTopicsRequest_DeleteTopicState dts;
    DeleteTopicsRequest_DeleteTopicState_init(&dts);
    dts.Name = trib_kstr(NULL);
    dts.TopicId = id;
    dtreq.Topics.items = &dts;
    dtreq.Topics.count = 1;
    DeleteTopicsResponse dtresp;
    BT_CHECK(f, bt_call(fd, 20, 6, &dtreq, &dtresp, &a) == 0);
    BT_CHECK(f, dtresp.Responses.count == 1 && dtresp.Responses.items[0].ErrorCode == 0);
    BT_CHECK(f, bt_call(fd, 20, 6, &dtreq, &dtresp, &a) == 0);
    BT_CHECK(f, dtresp.Responses.items[0].ErrorCode == TRIB_KAFKA_UNKNOWN_TOPIC_ID);
    trib_kstr_t names[1] = {trib_kstr("adm")};
    DeleteTopicsRequest_init(&dtreq);
    dtreq.TopicNames.items = names;
    dtreq.TopicNames.count = 1;
    BT_CHECK(f, bt_call(fd, 20, 1, &dtreq, &dtresp, &a) == 0);
    BT_CHECK(f, dtresp.Responses.items[0].ErrorCode == 0);
    BT_CHECK(f, bt_metadata(fd, 4, "adm", false, &e, &np) == 0 &&
                    e == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    /* Created again: empty, offsets from 0. */
    BT_CHECK(f, create_topic(f, fd, 7, "adm", 1, 1, NULL, NULL, false, NULL) == 0);
    trib_buf_reset(&b);
    bt_batch(&b, 2, "again", -1, -1, -1, 0);
    p = trib_buf_flatten(&b, &n);
    BT_CHECK(f, bt_produce(fd, 7, 1, "adm", 0, p, n, &e, &off) == 0 && e == 0 && off == 0);
    trib_buf_fini(&b);
    trib_arena_fini(&a);
    close(fd);
}

static void test_admin(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    /* Consumers see appends at once: no fsync ack (which holds the high watermark back). */
    f.scfg.fsync = f.svcfg.fsync = COLL_FSYNC_NEVER;
    bt_start(&f);
    bt_run(&f, client_admin);
    bt_fini(&f);
}

/* Idle connections close after idle_timeout, a stalled partial frame included. */
static void client_idle(bt_fixture_t *f)
{
    int quiet = bt_connect(f->port), stalled = bt_connect(f->port), busy = bt_connect(f->port);
    static const uint8_t partial[] = {0, 0, 1, 0, 0, 18, 0, 0};
    BT_CHECK(f, bt_send_all(stalled, partial, sizeof(partial)) == 0);
    uint64_t t0 = bt_now_ms();
    /* The busy one keeps talking and stays open. */
    while (bt_now_ms() - t0 < 2500) {
        int16_t e;
        int32_t np;
        BT_CHECK(f, bt_metadata(busy, 1, "idle", true, &e, &np) == 0);
        usleep(200 * 1000);
    }
    BT_CHECK(f, bt_closed_by_peer(quiet, 5000));
    BT_CHECK(f, bt_closed_by_peer(stalled, 5000));
    int16_t e;
    int32_t np;
    BT_CHECK(f, bt_metadata(busy, 1, "idle", true, &e, &np) == 0 && e == 0);
    close(quiet);
    close(stalled);
    close(busy);
}

static void test_idle(void **state)
{
    (void)state;
    bt_fixture_t f;
    bt_init(&f);
    f.svcfg.idle_timeout_ms = 1000;
    bt_start(&f);
    bt_run(&f, client_idle);
    bt_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_versions),
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_metadata_no_autocreate),
        cmocka_unit_test(test_produce_fetch),
        cmocka_unit_test(test_fetch_encoding),
        cmocka_unit_test(test_acks0),
        cmocka_unit_test(test_acks_all),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_long_poll),
        cmocka_unit_test(test_metadata_behind_parked),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_stale_snapshot_removed),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
