/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AlterUserScramCredentials (key 51), version 0 (flexible).
 *
 * Deletes and upserts SCRAM credentials in the store (server/credentials.h).
 * The client sends the salt, the iteration count and the SaltedPassword
 * (never the password); the collector keeps StoredKey and ServerKey. The
 * changes that pass the checks are written to data_dir/scram-credentials
 * (atomically) before the answer; if that write fails, they all get
 * UNKNOWN_SERVER_ERROR and nothing changes. Checks, as Kafka's:
 *   - a user named twice in the request: DUPLICATE_RESOURCE
 *   - an empty user name, iterations outside 4096..16384, an empty salt
 *     or a SaltedPassword not of the hash's length: UNACCEPTABLE_CREDENTIAL
 *   - a mechanism other than 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512):
 *     UNSUPPORTED_SASL_MECHANISM
 *   - deleting a credential that does not exist: RESOURCE_NOT_FOUND
 * One result per user. Logins already made stay; new logins use the new
 * credentials. It needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED
 * on every result), as Kafka's.
 */
#include "server/server_int.h"

#include <string.h>

#include <openssl/crypto.h>

#include "kafka/gen/kafka_messages.h"

typedef AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult result_t;

typedef struct op {
    char *user;
    int mech;
    bool del;
    const AlterUserScramCredentialsRequest_ScramCredentialUpsertion *up;
    int16_t code;
    const char *msg;
} op_t;

static bool kstr_eq(trib_kstr_t a, const char *b)
{
    return a.len >= 0 && (size_t)a.len == strlen(b) && memcmp(a.ptr, b, (size_t)a.len) == 0;
}

