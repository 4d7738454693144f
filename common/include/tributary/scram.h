/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), as Kafka's
 * SCRAM-SHA-256 and SCRAM-SHA-512 SASL mechanisms use it: the key
 * derivation (PBKDF2-HMAC from OpenSSL), the server's and the client's
 * sides of the exchange, and base64.
 *
 * A credential is what a server stores: the salt, the iteration count and
 * two keys derived from the password, never the password itself:
 *
 *   SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)
 *   StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
 *   ServerKey      = HMAC(SaltedPassword, "Server Key")
 *
 * The exchange (messages are ASCII, without terminators):
 *
 *   client-first  n,,n=USER,r=CNONCE
 *   server-first  r=CNONCE SNONCE,s=SALT(b64),i=ITERATIONS
 *   client-final  c=biws,r=CNONCE SNONCE,p=PROOF(b64)
 *   server-final  v=SERVER-SIGNATURE(b64)
 *
 * The server checks H(PROOF xor HMAC(StoredKey, AuthMessage)) == StoredKey,
 * where AuthMessage = client-first without its "n,," header, server-first
 * and client-final without ",p=…", joined by commas. client-final's nonce
 * must end with server-first's, as Kafka checks it (librdkafka sends its
 * client nonce again in front of the server's). Channel binding ("p=")
 * is not supported (Kafka does not use it); extensions after r= are
 * ignored, except tokenauth=true (delegation tokens), which is refused.
 *
 * Mechanism numbers are Kafka's ScramMechanism values (1 = SCRAM-SHA-256,
 * 2 = SCRAM-SHA-512), as in DescribeUserScramCredentials.
 */
#ifndef TRIBUTARY_SCRAM_H
#define TRIBUTARY_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRIB_SCRAM_SHA_256 1
#define TRIB_SCRAM_SHA_512 2
/* Kafka's bounds on the iteration count (ScramMechanism.minIterations and the max it accepts). */
#define TRIB_SCRAM_MIN_ITERATIONS 4096
#define TRIB_SCRAM_MAX_ITERATIONS 16384
#define TRIB_SCRAM_KEY_MAX 64  /* SHA-512 */
#define TRIB_SCRAM_SALT_MAX 64 /* bytes of salt accepted */
#define TRIB_SCRAM_NAME_MAX 256
/* Longest message parsed (a client-first or client-final message is ~100-200 bytes). */
#define TRIB_SCRAM_MSG_MAX 1024

/* "SCRAM-SHA-256" or "SCRAM-SHA-512"; NULL for another number. */
const char *trib_scram_mech_name(int mech);
/* The mechanism named (case-sensitive, as SASL names are); 0 if none. */
int trib_scram_mech_parse(const char *name);
/* Bytes of the mechanism's hash (32 or 64); 0 for an unknown one. */
size_t trib_scram_key_len(int mech);

/* SaltedPassword into out[key_len]. 0, or -EINVAL / -EIO. */
int trib_scram_salted_password(int mech, const char *password, size_t password_len,
                               const uint8_t *salt, size_t salt_len, int32_t iterations,
                               uint8_t *out);

typedef struct trib_scram_cred {
    int mech;
    int32_t iterations;
    uint8_t salt[TRIB_SCRAM_SALT_MAX];
    size_t salt_len;
    uint8_t stored_key[TRIB_SCRAM_KEY_MAX];
    uint8_t server_key[TRIB_SCRAM_KEY_MAX];
} trib_scram_cred_t;

/* StoredKey and ServerKey of a SaltedPassword, with the salt and count, into cred. 0 or -EIO. */
int trib_scram_cred_from_salted(trib_scram_cred_t *cred, int mech, const uint8_t *salt,
                                size_t salt_len, int32_t iterations, const uint8_t *salted);
/* A credential from a password (a fresh salt from the OpenSSL RNG when salt is NULL). */
int trib_scram_cred_from_password(trib_scram_cred_t *cred, int mech, const char *password,
                                  size_t password_len, const uint8_t *salt, size_t salt_len,
                                  int32_t iterations);
/* True when password matches cred (PLAIN logins are checked this way). Constant-time compare. */
bool trib_scram_cred_check_password(const trib_scram_cred_t *cred, const char *password,
                                    size_t password_len);

/* ---- the server's side of the exchange ---- */

