/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCRAM-SHA-256/512 (RFC 5802, RFC 7677): key derivation and both sides
 * of the exchange (see tributary/scram.h). The hash, HMAC and PBKDF2
 * are OpenSSL's; this file only parses and builds the messages, every one
 * bounded by TRIB_SCRAM_MSG_MAX and checked before use.
 */
#include "tributary/scram.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static const EVP_MD *mech_md(int mech)
{
    switch (mech) {
    case TRIB_SCRAM_SHA_256:
        return EVP_sha256();
    case TRIB_SCRAM_SHA_512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

const char *trib_scram_mech_name(int mech)
{
    switch (mech) {
    case TRIB_SCRAM_SHA_256:
        return "SCRAM-SHA-256";
    case TRIB_SCRAM_SHA_512:
        return "SCRAM-SHA-512";
    default:
        return NULL;
    }
}

int trib_scram_mech_parse(const char *name)
{
    if (name && strcmp(name, "SCRAM-SHA-256") == 0) {
        return TRIB_SCRAM_SHA_256;
    }
    if (name && strcmp(name, "SCRAM-SHA-512") == 0) {
        return TRIB_SCRAM_SHA_512;
    }
    return 0;
}

size_t trib_scram_key_len(int mech)
{
    return mech == TRIB_SCRAM_SHA_256 ? 32 : mech == TRIB_SCRAM_SHA_512 ? 64 : 0;
}

int trib_scram_salted_password(int mech, const char *password, size_t password_len,
                               const uint8_t *salt, size_t salt_len, int32_t iterations,
                               uint8_t *out)
{
    const EVP_MD *md = mech_md(mech);
    if (!md || iterations < 1 || password_len > 1u << 20 || salt_len > TRIB_SCRAM_SALT_MAX) {
        return -EINVAL;
    }
    if (PKCS5_PBKDF2_HMAC(password, (int)password_len, salt, (int)salt_len, iterations, md,
                          (int)trib_scram_key_len(mech), out) != 1) {
        return -EIO;
    }
    return 0;
}

static int hmac(int mech, const uint8_t *key, size_t klen, const void *msg, size_t n, uint8_t *out)
{
    unsigned int len = 0;
    if (!HMAC(mech_md(mech), key, (int)klen, msg, n, out, &len) ||
        len != trib_scram_key_len(mech)) {
        return -EIO;
    }
    return 0;
}

static int hash(int mech, const uint8_t *in, size_t n, uint8_t *out)
{
    unsigned int len = 0;
    if (EVP_Digest(in, n, out, &len, mech_md(mech), NULL) != 1) {
        return -EIO;
    }
    return 0;
}

int trib_scram_cred_from_salted(trib_scram_cred_t *cred, int mech, const uint8_t *salt,
                                size_t salt_len, int32_t iterations, const uint8_t *salted)
{
    size_t kl = trib_scram_key_len(mech);
    uint8_t client_key[TRIB_SCRAM_KEY_MAX];
    if (!kl || salt_len > TRIB_SCRAM_SALT_MAX) {
        return -EINVAL;
    }
    memset(cred, 0, sizeof(*cred));
    cred->mech = mech;
    cred->iterations = iterations;
    memcpy(cred->salt, salt, salt_len);
    cred->salt_len = salt_len;
    int rc = hmac(mech, salted, kl, "Client Key", 10, client_key);
    if (rc == 0) {
        rc = hash(mech, client_key, kl, cred->stored_key);
    }
    if (rc == 0) {
        rc = hmac(mech, salted, kl, "Server Key", 10, cred->server_key);
    }
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

int trib_scram_cred_from_password(trib_scram_cred_t *cred, int mech, const char *password,
                                  size_t password_len, const uint8_t *salt, size_t salt_len,
                                  int32_t iterations)
{
    uint8_t fresh[32];
    uint8_t salted[TRIB_SCRAM_KEY_MAX];
    if (!salt) {
        if (RAND_bytes(fresh, sizeof(fresh)) != 1) {
            return -EIO;
        }
        salt = fresh;
        salt_len = sizeof(fresh);
    }
    int rc = trib_scram_salted_password(mech, password, password_len, salt, salt_len, iterations,
                                        salted);
    if (rc == 0) {
        rc = trib_scram_cred_from_salted(cred, mech, salt, salt_len, iterations, salted);
    }
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

bool trib_scram_cred_check_password(const trib_scram_cred_t *cred, const char *password,
                                    size_t password_len)
{
    trib_scram_cred_t probe;
    if (trib_scram_cred_from_password(&probe, cred->mech, password, password_len, cred->salt,
                                      cred->salt_len, cred->iterations) != 0) {
        return false;
    }
    size_t kl = trib_scram_key_len(cred->mech);
    bool ok = CRYPTO_memcmp(probe.stored_key, cred->stored_key, kl) == 0;
    OPENSSL_cleanse(&probe, sizeof(probe));
    return ok;
}

/* ---- base64 ---- */

size_t trib_base64_encode(const uint8_t *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    out[len] = '\0';
    return (size_t)len;
}

int trib_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if (n % 4 != 0 || n > 4 * 1024) {
        return -EINVAL;
    }
    if (n == 0) {
        *out_len = 0;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (i == n - 2 && c == '=' && in[n - 1] != '=')) {
            return -EINVAL;
        }
    }
    size_t pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    size_t len = n / 4 * 3 - pad;
    uint8_t tmp[3 * 1024 + 3];
    if (len > cap) {
        return -ENOSPC;
    }
    if (EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n) < 0) {
        return -EINVAL;
    }
    memcpy(out, tmp, len);
    *out_len = len;
    return 0;
}

/* ---- the exchange ---- */

void trib_scram_server_init(trib_scram_server_t *s, int mech)
{
    memset(s, 0, sizeof(*s));
    s->mech = mech;
}

int trib_scram_nonce(char out[33])
{
    uint8_t r[24];
    if (RAND_bytes(r, sizeof(r)) != 1) {
        return -EIO;
    }
    trib_base64_encode(r, sizeof(r), out);
    return 0;
}

/* Printable ASCII except ',' (RFC 5802's "printable"). */
static bool printable(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',') {
            return false;
        }
    }
    return n > 0;
}

