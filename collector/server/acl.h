/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACLs with Kafka's model (the authorizer of a ZooKeeper-mode Kafka
 * broker, kafka.security.authorizer.AclAuthorizer):
 *
 *   an ACL = resource pattern (type, name, LITERAL or PREFIXED)
 *            + principal ("User:alice", or "User:*" for everyone)
 *            + host ("*" or an IP address) + operation + ALLOW or DENY
 *
 * Resources are topics, groups, the cluster (named "kafka-cluster") and
 * transactional ids. A literal name "*" matches every resource of its
 * type. An action (principal, host, operation, resource) is authorized
 * when the authorizer is off, or the principal is a super user, or no DENY
 * ACL matches it and an ALLOW ACL does; with no matching ACL it is denied
 * (allow.everyone.if.no.acl.found=false). A DENY ACL matches its own
 * operation and ALL; an ALLOW ACL of READ, WRITE, DELETE or ALTER also
 * allows DESCRIBE, one of ALTER_CONFIGS also DESCRIBE_CONFIGS, and ALL
 * allows everything.
 *
 * The store is <data_dir>/acls, text written whole and atomically before
 * a change is answered, one ACL a line ('#' lines and blank lines are
 * ignored):
 *
 *   # tributary ACLs (format 1)
 *   TYPE PATTERN NAME PRINCIPAL HOST OPERATION PERMISSION
 *   Topic Prefixed web. User:alice * Write Allow
 *
 * NAME, PRINCIPAL and HOST are percent-encoded as the credential store
 * does ('%' and bytes outside '!'..'~' as %XX); the other words are
 * Kafka's enum names, case-insensitive.
 */
#ifndef COLLECTOR_SERVER_ACL_H
#define COLLECTOR_SERVER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/error.h"

#define COLL_ACL_FILE "acls"
#define COLL_ACL_CLUSTER_NAME "kafka-cluster"

/* Kafka's wire codes (org.apache.kafka.common.resource.ResourceType etc.). */
enum {
    COLL_RES_UNKNOWN = 0,
    COLL_RES_ANY = 1,
    COLL_RES_TOPIC = 2,
    COLL_RES_GROUP = 3,
    COLL_RES_CLUSTER = 4,
    COLL_RES_TRANSACTIONAL_ID = 5,
};
enum {
    COLL_PAT_UNKNOWN = 0,
    COLL_PAT_ANY = 1,
    COLL_PAT_MATCH = 2,
    COLL_PAT_LITERAL = 3,
    COLL_PAT_PREFIXED = 4,
};
enum {
    COLL_OP_UNKNOWN = 0,
    COLL_OP_ANY = 1,
    COLL_OP_ALL = 2,
    COLL_OP_READ = 3,
    COLL_OP_WRITE = 4,
    COLL_OP_CREATE = 5,
    COLL_OP_DELETE = 6,
    COLL_OP_ALTER = 7,
    COLL_OP_DESCRIBE = 8,
    COLL_OP_CLUSTER_ACTION = 9,
    COLL_OP_DESCRIBE_CONFIGS = 10,
    COLL_OP_ALTER_CONFIGS = 11,
    COLL_OP_IDEMPOTENT_WRITE = 12,
};
enum {
    COLL_PERM_UNKNOWN = 0,
    COLL_PERM_ANY = 1,
    COLL_PERM_DENY = 2,
    COLL_PERM_ALLOW = 3,
};

typedef struct coll_acl {
    int8_t type, pattern, op, perm;
    char *name;      /* malloc'd */
    char *principal; /* "User:alice" */
    char *host;      /* "*" or an address */
} coll_acl_t;

/* A filter (DescribeAcls, DeleteAcls): NULL strings match anything. */
typedef struct coll_acl_filter {
    int8_t type, pattern, op, perm;
    const char *name, *principal, *host;
} coll_acl_filter_t;

typedef struct coll_acls coll_acls_t;

/* An empty store whose file is <data_dir>/acls (NULL data_dir: not persisted). */
coll_acls_t *coll_acls_new(const char *data_dir);
void coll_acls_free(coll_acls_t *a);
/* Loads the file (missing: empty). 0, or an error naming file and line. */
int coll_acls_load(coll_acls_t *a, trib_error_t *err);
int coll_acls_parse(coll_acls_t *a, const char *text, size_t n, const char *file,
                    trib_error_t *err);
/* Writes the store atomically. 0 or -errno. */
int coll_acls_save(const coll_acls_t *a);

/*
 * Why an ACL cannot be created (NULL: it can): the type must be one of the
 * four resources, the pattern LITERAL or PREFIXED, the cluster's name
 * "kafka-cluster", the principal "Type:name", the operation a concrete one
 * or ALL, the permission ALLOW or DENY.
 */
const char *coll_acl_invalid(const coll_acl_t *acl);
/* Adds a copy (an identical ACL is not added twice). 0 or -ENOMEM. */
int coll_acls_add(coll_acls_t *a, const coll_acl_t *acl);
size_t coll_acls_count(const coll_acls_t *a);
const coll_acl_t *coll_acls_get(const coll_acls_t *a, size_t i);
/* Removes entry i (the caller walks down from the end). */
void coll_acls_remove(coll_acls_t *a, size_t i);
/* A copy of the store (a change is saved from the copy before it is applied). */
coll_acls_t *coll_acls_clone(const coll_acls_t *a);
/* Moves src's entries into dst (dst's old entries freed), frees src. */
void coll_acls_replace(coll_acls_t *dst, coll_acls_t *src);

/* Whether a filter matches an ACL (MATCH: the ACLs that apply to name). */
bool coll_acl_filter_matches(const coll_acl_filter_t *f, const coll_acl_t *acl);
/* Why a filter is refused (NULL: fine): UNKNOWN values, MATCH with DeleteAcls is allowed. */
const char *coll_acl_filter_invalid(const coll_acl_filter_t *f);

/*
 * Kafka's decision for principal at host doing op on (type, name[0..len)):
 * super users and the ACL rules above; the caller checks whether the
 * authorizer is on.
 */
bool coll_acls_authorize(const coll_acls_t *a, const char *principal, const char *host, int op,
                         int type, const char *name, size_t len);
/*
 * Whether principal has op (with its implications) on some resource of
 * type: an ALLOW that no DENY takes away entirely (a DENY on '*', on a
 * prefix of its name, or on the same literal name), as Kafka's
 * authorizeByResourceType (InitProducerId's WRITE on some topic).
 */
bool coll_acls_authorize_any(const coll_acls_t *a, const char *principal, const char *host, int op,
                             int type);

/* Names of the enums (Kafka's, e.g. "Topic", "Prefixed", "Read", "Allow"); "?" if unknown. */
const char *coll_acl_type_name(int v);
const char *coll_acl_pattern_name(int v);
const char *coll_acl_op_name(int v);
const char *coll_acl_perm_name(int v);

#endif