typedef struct trib_scram_server {
    int mech;
    int step; /* 0 wants client-first, 1 wants client-final, 2 done, -1 failed */
    char user[TRIB_SCRAM_NAME_MAX];
    char gs2[TRIB_SCRAM_NAME_MAX + 8]; /* the GS2 header, "n,," or "n,a=USER," */
    char client_first_bare[TRIB_SCRAM_MSG_MAX + 1];
    char server_first[TRIB_SCRAM_MSG_MAX + 1];
    char nonce[2 * TRIB_SCRAM_MSG_MAX + 1]; /* client nonce + server nonce */
} trib_scram_server_t;

void trib_scram_server_init(trib_scram_server_t *s, int mech);
/*
 * Parses client-first: the user name (decoded from SCRAM's =2C/=3D) lands
 * in s->user. 0, or -EINVAL with *why set.
 */
int trib_scram_server_client_first(trib_scram_server_t *s, const uint8_t *msg, size_t n,
                                   const char **why);
/*
 * server-first for cred, with snonce (printable ASCII without ',', at
 * least 16 characters; random in production) appended to the client's
 * nonce. Writes it NUL-terminated to out[cap]; returns its length or -ENOSPC.
 */
int trib_scram_server_first(trib_scram_server_t *s, const trib_scram_cred_t *cred,
                            const char *snonce, char *out, size_t cap);
/*
 * Checks client-final against cred. On success writes server-final
 * (NUL-terminated) to out[cap] and returns its length; -EACCES for a
 * wrong proof, -EINVAL for a malformed message (*why set for both).
 */
int trib_scram_server_client_final(trib_scram_server_t *s, const trib_scram_cred_t *cred,
                                   const uint8_t *msg, size_t n, char *out, size_t cap,
                                   const char **why);
/* A fresh server nonce: 24 random bytes, base64 (32 characters + NUL into out[33]). */
int trib_scram_nonce(char out[33]);

/* ---- the client's side of the exchange ---- */

typedef struct trib_scram_client {
    int mech;
    int step; /* 0 fresh, 1 client-first sent, 2 client-final sent, 3 verified, -1 failed */
    char client_first_bare[TRIB_SCRAM_MSG_MAX + 1];
    char cnonce[TRIB_SCRAM_MSG_MAX + 1];
    uint8_t server_signature[TRIB_SCRAM_KEY_MAX];
    char error[128]; /* a server-final "e=" value, for *why */
} trib_scram_client_t;

/*
 * client-first, "n,,n=USER,r=CNONCE" (the user name escaped as SCRAM's
 * saslname: ',' as =2C, '=' as =3D), NUL-terminated into out[cap]. cnonce
 * is printable ASCII without ',' (trib_scram_nonce() in production).
 * Returns the length, -EINVAL for a bad mechanism, user or nonce, or
 * -ENOSPC.
 */
int trib_scram_client_first(trib_scram_client_t *c, int mech, const char *user, const char *cnonce,
                            char *out, size_t cap);
/*
 * Reads server-first ("r=NONCE,s=SALT,i=ITERATIONS"): the nonce must start
 * with the client's and be longer, the salt valid base64, the count within
 * [TRIB_SCRAM_MIN_ITERATIONS, TRIB_SCRAM_MAX_ITERATIONS]. Writes
 * client-final ("c=biws,r=NONCE,p=PROOF") NUL-terminated into out[cap] and
 * keeps the server signature it expects. Returns the length, or -EINVAL
 * (*why set) for a malformed or unacceptable message, -ENOSPC, -EIO.
 */
int trib_scram_client_final(trib_scram_client_t *c, const char *password, size_t password_len,
                            const uint8_t *server_first, size_t n, char *out, size_t cap,
                            const char **why);
/*
 * Checks server-final: 0 when its "v=" is the expected server signature;
 * -EACCES for "e=ERROR" (*why is the server's error) or a signature that
 * does not match (the server does not know the password); -EINVAL for a
 * malformed message.
 */
int trib_scram_client_verify(trib_scram_client_t *c, const uint8_t *server_final, size_t n,
                             const char **why);
/* Wipes the exchange's secrets. */
void trib_scram_client_fini(trib_scram_client_t *c);

/* ---- base64 (RFC 4648, padded) ---- */

/* Encodes n bytes into out (4 * ((n + 2) / 3) + 1 bytes, NUL-terminated); returns the length. */
size_t trib_base64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly n characters (a multiple of 4); -EINVAL on anything else, -ENOSPC if out is
 * short. */
int trib_base64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

#endif
