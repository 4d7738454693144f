/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader side of replication, through the real server: a single-node
 * fixture whose cluster is made "replicated" by a test view (three
 * brokers, an alter_isr that applies what it is given), a partition given
 * replicas [self, 2, 3] and made leader, and a client that plays both the
 * followers (Fetch with ReplicaId 2 or 3) and the clients.
 *
 * Checked: the high watermark is the minimum log end over the ISR (a
 * consumer never sees past it), acks=all is answered only once the
 * followers have the batch, NOT_ENOUGH_REPLICAS before and
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND after an append, REQUEST_TIMED_OUT,
 * ISR shrink on lag and expansion only at the epoch's start offset
 * (KAFKA-7128), OffsetForLeaderEpoch with its epoch checks, and
 * NOT_LEADER_OR_FOLLOWER from every data handler for a partition led
 * elsewhere. The pure rules are in test_isr.c.
 */
#include "broker_test.h"

#include "group/group.h"
#include "server/isr.h"
#include "server/server_int.h"

/* ---- the test's cluster view --------------------------------------------------------------- */

typedef struct fake {
    bt_fixture_t *f;
    int alter_calls; /* read by the client thread: atomics */
    int32_t last_isr[8];
    int32_t last_n;
    /*
     * hold: proposals wait (written later) until the client sets release;
     * a timer on the loop polls for it, applies the held one, and closes.
     */
    bool hold;
    int release, applied;
    uv_timer_t timer;
    coll_partition_t *held_p;
    void (*held_cb)(void *cbarg, coll_partition_t *p, int status);
    void *held_arg;
} fake_t;

static fake_t fake;

static int32_t fake_controller(void *arg)
{
    (void)arg;
    return 1;
}

static size_t fake_brokers(void *arg, coll_broker_info_t *out, size_t max)
{
    fake_t *fk = arg;
    if (out) {
        for (size_t i = 0; i < 3 && i < max; i++) {
            out[i].id = (int32_t)i + 1;
            out[i].host = "127.0.0.1";
            out[i].port = fk->f->port;
            out[i].rack = NULL;
        }
    }
    return 3;
}

/*
 * Applies the proposal as the zookeeper backend would (new ISR, partition
 * epoch + 1, the partition_changed hook), then calls back. It answers at
 * once, which the contract does not promise: the leader copes with both.
 */
static void apply(fake_t *fk, coll_partition_t *p, const int32_t *isr, int32_t n)
{
    int32_t *v = realloc(p->isr, (size_t)n * sizeof(*v));
    assert_non_null(v);
    memcpy(v, isr, (size_t)n * sizeof(*v));
    p->isr = v;
    p->nisr = n;
    p->partition_epoch++;
    __atomic_store_n(&fk->applied, 1, __ATOMIC_SEQ_CST);
    coll_replica_isr_changed(coll_prt(p));
}

static void held_closed(uv_handle_t *h)
{
    (void)h;
}

static void held_poll(uv_timer_t *t)
{
    fake_t *fk = t->data;
    if (!__atomic_load_n(&fk->release, __ATOMIC_SEQ_CST)) {
        return;
    }
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, held_closed);
    apply(fk, fk->held_p, fk->last_isr, fk->last_n);
    fk->held_cb(fk->held_arg, fk->held_p, 0);
}

