/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The follower's truncation decision (replica/truncate.h): the pure rules,
 * then KIP-101's and KIP-279's scenarios played on real logs. A leader is
 * a log too: its answer to OffsetForLeaderEpoch is what the storage's
 * epoch cache answers (coll_log_end_offset_for_epoch), as the leader side
 * serves it. Each scenario checks that the follower ends as a prefix of
 * the leader (no divergent tail) and keeps every record the two share
 * (nothing acknowledged is cut), which truncating to the high watermark
 * breaks.
 */
#include "../storage/storage_test.h"

#include "replica/truncate.h"

/* ---- the pure rules ------------------------------------------------------------------- */

static void test_decide_rules(void **state)
{
    (void)state;
    int64_t off;
    /* UNDEFINED: nothing is cut, ask again later (never the high watermark). */
    assert_int_equal(coll_trunc_decide(-1, -1, -1, -1, 10, &off), COLL_TRUNC_RETRY);
    assert_int_equal(off, 10);
    assert_int_equal(coll_trunc_decide(3, -1, 3, 7, 10, &off), COLL_TRUNC_RETRY);
    assert_int_equal(off, 10);
    /* No epoch in the answer (v0 shape): the leader's offset, at most the log end. */
    assert_int_equal(coll_trunc_decide(-1, 4, -1, -1, 10, &off), COLL_TRUNC_DONE);
    assert_int_equal(off, 4);
    assert_int_equal(coll_trunc_decide(-1, 40, -1, -1, 10, &off), COLL_TRUNC_DONE);
    assert_int_equal(off, 10);
    /* The same epoch on both sides: min(leader's end, ours, log end). */
    assert_int_equal(coll_trunc_decide(2, 8, 2, 10, 12, &off), COLL_TRUNC_DONE);
    assert_int_equal(off, 8);
    assert_int_equal(coll_trunc_decide(2, 15, 2, 10, 12, &off), COLL_TRUNC_DONE);
    assert_int_equal(off, 10);
    assert_int_equal(coll_trunc_decide(2, 15, 2, 12, 12, &off), COLL_TRUNC_DONE);
    assert_int_equal(off, 12);
    /* An epoch we lack: cut to the end of our largest epoch below it, ask again. */
    assert_int_equal(coll_trunc_decide(3, 8, 2, 6, 12, &off), COLL_TRUNC_AGAIN);
    assert_int_equal(off, 6);
    /* No local epoch at or below the answer: the leader's offset. */
    assert_int_equal(coll_trunc_decide(1, 5, -1, -1, 12, &off), COLL_TRUNC_DONE);
    assert_int_equal(off, 5);
}

/* ---- logs built from (offset, epoch) histories -------------------------------------------- */

/* Appends one one-record batch at offset `off` written in leader epoch `epoch`. */
static void put(coll_log_t *log, int64_t off, int32_t epoch, const char *who)
{
    trib_buf_t b;
    trib_buf_init(&b);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.base_offset = off;
    o.partition_leader_epoch = epoch;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &b, &o), 0);
    char v[64];
    int n = snprintf(v, sizeof(v), "%s-e%d-o%lld", who, (int)epoch, (long long)off);
    trib_record_in_t rin = {.key = trib_record_bytes("k", 1),
                            .value = trib_record_bytes(v, (size_t)n)};
    assert_int_equal(trib_batch_builder_add_at(&bb, 0, &rin), 0);
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    size_t len;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &len);
    assert_int_equal(coll_log_append(log, p, len, 0, COLL_APPEND_FOLLOWER, NULL), 0);
    trib_buf_fini(&b);
}

/* Appends records for epochs[0..n) at offsets from the log end. */
static void history(coll_log_t *log, const int32_t *epochs, size_t n, const char *who)
{
    for (size_t i = 0; i < n; i++) {
        put(log, coll_log_end_offset(log), epochs[i], who);
    }
}

