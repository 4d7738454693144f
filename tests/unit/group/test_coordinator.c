/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The group coordinator through the wire, against a real server (the
 * broker test fixture): the hash that places a group, MEMBER_ID_REQUIRED,
 * a two-member rebalance with the follower parked until the leader's
 * SyncGroup, heartbeat errors, session expiry, static membership,
 * standalone and member commits, OffsetFetch (v1 and the v8 groups form),
 * List/Describe/DeleteGroups, OffsetDelete, and offsets and group metadata
 * reloaded by a new server on the same data directory.
 */
#include "../server/broker_test.h"

#include <stdbool.h>

#include "group/group.h"
#include "server/server_int.h"

#define GROUP "g-unit"
#define TOPIC "gt"

static bool cli_eq(trib_kstr_t k, const char *s)
{
    return k.len >= 0 && strlen(s) == (size_t)k.len && memcmp(k.ptr, s, (size_t)k.len) == 0;
}

static const char *coll_req_strdup_test(trib_kstr_t s, trib_arena_t *a)
{
    return s.len < 0 ? "" : trib_arena_strndup(a, s.ptr, (size_t)s.len);
}

static int32_t corr_next(void)
{
    static int32_t corr = 50000;
    return __atomic_add_fetch(&corr, 1, __ATOMIC_RELAXED);
}

static int send_req(int fd, int16_t key, int16_t v, const void *req, int32_t *corr)
{
    *corr = corr_next();
    trib_buf_t b;
    trib_buf_init(&b);
    int rc = bt_encode_request(&b, key, v, *corr, req);
    if (rc == 0) {
        rc = bt_send_buf(fd, &b);
    }
    trib_buf_fini(&b);
    return rc;
}

static JoinGroupRequest_JoinGroupRequestProtocol proto_range = {
    .Name = {"range", 5},
    .Metadata = {(const uint8_t *)"\x00\x00\x00\x00\x00\x01\x00\x02gt\xff\xff\xff\xff", 14},
};

static void join_init(JoinGroupRequest *req, const char *member, const char *instance)
{
    JoinGroupRequest_init(req);
    req->GroupId = trib_kstr(GROUP);
    req->SessionTimeoutMs = 6000;
    req->RebalanceTimeoutMs = 5000;
    req->MemberId = trib_kstr(member ? member : "");
    req->GroupInstanceId = trib_kstr(instance);
    req->ProtocolType = trib_kstr("consumer");
    req->Protocols.items = &proto_range;
    req->Protocols.count = 1;
}

static char *dupk(trib_kstr_t s)
{
    char *d = malloc((size_t)s.len + 1);
    memcpy(d, s.ptr, (size_t)s.len);
    d[s.len] = 0;
    return d;
}

static int16_t heartbeat(int fd, int16_t v, const char *member, int32_t gen)
{
    trib_arena_t a;
    trib_arena_init(&a);
    HeartbeatRequest req;
    HeartbeatRequest_init(&req);
    req.GroupId = trib_kstr(GROUP);
    req.MemberId = trib_kstr(member);
    req.GenerationId = gen;
    HeartbeatResponse resp;
    int16_t e = -1;
    if (bt_call(fd, 12, v, &req, &resp, &a) == 0) {
        e = resp.ErrorCode;
    }
    trib_arena_fini(&a);
    return e;
}

static int16_t commit(int fd, int16_t v, const char *member, int32_t gen, int32_t partition,
                      int64_t offset)
{
    trib_arena_t a;
    trib_arena_init(&a);
    OffsetCommitRequest_OffsetCommitRequestPartition p;
    OffsetCommitRequest_OffsetCommitRequestPartition_init(&p);
    p.PartitionIndex = partition;
    p.CommittedOffset = offset;
    p.CommittedMetadata = trib_kstr("m");
    OffsetCommitRequest_OffsetCommitRequestTopic t;
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&t);
    t.Name = trib_kstr(TOPIC);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    OffsetCommitRequest req;
    OffsetCommitRequest_init(&req);
    req.GroupId = trib_kstr(GROUP);
    req.GenerationIdOrMemberEpoch = gen;
    req.MemberId = trib_kstr(member);
    req.Topics.items = &t;
    req.Topics.count = 1;
    OffsetCommitResponse resp;
    int16_t e = -1;
    if (bt_call(fd, 8, v, &req, &resp, &a) == 0 && resp.Topics.count == 1 &&
        resp.Topics.items[0].Partitions.count == 1) {
        e = resp.Topics.items[0].Partitions.items[0].ErrorCode;
    }
    trib_arena_fini(&a);
    return e;
}

/* The committed offset of TOPIC/partition via OffsetFetch v1 or v8; -2 on a failure. */
static int64_t fetch_offset(int fd, int16_t v, int32_t partition)
{
    trib_arena_t a;
    trib_arena_init(&a);
    int64_t off = -2;
    OffsetFetchRequest req;
    OffsetFetchRequest_init(&req);
    OffsetFetchResponse resp;
    if (v < 8) {
        OffsetFetchRequest_OffsetFetchRequestTopic t;
        OffsetFetchRequest_OffsetFetchRequestTopic_init(&t);
        t.Name = trib_kstr(TOPIC);
        t.PartitionIndexes.items = &partition;
        t.PartitionIndexes.count = 1;
        req.GroupId = trib_kstr(GROUP);
        req.Topics.items = &t;
        req.Topics.count = 1;
        if (bt_call(fd, 9, v, &req, &resp, &a) == 0 && resp.Topics.count == 1 &&
            resp.Topics.items[0].Partitions.count == 1) {
            off = resp.Topics.items[0].Partitions.items[0].CommittedOffset;
        }
    } else {
        OffsetFetchRequest_OffsetFetchRequestTopics t;
        OffsetFetchRequest_OffsetFetchRequestTopics_init(&t);
        t.Name = trib_kstr(TOPIC);
        t.PartitionIndexes.items = &partition;
        t.PartitionIndexes.count = 1;
        OffsetFetchRequest_OffsetFetchRequestGroup g[2];
        OffsetFetchRequest_OffsetFetchRequestGroup_init(&g[0]);
        OffsetFetchRequest_OffsetFetchRequestGroup_init(&g[1]);
        g[0].GroupId = trib_kstr("nobody");
        g[0].Topics.items = &t;
        g[0].Topics.count = 1;
        g[1].GroupId = trib_kstr(GROUP);
        g[1].Topics.items = &t;
        g[1].Topics.count = 1;
        req.Groups.items = g;
        req.Groups.count = 2;
        if (bt_call(fd, 9, v, &req, &resp, &a) == 0 && resp.Groups.count == 2 &&
            resp.Groups.items[0].Topics.items[0].Partitions.items[0].CommittedOffset == -1 &&
            resp.Groups.items[1].Topics.count == 1) {
            off = resp.Groups.items[1].Topics.items[0].Partitions.items[0].CommittedOffset;
        }
    }
    trib_arena_fini(&a);
    return off;
}

