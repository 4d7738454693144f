/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SASL on the Kafka listeners: the mechanisms behind SaslHandshake and
 * SaslAuthenticate (api/sasl_handshake.c, api/sasl_authenticate.c).
 *
 * A connection on a sasl_plaintext or sasl_ssl listener starts
 * unauthenticated: dispatch.c lets through only ApiVersions,
 * SaslHandshake and SaslAuthenticate, and closes it on anything else.
 * SaslHandshake picks a mechanism the listener enables; the tokens then
 * travel in SaslAuthenticate requests (handshake v1) or as bare frames
 * (handshake v0, coll_sasl_raw_token). One login per connection
 * (no re-authentication, KIP-368: SessionLifetimeMs is 0).
 *
 * Mechanisms, all checked against the SCRAM credential store
 * (credentials.h; no password is stored anywhere):
 *   PLAIN          [authzid] NUL user NUL password (RFC 4616); the password
 *                  is checked against the user's SCRAM-SHA-512 credential,
 *                  else its SCRAM-SHA-256 one. PLAIN sends the password
 *                  itself: use it on sasl_ssl listeners.
 *   SCRAM-SHA-256  RFC 5802/7677 (common/scram.c), two round trips.
 *   SCRAM-SHA-512
 *
 * A failed login (unknown user, wrong password, malformed message) is
 * logged with the peer and the user name, counted
 * (tributary_sasl_authentication_failures_total), answered
 * SASL_AUTHENTICATION_FAILED after failed_authentication_delay, and the
 * connection is closed: a password guesser gets one try per connection and
 * per delay. The same message answers an unknown user and a wrong
 * password.
 */
#include "server/server_int.h"

#include <string.h>

#include <openssl/crypto.h>

#define PLAIN_MAX 1024

static const struct {
    unsigned bit;
    const char *name;
    int scram;
} mechs[] = {
    {COLL_SASL_PLAIN, "PLAIN", 0},
    {COLL_SASL_SCRAM_SHA_256, "SCRAM-SHA-256", TRIB_SCRAM_SHA_256},
    {COLL_SASL_SCRAM_SHA_512, "SCRAM-SHA-512", TRIB_SCRAM_SHA_512},
};

unsigned coll_sasl_mech_of(const coll_conn_t *c, const char *name)
{
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        if (name && strcmp(name, mechs[i].name) == 0 &&
            (c->lst->cfg.sasl_mechanisms & mechs[i].bit)) {
            return mechs[i].bit;
        }
    }
    return 0;
}

const char *coll_sasl_mech_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        if (mechs[i].bit == bit) {
            return mechs[i].name;
        }
    }
    return "?";
}

static int scram_of(unsigned bit)
{
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        if (mechs[i].bit == bit) {
            return mechs[i].scram;
        }
    }
    return 0;
}

static int failed(coll_req_t *r, const char *user, const char *why, const char **out_why)
{
    coll_conn_t *c = r->conn;
    coll_server_t *s = r->srv;
    s->metrics.sasl_auth_failed++;
    c->sasl_state = COLL_SASL_FAILED;
    TRIB_LOG_RL(&s->rl_reject, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                "%s: SASL %s login failed on listener %s for user '%s': %s", c->peer,
                coll_sasl_mech_name(c->sasl_mech), c->lst->cfg.name, user ? user : "", why);
    if (c->scram) {
        OPENSSL_cleanse(c->scram, sizeof(*c->scram));
        free(c->scram);
        c->scram = NULL;
    }
    *out_why = why;
    return -1;
}

static void authenticated(coll_req_t *r, const char *user)
{
    coll_conn_t *c = r->conn;
    c->sasl_state = COLL_SASL_DONE;
    r->srv->metrics.sasl_auth_ok++;
    snprintf(c->principal, sizeof(c->principal), "User:%s", user);
    TRIB_LOG(TRIB_LOG_DEBUG, COLL_SERVER_FACILITY, "%s: authenticated as %s (%s) on listener %s",
             c->peer, c->principal, coll_sasl_mech_name(c->sasl_mech), c->lst->cfg.name);
}

