/* SPDX-License-Identifier: Apache-2.0 */
/* TLS for the Kafka listeners (tls.c): contexts, principals, error text. */
#ifndef COLLECTOR_SERVER_TLS_H
#define COLLECTOR_SERVER_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "server/server.h"
#include "tributary/error.h"

/* The server context of a TLS listener, or NULL with err filled (naming the listener and file). */
SSL_CTX *coll_tls_ctx_new(const coll_listener_config_t *l, trib_error_t *err);
/* "User:<subject DN, RFC 2253>" of a verified client certificate, else "User:ANONYMOUS". */
void coll_tls_principal(SSL *ssl, char *out, size_t cap);
/* Why an SSL call that returned rc failed (and the certificate check's verdict); clears errors. */
const char *coll_tls_error(SSL *ssl, int rc, char *buf, size_t cap);

#endif
