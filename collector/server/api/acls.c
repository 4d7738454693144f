/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DescribeAcls (key 29), CreateAcls (30) and DeleteAcls (31), versions
 * 0-3 (v1 adds pattern types, v2+ flexible).
 *
 * The ACL store is server/acl.h's. DescribeAcls needs DESCRIBE on the
 * cluster, CreateAcls and DeleteAcls ALTER (else CLUSTER_AUTHORIZATION_FAILED
 * on every result). A change is written to <data_dir>/acls before it is
 * answered; if that fails nothing changes and every result carries
 * UNKNOWN_SERVER_ERROR. Unlike a Kafka broker without an authorizer,
 * which answers SECURITY_DISABLED, the collector keeps and serves ACLs
 * while authorizer.enabled is false, so they can be put in place before
 * it is turned on.
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"

static const char *dupk(coll_req_t *r, trib_kstr_t s)
{
    return s.len < 0 ? NULL : coll_req_strdup(r, s);
}

static coll_acl_filter_t filter_of(coll_req_t *r, int8_t type, trib_kstr_t name, int8_t pattern,
                                   trib_kstr_t principal, trib_kstr_t host, int8_t op, int8_t perm)
{
    coll_acl_filter_t f = {
        .type = type,
        .pattern = r->api_version == 0 ? COLL_PAT_LITERAL : pattern,
        .op = op,
        .perm = perm,
        .name = dupk(r, name),
        .principal = dupk(r, principal),
        .host = dupk(r, host),
    };
    return f;
}

void coll_api_describe_acls(coll_req_t *r)
{
    const DescribeAclsRequest *req = r->body;
    DescribeAclsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DescribeAclsResponse_init(resp);
    coll_acl_filter_t f =
        filter_of(r, req->ResourceTypeFilter, req->ResourceNameFilter, req->PatternTypeFilter,
                  req->PrincipalFilter, req->HostFilter, req->Operation, req->PermissionType);
    const char *bad = coll_acl_filter_invalid(&f);
    if (!coll_authorized_cluster(r, COLL_OP_DESCRIBE)) {
        resp->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
    } else if (bad) {
        resp->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
        resp->ErrorMessage = trib_kstr(bad);
    }
    if (resp->ErrorCode) {
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &DescribeAclsResponse_codec, resp);
        return;
    }
    const coll_acls_t *a = r->srv->acls;
    size_t n = coll_acls_count(a);
    DescribeAclsResponse_DescribeAclsResource *res = coll_req_alloc(r, (n ? n : 1) * sizeof(*res));
    if (!res) {
        coll_req_reject(r, "out of memory");
        return;
    }
    /* One resource entry per (type, name, pattern), its ACLs in store order. */
    int32_t nres = 0;
    for (size_t i = 0; i < n; i++) {
        const coll_acl_t *x = coll_acls_get(a, i);
        if (!coll_acl_filter_matches(&f, x)) {
            continue;
        }
        DescribeAclsResponse_DescribeAclsResource *e = NULL;
        for (int32_t k = 0; k < nres && !e; k++) {
            if (res[k].ResourceType == x->type && res[k].PatternType == x->pattern &&
                (size_t)res[k].ResourceName.len == strlen(x->name) &&
                memcmp(res[k].ResourceName.ptr, x->name, strlen(x->name)) == 0) {
                e = &res[k];
            }
        }
        if (!e) {
            e = &res[nres++];
            DescribeAclsResponse_DescribeAclsResource_init(e);
            e->ResourceType = x->type;
            e->ResourceName = trib_kstr(coll_req_strdup(r, trib_kstr(x->name)));
            e->PatternType = x->pattern;
            e->Acls.items = coll_req_alloc(r, n * sizeof(*e->Acls.items));
            if (!e->Acls.items || !e->ResourceName.ptr) {
                coll_req_reject(r, "out of memory");
                return;
            }
        }
        DescribeAclsResponse_AclDescription *d = &e->Acls.items[e->Acls.count++];
        DescribeAclsResponse_AclDescription_init(d);
        d->Principal = trib_kstr(coll_req_strdup(r, trib_kstr(x->principal)));
        d->Host = trib_kstr(coll_req_strdup(r, trib_kstr(x->host)));
        d->Operation = x->op;
        d->PermissionType = x->perm;
    }
    resp->Resources.items = res;
    resp->Resources.count = nres;
    coll_req_respond(r, &DescribeAclsResponse_codec, resp);
}