static int fake_alter(void *arg, coll_partition_t *p, const int32_t *isr, int32_t n,
                      void (*cb)(void *cbarg, coll_partition_t *p, int status), void *cbarg)
{
    fake_t *fk = arg;
    if (n < 1 || n > 8) {
        return -EINVAL;
    }
    memcpy(fk->last_isr, isr, (size_t)n * sizeof(*isr));
    __atomic_store_n(&fk->last_n, n, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&fk->alter_calls, 1, __ATOMIC_SEQ_CST);
    if (fk->hold) {
        /* One proposal only in this mode (the leader sends one at a time). */
        fk->hold = false;
        fk->held_p = p;
        fk->held_cb = cb;
        fk->held_arg = cbarg;
        uv_timer_init(&fk->f->loop, &fk->timer);
        fk->timer.data = fk;
        uv_timer_start(&fk->timer, held_poll, 20, 20);
        return 0;
    }
    int32_t *v = realloc(p->isr, (size_t)n * sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    memcpy(v, isr, (size_t)n * sizeof(*v));
    p->isr = v;
    p->nisr = n;
    p->partition_epoch++;
    coll_replica_isr_changed(coll_prt(p));
    cb(cbarg, p, 0);
    return 0;
}

static coll_partition_t *partition(bt_fixture_t *f, const char *topic, int32_t index)
{
    coll_topic_t *t = coll_cluster_topic(f->cl, topic, strlen(topic));
    assert_non_null(t);
    coll_partition_t *p = coll_cluster_partition(t, index);
    assert_non_null(p);
    return p;
}

static void make_topic(bt_fixture_t *f, const char *name, int32_t partitions, const char *min_isr)
{
    coll_config_kv_t kv[] = {{trib_kstr("min.insync.replicas"), trib_kstr(min_isr)}};
    coll_admin_result_t res;
    coll_topic_t *t = NULL;
    coll_cluster_create_topic(f->cl, name, strlen(name), partitions, -1, kv, 1, false, &t, &res);
    assert_int_equal(res.code, 0);
    assert_non_null(t);
}

static void set_ints(int32_t **dst, int32_t *n, const int32_t *v, int32_t k)
{
    int32_t *x = realloc(*dst, (size_t)k * sizeof(*x));
    assert_non_null(x);
    memcpy(x, v, (size_t)k * sizeof(*x));
    *dst = x;
    *n = k;
}

/* Before the loop runs: the view, then p with replicas [self, 2, 3] and the given ISR and leader.
 */
static void replicate(bt_fixture_t *f, coll_partition_t *p, const int32_t *isr, int32_t nisr,
                      int32_t leader)
{
    fake.f = f;
    coll_cluster_view_t view = {
        .controller_id = fake_controller,
        .brokers = fake_brokers,
        .alter_isr = fake_alter,
        .arg = &fake,
    };
    coll_cluster_set_view(f->cl, &view);
    int32_t self = coll_cluster_node_id(f->cl);
    int32_t replicas[] = {self, 2, 3};
    set_ints(&p->replicas, &p->nreplicas, replicas, 3);
    set_ints(&p->isr, &p->nisr, isr, nisr);
    p->leader = leader;
    p->leader_epoch = 1;
    p->partition_epoch = 1;
    if (leader == self) {
        coll_replica_become_leader(coll_prt(p));
    } else {
        coll_replica_become_follower(coll_prt(p));
    }
}

static void start(bt_fixture_t *f)
{
    memset(&fake, 0, sizeof(fake));
    bt_init(f);
    f->ccfg.node_id = 1;
}

/* ---- client helpers ------------------------------------------------------------------------ */

/* A follower's fetch: FetchOffset = its log end; returns the error, *hw and the record count. */
static int16_t replica_fetch(bt_fixture_t *f, int fd, int32_t replica, const char *topic,
                             int32_t part, int64_t offset, int32_t max_wait, int64_t *hw,
                             int64_t *records)
{
    trib_arena_t a;
    trib_arena_init(&a);
    FetchRequest req;
    FetchRequest_init(&req);
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchTopic_init(&ft);
    FetchRequest_FetchPartition fp;
    FetchRequest_FetchPartition_init(&fp);
    fp.Partition = part;
    fp.FetchOffset = offset;
    fp.PartitionMaxBytes = 1 << 20;
    fp.CurrentLeaderEpoch = 1;
    ft.Topic = trib_kstr(topic);
    ft.Partitions.items = &fp;
    ft.Partitions.count = 1;
    req.ReplicaId = replica;
    req.MaxWaitMs = max_wait;
    req.MinBytes = 1;
    req.MaxBytes = 1 << 24;
    req.SessionEpoch = -1;
    req.Topics.items = &ft;
    req.Topics.count = 1;
    FetchResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 1, 12, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0 && resp.Responses.count == 1 && resp.Responses.items[0].Partitions.count == 1) {
        const FetchResponse_PartitionData *pd = &resp.Responses.items[0].Partitions.items[0];
        e = pd->ErrorCode;
        *hw = pd->HighWatermark;
        trib_buf_t b;
        trib_buf_init(&b);
        if (pd->Records.len > 0) {
            trib_buf_append(&b, pd->Records.ptr, (size_t)pd->Records.len);
        }
        *records = bt_count_records(&b);
        trib_buf_fini(&b);
    }
    trib_arena_fini(&a);
    return e;
}

