/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ACL store and Kafka's authorization rules (collector/server/acl.c):
 * literal, '*' and prefixed patterns, DENY over ALLOW, the implied
 * operations, principals and hosts, ALLOW-on-some-resource, validation,
 * filters (MATCH included), and the file: parse errors, a save and load
 * round trip with percent-encoded fields, and its mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/acl.h"

static void add(coll_acls_t *a, int type, int pattern, const char *name, const char *principal,
                const char *host, int op, int perm)
{
    coll_acl_t x = {(int8_t)type, (int8_t)pattern,   (int8_t)op,  (int8_t)perm,
                    (char *)name, (char *)principal, (char *)host};
    assert_null(coll_acl_invalid(&x));
    assert_int_equal(coll_acls_add(a, &x), 0);
}

static bool can(const coll_acls_t *a, const char *who, int op, int type, const char *name)
{
    return coll_acls_authorize(a, who, "10.0.0.1", op, type, name, strlen(name));
}

static void test_rules(void **state)
{
    (void)state;
    coll_acls_t *a = coll_acls_new(NULL);
    assert_non_null(a);
    /* Nothing: denied. */
    assert_false(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "web.access"));
    add(a, COLL_RES_TOPIC, COLL_PAT_PREFIXED, "web.", "User:alice", "*", COLL_OP_READ,
        COLL_PERM_ALLOW);
    assert_true(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "web.access"));
    assert_true(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "web."));
    assert_false(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "web"));
    assert_false(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "db.x"));
    assert_false(can(a, "User:bob", COLL_OP_READ, COLL_RES_TOPIC, "web.access"));
    /* Another resource type with the same name is another resource. */
    assert_false(can(a, "User:alice", COLL_OP_READ, COLL_RES_GROUP, "web.access"));
    /* READ implies DESCRIBE, not WRITE or DESCRIBE_CONFIGS. */
    assert_true(can(a, "User:alice", COLL_OP_DESCRIBE, COLL_RES_TOPIC, "web.access"));
    assert_false(can(a, "User:alice", COLL_OP_WRITE, COLL_RES_TOPIC, "web.access"));
    assert_false(can(a, "User:alice", COLL_OP_DESCRIBE_CONFIGS, COLL_RES_TOPIC, "web.access"));
    /* DENY READ on a literal name wins over the prefixed ALLOW; DESCRIBE stays allowed. */
    add(a, COLL_RES_TOPIC, COLL_PAT_LITERAL, "web.access", "User:alice", "*", COLL_OP_READ,
        COLL_PERM_DENY);
    assert_false(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "web.access"));
    assert_true(can(a, "User:alice", COLL_OP_DESCRIBE, COLL_RES_TOPIC, "web.access"));
    assert_true(can(a, "User:alice", COLL_OP_READ, COLL_RES_TOPIC, "web.other"));
    /* ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL allows everything; '*' matches every name. */
    add(a, COLL_RES_TOPIC, COLL_PAT_LITERAL, "cfg", "User:carol", "*", COLL_OP_ALTER_CONFIGS,
        COLL_PERM_ALLOW);
    assert_true(can(a, "User:carol", COLL_OP_DESCRIBE_CONFIGS, COLL_RES_TOPIC, "cfg"));
    assert_false(can(a, "User:carol", COLL_OP_DESCRIBE, COLL_RES_TOPIC, "cfg"));
    add(a, COLL_RES_GROUP, COLL_PAT_LITERAL, "*", "User:dave", "*", COLL_OP_ALL, COLL_PERM_ALLOW);
    assert_true(can(a, "User:dave", COLL_OP_READ, COLL_RES_GROUP, "any-group"));
    assert_true(can(a, "User:dave", COLL_OP_DELETE, COLL_RES_GROUP, "x"));
    assert_false(can(a, "User:dave", COLL_OP_READ, COLL_RES_TOPIC, "x"));
    /* DENY ALL wins over ALLOW ALL; User:* is everyone. */
    add(a, COLL_RES_GROUP, COLL_PAT_PREFIXED, "secret", "User:*", "*", COLL_OP_ALL, COLL_PERM_DENY);
    assert_false(can(a, "User:dave", COLL_OP_DESCRIBE, COLL_RES_GROUP, "secret-1"));
    assert_true(can(a, "User:dave", COLL_OP_DESCRIBE, COLL_RES_GROUP, "public"));
    /* Hosts: an ACL for one address does not apply from another. */
    add(a, COLL_RES_CLUSTER, COLL_PAT_LITERAL, "kafka-cluster", "User:erin", "10.0.0.2",
        COLL_OP_ALTER, COLL_PERM_ALLOW);
    assert_false(can(a, "User:erin", COLL_OP_ALTER, COLL_RES_CLUSTER, "kafka-cluster"));
    assert_true(coll_acls_authorize(a, "User:erin", "10.0.0.2", COLL_OP_ALTER, COLL_RES_CLUSTER,
                                    "kafka-cluster", 13));
    /* WRITE on some topic (InitProducerId). */
    assert_false(coll_acls_authorize_any(a, "User:alice", "h", COLL_OP_WRITE, COLL_RES_TOPIC));
    add(a, COLL_RES_TOPIC, COLL_PAT_PREFIXED, "logs.", "User:alice", "*", COLL_OP_WRITE,
        COLL_PERM_ALLOW);
    assert_true(coll_acls_authorize_any(a, "User:alice", "h", COLL_OP_WRITE, COLL_RES_TOPIC));
    /* A DENY on a shorter prefix takes the whole ALLOW away; one on a longer prefix does not. */
    add(a, COLL_RES_TOPIC, COLL_PAT_PREFIXED, "logs.app.", "User:alice", "*", COLL_OP_WRITE,
        COLL_PERM_DENY);
    assert_true(coll_acls_authorize_any(a, "User:alice", "h", COLL_OP_WRITE, COLL_RES_TOPIC));
    add(a, COLL_RES_TOPIC, COLL_PAT_PREFIXED, "log", "User:alice", "*", COLL_OP_ALL,
        COLL_PERM_DENY);
    assert_false(coll_acls_authorize_any(a, "User:alice", "h", COLL_OP_WRITE, COLL_RES_TOPIC));
    /* The same ACL twice is kept once. */
    size_t n = coll_acls_count(a);
    add(a, COLL_RES_TOPIC, COLL_PAT_PREFIXED, "logs.app.", "User:alice", "*", COLL_OP_WRITE,
        COLL_PERM_DENY);
    assert_int_equal(coll_acls_count(a), n);
    coll_acls_free(a);
}

