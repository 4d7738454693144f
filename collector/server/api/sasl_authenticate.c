/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SaslAuthenticate (key 36), versions 0-2 (v2 flexible).
 *
 * Carries the tokens of the mechanism SaslHandshake v1 chose
 * (server/sasl.c). A failed login answers SASL_AUTHENTICATION_FAILED after
 * failed_authentication_delay and closes the connection; a
 * SaslAuthenticate without a handshake v1 before it, or after the login,
 * gets ILLEGAL_SASL_STATE and the connection closes, as from Kafka (on a
 * listener without SASL: ILLEGAL_SASL_STATE, and the connection stays).
 * SessionLifetimeMs is 0: sessions do not expire (no re-authentication).
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

static void fail_fire(coll_req_t *r)
{
    coll_req_respond(r, &SaslAuthenticateResponse_codec, r->ctx);
}

void coll_api_sasl_authenticate(coll_req_t *r)
{
    const SaslAuthenticateRequest *req = r->body;
    coll_conn_t *c = r->conn;
    SaslAuthenticateResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    SaslAuthenticateResponse_init(resp);
    if (!c->needs_sasl || c->sasl_state != COLL_SASL_AUTH) {
        resp->ErrorCode = TRIB_KAFKA_ILLEGAL_SASL_STATE;
        resp->ErrorMessage =
            trib_kstr(c->needs_sasl ? "SaslAuthenticate is not expected now (SaslHandshake "
                                      "v1 comes first, once per connection)"
                                    : "this listener does not use SASL");
        coll_req_note_error(r, resp->ErrorCode);
        if (c->needs_sasl) {
            r->close_after_write = true;
            c->rejected = true;
            coll_conn_stop_reading(c);
        }
        coll_req_respond(r, &SaslAuthenticateResponse_codec, resp);
        return;
    }
    trib_kbytes_t out;
    const char *why = NULL;
    size_t n = req->AuthBytes.len > 0 ? (size_t)req->AuthBytes.len : 0;
    int rc = coll_sasl_step(r, req->AuthBytes.ptr, n, &out, &why);
    if (rc < 0) {
        char *msg = coll_req_alloc(r, 160);
        if (msg) {
            snprintf(msg, 160,
                     "Authentication failed during authentication due to invalid credentials "
                     "with SASL mechanism %s",
                     coll_sasl_mech_name(c->sasl_mech));
        }
        resp->ErrorCode = TRIB_KAFKA_SASL_AUTHENTICATION_FAILED;
        resp->ErrorMessage = trib_kstr(msg ? msg : "Authentication failed");
        coll_req_note_error(r, resp->ErrorCode);
        r->close_after_write = true;
        c->rejected = true;
        coll_conn_stop_reading(c);
        r->ctx = resp;
        coll_req_delay(r, fail_fire);
        return;
    }
    resp->AuthBytes = out;
    coll_req_respond(r, &SaslAuthenticateResponse_codec, resp);
}