/* saslname -> name: "=2C" is ',', "=3D" is '='; any other '=' is an error. */
static int decode_saslname(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '=') {
            if (i + 2 >= n) {
                return -EINVAL;
            }
            if (p[i + 1] == '2' && p[i + 2] == 'C') {
                c = ',';
            } else if (p[i + 1] == '3' && p[i + 2] == 'D') {
                c = '=';
            } else {
                return -EINVAL;
            }
            i += 2;
        } else if (c == '\0' || c == ',') {
            return -EINVAL;
        }
        if (o + 1 >= cap) {
            return -EINVAL;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -EINVAL;
}

/* The next comma-separated attribute of msg[*pos..n): its start and length. */
static bool next_attr(const char *msg, size_t n, size_t *pos, const char **a, size_t *alen)
{
    if (*pos > n) {
        return false;
    }
    const char *start = msg + *pos;
    const char *comma = memchr(start, ',', n - *pos);
    size_t len = comma ? (size_t)(comma - start) : n - *pos;
    *a = start;
    *alen = len;
    *pos += len + 1;
    return true;
}

int trib_scram_server_client_first(trib_scram_server_t *s, const uint8_t *umsg, size_t n,
                                   const char **why)
{
    const char *msg = (const char *)umsg;
    s->step = -1;
    if (n == 0 || n > TRIB_SCRAM_MSG_MAX || memchr(msg, '\0', n)) {
        *why = "malformed client-first message";
        return -EINVAL;
    }
    size_t pos = 0;
    const char *a;
    size_t alen;
    /* gs2-cbind-flag */
    if (!next_attr(msg, n, &pos, &a, &alen) || alen != 1 || (a[0] != 'n' && a[0] != 'y')) {
        *why = a && alen > 0 && a[0] == 'p' ? "channel binding is not supported"
                                            : "malformed client-first message (gs2 header)";
        return -EINVAL;
    }
    /* [authzid] */
    if (!next_attr(msg, n, &pos, &a, &alen) || (alen > 0 && (alen < 2 || memcmp(a, "a=", 2)))) {
        *why = "malformed client-first message (authzid)";
        return -EINVAL;
    }
    char authzid[TRIB_SCRAM_NAME_MAX] = "";
    if (alen > 0 && decode_saslname(a + 2, alen - 2, authzid, sizeof(authzid)) != 0) {
        *why = "malformed authorization id";
        return -EINVAL;
    }
    if (pos > n || pos >= sizeof(s->gs2)) {
        *why = "malformed client-first message";
        return -EINVAL;
    }
    memcpy(s->gs2, msg, pos);
    s->gs2[pos] = '\0';
    size_t bare = pos;
    /* n=user */
    if (!next_attr(msg, n, &pos, &a, &alen) || alen < 3 || memcmp(a, "n=", 2) != 0 ||
        decode_saslname(a + 2, alen - 2, s->user, sizeof(s->user)) != 0) {
        *why = "malformed client-first message (user name)";
        return -EINVAL;
    }
    if (authzid[0] && strcmp(authzid, s->user) != 0) {
        *why = "the authorization id differs from the user name";
        return -EINVAL;
    }
    /* r=nonce */
    if (!next_attr(msg, n, &pos, &a, &alen) || alen < 3 || memcmp(a, "r=", 2) != 0 ||
        !printable(a + 2, alen - 2)) {
        *why = "malformed client-first message (nonce)";
        return -EINVAL;
    }
    memcpy(s->nonce, a + 2, alen - 2);
    s->nonce[alen - 2] = '\0';
    /* extensions */
    while (pos <= n && next_attr(msg, n, &pos, &a, &alen)) {
        if (alen == 14 && memcmp(a, "tokenauth=true", 14) == 0) {
            *why = "delegation tokens are not supported";
            return -EINVAL;
        }
        if (alen == 0 || memchr(a, '=', alen) == NULL) {
            *why = "malformed client-first message (extension)";
            return -EINVAL;
        }
    }
    memcpy(s->client_first_bare, msg + bare, n - bare);
    s->client_first_bare[n - bare] = '\0';
    s->step = 1;
    return 0;
}