/* The leader epoch of every offset of the log (one-record batches), into out[0..LEO). */
static size_t epochs_of(coll_log_t *log, int32_t *out, size_t max)
{
    seen_t s;
    memset(&s, 0, sizeof(s));
    read_all(log, 0, 1 << 20, &s);
    size_t n = 0;
    for (size_t i = 0; i < s.n && n < max; i++) {
        /* The value says who wrote it in which epoch: "<who>-e<epoch>-o<offset>". */
        const char *e = strstr(s.v[i].value, "-e");
        assert_non_null(e);
        assert_int_equal(s.v[i].offset, (int64_t)n);
        out[n++] = (int32_t)atoi(e + 2);
    }
    seen_fini(&s);
    return n;
}

/*
 * Plays the follower's truncation against the leader: ask with the latest
 * local epoch, decide, cut, until done. Returns the rounds it took.
 */
static int converge(coll_log_t *follower, coll_log_t *leader)
{
    for (int round = 1; round <= 32; round++) {
        int32_t asked = coll_log_latest_epoch(follower);
        if (asked < 0) {
            return round; /* empty: nothing to cut */
        }
        int32_t le;
        int64_t lend;
        coll_log_end_offset_for_epoch(leader, asked, &le, &lend);
        int64_t off;
        coll_trunc_action_t a = coll_trunc_decide_log(follower, le, lend, &off);
        assert_int_not_equal(a, COLL_TRUNC_RETRY);
        assert_true(coll_trunc_apply(follower, off) >= 0);
        if (a == COLL_TRUNC_DONE) {
            return round;
        }
    }
    fail_msg("truncation did not converge in 32 rounds");
    return -1;
}

/*
 * The follower after truncation is a prefix of the leader, and no shorter
 * than the records both logs share from the start (`common`).
 */
static void check_prefix(coll_log_t *follower, coll_log_t *leader, size_t common)
{
    int32_t fe[256], le[256];
    size_t nf = epochs_of(follower, fe, 256), nl = epochs_of(leader, le, 256);
    assert_int_equal(nf, (size_t)coll_log_end_offset(follower));
    assert_true(nf <= nl);
    for (size_t i = 0; i < nf; i++) {
        if (fe[i] != le[i]) {
            fail_msg("offset %zu: follower epoch %d, leader epoch %d (divergent)", i, fe[i], le[i]);
        }
    }
    if (nf < common) {
        fail_msg("the follower cut to %zu, below the %zu records it shares with the leader", nf,
                 common);
    }
}

typedef struct scen {
    fixture_t fx;
    coll_log_t *f, *l;
} scen_t;

static void scen_open(scen_t *s)
{
    fx_init(&s->fx);
    fx_open(&s->fx);
    s->f = fx_log(&s->fx, "follower", 0, NULL);
    s->l = fx_log(&s->fx, "leader", 0, NULL);
}

static void scen_close(scen_t *s)
{
    fx_fini(&s->fx);
}

/*
 * KIP-101 scenario 1: the follower B holds m0, m1 (epoch 0) but its high
 * watermark is 1 (the leader A's HW advanced to 2 and the ack went out,
 * B had not heard yet). B restarts: truncating to its HW would cut the
 * acknowledged m1, and if A dies B leads without it. By epoch, B keeps m1.
 */
static void test_kip101_hw_lag(void **state)
{
    (void)state;
    scen_t s;
    scen_open(&s);
    int32_t e[] = {0, 0};
    history(s.l, e, 2, "A");
    history(s.f, e, 2, "A");
    coll_log_set_high_watermark(s.l, 2);
    coll_log_set_high_watermark(s.f, 1);
    assert_int_equal(converge(s.f, s.l), 1);
    assert_int_equal(coll_log_end_offset(s.f), 2);
    check_prefix(s.f, s.l, 2);
    scen_close(&s);
}

/*
 * KIP-101 scenario 2: A holds m0, m1 (epoch 0, HW 2), B holds m0 (HW 1).
 * Both lose power; B comes back first, leads epoch 1 and writes m2 at
 * offset 1. A comes back as follower: by its HW it would keep m1 at
 * offset 1 (logs diverge forever); by epoch it cuts to 1 and then fetches m2.
 */
static void test_kip101_divergence(void **state)
{
    (void)state;
    scen_t s;
    scen_open(&s);
    int32_t a[] = {0, 0};
    history(s.f, a, 2, "A");
    coll_log_set_high_watermark(s.f, 2);
    put(s.l, 0, 0, "A");
    put(s.l, 1, 1, "B");
    coll_log_set_high_watermark(s.l, 1);
    assert_int_equal(converge(s.f, s.l), 1);
    assert_int_equal(coll_log_end_offset(s.f), 1);
    check_prefix(s.f, s.l, 1);
    scen_close(&s);
}