void coll_api_alter_user_scram_credentials(coll_req_t *r)
{
    const AlterUserScramCredentialsRequest *req = r->body;
    coll_server_t *s = r->srv;
    size_t nd = req->Deletions.count > 0 ? (size_t)req->Deletions.count : 0;
    size_t nu = req->Upsertions.count > 0 ? (size_t)req->Upsertions.count : 0;
    size_t nops = nd + nu;
    AlterUserScramCredentialsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    op_t *ops = coll_req_alloc(r, (nops ? nops : 1) * sizeof(*ops));
    result_t *res = coll_req_alloc(r, (nops ? nops : 1) * sizeof(*res));
    if (!resp || !ops || !res) {
        coll_req_reject(r, "out of memory");
        return;
    }
    AlterUserScramCredentialsResponse_init(resp);
    bool allowed = coll_authorized_cluster(r, COLL_OP_ALTER); /* Kafka: ALTER on the cluster */
    for (size_t i = 0; i < nops; i++) {
        op_t *o = &ops[i];
        trib_kstr_t name;
        int8_t mech;
        if (i < nd) {
            name = req->Deletions.items[i].Name;
            mech = req->Deletions.items[i].Mechanism;
            o->del = true;
        } else {
            o->up = &req->Upsertions.items[i - nd];
            name = o->up->Name;
            mech = o->up->Mechanism;
        }
        o->user = coll_req_strdup(r, name);
        if (!o->user) {
            o->user = "";
        }
        o->mech = mech;
        size_t kl = trib_scram_key_len(mech);
        if (!allowed) {
            o->code = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
            o->msg = "Cluster authorization failed.";
        } else if (!s->creds) {
            o->code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
            o->msg = "this collector has no credential store";
        } else if (name.len <= 0 || name.len >= TRIB_SCRAM_NAME_MAX ||
                   strlen(o->user) != (size_t)name.len) {
            o->code = TRIB_KAFKA_UNACCEPTABLE_CREDENTIAL;
            o->msg = "Username must be 1-255 bytes without NUL";
        } else if (!kl) {
            o->code = TRIB_KAFKA_UNSUPPORTED_SASL_MECHANISM;
            o->msg = "Unknown SCRAM mechanism";
        } else if (o->del) {
            if (!coll_creds_find(s->creds, o->user, mech)) {
                o->code = TRIB_KAFKA_RESOURCE_NOT_FOUND;
                o->msg = "Attempt to delete a user credential that does not exist";
            }
        } else if (o->up->Iterations < TRIB_SCRAM_MIN_ITERATIONS ||
                   o->up->Iterations > TRIB_SCRAM_MAX_ITERATIONS) {
            o->code = TRIB_KAFKA_UNACCEPTABLE_CREDENTIAL;
            o->msg = "Iterations must be 4096..16384";
        } else if (o->up->Salt.len <= 0 || o->up->Salt.len > TRIB_SCRAM_SALT_MAX) {
            o->code = TRIB_KAFKA_UNACCEPTABLE_CREDENTIAL;
            o->msg = "Salt must be 1-64 bytes";
        } else if (o->up->SaltedPassword.len < 0 || (size_t)o->up->SaltedPassword.len != kl) {
            o->code = TRIB_KAFKA_UNACCEPTABLE_CREDENTIAL;
            o->msg = "SaltedPassword must be as long as the mechanism's hash";
        }
    }
    /* A user named twice: every operation on it is refused. */
    for (size_t i = 0; i < nops; i++) {
        for (size_t k = 0; k < nops; k++) {
            if (k != i && strcmp(ops[i].user, ops[k].user) == 0) {
                ops[i].code = TRIB_KAFKA_DUPLICATE_RESOURCE;
                ops[i].msg = "A user credential cannot be altered twice in the same request";
            }
        }
    }
    /* Apply what passed to a copy, write it, then switch to it. */
    coll_creds_t *next = s->creds ? coll_creds_clone(s->creds) : NULL;
    size_t changes = 0;
    int rc = 0;
    for (size_t i = 0; i < nops && next; i++) {
        op_t *o = &ops[i];
        if (o->code != TRIB_KAFKA_NONE) {
            continue;
        }
        if (o->del) {
            rc = coll_creds_delete(next, o->user, o->mech);
        } else {
            trib_scram_cred_t cred;
            rc = trib_scram_cred_from_salted(&cred, o->mech, o->up->Salt.ptr,
                                             (size_t)o->up->Salt.len, o->up->Iterations,
                                             o->up->SaltedPassword.ptr);
            if (rc == 0) {
                rc = coll_creds_set(next, o->user, &cred);
            }
            OPENSSL_cleanse(&cred, sizeof(cred));
        }
        if (rc != 0) {
            break;
        }
        changes++;
    }
    if (s->creds && (!next || rc != 0 || (changes > 0 && (rc = coll_creds_save(next)) != 0))) {
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY,
                 "%s: AlterUserScramCredentials: cannot write the credential store: %s",
                 r->conn->peer, next ? trib_strerror(rc) : "out of memory");
        for (size_t i = 0; i < nops; i++) {
            if (ops[i].code == TRIB_KAFKA_NONE) {
                ops[i].code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
                ops[i].msg = "the credential store could not be written";
            }
        }
        coll_creds_free(next);
    } else if (next) {
        coll_creds_free(s->creds);
        s->creds = next;
        if (changes > 0) {
            TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
                     "%s (%s): %zu SCRAM credential change%s written", r->conn->peer,
                     r->conn->principal, changes, changes == 1 ? "" : "s");
        }
    }
    /* One result per user, in request order. */
    size_t n = 0;
    for (size_t i = 0; i < nops; i++) {
        bool listed = false;
        for (size_t k = 0; k < n && !listed; k++) {
            listed = kstr_eq(res[k].User, ops[i].user);
        }
        if (listed) {
            continue;
        }
        result_t *x = &res[n++];
        AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult_init(x);
        x->User = trib_kstr(ops[i].user);
        /* The first error among the user's operations. */
        for (size_t k = i; k < nops; k++) {
            if (strcmp(ops[k].user, ops[i].user) == 0 && ops[k].code != TRIB_KAFKA_NONE) {
                x->ErrorCode = ops[k].code;
                x->ErrorMessage = trib_kstr(ops[k].msg);
                coll_req_note_error(r, x->ErrorCode);
                break;
            }
        }
    }
    resp->Results.items = res;
    resp->Results.count = (int32_t)n;
    coll_req_respond(r, &AlterUserScramCredentialsResponse_codec, resp);
}
