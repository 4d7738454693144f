/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SaslHandshake (key 17), versions 0-1.
 *
 * Picks the SASL mechanism of a connection on a sasl_plaintext or
 * sasl_ssl listener (server/sasl.c) and lists the mechanisms the listener
 * enables. v1: the tokens follow in SaslAuthenticate requests; v0: they
 * follow as bare size-prefixed frames. As Kafka: a mechanism the listener
 * does not enable gets UNSUPPORTED_SASL_MECHANISM and a second handshake
 * ILLEGAL_SASL_STATE, both closing the connection once answered; on a
 * listener without SASL a handshake gets ILLEGAL_SASL_STATE and the
 * connection stays.
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

void coll_api_sasl_handshake(coll_req_t *r)
{
    const SaslHandshakeRequest *req = r->body;
    coll_conn_t *c = r->conn;
    SaslHandshakeResponse *resp = coll_req_alloc(r, sizeof(*resp));
    trib_kstr_t *names = coll_req_alloc(r, 3 * sizeof(*names));
    char *mech = coll_req_strdup(r, req->Mechanism);
    if (!resp || !names) {
        coll_req_reject(r, "out of memory");
        return;
    }
    SaslHandshakeResponse_init(resp);
    int32_t n = 0;
    static const unsigned bits[] = {COLL_SASL_PLAIN, COLL_SASL_SCRAM_SHA_256,
                                    COLL_SASL_SCRAM_SHA_512};
    for (size_t i = 0; i < 3; i++) {
        if (c->needs_sasl && (c->lst->cfg.sasl_mechanisms & bits[i])) {
            names[n++] = trib_kstr(coll_sasl_mech_name(bits[i]));
        }
    }
    resp->Mechanisms.items = names;
    resp->Mechanisms.count = n;
    unsigned chosen = c->needs_sasl ? coll_sasl_mech_of(c, mech) : 0;
    if (!c->needs_sasl || c->sasl_state != COLL_SASL_NONE) {
        resp->ErrorCode = TRIB_KAFKA_ILLEGAL_SASL_STATE;
    } else if (!chosen) {
        resp->ErrorCode = TRIB_KAFKA_UNSUPPORTED_SASL_MECHANISM;
    } else {
        c->sasl_mech = chosen;
        c->sasl_state = r->api_version == 0 ? COLL_SASL_RAW : COLL_SASL_AUTH;
    }
    if (resp->ErrorCode != TRIB_KAFKA_NONE) {
        TRIB_LOG_RL(&r->srv->rl_reject, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                    "%s: SaslHandshake for '%s' on listener %s: %s", c->peer, mech ? mech : "",
                    c->lst->cfg.name, trib_kafka_err_name(resp->ErrorCode));
        coll_req_note_error(r, resp->ErrorCode);
        if (c->needs_sasl) {
            r->close_after_write = true;
            c->rejected = true;
            coll_conn_stop_reading(c);
        }
    }
    coll_req_respond(r, &SaslHandshakeResponse_codec, resp);
}