static void test_invalid_and_filters(void **state)
{
    (void)state;
    coll_acl_t x = {
        COLL_RES_CLUSTER, COLL_PAT_LITERAL, COLL_OP_ALTER, COLL_PERM_ALLOW, "other", "User:a", "*"};
    assert_non_null(coll_acl_invalid(&x)); /* the cluster is kafka-cluster */
    x.name = "kafka-cluster";
    assert_null(coll_acl_invalid(&x));
    x.principal = "alice";
    assert_non_null(coll_acl_invalid(&x)); /* TYPE:NAME */
    x.principal = "User:a";
    x.op = COLL_OP_ANY;
    assert_non_null(coll_acl_invalid(&x));
    x.op = COLL_OP_READ;
    x.perm = COLL_PERM_ANY;
    assert_non_null(coll_acl_invalid(&x));
    x.perm = COLL_PERM_DENY;
    x.type = COLL_RES_ANY;
    assert_non_null(coll_acl_invalid(&x));
    x.type = COLL_RES_TOPIC;
    x.pattern = COLL_PAT_MATCH;
    assert_non_null(coll_acl_invalid(&x));

    coll_acl_t lit = {COLL_RES_TOPIC, COLL_PAT_LITERAL, COLL_OP_READ, COLL_PERM_ALLOW,
                      "web.access",   "User:a",         "*"};
    coll_acl_t pre = {COLL_RES_TOPIC, COLL_PAT_PREFIXED, COLL_OP_READ, COLL_PERM_ALLOW,
                      "web.",         "User:a",          "*"};
    coll_acl_t star = {
        COLL_RES_TOPIC, COLL_PAT_LITERAL, COLL_OP_READ, COLL_PERM_ALLOW, "*", "User:a", "*"};
    coll_acl_filter_t any = {COLL_RES_ANY, COLL_PAT_ANY, COLL_OP_ANY, COLL_PERM_ANY,
                             NULL,         NULL,         NULL};
    assert_null(coll_acl_filter_invalid(&any));
    assert_true(coll_acl_filter_matches(&any, &lit));
    assert_true(coll_acl_filter_matches(&any, &pre));
    coll_acl_filter_t m = any;
    m.pattern = COLL_PAT_MATCH;
    m.name = "web.access";
    assert_true(coll_acl_filter_matches(&m, &lit));
    assert_true(coll_acl_filter_matches(&m, &pre));
    assert_true(coll_acl_filter_matches(&m, &star));
    m.name = "db.x";
    assert_false(coll_acl_filter_matches(&m, &pre));
    assert_true(coll_acl_filter_matches(&m, &star));
    coll_acl_filter_t l = any;
    l.pattern = COLL_PAT_LITERAL;
    l.name = "web.";
    assert_false(coll_acl_filter_matches(&l, &pre));
    l.pattern = COLL_PAT_PREFIXED;
    assert_true(coll_acl_filter_matches(&l, &pre));
    l.perm = COLL_PERM_DENY;
    assert_false(coll_acl_filter_matches(&l, &pre));
    coll_acl_filter_t bad = any;
    bad.op = 0;
    assert_non_null(coll_acl_filter_invalid(&bad));
}

