/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small, blocking Kafka client on our own codec, for the `tributary` CLI,
 * tests and tools. It is not a producer library: no background thread, no
 * retries behind the caller's back, one request in flight per connection.
 *
 *   trib_kclient_open()   connects to the first reachable bootstrap address,
 *                         negotiates versions with ApiVersions (v3 first,
 *                         v0 when the broker answers UNSUPPORTED_VERSION, as
 *                         librdkafka does) and reads the cluster's brokers
 *                         and controller with Metadata.
 *   trib_kclient_version() the highest version both sides support in a range.
 *   trib_kclient_call()    encodes any generated request, sends it to a node
 *                         (the leader, the controller or any broker), waits
 *                         for the response and decodes it.
 *
 * Versions are negotiated once, on the bootstrap connection, and used for
 * every broker of the cluster (kafkajs does the same); a cluster whose
 * brokers differ in versions is not this client's concern yet.
 *
 * Frames on the wire:
 *
 *   +-----------+----------------------------+-------------------------+
 *   | size int32| request header v1 or v2    | body (generated codec)  |
 *   +-----------+----------------------------+-------------------------+
 *   | size int32| response header v0 or v1   | body                    |
 *   +-----------+----------------------------+-------------------------+
 *
 * A response's bytes live in the caller's arena, so decoded strings and
 * records stay valid until the arena is reset or freed.
 *
 * Errors: functions return 0 or a negative -errno / TRIB_E* code and fill
 * the caller's trib_error_t with a sentence. Kafka error codes inside a
 * response body are the caller's to read; nothing here hides them.
 * -ETIMEDOUT when the broker does not answer within the request timeout,
 * -ECONNREFUSED / -ECONNRESET / -EPIPE for connection failures,
 * -EPROTO for a TLS handshake that fails (the reason in the sentence:
 * the certificate check's verdict, or what OpenSSL says), -EACCES for a
 * SASL login the broker refuses (SASL_AUTHENTICATION_FAILED) or a broker
 * whose SCRAM signature is wrong, -ENOTSUP for a SASL mechanism the
 * broker does not offer,
 * TRIB_EMALFORMED for a response the codec cannot read or whose
 * correlation id does not match. After a connection error the connection
 * is closed and the next call to that node reconnects.
 */
#ifndef TRIBUTARY_KCLIENT_H
#define TRIBUTARY_KCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/error.h"
#include "tributary/kafka.h"

typedef struct trib_kclient trib_kclient_t;

/* security.protocol, as Kafka names it. */
typedef enum trib_kclient_protocol {
    TRIB_KCLIENT_PLAINTEXT = 0,
    TRIB_KCLIENT_SSL,
    TRIB_KCLIENT_SASL_PLAINTEXT,
    TRIB_KCLIENT_SASL_SSL,
} trib_kclient_protocol_t;

#define TRIB_KCLIENT_PATH_MAX 4096
#define TRIB_KCLIENT_SECRET_MAX 512

/*
 * How every connection authenticates (client_security.c reads it from a
 * properties file). With SSL and SASL_SSL the connection is TLS 1.2 or
 * 1.3 and the broker's certificate is verified against ca_location (the
 * system's CAs when empty) and, unless verify_hostname is false, against
 * the host name or IP address connected to. cert_location and
 * key_location give a client certificate (mTLS). With SASL_PLAINTEXT and
 * SASL_SSL each connection logs in with SaslHandshake v1 and
 * SaslAuthenticate before any other request but ApiVersions.
 */
typedef struct trib_kclient_security {
    trib_kclient_protocol_t protocol;
    char ca_location[TRIB_KCLIENT_PATH_MAX];   /* PEM CA certificates */
    char cert_location[TRIB_KCLIENT_PATH_MAX]; /* PEM client certificate (chain) */
    char key_location[TRIB_KCLIENT_PATH_MAX];  /* PEM private key */
    char key_password[TRIB_KCLIENT_SECRET_MAX];
    bool verify_hostname; /* ssl.endpoint.identification.algorithm=https (the default) */
    char mechanism[32];   /* PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 */
    char username[256];
    char password[TRIB_KCLIENT_SECRET_MAX];
} trib_kclient_security_t;

/* Plaintext, hostnames verified once TLS is on. */
void trib_kclient_security_init(trib_kclient_security_t *s);
/*
 * Sets one property by its librdkafka or Kafka name: security.protocol,
 * sasl.mechanism(s), sasl.username, sasl.password, sasl.jaas.config (the
 * username="..." and password="..." of Kafka's PlainLoginModule and
 * ScramLoginModule), ssl.ca.location, ssl.truststore.location (PEM),
 * ssl.truststore.type (PEM only), ssl.certificate.location,
 * ssl.key.location, ssl.key.password, ssl.endpoint.identification.algorithm
 * (https or none). Returns 0, 1 for a key it does not know, or -EINVAL
 * with a sentence in err for a value it cannot take.
 */
int trib_kclient_security_set(trib_kclient_security_t *s, const char *key, const char *value,
                              trib_error_t *err);
/*
 * Reads a properties file: "key=value" (or "key: value") lines, '#' and
 * '!' comments, blank lines; keys and values trimmed of spaces, no escapes.
 * A key it does not know is passed to warn (when not NULL) as "FILE:LINE:
 * unknown property 'KEY' (ignored)". Then checks the settings agree (SASL
 * needs a mechanism, a user name and a password; a certificate needs its
 * key). 0, or a negative code with err naming the file and line.
 */
int trib_kclient_security_load(trib_kclient_security_t *s, const char *path,
                               void (*warn)(void *arg, const char *msg), void *warn_arg,
                               trib_error_t *err);
/* The settings' consistency check that _load() ends with. */
int trib_kclient_security_check(const trib_kclient_security_t *s, trib_error_t *err);
/* "PLAINTEXT", "SSL", "SASL_PLAINTEXT" or "SASL_SSL". */
const char *trib_kclient_protocol_name(trib_kclient_protocol_t p);

typedef struct trib_kclient_opts {
    const char *bootstrap;     /* "host:port[,host:port…]"; default 127.0.0.1:9092 */
    const char *client_id;     /* default "tributary" */
    int timeout_ms;            /* connect and per-request timeout; default 30000 */
    size_t max_response;       /* largest response frame accepted; default 256 MiB */
    const char *software_name; /* ApiVersions v3+; default "tributary" */
    const char *software_ver;  /* default TRIB_VERSION */
    /* TLS and SASL for every connection; NULL is plaintext. Copied by open. */
    const trib_kclient_security_t *security;
} trib_kclient_opts_t;

/* The node id that means "the controller" and "whichever broker is connected". */
#define TRIB_KCLIENT_CONTROLLER (-2)
#define TRIB_KCLIENT_ANY (-1)

/* A broker of the cluster, from Metadata. */
typedef struct trib_kclient_broker {
    int32_t node_id;
    char host[256];
    int port;
    char rack[64]; /* "" when the broker has none */
} trib_kclient_broker_t;

/* One advertised API range. */
typedef struct trib_kclient_api_range {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
} trib_kclient_api_range_t;

void trib_kclient_opts_init(trib_kclient_opts_t *o);

/*
 * Connects, negotiates versions and reads the brokers. *out is NULL on
 * error. The options' strings are copied.
 */
int trib_kclient_open(trib_kclient_t **out, const trib_kclient_opts_t *o, trib_error_t *err);
void trib_kclient_close(trib_kclient_t *c);

/*
 * The highest version of api_key in [min, max] that the broker advertised
 * and our codec implements; -1 when there is none.
 */
int16_t trib_kclient_version(const trib_kclient_t *c, int16_t api_key, int16_t min, int16_t max);

/* The broker's advertised ranges, in the order it sent them. */
const trib_kclient_api_range_t *trib_kclient_api_ranges(const trib_kclient_t *c, size_t *n);

/* The brokers and controller of the last Metadata (or DescribeCluster) read. */
const trib_kclient_broker_t *trib_kclient_brokers(const trib_kclient_t *c, size_t *n);
int32_t trib_kclient_controller(const trib_kclient_t *c);
/* The cluster id (NUL-terminated, "" when the broker sent none). */
const char *trib_kclient_cluster_id(const trib_kclient_t *c);
/* The node id of the bootstrap connection's broker, when known, else -1. */
int32_t trib_kclient_bootstrap_node(const trib_kclient_t *c);

/*
 * Replaces the broker table (after the caller read a Metadata response
 * itself). Brokers of the old table keep their open connections if their
 * address did not change.
 */
int trib_kclient_set_brokers(trib_kclient_t *c, const trib_kclient_broker_t *brokers, size_t n,
                             int32_t controller, const char *cluster_id, size_t cluster_id_len);

/*
 * Sends `req` (a generated request struct of api_key) at `version` to
 * `node` and decodes the response into `resp` (the matching generated
 * response struct), with the response bytes and decoded arrays in `arena`.
 * `resp` may be NULL with expect_response false (Produce with acks=0): the
 * request is written and nothing is read.
 */
int trib_kclient_call(trib_kclient_t *c, int32_t node, int16_t api_key, int16_t version,
                      const void *req, void *resp, trib_arena_t *arena, trib_error_t *err);
int trib_kclient_send(trib_kclient_t *c, int32_t node, int16_t api_key, int16_t version,
                      const void *req, trib_error_t *err);

/*
 * Encodes one request frame (size, header, body) into `out`: the bytes
 * trib_kclient_call() writes. Exposed for tests and tools.
 */
int trib_kclient_frame(trib_buf_t *out, int16_t api_key, int16_t version, int32_t correlation_id,
                       const char *client_id, const void *req);

/* ---- helpers shared by tools --------------------------------------------- */

/*
 * Kafka's murmur2 (the Java client's Utils.murmur2), used by the default
 * partitioner: partition = (murmur2(key) & 0x7fffffff) % partitions.
 */
int32_t trib_kafka_murmur2(const void *data, size_t len);
int32_t trib_kafka_partition_for_key(const void *key, size_t len, int32_t partitions);

#endif