static const char *describe_state(int fd, trib_arena_t *a, int32_t *members)
{
    DescribeGroupsRequest req;
    DescribeGroupsRequest_init(&req);
    trib_kstr_t g = trib_kstr(GROUP);
    req.Groups.items = &g;
    req.Groups.count = 1;
    DescribeGroupsResponse resp;
    if (bt_call(fd, 15, 5, &req, &resp, a) != 0 || resp.Groups.count != 1) {
        return "?";
    }
    *members = resp.Groups.items[0].Members.count;
    return coll_req_strdup_test(resp.Groups.items[0].GroupState, a);
}

/* ---- hashing ---- */

static void test_partition_hash(void **state)
{
    (void)state;
    assert_int_equal(coll_java_string_hash("", 0), 0);
    assert_int_equal(coll_java_string_hash("hello", 5), 99162322);
    assert_int_equal(coll_java_string_hash("\xc3\xa9", 2), 233);                  /* é */
    assert_int_equal(coll_java_string_hash("\xf0\x9f\x98\x80", 4), 1772899);      /* U+1F600 */
    assert_int_equal(coll_java_string_hash("polygenelubricants", 18), INT32_MIN); /* abs -> 0 */
    assert_int_equal(coll_group_partition_for("polygenelubricants", 18, 50), 0);
    /* "console-consumer-1": Java's hashCode is negative; Kafka takes abs then % 50. */
    int32_t h = coll_java_string_hash("console-consumer-1", 18);
    int32_t want = (h < 0 ? -h : h) % 50;
    assert_int_equal(coll_group_partition_for("console-consumer-1", 18, 50), want);
}

/* ---- the protocol ---- */

