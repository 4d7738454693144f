/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for the Kafka listeners: the OpenSSL server context of a listener
 * and the principal of a client certificate. conn.c runs the connections
 * (see its opening comment).
 *
 * The context allows TLS 1.2 and 1.3 only. TLS 1.2 suites are ECDHE with
 * AES-GCM or ChaCha20-Poly1305 (forward secrecy, AEAD); TLS 1.3 keeps
 * OpenSSL's suites, which are all of that kind. Renegotiation is off.
 * Client certificates: `none` asks for none; `requested` asks, and checks
 * one that is sent against `ca`; `required` refuses a client without one.
 */
#include "server/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

static int fail(trib_error_t *err, const char *listener, const char *what, const char *file)
{
    char reason[256];
    unsigned long e = ERR_peek_last_error();
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
    } else {
        snprintf(reason, sizeof(reason), "cannot be loaded");
    }
    ERR_clear_error();
    return trib_error_set(err, TRIB_ECONFIG, "listener %s: %s '%s': %s", listener, what,
                          file ? file : "", reason);
}

SSL_CTX *coll_tls_ctx_new(const coll_listener_config_t *l, trib_error_t *err)
{
    const char *name = l->name ? l->name : "?";
    const char *files[3][2] = {
        {"tls.cert", l->tls_cert}, {"tls.key", l->tls_key}, {"tls.ca", l->tls_ca}};
    for (int i = 0; i < 3; i++) {
        if (files[i][1] && files[i][1][0] && access(files[i][1], R_OK) != 0) {
            trib_error_set(err, -errno, "listener %s: %s '%s': %s", name, files[i][0], files[i][1],
                           strerror(errno));
            return NULL;
        }
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail(err, name, "TLS", "context");
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* conn.c writes through a socket BIO and retries a write with the same bytes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        fail(err, name, "TLS", "cipher list");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1) {
        fail(err, name, "tls.cert", l->tls_cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1) {
        fail(err, name, "tls.key", l->tls_key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        trib_error_set(err, TRIB_ECONFIG, "listener %s: tls.key '%s' does not match tls.cert '%s'",
                       name, l->tls_key, l->tls_cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    static const unsigned char sid[] = "tributary-collector";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (l->tls_ca && l->tls_ca[0]) {
        if (SSL_CTX_load_verify_locations(ctx, l->tls_ca, NULL) != 1) {
            fail(err, name, "tls.ca", l->tls_ca);
            SSL_CTX_free(ctx);
            return NULL;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(l->tls_ca);
        if (names) {
            SSL_CTX_set_client_CA_list(ctx, names);
        }
    }
    switch (l->client_auth) {
    case COLL_CLIENT_AUTH_REQUIRED:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    case COLL_CLIENT_AUTH_REQUESTED:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    default:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    }
    ERR_clear_error();
    return ctx;
}

void coll_tls_principal(SSL *ssl, char *out, size_t cap)
{
    snprintf(out, cap, "User:ANONYMOUS");
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) {
        return;
    }
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
        BIO *b = BIO_new(BIO_s_mem());
        if (b) {
            /* RFC 2253, as Kafka's default principal builder prints it. */
            if (X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
                char *p = NULL;
                long n = BIO_get_mem_data(b, &p);
                if (n > 0 && p) {
                    snprintf(out, cap, "User:%.*s", (int)n, p);
                }
            }
            BIO_free(b);
        }
    }
    X509_free(cert);
}

const char *coll_tls_error(SSL *ssl, int rc, char *buf, size_t cap)
{
    int e = SSL_get_error(ssl, rc);
    unsigned long le = ERR_peek_last_error();
    if (le != 0) {
        ERR_error_string_n(le, buf, cap);
    } else if (e == SSL_ERROR_SYSCALL) {
        snprintf(buf, cap, "TLS: connection reset");
    } else {
        snprintf(buf, cap, "TLS error %d", e);
    }
    long vr = SSL_get_verify_result(ssl);
    if (vr != X509_V_OK) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, " (certificate: %s)", X509_verify_cert_error_string(vr));
    }
    ERR_clear_error();
    return buf;
}
