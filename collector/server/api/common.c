/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the API handlers: topic lookup with auto-creation,
 * leader epoch checks, and the mapping of local errors to Kafka's.
 */
#include "server/server_int.h"

#include <errno.h>
#include <string.h>

#include <netinet/in.h>

coll_topic_t *coll_find_topic(coll_req_t *r, trib_kstr_t name, bool create, int16_t *error)
{
    *error = TRIB_KAFKA_NONE;
    if (name.len < 0) {
        *error = TRIB_KAFKA_INVALID_TOPIC_EXCEPTION;
        return NULL;
    }
    coll_cluster_t *c = r->srv->cluster;
    coll_topic_t *t = coll_cluster_topic(c, name.ptr, (size_t)name.len);
    if (t) {
        return t;
    }
    if (!create) {
        *error = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (!coll_topic_name_valid(name.ptr, (size_t)name.len)) {
        *error = TRIB_KAFKA_INVALID_TOPIC_EXCEPTION;
        return NULL;
    }
    /* Auto-creation needs CREATE on the cluster or on the topic (as Kafka's Metadata). */
    if (!coll_authorized_quiet(r, COLL_OP_CREATE, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME,
                               sizeof(COLL_ACL_CLUSTER_NAME) - 1) &&
        !coll_authorized_k(r, COLL_OP_CREATE, COLL_RES_TOPIC, name)) {
        *error = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        return NULL;
    }
    t = coll_cluster_auto_create(c, name.ptr, (size_t)name.len, error);
    if (t) {
        r->srv->metrics.auto_created_topics++;
    }
    return t;
}

int16_t coll_check_leader_epoch(const coll_partition_t *p, int32_t current_leader_epoch)
{
    if (current_leader_epoch < 0 || current_leader_epoch == p->leader_epoch) {
        return TRIB_KAFKA_NONE;
    }
    return current_leader_epoch > p->leader_epoch ? TRIB_KAFKA_UNKNOWN_LEADER_EPOCH
                                                  : TRIB_KAFKA_FENCED_LEADER_EPOCH;
}

int16_t coll_check_partition(const coll_req_t *r, const coll_partition_t *p,
                             int32_t current_leader_epoch)
{
    bool replicated = coll_cluster_replicated(r->srv->cluster);
    if (!p->log) {
        return replicated ? TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER : TRIB_KAFKA_KAFKA_STORAGE_ERROR;
    }
    coll_prt_t *prt = coll_prt(p);
    if (!prt) {
        return TRIB_KAFKA_KAFKA_STORAGE_ERROR;
    }
    int16_t e = coll_check_leader_epoch(p, current_leader_epoch);
    if (e != TRIB_KAFKA_NONE) {
        return e;
    }
    if (replicated &&
        (!coll_partition_leads(p, coll_cluster_node_id(r->srv->cluster)) || !prt->leader)) {
        return TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER;
    }
    return TRIB_KAFKA_NONE;
}

int8_t coll_topic_config_source(const coll_cluster_t *cl, uint32_t override_mask, int key)
{
    if (override_mask & (1u << key)) {
        return COLL_CONFIG_SOURCE_TOPIC;
    }
    if (coll_cluster_config(cl)->defaults_set & (1u << key)) {
        return COLL_CONFIG_SOURCE_STATIC_BROKER;
    }
    return COLL_CONFIG_SOURCE_DEFAULT;
}

char *coll_config_value(coll_req_t *r, const coll_tcfg_t *c, int key)
{
    char v[64];
    coll_tcfg_format(key, c->v[key], v, sizeof(v));
    trib_kstr_t s = {v, (int32_t)strlen(v)};
    return coll_req_strdup(r, s);
}

void coll_req_endpoint(coll_req_t *r, int32_t node, trib_kstr_t *host, int32_t *port)
{
    const coll_listener_t *l = r->conn->lst;
    if (node == coll_cluster_node_id(r->srv->cluster) && l) {
        *host = trib_kstr(l->adv_host);
        *port = l->adv_port;
    }
}

/* ---- calls to the group coordinator ---- */

static void *gcall_alloc(coll_gcall_t *c, size_t n)
{
    return coll_req_alloc(c->req, n);
}

static void gcall_note_error(coll_gcall_t *c, int16_t code)
{
    coll_req_note_error(c->req, code);
}

static void gcall_respond(coll_gcall_t *c, const trib_kafka_codec_t *codec, const void *resp)
{
    coll_req_respond(c->req, codec, resp);
}

static void gcall_reject(coll_gcall_t *c, const char *why)
{
    coll_req_reject(c->req, "%s", why);
}

static const coll_gcall_ops_t gcall_ops = {gcall_alloc, gcall_note_error, gcall_respond,
                                           gcall_reject};

/* The request is freed (answered, or its connection gone): a parked call is forgotten. */
static void gcall_free(coll_req_t *r)
{
    coll_group_call_gone(r->ctx);
    r->ctx = NULL;
    r->ctx_free = NULL;
}

coll_gcall_t *coll_req_gcall(coll_req_t *r)
{
    coll_gcall_t *c = coll_req_alloc(r, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->ops = &gcall_ops;
    c->req = r;
    c->body = r->body;
    c->version = r->api_version;
    c->client_id = r->hdr.client_id;
    c->peer = r->conn->peer;
    r->ctx = c;
    r->ctx_free = gcall_free;
    return c;
}

/* The address part of a connection's peer ("1.2.3.4:5" or "[::1]:5"), for host ACLs. */
static void peer_host(const coll_conn_t *c, char *out, size_t n)
{
    const char *p = c->peer;
    size_t len = strlen(p);
    const char *colon = strrchr(p, ':');
    if (colon) {
        len = (size_t)(colon - p);
    }
    if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }
    if (len >= n) {
        len = n - 1;
    }
    memcpy(out, p, len);
    out[len] = '\0';
}

static bool super_user(const coll_server_t *s, const char *principal)
{
    for (size_t i = 0; i < s->cfg.nsuper_users; i++) {
        if (strcmp(s->cfg.super_users[i], principal) == 0) {
            return true;
        }
    }
    return false;
}

bool coll_authorized_quiet(coll_req_t *r, int op, int type, const char *name, size_t len)
{
    coll_server_t *s = r->srv;
    if (!s->cfg.authorizer || super_user(s, r->conn->principal)) {
        return true;
    }
    char host[INET6_ADDRSTRLEN + 2];
    peer_host(r->conn, host, sizeof(host));
    return coll_acls_authorize(s->acls, r->conn->principal, host, op, type, name, len);
}

int32_t coll_authorized_ops(coll_req_t *r, int type, const char *name, size_t len, int32_t ops)
{
    int32_t out = 0;
    for (int op = COLL_OP_READ; op <= COLL_OP_IDEMPOTENT_WRITE; op++) {
        if ((ops & (1 << op)) && coll_authorized_quiet(r, op, type, name, len)) {
            out |= 1 << op;
        }
    }
    return out;
}

bool coll_authorized(coll_req_t *r, int op, int type, const char *name, size_t len)
{
    coll_server_t *s = r->srv;
    if (coll_authorized_quiet(r, op, type, name, len)) {
        return true;
    }
    s->metrics.authorization_failed++;
    TRIB_LOG(TRIB_LOG_DEBUG, COLL_SERVER_FACILITY, "%s: %s denied %s on %s %.*s (%s)",
             r->conn->peer, r->conn->principal, coll_acl_op_name(op), coll_acl_type_name(type),
             (int)(len > 200 ? 200 : len), name, r->kapi ? r->kapi->name : "?");
    return false;
}

bool coll_authorized_any(coll_req_t *r, int op, int type)
{
    coll_server_t *s = r->srv;
    if (!s->cfg.authorizer || super_user(s, r->conn->principal)) {
        return true;
    }
    char host[INET6_ADDRSTRLEN + 2];
    peer_host(r->conn, host, sizeof(host));
    return coll_acls_authorize_any(s->acls, r->conn->principal, host, op, type);
}