static void client_protocol(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), fd2 = bt_connect(f->port);
    BT_CHECK(f, fd >= 0 && fd2 >= 0);
    trib_arena_t a;
    trib_arena_init(&a);
    int16_t me;
    int32_t mnp;
    BT_CHECK(f, bt_metadata(fd, 4, TOPIC, true, &me, &mnp) == 0 && me == 0);

    /* FindCoordinator v0 and v4 (batched). */
    FindCoordinatorRequest fc;
    FindCoordinatorRequest_init(&fc);
    fc.Key = trib_kstr(GROUP);
    FindCoordinatorResponse fr;
    BT_CHECK(f, bt_call(fd, 10, 0, &fc, &fr, &a) == 0);
    BT_CHECK(f, fr.ErrorCode == 0 && fr.NodeId == 1 && fr.Port == f->port);
    FindCoordinatorRequest_init(&fc);
    trib_kstr_t keys[2] = {trib_kstr(GROUP), trib_kstr("other")};
    fc.CoordinatorKeys.items = keys;
    fc.CoordinatorKeys.count = 2;
    BT_CHECK(f, bt_call(fd, 10, 4, &fc, &fr, &a) == 0);
    BT_CHECK(f, fr.Coordinators.count == 2 && fr.Coordinators.items[1].ErrorCode == 0);
    FindCoordinatorRequest_init(&fc);
    fc.Key = trib_kstr("txn");
    fc.KeyType = 1;
    BT_CHECK(f, bt_call(fd, 10, 3, &fc, &fr, &a) == 0);
    BT_CHECK(f, fr.ErrorCode == TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE);

    /* v4+: an unknown member must come back with the id it is given. */
    JoinGroupRequest jr;
    join_init(&jr, NULL, NULL);
    JoinGroupResponse jp;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0);
    BT_CHECK(f, jp.ErrorCode == TRIB_KAFKA_MEMBER_ID_REQUIRED && jp.MemberId.len > 0);
    char *m1 = dupk(jp.MemberId);
    /* A bad session timeout. */
    join_init(&jr, m1, NULL);
    jr.SessionTimeoutMs = 10;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0);
    BT_CHECK(f, jp.ErrorCode == TRIB_KAFKA_INVALID_SESSION_TIMEOUT);
    /* The first member alone: leader of generation 1 once the (0 ms) initial delay passed. */
    join_init(&jr, m1, NULL);
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0);
    BT_CHECK(f, jp.ErrorCode == 0 && jp.GenerationId == 1 && cli_eq(jp.Leader, m1));
    BT_CHECK(f, jp.Members.count == 1 && jp.Members.items[0].Metadata.len == 14);
    BT_CHECK(f, cli_eq(jp.ProtocolName, "range"));
    SyncGroupRequest sr;
    SyncGroupRequest_init(&sr);
    sr.GroupId = trib_kstr(GROUP);
    sr.GenerationId = 1;
    sr.MemberId = trib_kstr(m1);
    SyncGroupRequest_SyncGroupRequestAssignment as[2];
    SyncGroupRequest_SyncGroupRequestAssignment_init(&as[0]);
    as[0].MemberId = trib_kstr(m1);
    as[0].Assignment.ptr = (const uint8_t *)"A1";
    as[0].Assignment.len = 2;
    sr.Assignments.items = as;
    sr.Assignments.count = 1;
    SyncGroupResponse sp;
    BT_CHECK(f, bt_call(fd, 14, 3, &sr, &sp, &a) == 0);
    BT_CHECK(f, sp.ErrorCode == 0 && sp.Assignment.len == 2 && !memcmp(sp.Assignment.ptr, "A1", 2));
    BT_CHECK(f, heartbeat(fd, 3, m1, 1) == 0);
    BT_CHECK(f, heartbeat(fd, 3, m1, 7) == TRIB_KAFKA_ILLEGAL_GENERATION);
    BT_CHECK(f, heartbeat(fd, 4, "nobody", 1) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    BT_CHECK(f, commit(fd, 7, m1, 1, 0, 10) == 0);
    BT_CHECK(f, commit(fd, 2, "", -1, 0, 11) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    BT_CHECK(f, commit(fd, 8, m1, 0, 0, 11) == TRIB_KAFKA_ILLEGAL_GENERATION);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == 10 && fetch_offset(fd, 8, 0) == 10);

    /* A second member (v2: no MEMBER_ID_REQUIRED) parks until the leader rejoins. */
    int32_t c2;
    join_init(&jr, NULL, NULL);
    BT_CHECK(f, send_req(fd2, 11, 2, &jr, &c2) == 0);
    for (int i = 0; i < 500 && heartbeat(fd, 1, m1, 1) == 0; i++) {
        usleep(10000); /* until the join arrived: the leader then sees the rebalance */
    }
    BT_CHECK(f, heartbeat(fd, 1, m1, 1) == TRIB_KAFKA_REBALANCE_IN_PROGRESS);
    join_init(&jr, m1, NULL);
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0);
    BT_CHECK(f, jp.ErrorCode == 0 && jp.GenerationId == 2 && jp.Members.count == 2);
    JoinGroupResponse jp2;
    BT_CHECK(f, bt_read_response(fd2, 11, 2, c2, &jp2, &a) == 0);
    BT_CHECK(f, jp2.ErrorCode == 0 && jp2.GenerationId == 2 && jp2.Members.count == 0);
    BT_CHECK(f, cli_eq(jp2.Leader, m1));
    char *m2 = dupk(jp2.MemberId);
    /* The follower's SyncGroup parks until the leader's brings the assignments. */
    SyncGroupRequest_init(&sr);
    sr.GroupId = trib_kstr(GROUP);
    sr.GenerationId = 2;
    sr.MemberId = trib_kstr(m2);
    BT_CHECK(f, send_req(fd2, 14, 1, &sr, &c2) == 0);
    usleep(50000);
    SyncGroupRequest_SyncGroupRequestAssignment_init(&as[1]);
    as[1].MemberId = trib_kstr(m2);
    as[1].Assignment.ptr = (const uint8_t *)"B22";
    as[1].Assignment.len = 3;
    sr.MemberId = trib_kstr(m1);
    sr.Assignments.items = as;
    sr.Assignments.count = 2;
    BT_CHECK(f, bt_call(fd, 14, 5, &sr, &sp, &a) == 0);
    BT_CHECK(f, sp.ErrorCode == 0 && sp.Assignment.len == 2 && cli_eq(sp.ProtocolName, "range"));
    BT_CHECK(f, bt_read_response(fd2, 14, 1, c2, &sp, &a) == 0);
    BT_CHECK(f,
             sp.ErrorCode == 0 && sp.Assignment.len == 3 && !memcmp(sp.Assignment.ptr, "B22", 3));
    int32_t nm = 0;
    BT_CHECK(f, strcmp(describe_state(fd, &a, &nm), "Stable") == 0 && nm == 2);

    /* ListGroups, DeleteGroups refused while members are there. */
    ListGroupsRequest lr;
    ListGroupsRequest_init(&lr);
    ListGroupsResponse lp;
    BT_CHECK(f, bt_call(fd, 16, 4, &lr, &lp, &a) == 0);
    BT_CHECK(f, lp.Groups.count == 1 && cli_eq(lp.Groups.items[0].GroupState, "Stable"));
    DeleteGroupsRequest dr;
    DeleteGroupsRequest_init(&dr);
    trib_kstr_t gname = trib_kstr(GROUP);
    dr.GroupsNames.items = &gname;
    dr.GroupsNames.count = 1;
    DeleteGroupsResponse dp;
    BT_CHECK(f, bt_call(fd, 42, 2, &dr, &dp, &a) == 0);
    BT_CHECK(f, dp.Results.items[0].ErrorCode == TRIB_KAFKA_NON_EMPTY_GROUP);

    /* OffsetDelete on a subscribed topic is refused; LeaveGroup v3 removes both members. */
    OffsetDeleteRequest odr;
    OffsetDeleteRequest_init(&odr);
    OffsetDeleteRequest_OffsetDeleteRequestPartition odp = {.PartitionIndex = 0};
    OffsetDeleteRequest_OffsetDeleteRequestTopic odt;
    OffsetDeleteRequest_OffsetDeleteRequestTopic_init(&odt);
    odt.Name = trib_kstr(TOPIC);
    odt.Partitions.items = &odp;
    odt.Partitions.count = 1;
    odr.GroupId = trib_kstr(GROUP);
    odr.Topics.items = &odt;
    odr.Topics.count = 1;
    OffsetDeleteResponse odresp;
    BT_CHECK(f, bt_call(fd, 47, 0, &odr, &odresp, &a) == 0);
    BT_CHECK(f, odresp.Topics.items[0].Partitions.items[0].ErrorCode ==
                    TRIB_KAFKA_GROUP_SUBSCRIBED_TO_TOPIC);
    LeaveGroupRequest lv;
    LeaveGroupRequest_init(&lv);
    lv.GroupId = trib_kstr(GROUP);
    LeaveGroupRequest_MemberIdentity ids[3];
    for (int i = 0; i < 3; i++) {
        LeaveGroupRequest_MemberIdentity_init(&ids[i]);
    }
    ids[0].MemberId = trib_kstr(m1);
    ids[1].MemberId = trib_kstr(m2);
    ids[2].MemberId = trib_kstr("ghost");
    lv.Members.items = ids;
    lv.Members.count = 3;
    LeaveGroupResponse lvp;
    BT_CHECK(f, bt_call(fd, 13, 3, &lv, &lvp, &a) == 0);
    BT_CHECK(f, lvp.Members.count == 3 && lvp.Members.items[0].ErrorCode == 0 &&
                    lvp.Members.items[1].ErrorCode == 0 &&
                    lvp.Members.items[2].ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    BT_CHECK(f, strcmp(describe_state(fd, &a, &nm), "Empty") == 0 && nm == 0);

    /* Empty: standalone commits are fine, OffsetDelete too; then the group can go. */
    BT_CHECK(f, commit(fd, 2, "", -1, 1, 99) == 0);
    BT_CHECK(f, fetch_offset(fd, 1, 1) == 99);
    BT_CHECK(f, bt_call(fd, 47, 0, &odr, &odresp, &a) == 0);
    BT_CHECK(f, odresp.ErrorCode == 0 && odresp.Topics.items[0].Partitions.items[0].ErrorCode == 0);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == -1 && fetch_offset(fd, 1, 1) == 99);
    BT_CHECK(f, commit(fd, 2, "", -1, 0, 1234) == 0);
    free(m1);
    free(m2);
    trib_arena_fini(&a);
    close(fd);
    close(fd2);
}