static int plain_step(coll_req_t *r, const uint8_t *in, size_t n, const char **why)
{
    coll_creds_t *creds = r->srv->creds;
    if (n > PLAIN_MAX) {
        return failed(r, NULL, "malformed PLAIN message (too long)", why);
    }
    const uint8_t *nul1 = memchr(in, 0, n);
    const uint8_t *nul2 = nul1 ? memchr(nul1 + 1, 0, n - (size_t)(nul1 + 1 - in)) : NULL;
    if (!nul1 || !nul2 || memchr(nul2 + 1, 0, n - (size_t)(nul2 + 1 - in))) {
        return failed(r, NULL, "malformed PLAIN message (authzid NUL user NUL password)", why);
    }
    size_t zlen = (size_t)(nul1 - in);
    size_t ulen = (size_t)(nul2 - nul1 - 1);
    size_t plen = n - (size_t)(nul2 + 1 - in);
    char user[TRIB_SCRAM_NAME_MAX];
    if (ulen == 0 || ulen >= sizeof(user)) {
        return failed(r, NULL, "malformed PLAIN message (user name)", why);
    }
    memcpy(user, nul1 + 1, ulen);
    user[ulen] = '\0';
    if (zlen > 0 && (zlen != ulen || memcmp(in, user, ulen) != 0)) {
        return failed(r, user, "the authorization id differs from the user name", why);
    }
    const trib_scram_cred_t *cred = NULL;
    if (creds) {
        cred = coll_creds_find(creds, user, TRIB_SCRAM_SHA_512);
        if (!cred) {
            cred = coll_creds_find(creds, user, TRIB_SCRAM_SHA_256);
        }
    }
    if (!cred) {
        return failed(r, user, "unknown user", why);
    }
    if (!trib_scram_cred_check_password(cred, (const char *)nul2 + 1, plen)) {
        return failed(r, user, "wrong password", why);
    }
    authenticated(r, user);
    return 1;
}

static int scram_step(coll_req_t *r, const uint8_t *in, size_t n, trib_kbytes_t *out,
                      const char **why)
{
    coll_conn_t *c = r->conn;
    int mech = scram_of(c->sasl_mech);
    const char *w = NULL;
    if (!c->scram) {
        if (!(c->scram = malloc(sizeof(*c->scram)))) {
            return failed(r, NULL, "out of memory", why);
        }
        trib_scram_server_init(c->scram, mech);
        if (trib_scram_server_client_first(c->scram, in, n, &w) != 0) {
            return failed(r, NULL, w, why);
        }
        const trib_scram_cred_t *cred =
            r->srv->creds ? coll_creds_find(r->srv->creds, c->scram->user, mech) : NULL;
        if (!cred) {
            char user[TRIB_SCRAM_NAME_MAX];
            snprintf(user, sizeof(user), "%s", c->scram->user);
            return failed(r, user, "unknown user", why);
        }
        char snonce[33];
        char *msg = coll_req_alloc(r, TRIB_SCRAM_MSG_MAX + 1);
        if (!msg || trib_scram_nonce(snonce) != 0) {
            return failed(r, c->scram->user, "out of memory", why);
        }
        int len = trib_scram_server_first(c->scram, cred, snonce, msg, TRIB_SCRAM_MSG_MAX + 1);
        if (len < 0) {
            return failed(r, c->scram->user, "client nonce too long", why);
        }
        out->ptr = (const uint8_t *)msg;
        out->len = len;
        return 0;
    }
    char user[TRIB_SCRAM_NAME_MAX];
    snprintf(user, sizeof(user), "%s", c->scram->user);
    const trib_scram_cred_t *cred =
        r->srv->creds ? coll_creds_find(r->srv->creds, user, mech) : NULL;
    if (!cred) {
        return failed(r, user, "the user was deleted during the login", why);
    }
    char *msg = coll_req_alloc(r, 256);
    if (!msg) {
        return failed(r, user, "out of memory", why);
    }
    int len = trib_scram_server_client_final(c->scram, cred, in, n, msg, 256, &w);
    if (len < 0) {
        return failed(r, user, w == NULL ? "invalid credentials" : w, why);
    }
    OPENSSL_cleanse(c->scram, sizeof(*c->scram));
    free(c->scram);
    c->scram = NULL;
    authenticated(r, user);
    out->ptr = (const uint8_t *)msg;
    out->len = len;
    return 1;
}

int coll_sasl_step(coll_req_t *r, const uint8_t *in, size_t n, trib_kbytes_t *out, const char **why)
{
    out->ptr = (const uint8_t *)"";
    out->len = 0;
    if (r->conn->sasl_mech == COLL_SASL_PLAIN) {
        return plain_step(r, in ? in : (const uint8_t *)"", n, why);
    }
    return scram_step(r, in ? in : (const uint8_t *)"", n, out, why);
}

static void raw_failed_fire(coll_req_t *r)
{
    r->close_after = true;
    coll_req_no_response(r);
}

void coll_sasl_raw_token(coll_req_t *r)
{
    /* Counted and logged as a SaslAuthenticate. */
    r->api_key = 36;
    r->api_version = 0;
    r->kapi = trib_kafka_api_find(36);
    coll_conn_t *c = r->conn;
    trib_kbytes_t out;
    const char *why = NULL;
    int rc = coll_sasl_step(r, r->frame, r->frame_len, &out, &why);
    if (rc < 0) {
        /* As Kafka after a handshake v0: no answer, the connection closes. */
        c->rejected = true;
        coll_conn_stop_reading(c);
        coll_req_note_error(r, TRIB_KAFKA_SASL_AUTHENTICATION_FAILED);
        coll_req_delay(r, raw_failed_fire);
        return;
    }
    coll_req_respond_raw(r, out.ptr, (size_t)out.len);
}