int trib_scram_server_first(trib_scram_server_t *s, const trib_scram_cred_t *cred,
                            const char *snonce, char *out, size_t cap)
{
    char salt[4 * ((TRIB_SCRAM_SALT_MAX + 2) / 3) + 1];
    size_t cl = strlen(s->nonce);
    size_t sl = strlen(snonce);
    if (s->step != 1 || cl + sl >= sizeof(s->nonce)) {
        return -EINVAL;
    }
    memcpy(s->nonce + cl, snonce, sl + 1);
    trib_base64_encode(cred->salt, cred->salt_len, salt);
    int len = snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%d", s->nonce, salt,
                       (int)cred->iterations);
    if (len < 0 || (size_t)len >= sizeof(s->server_first) || (size_t)len >= cap) {
        return -ENOSPC;
    }
    memcpy(out, s->server_first, (size_t)len + 1);
    return len;
}

int trib_scram_server_client_final(trib_scram_server_t *s, const trib_scram_cred_t *cred,
                                   const uint8_t *umsg, size_t n, char *out, size_t cap,
                                   const char **why)
{
    const char *msg = (const char *)umsg;
    size_t kl = trib_scram_key_len(cred->mech);
    int step = s->step;
    s->step = -1;
    if (step != 1 || cred->mech != s->mech) {
        *why = "unexpected client-final message";
        return -EINVAL;
    }
    if (n == 0 || n > TRIB_SCRAM_MSG_MAX || memchr(msg, '\0', n)) {
        *why = "malformed client-final message";
        return -EINVAL;
    }
    /* The proof is the last attribute. */
    const char *p = NULL;
    for (size_t i = n; i-- > 0;) {
        if (msg[i] == ',') {
            p = msg + i;
            break;
        }
    }
    if (!p || (size_t)(msg + n - p) < 4 || memcmp(p, ",p=", 3) != 0) {
        *why = "malformed client-final message (proof)";
        return -EINVAL;
    }
    size_t without_proof = (size_t)(p - msg);
    size_t pos = 0;
    const char *a;
    size_t alen;
    /* c=base64(gs2 header) */
    char cbind[sizeof(s->gs2) * 2];
    size_t gl = strlen(s->gs2);
    trib_base64_encode((const uint8_t *)s->gs2, gl, cbind);
    if (!next_attr(msg, without_proof, &pos, &a, &alen) || alen < 2 || memcmp(a, "c=", 2) != 0 ||
        alen - 2 != strlen(cbind) || memcmp(a + 2, cbind, alen - 2) != 0) {
        *why = "channel binding attribute does not match the client-first message";
        return -EINVAL;
    }
    /*
     * The nonce must end with server-first's (Kafka's check: librdkafka
     * sends its client nonce in front of the whole server nonce).
     */
    size_t nl = strlen(s->nonce);
    if (!next_attr(msg, without_proof, &pos, &a, &alen) || alen < 2 || memcmp(a, "r=", 2) != 0 ||
        alen - 2 < nl || memcmp(a + alen - nl, s->nonce, nl) != 0) {
        *why = "nonce does not match";
        return -EINVAL;
    }
    uint8_t proof[TRIB_SCRAM_KEY_MAX];
    size_t plen = 0;
    if (trib_base64_decode(p + 3, (size_t)(msg + n - p - 3), proof, sizeof(proof), &plen) != 0 ||
        plen != kl) {
        *why = "malformed proof";
        return -EINVAL;
    }
    /* AuthMessage */
    char auth[3 * TRIB_SCRAM_MSG_MAX + 8];
    int alen_i = snprintf(auth, sizeof(auth), "%s,%s,%.*s", s->client_first_bare, s->server_first,
                          (int)without_proof, msg);
    if (alen_i < 0 || (size_t)alen_i >= sizeof(auth)) {
        *why = "message too long";
        return -EINVAL;
    }
    uint8_t sig[TRIB_SCRAM_KEY_MAX], client_key[TRIB_SCRAM_KEY_MAX], stored[TRIB_SCRAM_KEY_MAX];
    if (hmac(cred->mech, cred->stored_key, kl, auth, (size_t)alen_i, sig) != 0) {
        *why = "internal error";
        return -EIO;
    }
    for (size_t i = 0; i < kl; i++) {
        client_key[i] = proof[i] ^ sig[i];
    }
    if (hash(cred->mech, client_key, kl, stored) != 0) {
        *why = "internal error";
        return -EIO;
    }
    OPENSSL_cleanse(client_key, sizeof(client_key));
    if (CRYPTO_memcmp(stored, cred->stored_key, kl) != 0) {
        *why = "invalid credentials";
        return -EACCES;
    }
    if (hmac(cred->mech, cred->server_key, kl, auth, (size_t)alen_i, sig) != 0) {
        *why = "internal error";
        return -EIO;
    }
    char v[4 * ((TRIB_SCRAM_KEY_MAX + 2) / 3) + 1];
    trib_base64_encode(sig, kl, v);
    int len = snprintf(out, cap, "v=%s", v);
    if (len < 0 || (size_t)len >= cap) {
        return -ENOSPC;
    }
    s->step = 2;
    return len;
}