static void client_reloaded(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    BT_CHECK(f, fd >= 0);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == 1234 && fetch_offset(fd, 8, 1) == 99);
    trib_arena_t a;
    trib_arena_init(&a);
    int32_t nm = -1;
    BT_CHECK(f, strcmp(describe_state(fd, &a, &nm), "Empty") == 0 && nm == 0);
    /* The generation goes on from the stored one (2 members, then empty: 3). */
    JoinGroupRequest jr;
    join_init(&jr, NULL, NULL);
    JoinGroupResponse jp;
    BT_CHECK(f, bt_call(fd, 11, 3, &jr, &jp, &a) == 0);
    BT_CHECK(f, jp.ErrorCode == 0 && jp.GenerationId == 4);
    /* Delete: offsets and group gone, and for good. */
    LeaveGroupRequest lv;
    LeaveGroupRequest_init(&lv);
    lv.GroupId = trib_kstr(GROUP);
    lv.MemberId = jp.MemberId;
    LeaveGroupResponse lvp;
    BT_CHECK(f, bt_call(fd, 13, 1, &lv, &lvp, &a) == 0 && lvp.ErrorCode == 0);
    DeleteGroupsRequest dr;
    DeleteGroupsRequest_init(&dr);
    trib_kstr_t gname = trib_kstr(GROUP);
    dr.GroupsNames.items = &gname;
    dr.GroupsNames.count = 1;
    DeleteGroupsResponse dp;
    BT_CHECK(f, bt_call(fd, 42, 0, &dr, &dp, &a) == 0 && dp.Results.items[0].ErrorCode == 0);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == -1);
    BT_CHECK(f, bt_call(fd, 42, 1, &dr, &dp, &a) == 0 &&
                    dp.Results.items[0].ErrorCode == TRIB_KAFKA_GROUP_ID_NOT_FOUND);
    trib_arena_fini(&a);
    close(fd);
}

static void client_deleted(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    BT_CHECK(f, fd >= 0);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == -1 && fetch_offset(fd, 1, 1) == -1);
    close(fd);
}

static void fixture_on(bt_fixture_t *f, const char *dir)
{
    bt_init(f);
    if (dir) {
        bt_rm_rf(f->dir);
        snprintf(f->dir, sizeof(f->dir), "%s", dir);
        f->scfg.data_dir = f->dir;
        f->ccfg.data_dir = f->dir;
    }
    f->svcfg.groups.initial_rebalance_delay_ms = 0;
    f->svcfg.groups.min_session_timeout_ms = 100;
    f->ccfg.default_partitions = 2;
}

static void test_protocol_and_reload(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_protocol);
    /* A new server on the same directory replays __consumer_offsets. */
    bt_fixture_t g;
    fixture_on(&g, f.dir);
    bt_start(&g);
    bt_run(&g, client_reloaded);
    bt_fixture_t h;
    fixture_on(&h, f.dir);
    bt_start(&h);
    bt_run(&h, client_deleted);
    bt_fini(&f);
}

/* ---- internal members (a sink of the collector) ---- */

/* ConsumerProtocolSubscription v0 of [gt] and ConsumerProtocolAssignment v0 of gt [0, 1]. */
static const uint8_t internal_sub[] = {0, 0, 0, 0, 0, 1, 0, 2, 'g', 't', 0xff, 0xff, 0xff, 0xff};
static const uint8_t internal_asg[] = {0, 0, 0, 0, 0, 1, 0, 2, 'g', 't',  0,    0,    0,
                                       2, 0, 0, 0, 0, 0, 0, 0, 1,   0xff, 0xff, 0xff, 0xff};

