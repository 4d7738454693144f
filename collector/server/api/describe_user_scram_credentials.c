/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DescribeUserScramCredentials (key 50), version 0 (flexible).
 *
 * The SCRAM credentials of the store (server/credentials.h): for each user
 * its mechanisms and iteration counts, never salts or keys. Null or empty
 * Users lists every user. As Kafka: a user asked for twice gets
 * DUPLICATE_RESOURCE, one without credentials RESOURCE_NOT_FOUND. It needs
 * DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED), as Kafka's.
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"

typedef DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult result_t;
typedef DescribeUserScramCredentialsResponse_CredentialInfo info_t;

/* user's credentials into res (arena); false when out of memory. */
static bool fill_user(coll_req_t *r, result_t *res, const char *user)
{
    const coll_creds_t *cs = r->srv->creds;
    size_t n = cs ? coll_creds_count(cs) : 0;
    info_t *infos = coll_req_alloc(r, 2 * sizeof(*infos));
    if (!infos) {
        return false;
    }
    int32_t k = 0;
    for (size_t i = 0; i < n && k < 2; i++) {
        const char *u;
        const trib_scram_cred_t *cred;
        coll_creds_get(cs, i, &u, &cred);
        if (strcmp(u, user) == 0) {
            DescribeUserScramCredentialsResponse_CredentialInfo_init(&infos[k]);
            infos[k].Mechanism = (int8_t)cred->mech;
            infos[k].Iterations = cred->iterations;
            k++;
        }
    }
    res->User = trib_kstr(user);
    res->CredentialInfos.items = infos;
    res->CredentialInfos.count = k;
    if (k == 0) {
        res->ErrorCode = TRIB_KAFKA_RESOURCE_NOT_FOUND;
        char *msg = coll_req_alloc(r, 300);
        if (msg) {
            snprintf(msg, 300, "Attempt to describe a user credential that does not exist: %s",
                     user);
        }
        res->ErrorMessage = trib_kstr(msg);
        coll_req_note_error(r, res->ErrorCode);
    }
    return true;
}

void coll_api_describe_user_scram_credentials(coll_req_t *r)
{
    const DescribeUserScramCredentialsRequest *req = r->body;
    const coll_creds_t *cs = r->srv->creds;
    size_t total = cs ? coll_creds_count(cs) : 0;
    DescribeUserScramCredentialsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    size_t asked = req->Users.count > 0 ? (size_t)req->Users.count : 0;
    size_t max = asked ? asked : total;
    result_t *res = coll_req_alloc(r, (max ? max : 1) * sizeof(*res));
    const char **names = coll_req_alloc(r, (max ? max : 1) * sizeof(*names));
    if (!resp || !res || !names) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DescribeUserScramCredentialsResponse_init(resp);
    if (!coll_authorized_cluster(r, COLL_OP_DESCRIBE)) {
        resp->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        resp->ErrorMessage = trib_kstr("Cluster authorization failed.");
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &DescribeUserScramCredentialsResponse_codec, resp);
        return;
    }
    size_t n = 0;
    if (asked == 0) {
        /* Every user once, in the store's order. */
        for (size_t i = 0; i < total; i++) {
            const char *u;
            const trib_scram_cred_t *cred;
            coll_creds_get(cs, i, &u, &cred);
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++) {
                seen = strcmp(names[k], u) == 0;
            }
            if (!seen) {
                names[n] = u;
                result_t *x = &res[n++];
                DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult_init(x);
                if (!fill_user(r, x, u)) {
                    coll_req_reject(r, "out of memory");
                    return;
                }
            }
        }
    } else {
        for (size_t i = 0; i < asked; i++) {
            char *u = coll_req_strdup(r, req->Users.items[i].Name);
            if (!u) {
                u = "";
            }
            bool dup = false;
            for (size_t k = 0; k < asked; k++) {
                if (k != i && req->Users.items[k].Name.len == req->Users.items[i].Name.len &&
                    (req->Users.items[i].Name.len <= 0 ||
                     memcmp(req->Users.items[k].Name.ptr, req->Users.items[i].Name.ptr,
                            (size_t)req->Users.items[i].Name.len) == 0)) {
                    dup = true;
                }
            }
            bool listed = false;
            for (size_t k = 0; k < n && !listed; k++) {
                listed = strcmp(names[k], u) == 0;
            }
            if (listed) {
                continue; /* a duplicate is answered once */
            }
            names[n] = u;
            result_t *x = &res[n++];
            DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult_init(x);
            if (dup) {
                x->User = trib_kstr(u);
                x->ErrorCode = TRIB_KAFKA_DUPLICATE_RESOURCE;
                x->ErrorMessage = trib_kstr("Cannot describe SCRAM credentials for the same user "
                                            "twice in a single request");
                x->CredentialInfos.count = 0;
                coll_req_note_error(r, x->ErrorCode);
            } else if (!fill_user(r, x, u)) {
                coll_req_reject(r, "out of memory");
                return;
            }
        }
    }
    resp->Results.items = res;
    resp->Results.count = (int32_t)n;
    coll_req_respond(r, &DescribeUserScramCredentialsResponse_codec, resp);
}