/* ---- the client's side ---- */

int trib_scram_client_first(trib_scram_client_t *c, int mech, const char *user, const char *cnonce,
                            char *out, size_t cap)
{
    memset(c, 0, sizeof(*c));
    c->mech = mech;
    c->step = -1;
    size_t ul = user ? strlen(user) : 0;
    size_t nl = cnonce ? strlen(cnonce) : 0;
    if (!trib_scram_key_len(mech) || ul == 0 || ul >= TRIB_SCRAM_NAME_MAX ||
        nl >= sizeof(c->cnonce) || !printable(cnonce, nl)) {
        return -EINVAL;
    }
    /* saslname: ',' and '=' escaped; at most 3 bytes per byte of the name. */
    char name[3 * TRIB_SCRAM_NAME_MAX + 1];
    size_t o = 0;
    for (size_t i = 0; i < ul; i++) {
        if (user[i] == ',') {
            memcpy(name + o, "=2C", 3);
            o += 3;
        } else if (user[i] == '=') {
            memcpy(name + o, "=3D", 3);
            o += 3;
        } else {
            name[o++] = user[i];
        }
    }
    name[o] = '\0';
    int len =
        snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=%s,r=%s", name, cnonce);
    if (len < 0 || (size_t)len >= sizeof(c->client_first_bare) || (size_t)len + 3 >= cap) {
        return -ENOSPC;
    }
    memcpy(c->cnonce, cnonce, nl + 1);
    memcpy(out, "n,,", 3);
    memcpy(out + 3, c->client_first_bare, (size_t)len + 1);
    c->step = 1;
    return len + 3;
}