static void client_internal(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    BT_CHECK(f, fd >= 0);
    trib_arena_t a;
    trib_arena_init(&a);
    /* Tools see a Stable consumer group with the sink as its member. */
    DescribeGroupsRequest dr;
    DescribeGroupsRequest_init(&dr);
    trib_kstr_t g = trib_kstr(GROUP);
    dr.Groups.items = &g;
    dr.Groups.count = 1;
    DescribeGroupsResponse dp;
    BT_CHECK(f, bt_call(fd, 15, 5, &dr, &dp, &a) == 0 && dp.Groups.count == 1);
    const DescribeGroupsResponse_DescribedGroup *dg = &dp.Groups.items[0];
    BT_CHECK(f, cli_eq(dg->GroupState, "Stable") && cli_eq(dg->ProtocolType, "consumer") &&
                    cli_eq(dg->ProtocolData, COLL_GROUP_INTERNAL_PROTOCOL) &&
                    dg->Members.count == 1);
    if (dg->Members.count == 1) {
        const DescribeGroupsResponse_DescribedGroupMember *m = &dg->Members.items[0];
        BT_CHECK(f, cli_eq(m->MemberId, "sink-x-1") && cli_eq(m->ClientId, "tributary-sink"));
        BT_CHECK(f, m->MemberAssignment.len == (int32_t)sizeof(internal_asg) &&
                        memcmp(m->MemberAssignment.ptr, internal_asg, sizeof(internal_asg)) == 0);
        BT_CHECK(f, m->MemberMetadata.len == (int32_t)sizeof(internal_sub));
    }
    /* A client cannot join, even offering the same protocol. */
    JoinGroupRequest jr;
    join_init(&jr, NULL, NULL);
    JoinGroupRequest_JoinGroupRequestProtocol same = {
        .Name = trib_kstr(COLL_GROUP_INTERNAL_PROTOCOL),
        .Metadata = {internal_sub, (int32_t)sizeof(internal_sub)},
    };
    jr.Protocols.items = &same;
    JoinGroupResponse jp;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0 &&
                    jp.ErrorCode == TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL);
    join_init(&jr, "sink-x-1", NULL);
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0 &&
                    jp.ErrorCode == TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL);
    /* Nor act as the sink's member, nor commit from outside. */
    for (int32_t gen = 0; gen < 4; gen++) {
        BT_CHECK(f, heartbeat(fd, 3, "sink-x-1", gen) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
        BT_CHECK(f, commit(fd, 8, "sink-x-1", gen, 0, 0) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    }
    BT_CHECK(f, commit(fd, 8, "", -1, 0, 0) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    BT_CHECK(f, commit(fd, 2, "", -1, 0, 0) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == 7);
    LeaveGroupRequest lr;
    LeaveGroupRequest_init(&lr);
    lr.GroupId = trib_kstr(GROUP);
    lr.MemberId = trib_kstr("sink-x-1");
    LeaveGroupResponse lp;
    BT_CHECK(f,
             bt_call(fd, 13, 0, &lr, &lp, &a) == 0 && lp.ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    DeleteGroupsRequest gr;
    DeleteGroupsRequest_init(&gr);
    gr.GroupsNames.items = &g;
    gr.GroupsNames.count = 1;
    DeleteGroupsResponse gp;
    BT_CHECK(f, bt_call(fd, 42, 1, &gr, &gp, &a) == 0 && gp.Results.count == 1 &&
                    gp.Results.items[0].ErrorCode == TRIB_KAFKA_NON_EMPTY_GROUP);
    int32_t members = -1;
    BT_CHECK(f, strcmp(describe_state(fd, &a, &members), "Stable") == 0 && members == 1);
    trib_arena_fini(&a);
    close(fd);
}

static void test_internal_member(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    coll_groups_t *g = f.srv->groups;
    coll_ginternal_t in = {
        .member_id = "sink-x-1",
        .client_id = "tributary-sink",
        .client_host = "/here",
        .subscription = internal_sub,
        .subscription_len = (int32_t)sizeof(internal_sub),
        .assignment = internal_asg,
        .assignment_len = (int32_t)sizeof(internal_asg),
    };
    assert_int_equal(coll_group_internal_set(g, GROUP, &in), 0);
    coll_group_t *grp = coll_groups_find(g, GROUP, strlen(GROUP));
    assert_non_null(grp);
    int32_t gen = grp->generation;
    assert_int_equal(coll_group_internal_set(g, GROUP, &in), 0); /* nothing new */
    assert_int_equal(grp->generation, gen);
    coll_group_t *cg = NULL;
    assert_int_equal(coll_group_internal_commit_check(g, GROUP, "sink-x-1", &cg), 0);
    assert_ptr_equal(cg, grp);
    assert_int_equal(coll_group_commit(g, cg, trib_kstr(TOPIC), 0, 7, -1, trib_kstr(NULL)), 0);
    assert_int_equal(coll_group_internal_commit_check(g, GROUP, "sink-y-1", &cg),
                     TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    bt_run(&f, client_internal);
    bt_fini(&f);
}

/* ---- session expiry and static members ---- */

static void client_expiry(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), fd2 = bt_connect(f->port);
    BT_CHECK(f, fd >= 0 && fd2 >= 0);
    trib_arena_t a;
    trib_arena_init(&a);
    /* A static member (v5, instance id): no MEMBER_ID_REQUIRED. */
    JoinGroupRequest jr;
    join_init(&jr, NULL, "static-1");
    jr.SessionTimeoutMs = 2000;
    JoinGroupResponse jp;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0);
    BT_CHECK(f, jp.ErrorCode == 0 && jp.GenerationId == 1);
    char *leader = dupk(jp.MemberId);
    /* A second static member joins: both rejoin, generation 2. */
    int32_t c2;
    join_init(&jr, NULL, "static-2");
    jr.SessionTimeoutMs = 6000;
    BT_CHECK(f, send_req(fd2, 11, 5, &jr, &c2) == 0);
    for (int i = 0; i < 500 && heartbeat(fd, 3, leader, 1) == 0; i++) {
        usleep(10000); /* until the join arrived: the leader then sees the rebalance */
    }
    join_init(&jr, leader, "static-1");
    jr.SessionTimeoutMs = 2000;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0 && jp.GenerationId == 2);
    JoinGroupResponse jp2;
    BT_CHECK(f, bt_read_response(fd2, 11, 5, c2, &jp2, &a) == 0 && jp2.GenerationId == 2);
    char *follower = dupk(jp2.MemberId);
    SyncGroupRequest sr;
    SyncGroupRequest_init(&sr);
    sr.GroupId = trib_kstr(GROUP);
    sr.GenerationId = 2;
    sr.MemberId = trib_kstr(leader);
    SyncGroupResponse sp;
    BT_CHECK(f, bt_call(fd, 14, 3, &sr, &sp, &a) == 0 && sp.ErrorCode == 0);
    /* The follower restarts: same instance id, new member id, no rebalance. */
    BT_CHECK(f, heartbeat(fd, 3, leader, 2) == 0); /* the leader's session is fresh */
    join_init(&jr, NULL, "static-2");
    BT_CHECK(f, bt_call(fd2, 11, 5, &jr, &jp2, &a) == 0);
    BT_CHECK(f, jp2.ErrorCode == 0 && jp2.GenerationId == 2 && !cli_eq(jp2.MemberId, follower));
    BT_CHECK(f, heartbeat(fd2, 3, follower, 2) == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    char *follower2 = dupk(jp2.MemberId);
    /* The leader stops heartbeating: removed after its 2 s session; a rebalance starts. */
    uint64_t t0 = bt_now_ms();
    int16_t e = 0;
    while (bt_now_ms() - t0 < 10000 && (e = heartbeat(fd2, 3, follower2, 2)) == 0) {
        usleep(50000);
    }
    BT_CHECK(f, e == TRIB_KAFKA_REBALANCE_IN_PROGRESS);
    BT_CHECK(f, bt_now_ms() - t0 >= 200);
    join_init(&jr, follower2, "static-2");
    BT_CHECK(f, bt_call(fd2, 11, 5, &jr, &jp2, &a) == 0);
    BT_CHECK(f, jp2.ErrorCode == 0 && jp2.GenerationId == 3 && cli_eq(jp2.Leader, follower2));
    free(leader);
    free(follower);
    free(follower2);
    trib_arena_fini(&a);
    close(fd);
    close(fd2);
}

static void test_expiry_and_static(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_expiry);
    bt_fini(&f);
}

/* A connection that closes with a parked join leaves nothing dangling (ASan). */
static void client_parked_close(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), fd2 = bt_connect(f->port);
    trib_arena_t a;
    trib_arena_init(&a);
    JoinGroupRequest jr;
    join_init(&jr, NULL, "s1");
    JoinGroupResponse jp;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0 && jp.ErrorCode == 0);
    int32_t c2;
    join_init(&jr, NULL, "s2");
    BT_CHECK(f, send_req(fd2, 11, 5, &jr, &c2) == 0);
    int32_t nm = 0;
    for (int i = 0; i < 500 && nm != 2; i++) {
        describe_state(fd, &a, &nm); /* until s2's join is in (parked) */
        usleep(10000);
    }
    BT_CHECK(f, nm == 2);
    close(fd2); /* parked join gone with its connection */
    usleep(50000);
    /* s1 rejoins and parks (a third member, s3, is awaited); the server then stops
     * with that join parked: it is answered COORDINATOR_NOT_AVAILABLE. */
    int fd3 = bt_connect(f->port);
    join_init(&jr, NULL, "s3");
    jr.RebalanceTimeoutMs = 60000;
    BT_CHECK(f, send_req(fd3, 11, 5, &jr, &c2) == 0);
    nm = 0;
    for (int i = 0; i < 500 && nm != 3; i++) {
        describe_state(fd, &a, &nm); /* until s3's join is in (parked) */
        usleep(10000);
    }
    BT_CHECK(f, nm == 3);
    int *held = malloc(2 * sizeof(int));
    held[0] = fd3;
    held[1] = c2;
    f->user = held;
    trib_arena_fini(&a);
    close(fd); /* s1 gone too: the server stops with s3's join parked */
}