void coll_api_create_acls(coll_req_t *r)
{
    const CreateAclsRequest *req = r->body;
    CreateAclsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t n = req->Creations.count > 0 ? req->Creations.count : 0;
    CreateAclsResponse_AclCreationResult *res = coll_req_alloc(r, (n ? n : 1) * sizeof(*res));
    if (!resp || !res) {
        coll_req_reject(r, "out of memory");
        return;
    }
    CreateAclsResponse_init(resp);
    resp->Results.items = res;
    resp->Results.count = n;
    bool allowed = coll_authorized_cluster(r, COLL_OP_ALTER);
    coll_acls_t *next = allowed && n ? coll_acls_clone(r->srv->acls) : NULL;
    if (allowed && n && !next) {
        coll_req_reject(r, "out of memory");
        return;
    }
    bool changed = false;
    for (int32_t i = 0; i < n; i++) {
        const CreateAclsRequest_AclCreation *c = &req->Creations.items[i];
        CreateAclsResponse_AclCreationResult_init(&res[i]);
        if (!allowed) {
            res[i].ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
            coll_req_note_error(r, res[i].ErrorCode);
            continue;
        }
        coll_acl_t acl = {
            .type = c->ResourceType,
            .pattern = r->api_version == 0 ? COLL_PAT_LITERAL : c->ResourcePatternType,
            .op = c->Operation,
            .perm = c->PermissionType,
            .name = (char *)dupk(r, c->ResourceName),
            .principal = (char *)dupk(r, c->Principal),
            .host = (char *)dupk(r, c->Host),
        };
        const char *why = coll_acl_invalid(&acl);
        if (why) {
            res[i].ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
            res[i].ErrorMessage = trib_kstr(why);
            coll_req_note_error(r, res[i].ErrorCode);
            continue;
        }
        if (coll_acls_add(next, &acl) != 0) {
            coll_acls_free(next);
            coll_req_reject(r, "out of memory");
            return;
        }
        changed = true;
    }
    if (changed) {
        int rc = coll_acls_save(next);
        if (rc != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "cannot write the ACL store: %s",
                     trib_strerror(rc));
            for (int32_t i = 0; i < n; i++) {
                if (res[i].ErrorCode == 0) {
                    res[i].ErrorCode = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
                    res[i].ErrorMessage = trib_kstr("the ACL store could not be written");
                    coll_req_note_error(r, res[i].ErrorCode);
                }
            }
            coll_acls_free(next);
        } else {
            TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY, "%s: %s created ACLs (%zu now)",
                     r->conn->peer, r->conn->principal, coll_acls_count(next));
            coll_acls_replace(r->srv->acls, next);
        }
    } else {
        coll_acls_free(next);
    }
    coll_req_respond(r, &CreateAclsResponse_codec, resp);
}

void coll_api_delete_acls(coll_req_t *r)
{
    const DeleteAclsRequest *req = r->body;
    DeleteAclsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t n = req->Filters.count > 0 ? req->Filters.count : 0;
    DeleteAclsResponse_DeleteAclsFilterResult *res = coll_req_alloc(r, (n ? n : 1) * sizeof(*res));
    if (!resp || !res) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DeleteAclsResponse_init(resp);
    resp->FilterResults.items = res;
    resp->FilterResults.count = n;
    bool allowed = coll_authorized_cluster(r, COLL_OP_ALTER);
    coll_acls_t *next = allowed && n ? coll_acls_clone(r->srv->acls) : NULL;
    if (allowed && n && !next) {
        coll_req_reject(r, "out of memory");
        return;
    }
    size_t total = coll_acls_count(next);
    bool changed = false;
    for (int32_t i = 0; i < n; i++) {
        const DeleteAclsRequest_DeleteAclsFilter *q = &req->Filters.items[i];
        DeleteAclsResponse_DeleteAclsFilterResult_init(&res[i]);
        if (!allowed) {
            res[i].ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
            coll_req_note_error(r, res[i].ErrorCode);
            continue;
        }
        coll_acl_filter_t f =
            filter_of(r, q->ResourceTypeFilter, q->ResourceNameFilter, q->PatternTypeFilter,
                      q->PrincipalFilter, q->HostFilter, q->Operation, q->PermissionType);
        const char *bad = coll_acl_filter_invalid(&f);
        if (bad) {
            res[i].ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
            res[i].ErrorMessage = trib_kstr(bad);
            coll_req_note_error(r, res[i].ErrorCode);
            continue;
        }
        DeleteAclsResponse_DeleteAclsMatchingAcl *m =
            coll_req_alloc(r, (total ? total : 1) * sizeof(*m));
        if (!m) {
            coll_acls_free(next);
            coll_req_reject(r, "out of memory");
            return;
        }
        res[i].MatchingAcls.items = m;
        for (size_t k = coll_acls_count(next); k-- > 0;) {
            const coll_acl_t *x = coll_acls_get(next, k);
            if (!coll_acl_filter_matches(&f, x)) {
                continue;
            }
            DeleteAclsResponse_DeleteAclsMatchingAcl *e = &m[res[i].MatchingAcls.count++];
            DeleteAclsResponse_DeleteAclsMatchingAcl_init(e);
            e->ResourceType = x->type;
            e->ResourceName = trib_kstr(coll_req_strdup(r, trib_kstr(x->name)));
            e->PatternType = x->pattern;
            e->Principal = trib_kstr(coll_req_strdup(r, trib_kstr(x->principal)));
            e->Host = trib_kstr(coll_req_strdup(r, trib_kstr(x->host)));
            e->Operation = x->op;
            e->PermissionType = x->perm;
            if (!e->ResourceName.ptr || !e->Principal.ptr || !e->Host.ptr) {
                coll_acls_free(next);
                coll_req_reject(r, "out of memory");
                return;
            }
            coll_acls_remove(next, k);
            changed = true;
        }
    }
    if (changed) {
        int rc = coll_acls_save(next);
        if (rc != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "cannot write the ACL store: %s",
                     trib_strerror(rc));
            for (int32_t i = 0; i < n; i++) {
                if (res[i].ErrorCode == 0) {
                    res[i].ErrorCode = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
                    res[i].ErrorMessage = trib_kstr("the ACL store could not be written");
                    res[i].MatchingAcls.count = 0;
                    coll_req_note_error(r, res[i].ErrorCode);
                }
            }
            coll_acls_free(next);
        } else {
            TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY, "%s: %s deleted ACLs (%zu left)",
                     r->conn->peer, r->conn->principal, coll_acls_count(next));
            coll_acls_replace(r->srv->acls, next);
        }
    } else {
        coll_acls_free(next);
    }
    coll_req_respond(r, &DeleteAclsResponse_codec, resp);
}