int trib_scram_client_final(trib_scram_client_t *c, const char *password, size_t password_len,
                            const uint8_t *umsg, size_t n, char *out, size_t cap, const char **why)
{
    const char *msg = (const char *)umsg;
    size_t kl = trib_scram_key_len(c->mech);
    int step = c->step;
    c->step = -1;
    if (step != 1 || !kl) {
        *why = "unexpected server-first message";
        return -EINVAL;
    }
    if (n == 0 || n > TRIB_SCRAM_MSG_MAX || memchr(msg, '\0', n)) {
        *why = "malformed server-first message";
        return -EINVAL;
    }
    size_t pos = 0;
    const char *a;
    size_t alen;
    /* r=nonce: the client's nonce and the server's after it */
    if (!next_attr(msg, n, &pos, &a, &alen) || alen < 2 || memcmp(a, "r=", 2) != 0) {
        *why = alen >= 2 && memcmp(a, "m=", 2) == 0
                   ? "the server requires a SCRAM extension that is not supported"
                   : "malformed server-first message (nonce)";
        return -EINVAL;
    }
    const char *nonce = a + 2;
    size_t nonce_len = alen - 2;
    size_t cl = strlen(c->cnonce);
    if (nonce_len <= cl || memcmp(nonce, c->cnonce, cl) != 0 || !printable(nonce, nonce_len)) {
        *why = "the server's nonce does not extend the client's";
        return -EINVAL;
    }
    /* s=salt */
    uint8_t salt[TRIB_SCRAM_SALT_MAX];
    size_t salt_len = 0;
    if (!next_attr(msg, n, &pos, &a, &alen) || alen < 3 || memcmp(a, "s=", 2) != 0 ||
        trib_base64_decode(a + 2, alen - 2, salt, sizeof(salt), &salt_len) != 0 || salt_len == 0) {
        *why = "malformed server-first message (salt)";
        return -EINVAL;
    }
    /* i=iterations */
    if (!next_attr(msg, n, &pos, &a, &alen) || alen < 3 || alen > 12 || memcmp(a, "i=", 2) != 0) {
        *why = "malformed server-first message (iteration count)";
        return -EINVAL;
    }
    int64_t iter = 0;
    for (size_t i = 2; i < alen; i++) {
        if (a[i] < '0' || a[i] > '9') {
            *why = "malformed server-first message (iteration count)";
            return -EINVAL;
        }
        iter = iter * 10 + (a[i] - '0');
    }
    if (iter < TRIB_SCRAM_MIN_ITERATIONS || iter > TRIB_SCRAM_MAX_ITERATIONS) {
        *why = "the server's iteration count is outside 4096-16384";
        return -EINVAL;
    }
    /* Extensions after i= are ignored (RFC 5802 reserves them). */

    /* client-final without its proof, and the AuthMessage */
    char without_proof[TRIB_SCRAM_MSG_MAX + 16];
    int wl = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)nonce_len, nonce);
    char auth[3 * TRIB_SCRAM_MSG_MAX + 8];
    int al = snprintf(auth, sizeof(auth), "%s,%.*s,%s", c->client_first_bare, (int)n, msg,
                      without_proof);
    if (wl < 0 || (size_t)wl >= sizeof(without_proof) || al < 0 || (size_t)al >= sizeof(auth)) {
        *why = "message too long";
        return -EINVAL;
    }
    uint8_t salted[TRIB_SCRAM_KEY_MAX], client_key[TRIB_SCRAM_KEY_MAX];
    uint8_t stored[TRIB_SCRAM_KEY_MAX], sig[TRIB_SCRAM_KEY_MAX], server_key[TRIB_SCRAM_KEY_MAX];
    int rc = trib_scram_salted_password(c->mech, password, password_len, salt, salt_len,
                                        (int32_t)iter, salted);
    if (rc == 0) {
        rc = hmac(c->mech, salted, kl, "Client Key", 10, client_key);
    }
    if (rc == 0) {
        rc = hash(c->mech, client_key, kl, stored);
    }
    if (rc == 0) {
        rc = hmac(c->mech, stored, kl, auth, (size_t)al, sig);
    }
    if (rc == 0) {
        rc = hmac(c->mech, salted, kl, "Server Key", 10, server_key);
    }
    if (rc == 0) {
        rc = hmac(c->mech, server_key, kl, auth, (size_t)al, c->server_signature);
    }
    if (rc == 0) {
        for (size_t i = 0; i < kl; i++) {
            client_key[i] ^= sig[i]; /* the proof */
        }
    }
    int len = -1;
    if (rc == 0) {
        char proof[4 * ((TRIB_SCRAM_KEY_MAX + 2) / 3) + 1];
        trib_base64_encode(client_key, kl, proof);
        len = snprintf(out, cap, "%s,p=%s", without_proof, proof);
        OPENSSL_cleanse(proof, sizeof(proof));
    }
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    if (rc != 0) {
        *why = rc == -EINVAL ? "the password cannot be used" : "internal error";
        return rc;
    }
    if (len < 0 || (size_t)len >= cap) {
        return -ENOSPC;
    }
    c->step = 2;
    return len;
}

