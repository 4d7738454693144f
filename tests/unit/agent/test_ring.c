/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ack ring behind at-least-once delivery: a file's checkpoint moves
 * only over the longest prefix of acknowledged events, whatever order the
 * delivery reports come in; events that need no delivery (filtered) move
 * it at once when nothing is in flight before them and queue behind
 * in-flight events otherwise; the ring grows past its first capacity; and
 * after a truncation the checkpoint is 0 until the old content's events are
 * all acknowledged, then follows the new content.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "input/tail.h"

typedef struct fixture {
    agent_ckpt_table_t ckpts;
    agent_input_host_t host;
    agent_pipeline_t pl;
    agent_input_t in;
    agent_file_t f;
    agent_ckpt_t ck;
} fixture_t;

static fixture_t *fx_new(void)
{
    fixture_t *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    x->host.ckpts = &x->ckpts;
    x->in.host = &x->host;
    x->in.pl = &x->pl;
    x->f.in = &x->in;
    x->f.ck = &x->ck;
    return x;
}

static void fx_free(fixture_t *x)
{
    free(x->f.ring);
    free(x);
}

static uint64_t push(agent_file_t *f, uint64_t end)
{
    assert_int_equal(agent_ring_reserve(f), 0);
    uint64_t seq = f->tail;
    agent_ring_push(f, end);
    return seq;
}

static void test_out_of_order(void **state)
{
    (void)state;
    fixture_t *x = fx_new();
    agent_file_t *f = &x->f;
    for (uint64_t i = 0; i < 10; i++) {
        push(f, (i + 1) * 10);
    }
    agent_ring_ack(f, 2);
    agent_ring_ack(f, 1);
    assert_int_equal(x->ck.offset, 0); /* event 0 is still in flight */
    agent_ring_ack(f, 0);
    assert_int_equal(x->ck.offset, 30);
    assert_true(x->ckpts.dirty);
    agent_ring_ack(f, 5);
    assert_int_equal(x->ck.offset, 30);
    agent_ring_ack(f, 3);
    agent_ring_ack(f, 4);
    assert_int_equal(x->ck.offset, 60);
    /* a filtered event behind in-flight ones waits its turn */
    assert_int_equal(agent_ring_done(f, 110), 0);
    assert_int_equal(x->ck.offset, 60);
    for (uint64_t s = 6; s < 10; s++) {
        agent_ring_ack(f, s);
    }
    assert_int_equal(x->ck.offset, 110);
    assert_int_equal(f->head, f->tail);
    /* nothing in flight: a filtered event moves the checkpoint at once */
    assert_int_equal(agent_ring_done(f, 120), 0);
    assert_int_equal(x->ck.offset, 120);
    assert_int_equal(f->head, f->tail);
    fx_free(x);
}

static void test_growth(void **state)
{
    (void)state;
    fixture_t *x = fx_new();
    agent_file_t *f = &x->f;
    /* wrap the ring, then grow it with entries that straddle the wrap */
    for (uint64_t i = 0; i < 40; i++) {
        agent_ring_ack(f, push(f, i + 1));
    }
    for (uint64_t i = 40; i < 1000; i++) {
        push(f, i + 1);
    }
    assert_true(f->rcap >= 960);
    for (uint64_t s = 999; s >= 40; s--) { /* reports in reverse */
        agent_ring_ack(f, s);
        assert_int_equal(x->ck.offset, s == 40 ? 1000 : 40);
    }
    fx_free(x);
}

static void test_truncation(void **state)
{
    (void)state;
    fixture_t *x = fx_new();
    agent_file_t *f = &x->f;
    push(f, 100);
    push(f, 200);
    /* the file is truncated while both are in flight (as tail.c does it) */
    f->trunc_seq = f->tail;
    f->trunc_pending = true;
    x->ck.offset = 0;
    push(f, 50); /* new content */
    agent_ring_ack(f, 2);
    agent_ring_ack(f, 0);
    assert_int_equal(x->ck.offset, 0); /* old content not all acknowledged */
    agent_ring_ack(f, 1);
    assert_int_equal(x->ck.offset, 50);
    assert_false(f->trunc_pending);
    fx_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