/*
 * KIP-279, a fast double failover: the follower's latest epoch is one the
 * leader never saw, and the leader's answer is an epoch the follower
 * lacks. Follower: epochs 1 [0,5), 2 [5,7), 4 [7,10). Leader: epochs 1
 * [0,3), 3 [3,8), and 5 from 8 (its own). Asked 4, the leader answers
 * (3, 8); the follower has no
 * epoch 3: it cuts to the end of epoch 2 (7) and asks again with 2; the
 * leader answers (1, 3): cut to 3, the common prefix.
 */
static void test_kip279_double_failover(void **state)
{
    (void)state;
    scen_t s;
    scen_open(&s);
    int32_t f[] = {1, 1, 1, 1, 1, 2, 2, 4, 4, 4};
    int32_t l[] = {1, 1, 1, 3, 3, 3, 3, 3, 5};
    history(s.f, f, 10, "F");
    history(s.l, l, 9, "L");
    coll_log_set_high_watermark(s.f, 9); /* the HW is no guide: above the divergence */
    assert_int_equal(converge(s.f, s.l), 2);
    assert_int_equal(coll_log_end_offset(s.f), 3);
    check_prefix(s.f, s.l, 3);
    scen_close(&s);
}

/* A follower behind an identical leader keeps everything; an empty one asks nothing. */
static void test_behind_and_empty(void **state)
{
    (void)state;
    scen_t s;
    scen_open(&s);
    int32_t l[] = {0, 0, 2, 2, 5, 5, 5};
    history(s.f, l, 4, "L");
    history(s.l, l, 7, "L");
    assert_int_equal(converge(s.f, s.l), 1);
    assert_int_equal(coll_log_end_offset(s.f), 4);
    check_prefix(s.f, s.l, 4);
    coll_log_t *empty = fx_log(&s.fx, "empty", 0, NULL);
    assert_int_equal(converge(empty, s.l), 1);
    assert_int_equal(coll_log_end_offset(empty), 0);
    scen_close(&s);
}

/*
 * Histories from random elections: two replicas share a prefix, then each
 * leads in turn for a few records (epochs increase across the cluster, as
 * the controller assigns them); the one that led last is the leader. The
 * follower must end exactly at the first offset where the two differ.
 */
static void test_random_histories(void **state)
{
    (void)state;
    srand(12345);
    for (int iter = 0; iter < 60; iter++) {
        scen_t s;
        scen_open(&s);
        int32_t fe[64], le[64];
        size_t nf = 0, nl = 0;
        int32_t epoch = 0;
        size_t shared = (size_t)(rand() % 6);
        for (size_t i = 0; i < shared; i++) {
            if (rand() % 3 == 0) {
                epoch++;
            }
            fe[nf++] = le[nl++] = epoch;
        }
        /* Alternating leaderships after the split. */
        int turns = 1 + rand() % 4;
        for (int t = 0; t < turns; t++) {
            epoch += 1 + rand() % 2;
            int k = rand() % 4;
            bool to_follower = (t % 2 == 0) != (turns % 2 == 0);
            for (int i = 0; i < k; i++) {
                if (to_follower) {
                    fe[nf++] = epoch;
                } else {
                    le[nl++] = epoch;
                }
            }
        }
        /* The leader leads the newest epoch. */
        le[nl++] = epoch + 1;
        history(s.f, fe, nf, "F");
        history(s.l, le, nl, "L");
        size_t common = 0;
        while (common < nf && common < nl && fe[common] == le[common]) {
            common++;
        }
        coll_log_set_high_watermark(s.f, (int64_t)nf);
        converge(s.f, s.l);
        check_prefix(s.f, s.l, common);
        assert_int_equal(coll_log_end_offset(s.f), (int64_t)common);
        scen_close(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_rules),      cmocka_unit_test(test_kip101_hw_lag),
        cmocka_unit_test(test_kip101_divergence), cmocka_unit_test(test_kip279_double_failover),
        cmocka_unit_test(test_behind_and_empty),  cmocka_unit_test(test_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