/* Sends an acks=all produce of n records without reading its answer; returns the correlation id. */
static int32_t send_produce(bt_fixture_t *f, int fd, const char *topic, int32_t part, int n,
                            int32_t timeout_ms)
{
    static int32_t corr = 7000;
    trib_buf_t recs, out;
    trib_buf_init(&recs);
    trib_buf_init(&out);
    bt_batch(&recs, n, "r", -1, -1, -1, 0);
    size_t len;
    const uint8_t *p = trib_buf_flatten(&recs, &len);
    ProduceRequest req;
    ProduceRequest_init(&req);
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    ProduceRequest_PartitionProduceData pd;
    ProduceRequest_PartitionProduceData_init(&pd);
    pd.Index = part;
    pd.Records.ptr = p;
    pd.Records.len = (int32_t)len;
    td.Name = trib_kstr(topic);
    td.PartitionData.items = &pd;
    td.PartitionData.count = 1;
    req.Acks = -1;
    req.TimeoutMs = timeout_ms;
    req.TopicData.items = &td;
    req.TopicData.count = 1;
    int32_t c = ++corr;
    BT_CHECK(f, bt_encode_request(&out, 0, 9, c, &req) == 0);
    BT_CHECK(f, bt_send_buf(fd, &out) == 0);
    trib_buf_fini(&recs);
    trib_buf_fini(&out);
    return c;
}

static int16_t read_produce(bt_fixture_t *f, int fd, int32_t corr, int64_t *base)
{
    trib_arena_t a;
    trib_arena_init(&a);
    ProduceResponse resp;
    int16_t e = -100;
    int rc = bt_read_response(fd, 0, 9, corr, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0) {
        e = resp.Responses.items[0].PartitionResponses.items[0].ErrorCode;
        *base = resp.Responses.items[0].PartitionResponses.items[0].BaseOffset;
    }
    trib_arena_fini(&a);
    return e;
}

/* True when fd has bytes to read now (a response already sent). */
static bool readable(int fd)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    return poll(&pfd, 1, 0) > 0;
}

static int16_t produce(bt_fixture_t *f, int fd, int16_t acks, const char *topic, int32_t part,
                       int64_t *off)
{
    trib_buf_t recs;
    trib_buf_init(&recs);
    bt_batch(&recs, 3, "p", -1, -1, -1, 0);
    size_t len;
    const uint8_t *p = trib_buf_flatten(&recs, &len);
    int16_t e = -100;
    BT_CHECK(f, bt_produce(fd, 9, acks, topic, part, p, len, &e, off) == 0);
    trib_buf_fini(&recs);
    return e;
}

/* ---- acks=all and the high watermark over the ISR -------------------------------------------- */