static void test_parked_close(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_parked_close);
    int *held = f.user;
    trib_arena_t a;
    trib_arena_init(&a);
    JoinGroupResponse jp;
    assert_int_equal(bt_read_response(held[0], 11, 5, held[1], &jp, &a), 0);
    assert_int_equal(jp.ErrorCode, TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE);
    trib_arena_fini(&a);
    close(held[0]);
    free(held);
    bt_fini(&f);
}

/* The records in __consumer_offsets are Kafka's OffsetCommitKey v1 / OffsetCommitValue v3. */
static void client_format(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t me;
    int32_t mnp;
    BT_CHECK(f, bt_metadata(fd, 4, TOPIC, true, &me, &mnp) == 0 && me == 0);
    BT_CHECK(f, commit(fd, 2, "", -1, 1, 0x0102030405LL) == 0); /* metadata "m" */
    int32_t part = coll_group_partition_for(GROUP, strlen(GROUP), 50);
    trib_buf_t b;
    trib_buf_init(&b);
    int16_t e = -1;
    int64_t hw = -1;
    BT_CHECK(f, bt_fetch(fd, 4, COLL_OFFSETS_TOPIC, part, 0, 0, 0, 1 << 20, &e, &hw, &b) == 0);
    BT_CHECK(f, e == 0 && hw == 1);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, p, n, 0);
    trib_batch_t bt;
    BT_CHECK(f, trib_batch_iter_next(&it, &bt) == 1);
    trib_record_iter_t ri;
    BT_CHECK(f, trib_record_iter_init(&ri, &bt, NULL, 1 << 20) == 0);
    trib_record_t rec;
    BT_CHECK(f, trib_record_iter_next(&ri, &rec) == 1);
    /* key: version 1, group, topic, partition */
    static const uint8_t key[] = {0,   1, 0, 6,   'g', '-', 'u', 'n', 'i',
                                  't', 0, 2, 'g', 't', 0,   0,   0,   1};
    BT_CHECK(f, rec.key.len == (int32_t)sizeof(key) && !memcmp(rec.key.ptr, key, sizeof(key)));
    /* value: version 3, offset, leader epoch -1, metadata "m", commit timestamp */
    static const uint8_t val[] = {0, 3, 0, 0, 0, 1, 2, 3, 4, 5, 0xff, 0xff, 0xff, 0xff, 0, 1, 'm'};
    BT_CHECK(f,
             rec.value.len == (int32_t)sizeof(val) + 8 && !memcmp(rec.value.ptr, val, sizeof(val)));
    trib_record_iter_fini(&ri);
    /* The offsets of one OffsetCommit are one batch. */
    trib_arena_t a;
    trib_arena_init(&a);
    OffsetCommitRequest_OffsetCommitRequestPartition ps[2];
    for (int i = 0; i < 2; i++) {
        OffsetCommitRequest_OffsetCommitRequestPartition_init(&ps[i]);
        ps[i].PartitionIndex = i;
        ps[i].CommittedOffset = 7 + i;
    }
    OffsetCommitRequest_OffsetCommitRequestTopic ct;
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&ct);
    ct.Name = trib_kstr(TOPIC);
    ct.Partitions.items = ps;
    ct.Partitions.count = 2;
    OffsetCommitRequest cr;
    OffsetCommitRequest_init(&cr);
    cr.GroupId = trib_kstr(GROUP);
    cr.Topics.items = &ct;
    cr.Topics.count = 1;
    OffsetCommitResponse cresp;
    BT_CHECK(f, bt_call(fd, 8, 8, &cr, &cresp, &a) == 0);
    BT_CHECK(f, cresp.Topics.items[0].Partitions.items[1].ErrorCode == 0);
    trib_buf_reset(&b);
    BT_CHECK(f, bt_fetch(fd, 4, COLL_OFFSETS_TOPIC, part, 1, 0, 0, 1 << 20, &e, &hw, &b) == 0);
    BT_CHECK(f, e == 0 && hw == 3);
    p = trib_buf_flatten(&b, &n);
    trib_batch_iter_init(&it, p, n, 0);
    BT_CHECK(f, trib_batch_iter_next(&it, &bt) == 1 && bt.record_count == 2);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == 7 && fetch_offset(fd, 8, 1) == 8);
    trib_arena_fini(&a);
    trib_buf_fini(&b);
    close(fd);
}

static void test_record_format(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_format);
    bt_fini(&f);
}

/* Many groups (the id table grows): each keeps its own offset; deleted ones are gone. */
static int16_t commit_group(int fd, const char *group, int64_t offset)
{
    trib_arena_t a;
    trib_arena_init(&a);
    OffsetCommitRequest_OffsetCommitRequestPartition p;
    OffsetCommitRequest_OffsetCommitRequestPartition_init(&p);
    p.CommittedOffset = offset;
    OffsetCommitRequest_OffsetCommitRequestTopic t;
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&t);
    t.Name = trib_kstr(TOPIC);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    OffsetCommitRequest req;
    OffsetCommitRequest_init(&req);
    req.GroupId = trib_kstr(group);
    req.Topics.items = &t;
    req.Topics.count = 1;
    OffsetCommitResponse resp;
    int16_t e = -1;
    if (bt_call(fd, 8, 2, &req, &resp, &a) == 0) {
        e = resp.Topics.items[0].Partitions.items[0].ErrorCode;
    }
    trib_arena_fini(&a);
    return e;
}