static void test_file(void **state)
{
    (void)state;
    trib_error_t err;
    trib_error_clear(&err);
    coll_acls_t *a = coll_acls_new(NULL);
    static const char good[] = "# c\n\n"
                               "Topic Prefixed web. User:alice * Write Allow\n"
                               "group literal a%20b User:%25x 10.0.0.1 describe deny\r\n"
                               "TransactionalId Literal t User:y * All Allow\n";
    assert_int_equal(coll_acls_parse(a, good, sizeof(good) - 1, "f", &err), 0);
    assert_int_equal(coll_acls_count(a), 3);
    assert_string_equal(coll_acls_get(a, 1)->name, "a b");
    assert_string_equal(coll_acls_get(a, 1)->principal, "User:%x");
    static const char *const bad[] = {
        "Topic Prefixed web. User:alice * Write\n",
        "Topik Prefixed web. User:alice * Write Allow\n",
        "Topic Match web. User:alice * Write Allow\n",
        "Cluster Literal other User:alice * Alter Allow\n",
        "Topic Literal x alice * Read Allow\n",
        "Topic Literal x User:a * Any Allow\n",
        "Topic Literal x User:a * Read Any\n",
        "Topic Literal x%0 User:a * Read Allow\n",
        "Topic Literal x%00 User:a * Read Allow\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trib_error_clear(&err);
        assert_int_not_equal(coll_acls_parse(a, bad[i], strlen(bad[i]), "f", &err), 0);
    }

    char dir[] = "/tmp/trib-test-acl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    coll_acls_t *s = coll_acls_new(dir);
    trib_error_clear(&err);
    assert_int_equal(coll_acls_load(s, &err), 0); /* no file: empty */
    assert_int_equal(coll_acls_count(s), 0);
    add(s, COLL_RES_TOPIC, COLL_PAT_LITERAL, "with space\t%", "User:a b", "*", COLL_OP_READ,
        COLL_PERM_DENY);
    add(s, COLL_RES_CLUSTER, COLL_PAT_LITERAL, "kafka-cluster", "User:admin", "::1",
        COLL_OP_CLUSTER_ACTION, COLL_PERM_ALLOW);
    assert_int_equal(coll_acls_save(s), 0);
    char path[300];
    snprintf(path, sizeof(path), "%s/acls", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    coll_acls_t *t = coll_acls_new(dir);
    assert_int_equal(coll_acls_load(t, &err), 0);
    assert_int_equal(coll_acls_count(t), 2);
    const coll_acl_t *x = coll_acls_get(t, 0);
    assert_string_equal(x->name, "with space\t%");
    assert_string_equal(x->principal, "User:a b");
    assert_int_equal(x->perm, COLL_PERM_DENY);
    assert_int_equal(coll_acls_get(t, 1)->op, COLL_OP_CLUSTER_ACTION);
    assert_string_equal(coll_acls_get(t, 1)->host, "::1");
    /* clone + remove + replace */
    coll_acls_t *u = coll_acls_clone(t);
    assert_non_null(u);
    coll_acls_remove(u, 0);
    coll_acls_replace(t, u);
    assert_int_equal(coll_acls_count(t), 1);
    assert_string_equal(coll_acls_get(t, 0)->principal, "User:admin");
    coll_acls_free(t);
    coll_acls_free(s);
    coll_acls_free(a);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_invalid_and_filters),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