static void client_hw(bt_fixture_t *f)
{
    int prod = bt_connect(f->port), r2 = bt_connect(f->port), r3 = bt_connect(f->port),
        cons = bt_connect(f->port);
    int32_t corr = send_produce(f, prod, "hw", 0, 5, 30000);

    /* Follower 2 long-polls at 0: woken by the append, it gets the 5 records, HW still 0. */
    int64_t hw = -1, n = -1;
    BT_CHECK(f, replica_fetch(f, r2, 2, "hw", 0, 0, 10000, &hw, &n) == 0);
    BT_CHECK(f, n == 5 && hw == 0);
    /* A consumer sees nothing past the high watermark. */
    int16_t e = -1;
    trib_buf_t out;
    trib_buf_init(&out);
    BT_CHECK(f, bt_fetch(cons, 11, "hw", 0, 0, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == 0 && hw == 0 && trib_buf_len(&out) == 0);
    /* Follower 2 has it all; follower 3 has nothing yet: the HW waits for 3. */
    BT_CHECK(f, replica_fetch(f, r2, 2, "hw", 0, 5, 0, &hw, &n) == 0);
    BT_CHECK(f, hw == 0 && n == 0);
    BT_CHECK(f, bt_fetch(cons, 11, "hw", 0, 0, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == 0 && hw == 0 && trib_buf_len(&out) == 0);
    /* ... and the acks=all produce is still waiting (its answer would be here by now). */
    BT_CHECK(f, !readable(prod));
    /* Follower 3 catches up: the HW passes the batch, the produce is answered. */
    BT_CHECK(f, replica_fetch(f, r3, 3, "hw", 0, 0, 0, &hw, &n) == 0 && n == 5);
    BT_CHECK(f, replica_fetch(f, r3, 3, "hw", 0, 5, 0, &hw, &n) == 0);
    int64_t base = -1;
    BT_CHECK(f, read_produce(f, prod, corr, &base) == 0 && base == 0);
    BT_CHECK(f, bt_fetch(cons, 11, "hw", 0, 0, 0, 1, 1 << 20, &e, &hw, &out) == 0);
    BT_CHECK(f, e == 0 && hw == 5 && bt_count_records(&out) == 5);
    /* A follower at the log end learns the new HW (here or on its next fetch). */
    BT_CHECK(f, replica_fetch(f, r2, 2, "hw", 0, 5, 0, &hw, &n) == 0 && hw == 5);
    /* Not a replica of the partition, or at an offset past the log end. */
    BT_CHECK(f,
             replica_fetch(f, r2, 7, "hw", 0, 5, 0, &hw, &n) == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    BT_CHECK(f, replica_fetch(f, r2, 2, "hw", 0, 9, 0, &hw, &n) == TRIB_KAFKA_OFFSET_OUT_OF_RANGE);
    /* "wait": nobody fetches and the lag time is long: REQUEST_TIMED_OUT at TimeoutMs. */
    corr = send_produce(f, prod, "wait", 0, 2, 200);
    BT_CHECK(f, read_produce(f, prod, corr, &base) == TRIB_KAFKA_REQUEST_TIMED_OUT);
    trib_buf_fini(&out);
    close(prod);
    close(r2);
    close(r3);
    close(cons);
}

static void hw_acks_all(coll_fsync_policy_t fsync)
{
    bt_fixture_t f;
    start(&f);
    f.scfg.fsync = fsync;
    f.svcfg.fsync = fsync;
    bt_start(&f);
    make_topic(&f, "hw", 1, "2");
    make_topic(&f, "wait", 1, "1");
    int32_t isr[] = {1, 2, 3};
    replicate(&f, partition(&f, "hw", 0), isr, 3, 1);
    replicate(&f, partition(&f, "wait", 0), isr, 3, 1);
    bt_run(&f, client_hw);
    bt_fini(&f);
}

/* storage.fsync ack: the leader's own log end counts once durable. */
static void test_hw_acks_all(void **state)
{
    (void)state;
    hw_acks_all(COLL_FSYNC_ACK);
}

/* Without fsyncs an unparked acks=all would be answered at the append, before any check. */
static void test_hw_acks_all_nofsync(void **state)
{
    (void)state;
    hw_acks_all(COLL_FSYNC_NEVER);
}

/* ---- min.insync.replicas, the shrink, timeouts -------------------------------------------------
 */

static void client_min_isr(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), prod = bt_connect(f->port);
    int64_t off = -1;
    /* "one": ISR [1] below min.insync 2: refused before the append; acks=1 is not. */
    BT_CHECK(f, produce(f, fd, -1, "one", 0, &off) == TRIB_KAFKA_NOT_ENOUGH_REPLICAS);
    BT_CHECK(f, produce(f, fd, 1, "one", 0, &off) == 0 && off == 0);
    /* "slow": ISR [1,3] and follower 3 never fetches: the ISR shrinks to [1] after the lag
     * time, so the waiting append is committed by the leader alone: AFTER_APPEND. */
    int32_t corr = send_produce(f, prod, "slow", 0, 2, 60000);
    int64_t base = -1;
    BT_CHECK(f, read_produce(f, prod, corr, &base) == TRIB_KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    BT_CHECK(f, base == 0);
    BT_CHECK(f, __atomic_load_n(&fake.alter_calls, __ATOMIC_SEQ_CST) == 1);
    BT_CHECK(f, fake.last_n == 1 && fake.last_isr[0] == 1);
    close(fd);
    close(prod);
}

static void test_min_isr(void **state)
{
    (void)state;
    bt_fixture_t f;
    start(&f);
    f.svcfg.replica_lag_time_max_ms = 1500;
    bt_start(&f);
    make_topic(&f, "one", 1, "2");
    make_topic(&f, "slow", 1, "2");
    int32_t one[] = {1}, slow[] = {1, 3};
    replicate(&f, partition(&f, "one", 0), one, 1, 1);
    replicate(&f, partition(&f, "slow", 0), slow, 2, 1);
    bt_run(&f, client_min_isr);
    bt_fini(&f);
}

/* ---- expansion at the epoch start, OffsetForLeaderEpoch, followers ------------------------------
 */

static int16_t ofle(bt_fixture_t *f, int fd, const char *topic, int32_t part, int32_t current,
                    int32_t epoch, int32_t *out_epoch, int64_t *end)
{
    trib_arena_t a;
    trib_arena_init(&a);
    OffsetForLeaderEpochRequest req;
    OffsetForLeaderEpochRequest_init(&req);
    OffsetForLeaderEpochRequest_OffsetForLeaderTopic t;
    OffsetForLeaderEpochRequest_OffsetForLeaderTopic_init(&t);
    OffsetForLeaderEpochRequest_OffsetForLeaderPartition p;
    OffsetForLeaderEpochRequest_OffsetForLeaderPartition_init(&p);
    p.Partition = part;
    p.CurrentLeaderEpoch = current;
    p.LeaderEpoch = epoch;
    t.Topic = trib_kstr(topic);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    req.ReplicaId = -1;
    req.Topics.items = &t;
    req.Topics.count = 1;
    OffsetForLeaderEpochResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 23, 4, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0 && resp.Topics.count == 1 && resp.Topics.items[0].Partitions.count == 1) {
        const OffsetForLeaderEpochResponse_EpochEndOffset *o =
            &resp.Topics.items[0].Partitions.items[0];
        e = o->ErrorCode;
        *out_epoch = o->LeaderEpoch;
        *end = o->EndOffset;
    }
    trib_arena_fini(&a);
    return e;
}

static int16_t list_latest(bt_fixture_t *f, int fd, const char *topic, int32_t part, int64_t *off)
{
    trib_arena_t a;
    trib_arena_init(&a);
    ListOffsetsRequest req;
    ListOffsetsRequest_init(&req);
    ListOffsetsRequest_ListOffsetsTopic t;
    ListOffsetsRequest_ListOffsetsTopic_init(&t);
    ListOffsetsRequest_ListOffsetsPartition p;
    ListOffsetsRequest_ListOffsetsPartition_init(&p);
    p.PartitionIndex = part;
    p.Timestamp = -1;
    t.Name = trib_kstr(topic);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    req.ReplicaId = -1;
    req.Topics.items = &t;
    req.Topics.count = 1;
    ListOffsetsResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 2, 5, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0 && resp.Topics.count == 1 && resp.Topics.items[0].Partitions.count == 1) {
        e = resp.Topics.items[0].Partitions.items[0].ErrorCode;
        *off = resp.Topics.items[0].Partitions.items[0].Offset;
    }
    trib_arena_fini(&a);
    return e;
}

static int16_t delete_records(bt_fixture_t *f, int fd, const char *topic, int32_t part)
{
    trib_arena_t a;
    trib_arena_init(&a);
    DeleteRecordsRequest req;
    DeleteRecordsRequest_init(&req);
    DeleteRecordsRequest_DeleteRecordsTopic t;
    DeleteRecordsRequest_DeleteRecordsTopic_init(&t);
    DeleteRecordsRequest_DeleteRecordsPartition p;
    DeleteRecordsRequest_DeleteRecordsPartition_init(&p);
    p.PartitionIndex = part;
    p.Offset = 0;
    t.Name = trib_kstr(topic);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    req.Topics.items = &t;
    req.Topics.count = 1;
    DeleteRecordsResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 21, 2, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0 && resp.Topics.count == 1 && resp.Topics.items[0].Partitions.count == 1) {
        e = resp.Topics.items[0].Partitions.items[0].ErrorCode;
    }
    trib_arena_fini(&a);
    return e;
}