int trib_scram_client_verify(trib_scram_client_t *c, const uint8_t *umsg, size_t n,
                             const char **why)
{
    const char *msg = (const char *)umsg;
    size_t kl = trib_scram_key_len(c->mech);
    int step = c->step;
    c->step = -1;
    if (step != 2 || !kl) {
        *why = "unexpected server-final message";
        return -EINVAL;
    }
    if (n > TRIB_SCRAM_MSG_MAX || (n > 0 && memchr(msg, '\0', n))) {
        *why = "malformed server-final message";
        return -EINVAL;
    }
    if (n >= 2 && memcmp(msg, "e=", 2) == 0) {
        size_t el = 0;
        for (size_t i = 2; i < n && msg[i] != ',' && el + 1 < sizeof(c->error); i++) {
            c->error[el++] = msg[i] >= 0x20 && msg[i] < 0x7f ? msg[i] : '?';
        }
        c->error[el] = '\0';
        *why = c->error;
        return -EACCES;
    }
    const char *comma = n ? memchr(msg, ',', n) : NULL;
    size_t vl = comma ? (size_t)(comma - msg) : n;
    uint8_t v[TRIB_SCRAM_KEY_MAX];
    size_t got = 0;
    if (vl < 3 || memcmp(msg, "v=", 2) != 0 ||
        trib_base64_decode(msg + 2, vl - 2, v, sizeof(v), &got) != 0) {
        *why = "malformed server-final message";
        return -EINVAL;
    }
    if (got != kl || CRYPTO_memcmp(v, c->server_signature, kl) != 0) {
        *why = "the server's signature does not match (it does not know the password)";
        return -EACCES;
    }
    c->step = 3;
    return 0;
}

void trib_scram_client_fini(trib_scram_client_t *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}