static void client_many_groups(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t me;
    int32_t mnp;
    BT_CHECK(f, bt_metadata(fd, 4, TOPIC, true, &me, &mnp) == 0 && me == 0);
    char id[32];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "many-%d", i);
        BT_CHECK(f, commit_group(fd, id, 1000 + i) == 0);
    }
    trib_arena_t a;
    trib_arena_init(&a);
    trib_kstr_t del[150];
    char names[150][32];
    for (int i = 0; i < 150; i++) {
        snprintf(names[i], sizeof(names[i]), "many-%d", 2 * i);
        del[i] = trib_kstr(names[i]);
    }
    DeleteGroupsRequest dr;
    DeleteGroupsRequest_init(&dr);
    dr.GroupsNames.items = del;
    dr.GroupsNames.count = 150;
    DeleteGroupsResponse dp;
    BT_CHECK(f, bt_call(fd, 42, 2, &dr, &dp, &a) == 0 && dp.Results.count == 150);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof(id), "many-%d", i);
        OffsetFetchRequest_OffsetFetchRequestTopics t;
        OffsetFetchRequest_OffsetFetchRequestTopics_init(&t);
        int32_t part = 0;
        t.Name = trib_kstr(TOPIC);
        t.PartitionIndexes.items = &part;
        t.PartitionIndexes.count = 1;
        OffsetFetchRequest_OffsetFetchRequestGroup g;
        OffsetFetchRequest_OffsetFetchRequestGroup_init(&g);
        g.GroupId = trib_kstr(id);
        g.Topics.items = &t;
        g.Topics.count = 1;
        OffsetFetchRequest req;
        OffsetFetchRequest_init(&req);
        req.Groups.items = &g;
        req.Groups.count = 1;
        OffsetFetchResponse resp;
        BT_CHECK(f, bt_call(fd, 9, 9, &req, &resp, &a) == 0);
        int64_t off = resp.Groups.items[0].Topics.items[0].Partitions.items[0].CommittedOffset;
        BT_CHECK(f, off == (i % 2 ? 1000 + i : -1));
    }
    ListGroupsRequest lr;
    ListGroupsRequest_init(&lr);
    ListGroupsResponse lp;
    BT_CHECK(f, bt_call(fd, 16, 5, &lr, &lp, &a) == 0 && lp.Groups.count == 150);
    trib_arena_fini(&a);
    close(fd);
}

static void test_many_groups(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_many_groups);
    bt_fini(&f);
}

/* A member that heartbeats but does not rejoin is dropped at the rebalance timeout. */
static void client_rebalance_timeout(bt_fixture_t *f)
{
    int fd = bt_connect(f->port), fd2 = bt_connect(f->port);
    trib_arena_t a;
    trib_arena_init(&a);
    JoinGroupRequest jr;
    join_init(&jr, NULL, "a");
    jr.RebalanceTimeoutMs = 400;
    JoinGroupResponse jp;
    BT_CHECK(f, bt_call(fd, 11, 5, &jr, &jp, &a) == 0 && jp.GenerationId == 1);
    char *ma = dupk(jp.MemberId);
    SyncGroupRequest sr;
    SyncGroupRequest_init(&sr);
    sr.GroupId = trib_kstr(GROUP);
    sr.GenerationId = 1;
    sr.MemberId = trib_kstr(ma);
    SyncGroupResponse sp;
    BT_CHECK(f, bt_call(fd, 14, 3, &sr, &sp, &a) == 0 && sp.ErrorCode == 0);
    int32_t c2;
    join_init(&jr, NULL, "b");
    jr.RebalanceTimeoutMs = 400;
    uint64_t t0 = bt_now_ms();
    BT_CHECK(f, send_req(fd2, 11, 5, &jr, &c2) == 0);
    /* a keeps its session alive but never rejoins */
    int16_t e = 0;
    while (bt_now_ms() - t0 < 3000 &&
           (e = heartbeat(fd, 3, ma, 1)) != TRIB_KAFKA_UNKNOWN_MEMBER_ID) {
        usleep(50000);
    }
    BT_CHECK(f, e == TRIB_KAFKA_UNKNOWN_MEMBER_ID);
    JoinGroupResponse jp2;
    BT_CHECK(f, bt_read_response(fd2, 11, 5, c2, &jp2, &a) == 0);
    BT_CHECK(f, jp2.ErrorCode == 0 && jp2.GenerationId == 2 && jp2.Members.count == 1);
    BT_CHECK(f, cli_eq(jp2.Leader, "") == false && bt_now_ms() - t0 >= 350);
    free(ma);
    trib_arena_fini(&a);
    close(fd);
    close(fd2);
}

static void test_rebalance_timeout(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_rebalance_timeout);
    bt_fini(&f);
}