static void client_epochs(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), r3 = bt_connect(f->port);
    int64_t hw = -1, n = -1;
    /* Epoch 0 wrote offsets 0-4; epoch 1 began at 5 with the HW at 2 (follower 2 unknown). */
    BT_CHECK(f, replica_fetch(f, r3, 3, "ep", 0, 3, 0, &hw, &n) == 0);
    BT_CHECK(f, hw == 2 && n == 5); /* the whole batch holding offset 3 */
    /* 3 >= HW but below the epoch's start: it may hold a diverged tail, it does not join. */
    BT_CHECK(f, __atomic_load_n(&fake.alter_calls, __ATOMIC_SEQ_CST) == 0);
    BT_CHECK(f, replica_fetch(f, r3, 3, "ep", 0, 5, 0, &hw, &n) == 0);
    BT_CHECK(f, __atomic_load_n(&fake.alter_calls, __ATOMIC_SEQ_CST) == 1);
    BT_CHECK(f, fake.last_n == 3 && fake.last_isr[2] == 3);

    int32_t epoch = -2;
    int64_t end = -2;
    BT_CHECK(f, ofle(f, fd, "ep", 0, 1, 0, &epoch, &end) == 0 && epoch == 0 && end == 5);
    BT_CHECK(f, ofle(f, fd, "ep", 0, 1, 1, &epoch, &end) == 0 && epoch == 1 && end == 5);
    BT_CHECK(f, ofle(f, fd, "ep", 0, -1, 7, &epoch, &end) == 0 && epoch == -1 && end == -1);
    BT_CHECK(f, ofle(f, fd, "ep", 0, 0, 0, &epoch, &end) == TRIB_KAFKA_FENCED_LEADER_EPOCH);
    BT_CHECK(f, ofle(f, fd, "ep", 0, 2, 0, &epoch, &end) == TRIB_KAFKA_UNKNOWN_LEADER_EPOCH);

    /* Partition 1 is led by broker 2: every data request is refused here. */
    int64_t off = -1;
    int16_t e = -1;
    BT_CHECK(f, produce(f, fd, 1, "ep", 1, &off) == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    BT_CHECK(f, bt_fetch(fd, 11, "ep", 1, 0, 0, 1, 1 << 20, &e, &hw, NULL) == 0);
    BT_CHECK(f, e == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    BT_CHECK(f,
             replica_fetch(f, r3, 3, "ep", 1, 0, 0, &hw, &n) == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    BT_CHECK(f, list_latest(f, fd, "ep", 1, &off) == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    BT_CHECK(f, delete_records(f, fd, "ep", 1) == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    BT_CHECK(f, ofle(f, fd, "ep", 1, -1, 1, &epoch, &end) == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    /* The leader's partition answers ListOffsets with its high watermark. */
    BT_CHECK(f, list_latest(f, fd, "ep", 0, &off) == 0 && off == 2);
    close(fd);
    close(r3);
}

static void test_epochs(void **state)
{
    (void)state;
    bt_fixture_t f;
    start(&f);
    bt_start(&f);
    make_topic(&f, "ep", 2, "1");
    coll_partition_t *p = partition(&f, "ep", 0);
    trib_buf_t b;
    trib_buf_init(&b);
    bt_batch(&b, 5, "e0", -1, -1, -1, 0);
    size_t len;
    const uint8_t *flat = trib_buf_flatten(&b, &len);
    uint8_t *data = malloc(len);
    assert_non_null(data);
    memcpy(data, flat, len);
    coll_append_info_t info;
    assert_int_equal(coll_log_append(p->log, data, len, 0, COLL_APPEND_CRC_VERIFIED, &info), 0);
    coll_log_set_high_watermark(p->log, 2);
    free(data);
    trib_buf_fini(&b);
    int32_t isr[] = {1, 2};
    replicate(&f, p, isr, 2, 1);
    int32_t isr1[] = {2, 1};
    replicate(&f, partition(&f, "ep", 1), isr1, 2, 2);
    bt_run(&f, client_epochs);
    bt_fini(&f);
}

/* ---- the group coordinator on a cluster ---------------------------------------------------- */

static char group_here[16], group_there[16], group_none[16];

static int16_t find_coordinator(bt_fixture_t *f, int fd, const char *group, int32_t *node,
                                int32_t *port)
{
    trib_arena_t a;
    trib_arena_init(&a);
    FindCoordinatorRequest req;
    FindCoordinatorRequest_init(&req);
    req.Key = trib_kstr(group);
    req.KeyType = 0;
    FindCoordinatorResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 10, 2, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0) {
        e = resp.ErrorCode;
        *node = resp.NodeId;
        *port = resp.Port;
    }
    trib_arena_fini(&a);
    return e;
}

static int16_t heartbeat(bt_fixture_t *f, int fd, const char *group)
{
    trib_arena_t a;
    trib_arena_init(&a);
    HeartbeatRequest req;
    HeartbeatRequest_init(&req);
    req.GroupId = trib_kstr(group);
    req.GenerationId = 1;
    req.MemberId = trib_kstr("m");
    HeartbeatResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 12, 1, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0) {
        e = resp.ErrorCode;
    }
    trib_arena_fini(&a);
    return e;
}

static int16_t offset_fetch(bt_fixture_t *f, int fd, const char *group)
{
    trib_arena_t a;
    trib_arena_init(&a);
    OffsetFetchRequest req;
    OffsetFetchRequest_init(&req);
    req.GroupId = trib_kstr(group);
    req.Topics.count = -1; /* all */
    OffsetFetchResponse resp;
    int16_t e = -100;
    int rc = bt_call(fd, 9, 3, &req, &resp, &a);
    BT_CHECK(f, rc == 0);
    if (rc == 0) {
        e = resp.ErrorCode;
    }
    trib_arena_fini(&a);
    return e;
}

static void client_coordinator(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int32_t node = -2, port = -2;
    BT_CHECK(f, find_coordinator(f, fd, group_here, &node, &port) == 0 && node == 1);
    BT_CHECK(f, port == f->port);
    BT_CHECK(f, find_coordinator(f, fd, group_there, &node, &port) == 0 && node == 2);
    BT_CHECK(f, find_coordinator(f, fd, group_none, &node, &port) ==
                    TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE);
    BT_CHECK(f, node == -1);
    /* A broker that does not lead the group's partition does not coordinate it. */
    BT_CHECK(f, heartbeat(f, fd, group_there) == TRIB_KAFKA_NOT_COORDINATOR);
    BT_CHECK(f, offset_fetch(f, fd, group_there) == TRIB_KAFKA_NOT_COORDINATOR);
    BT_CHECK(f, heartbeat(f, fd, group_none) == TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE);
    /*
     * The one it leads: its groups load from the partition's log first
     * (COORDINATOR_LOAD_IN_PROGRESS meanwhile, a housekeeping tick or so);
     * then the group is unknown, not elsewhere.
     */
    int16_t of = -1;
    for (int i = 0; i < 200; i++) {
        of = offset_fetch(f, fd, group_here);
        if (of != TRIB_KAFKA_COORDINATOR_LOAD_IN_PROGRESS) {
            break;
        }
        usleep(50 * 1000);
    }
    BT_CHECK(f, of == 0);
    BT_CHECK(f, heartbeat(f, fd, group_here) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    close(fd);
}

static void test_coordinator(void **state)
{
    (void)state;
    bt_fixture_t f;
    start(&f);
    bt_start(&f);
    coll_topic_t *t = coll_groups_topic(f.srv->groups, true);
    assert_non_null(t);
    /* Three groups on three different partitions: led here, by broker 2, by nobody. */
    char *names[] = {group_here, group_there, group_none};
    int32_t parts[3];
    int k = 0;
    for (int i = 0; i < 1000 && k < 3; i++) {
        char g[16];
        snprintf(g, sizeof(g), "g%d", i);
        int32_t pi = coll_group_partition_for(g, strlen(g), t->npartitions);
        bool seen = false;
        for (int j = 0; j < k; j++) {
            seen |= parts[j] == pi;
        }
        if (!seen) {
            parts[k] = pi;
            snprintf(names[k], 16, "%s", g);
            k++;
        }
    }
    assert_int_equal(k, 3);
    int32_t self[] = {1}, two[] = {2};
    replicate(&f, coll_cluster_partition(t, parts[0]), self, 1, 1);
    replicate(&f, coll_cluster_partition(t, parts[1]), two, 1, 2);
    replicate(&f, coll_cluster_partition(t, parts[2]), two, 1, -1);
    /* As the cluster's partition_changed hook would: the coordinator loads what it leads. */
    for (int i = 0; i < 3; i++) {
        coll_groups_partition_changed(f.srv->groups, coll_cluster_partition(t, parts[i]), false);
    }
    bt_run(&f, client_coordinator);
    bt_fini(&f);
}

/* ---- KIP-497: the high watermark counts a follower while its expansion is in flight ---------- */

static void client_pending(bt_fixture_t *f)
{
    int prod = bt_connect(f->port), r2 = bt_connect(f->port), r3 = bt_connect(f->port);
    int64_t hw = -1, n = -1, base = -1;
    /* ISR [1,2]: follower 3 catches up at 0 and is proposed; the proposal is held. */
    BT_CHECK(f, replica_fetch(f, r3, 3, "pend", 0, 0, 0, &hw, &n) == 0);
    BT_CHECK(f, __atomic_load_n(&fake.alter_calls, __ATOMIC_SEQ_CST) == 1);
    BT_CHECK(f, fake.last_n == 3 && fake.last_isr[2] == 3);
    /* An acks=all write; follower 2 (committed ISR) has it, 3 (joining) does not. */
    int32_t corr = send_produce(f, prod, "pend", 0, 4, 30000);
    BT_CHECK(f, replica_fetch(f, r2, 2, "pend", 0, 0, 10000, &hw, &n) == 0 && n == 4);
    BT_CHECK(f, replica_fetch(f, r2, 2, "pend", 0, 4, 0, &hw, &n) == 0);
    /* The committed ISR [1,2] has it all, but 3 may be in the ISR already: no HW yet. */
    BT_CHECK(f, hw == 0);
    BT_CHECK(f, !__atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST));
    BT_CHECK(f, replica_fetch(f, r2, 2, "pend", 0, 4, 0, &hw, &n) == 0 && hw == 0);
    BT_CHECK(f, !readable(prod));
    /* 3 catches up: the HW passes the write, still before the expansion is written. */
    BT_CHECK(f, replica_fetch(f, r3, 3, "pend", 0, 4, 0, &hw, &n) == 0);
    BT_CHECK(f, read_produce(f, prod, corr, &base) == 0 && base == 0);
    BT_CHECK(f, !__atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST));
    /* Written now; wait for it here, so nothing runs on the loop after the client is done. */
    __atomic_store_n(&fake.release, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 1000 && !__atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST); i++) {
        usleep(10 * 1000);
    }
    BT_CHECK(f, __atomic_load_n(&fake.applied, __ATOMIC_SEQ_CST));
    close(prod);
    close(r2);
    close(r3);
}

static void test_pending_expand(void **state)
{
    (void)state;
    bt_fixture_t f;
    start(&f);
    f.scfg.fsync = COLL_FSYNC_NEVER;
    f.svcfg.fsync = COLL_FSYNC_NEVER;
    bt_start(&f);
    make_topic(&f, "pend", 1, "2");
    int32_t isr[] = {1, 2};
    replicate(&f, partition(&f, "pend", 0), isr, 2, 1);
    fake.hold = true;
    bt_run(&f, client_pending);
    assert_int_equal(fake.applied, 1);
    bt_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hw_acks_all), cmocka_unit_test(test_hw_acks_all_nofsync),
        cmocka_unit_test(test_min_isr),     cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_coordinator), cmocka_unit_test(test_pending_expand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