/* Every advertised version of every group API answers (and the connection stays up). */
static void client_versions(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t me;
    int32_t mnp;
    BT_CHECK(f, bt_metadata(fd, 4, TOPIC, true, &me, &mnp) == 0 && me == 0);
    for (int16_t v = 0; v <= 9; v++) {
        trib_arena_t a;
        trib_arena_init(&a);
        char gid[32];
        snprintf(gid, sizeof(gid), "g-v%d", (int)v);
        if (v <= 4) {
            FindCoordinatorRequest req;
            FindCoordinatorRequest_init(&req);
            trib_kstr_t key = trib_kstr(gid);
            if (v >= 4) {
                req.CoordinatorKeys.items = &key;
                req.CoordinatorKeys.count = 1;
            } else {
                req.Key = key;
            }
            FindCoordinatorResponse resp;
            BT_CHECK(f, bt_call(fd, 10, v, &req, &resp, &a) == 0);
            BT_CHECK(f, (v >= 4 ? resp.Coordinators.items[0].NodeId : resp.NodeId) == 1);
        }
        JoinGroupRequest jr;
        join_init(&jr, NULL, NULL);
        jr.GroupId = trib_kstr(gid);
        JoinGroupResponse jp;
        BT_CHECK(f, bt_call(fd, 11, v, &jr, &jp, &a) == 0);
        BT_CHECK(f, jp.ErrorCode == (v >= 4 ? TRIB_KAFKA_MEMBER_ID_REQUIRED : 0));
        if (v >= 4) {
            jr.MemberId = jp.MemberId;
            BT_CHECK(f, bt_call(fd, 11, v, &jr, &jp, &a) == 0 && jp.ErrorCode == 0);
        }
        trib_kstr_t member = jp.MemberId;
        int32_t gen = jp.GenerationId;
        {
            int16_t sv = v > 5 ? 5 : v; /* SyncGroup 0-5: a v6+ join is synced with v5 */
            SyncGroupRequest sr;
            SyncGroupRequest_init(&sr);
            sr.GroupId = trib_kstr(gid);
            sr.GenerationId = gen;
            sr.MemberId = member;
            SyncGroupResponse sp;
            BT_CHECK(f, bt_call(fd, 14, sv, &sr, &sp, &a) == 0 && sp.ErrorCode == 0);
        }
        {
            int16_t hv = v > 4 ? 4 : v;
            HeartbeatRequest hr;
            HeartbeatRequest_init(&hr);
            hr.GroupId = trib_kstr(gid);
            hr.GenerationId = gen;
            hr.MemberId = member;
            HeartbeatResponse hp;
            BT_CHECK(f, bt_call(fd, 12, hv, &hr, &hp, &a) == 0 && hp.ErrorCode == 0);
        }
        OffsetCommitRequest_OffsetCommitRequestPartition cp;
        OffsetCommitRequest_OffsetCommitRequestPartition_init(&cp);
        cp.CommittedOffset = 3;
        OffsetCommitRequest_OffsetCommitRequestTopic ct;
        OffsetCommitRequest_OffsetCommitRequestTopic_init(&ct);
        ct.Name = trib_kstr(TOPIC);
        ct.Partitions.items = &cp;
        ct.Partitions.count = 1;
        OffsetCommitRequest cr;
        OffsetCommitRequest_init(&cr);
        cr.GroupId = trib_kstr(gid);
        if (v >= 1) {
            cr.GenerationIdOrMemberEpoch = gen;
            cr.MemberId = member;
        }
        cr.Topics.items = &ct;
        cr.Topics.count = 1;
        OffsetCommitResponse cresp;
        /* v0 is a standalone commit: the group has a member, so it is refused. */
        BT_CHECK(f, bt_call(fd, 8, v, &cr, &cresp, &a) == 0);
        BT_CHECK(f, cresp.Topics.items[0].Partitions.items[0].ErrorCode ==
                        (v == 0 ? TRIB_KAFKA_UNKNOWN_MEMBER_ID : 0));
        OffsetFetchRequest fr;
        OffsetFetchRequest_init(&fr);
        OffsetFetchRequest_OffsetFetchRequestGroup fg;
        OffsetFetchRequest_OffsetFetchRequestGroup_init(&fg);
        fg.GroupId = trib_kstr(gid);
        fg.Topics.count = -1;
        if (v >= 8) {
            fr.Groups.items = &fg;
            fr.Groups.count = 1;
        } else {
            fr.GroupId = trib_kstr(gid);
            fr.Topics.count = v >= 2 ? -1 : 0;
        }
        OffsetFetchResponse fp;
        BT_CHECK(f, bt_call(fd, 9, v, &fr, &fp, &a) == 0);
        if (v >= 8) {
            BT_CHECK(f, fp.Groups.count == 1 && fp.Groups.items[0].Topics.count == 1);
        } else if (v >= 2) {
            BT_CHECK(f, fp.Topics.count == 1); /* Topics null: every committed offset */
        }
        {
            int16_t dv = v > 5 ? 5 : v;
            DescribeGroupsRequest dr;
            DescribeGroupsRequest_init(&dr);
            trib_kstr_t g = trib_kstr(gid);
            dr.Groups.items = &g;
            dr.Groups.count = 1;
            dr.IncludeAuthorizedOperations = dv >= 3;
            DescribeGroupsResponse dp;
            BT_CHECK(f, bt_call(fd, 15, dv, &dr, &dp, &a) == 0);
            BT_CHECK(f, dp.Groups.count == 1 && dp.Groups.items[0].Members.count == 1);
            ListGroupsRequest lr;
            ListGroupsRequest_init(&lr);
            ListGroupsResponse lp;
            BT_CHECK(f, bt_call(fd, 16, dv, &lr, &lp, &a) == 0 && lp.Groups.count >= 1);
            LeaveGroupRequest lv;
            LeaveGroupRequest_init(&lv);
            lv.GroupId = trib_kstr(gid);
            LeaveGroupRequest_MemberIdentity id;
            LeaveGroupRequest_MemberIdentity_init(&id);
            id.MemberId = member;
            if (dv >= 3) {
                lv.Members.items = &id;
                lv.Members.count = 1;
            } else {
                lv.MemberId = member;
            }
            LeaveGroupResponse lvp;
            BT_CHECK(f, bt_call(fd, 13, dv, &lv, &lvp, &a) == 0 && lvp.ErrorCode == 0);
        }
        if (v <= 2) {
            DeleteGroupsRequest dr;
            DeleteGroupsRequest_init(&dr);
            trib_kstr_t g = trib_kstr(gid);
            dr.GroupsNames.items = &g;
            dr.GroupsNames.count = 1;
            DeleteGroupsResponse dp;
            BT_CHECK(f, bt_call(fd, 42, v, &dr, &dp, &a) == 0);
            BT_CHECK(f, dp.Results.count == 1 && dp.Results.items[0].ErrorCode == 0);
        }
        trib_arena_fini(&a);
    }
    close(fd);
}

static void test_versions(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    bt_start(&f);
    bt_run(&f, client_versions);
    bt_fini(&f);
}

/* Offsets of an empty group expire after offsets.retention (tombstoned, gone after a restart). */
static void client_retention(bt_fixture_t *f)
{
    int fd = bt_connect(f->port);
    int16_t me;
    int32_t mnp;
    BT_CHECK(f, bt_metadata(fd, 4, TOPIC, true, &me, &mnp) == 0 && me == 0);
    uint64_t t0 = bt_now_ms();
    BT_CHECK(f, commit(fd, 2, "", -1, 0, 5) == 0);
    BT_CHECK(f, fetch_offset(fd, 1, 0) == 5);
    while (bt_now_ms() - t0 < 10000 && fetch_offset(fd, 1, 0) == 5) {
        usleep(20000);
    }
    BT_CHECK(f, fetch_offset(fd, 1, 0) == -1);
    BT_CHECK(f, bt_now_ms() - t0 >= 900); /* retention 1 s */
    close(fd);
}

static void test_offsets_retention(void **state)
{
    (void)state;
    bt_fixture_t f;
    fixture_on(&f, NULL);
    f.svcfg.groups.offsets_retention_ms = 1000;
    f.svcfg.groups.offsets_retention_check_ms = 50;
    bt_start(&f);
    bt_run(&f, client_retention);
    bt_fixture_t g;
    fixture_on(&g, f.dir);
    bt_start(&g);
    bt_run(&g, client_deleted);
    bt_fini(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_hash),    cmocka_unit_test(test_protocol_and_reload),
        cmocka_unit_test(test_expiry_and_static), cmocka_unit_test(test_parked_close),
        cmocka_unit_test(test_offsets_retention), cmocka_unit_test(test_rebalance_timeout),
        cmocka_unit_test(test_versions),          cmocka_unit_test(test_record_format),
        cmocka_unit_test(test_many_groups),       cmocka_unit_test(test_internal_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
