/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SCRAM-SHA-256/512 (common/scram.c): the server side of the exchange
 * against RFC 7677's test vector, a SHA-512 round trip with a client
 * computed here, librdkafka's form of the final nonce, and malformed and
 * wrong messages; the client's side against the same vector, our server,
 * and server-first messages it must refuse.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tributary/scram.h"

/* RFC 7677 section 3. */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST                                                                           \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                                           \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"               \
    "Ute9ytag9zjfMHgs"                                                                             \
    "qmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void rfc_cred(trib_scram_cred_t *cred)
{
    uint8_t salt[64];
    size_t sl = 0;
    assert_int_equal(trib_base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt), &sl),
                     0);
    assert_int_equal(sl, 16);
    assert_int_equal(
        trib_scram_cred_from_password(cred, TRIB_SCRAM_SHA_256, "pencil", 6, salt, sl, 4096), 0);
}

static void test_rfc7677_vector(void **state)
{
    (void)state;
    trib_scram_cred_t cred;
    rfc_cred(&cred);
    trib_scram_server_t s;
    trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
    const char *why = NULL;
    assert_int_equal(trib_scram_server_client_first(&s, (const uint8_t *)RFC_CLIENT_FIRST,
                                                    strlen(RFC_CLIENT_FIRST), &why),
                     0);
    assert_string_equal(s.user, "user");
    char out[1100];
    int n = trib_scram_server_first(&s, &cred, RFC_SNONCE, out, sizeof(out));
    assert_int_equal(n, (int)strlen(RFC_SERVER_FIRST));
    assert_string_equal(out, RFC_SERVER_FIRST);
    n = trib_scram_server_client_final(&s, &cred, (const uint8_t *)RFC_CLIENT_FINAL,
                                       strlen(RFC_CLIENT_FINAL), out, sizeof(out), &why);
    if (n < 0) {
        fprintf(stderr, "client-final refused: %s\n", why);
    }
    assert_true(n > 0);
    assert_string_equal(out, RFC_SERVER_FINAL);
    assert_true(trib_scram_cred_check_password(&cred, "pencil", 6));
    assert_false(trib_scram_cred_check_password(&cred, "pencil2", 7));
}

static void test_rfc7677_wrong_proof(void **state)
{
    (void)state;
    trib_scram_cred_t cred;
    rfc_cred(&cred);
    /* The same exchange against the credential of another password. */
    trib_scram_cred_t other;
    assert_int_equal(trib_scram_cred_from_password(&other, TRIB_SCRAM_SHA_256, "pencil!", 7,
                                                   cred.salt, cred.salt_len, 4096),
                     0);
    trib_scram_server_t s;
    trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
    const char *why = NULL;
    char out[1100];
    assert_int_equal(trib_scram_server_client_first(&s, (const uint8_t *)RFC_CLIENT_FIRST,
                                                    strlen(RFC_CLIENT_FIRST), &why),
                     0);
    assert_true(trib_scram_server_first(&s, &other, RFC_SNONCE, out, sizeof(out)) > 0);
    int n = trib_scram_server_client_final(&s, &other, (const uint8_t *)RFC_CLIENT_FINAL,
                                           strlen(RFC_CLIENT_FINAL), out, sizeof(out), &why);
    assert_int_equal(n, -EACCES);
    assert_string_equal(why, "invalid credentials");
}

/* A client's side, written here from RFC 5802 for the round trip. */
static void client_proof(int mech, const char *pw, const trib_scram_cred_t *cred, const char *auth,
                         char *proof_b64)
{
    const EVP_MD *md = mech == TRIB_SCRAM_SHA_256 ? EVP_sha256() : EVP_sha512();
    size_t kl = trib_scram_key_len(mech);
    uint8_t salted[64], ck[64], sk[64], sig[64], proof[64];
    unsigned int len;
    assert_int_equal(trib_scram_salted_password(mech, pw, strlen(pw), cred->salt, cred->salt_len,
                                                cred->iterations, salted),
                     0);
    HMAC(md, salted, (int)kl, (const uint8_t *)"Client Key", 10, ck, &len);
    EVP_Digest(ck, kl, sk, &len, md, NULL);
    HMAC(md, sk, (int)kl, (const uint8_t *)auth, strlen(auth), sig, &len);
    for (size_t i = 0; i < kl; i++) {
        proof[i] = ck[i] ^ sig[i];
    }
    trib_base64_encode(proof, kl, proof_b64);
}

static void test_sha512_round_trip(void **state)
{
    (void)state;
    trib_scram_cred_t cred;
    assert_int_equal(trib_scram_cred_from_password(&cred, TRIB_SCRAM_SHA_512, "s3cret", 6, NULL, 0,
                                                   TRIB_SCRAM_MIN_ITERATIONS),
                     0);
    assert_int_equal(cred.salt_len, 32);
    const char *first = "n,a=bob=2Cx,n=bob=2Cx,r=abcdefghijklmnop,ext=1";
    trib_scram_server_t s;
    trib_scram_server_init(&s, TRIB_SCRAM_SHA_512);
    const char *why = NULL;
    assert_int_equal(
        trib_scram_server_client_first(&s, (const uint8_t *)first, strlen(first), &why), 0);
    assert_string_equal(s.user, "bob,x");
    char sfirst[1100], snonce[33];
    assert_int_equal(trib_scram_nonce(snonce), 0);
    assert_true(trib_scram_server_first(&s, &cred, snonce, sfirst, sizeof(sfirst)) > 0);
    /* c= is base64("n,a=bob=2Cx,") */
    char cb[64], final_wo[1300], auth[3000], proof[100], final[1500], out[300];
    trib_base64_encode((const uint8_t *)"n,a=bob=2Cx,", 12, cb);
    snprintf(final_wo, sizeof(final_wo), "c=%s,r=abcdefghijklmnop%s", cb, snonce);
    snprintf(auth, sizeof(auth), "n=bob=2Cx,r=abcdefghijklmnop,ext=1,%s,%s", sfirst, final_wo);
    client_proof(TRIB_SCRAM_SHA_512, "s3cret", &cred, auth, proof);
    snprintf(final, sizeof(final), "%s,p=%s", final_wo, proof);
    int n = trib_scram_server_client_final(&s, &cred, (const uint8_t *) final, strlen(final), out,
                                           sizeof(out), &why);
    if (n < 0) {
        fprintf(stderr, "refused: %s\n", why);
    }
    assert_true(n > 2);
    assert_memory_equal(out, "v=", 2);
}

/*
 * librdkafka sends its client nonce again in front of the server's whole
 * nonce; Kafka accepts a client-final nonce that ends with server-first's.
 */
static void test_librdkafka_nonce(void **state)
{
    (void)state;
    trib_scram_cred_t cred;
    assert_int_equal(trib_scram_cred_from_password(&cred, TRIB_SCRAM_SHA_256, "pw", 2, NULL, 0,
                                                   TRIB_SCRAM_MIN_ITERATIONS),
                     0);
    for (int variant = 0; variant < 2; variant++) {
        const char *first = "n,,n=u,r=CNONCE0123456789";
        trib_scram_server_t s;
        trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
        const char *why = NULL;
        assert_int_equal(
            trib_scram_server_client_first(&s, (const uint8_t *)first, strlen(first), &why), 0);
        char sfirst[1100], final_wo[600], auth[3000], proof[100], final[800], out[300];
        assert_true(trib_scram_server_first(&s, &cred, "SNONCE0123456789", sfirst, sizeof(sfirst)) >
                    0);
        /* variant 0: cnonce + the server's nonce; 1: the server's nonce with its end changed */
        snprintf(final_wo, sizeof(final_wo), "c=biws,r=CNONCE0123456789CNONCE0123456789%s",
                 variant == 0 ? "SNONCE0123456789" : "SNONCE012345678X");
        snprintf(auth, sizeof(auth), "n=u,r=CNONCE0123456789,%s,%s", sfirst, final_wo);
        client_proof(TRIB_SCRAM_SHA_256, "pw", &cred, auth, proof);
        snprintf(final, sizeof(final), "%s,p=%s", final_wo, proof);
        int n = trib_scram_server_client_final(&s, &cred, (const uint8_t *) final, strlen(final),
                                               out, sizeof(out), &why);
        if (variant == 0) {
            assert_true(n > 2);
        } else {
            assert_int_equal(n, -EINVAL);
            assert_string_equal(why, "nonce does not match");
        }
    }
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad_first[] = {
        "",
        "n",
        "p=tls-unique,,n=user,r=abc",
        "x,,n=user,r=abc",
        "n,,n=,r=abc",
        "n,,n=us=er,r=abc",
        "n,,n=user=2",
        "n,,n=user",
        "n,,n=user,r=",
        "n,,r=abc,n=user",
        "n,,n=user,r=abc,tokenauth=true",
        "n,,n=user,r=abc,",
        "n,a=other,n=user,r=abc",
    };
    for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
        trib_scram_server_t s;
        trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
        const char *why = NULL;
        int rc = trib_scram_server_client_first(&s, (const uint8_t *)bad_first[i],
                                                strlen(bad_first[i]), &why);
        if (rc == 0) {
            fprintf(stderr, "accepted: '%s'\n", bad_first[i]);
        }
        assert_int_equal(rc, -EINVAL);
        assert_non_null(why);
    }
    /* Client-final: wrong channel binding, nonce, missing or short proof. */
    trib_scram_cred_t cred;
    rfc_cred(&cred);
    static const char *const bad_final[] = {
        "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjf"
        "MHgsqmmiz7AndVQ=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzb",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!!",
    };
    for (size_t i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
        trib_scram_server_t s;
        trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
        const char *why = NULL;
        char out[1100];
        assert_int_equal(trib_scram_server_client_first(&s, (const uint8_t *)RFC_CLIENT_FIRST,
                                                        strlen(RFC_CLIENT_FIRST), &why),
                         0);
        assert_true(trib_scram_server_first(&s, &cred, RFC_SNONCE, out, sizeof(out)) > 0);
        int rc = trib_scram_server_client_final(&s, &cred, (const uint8_t *)bad_final[i],
                                                strlen(bad_final[i]), out, sizeof(out), &why);
        assert_int_equal(rc, -EINVAL);
    }
    /* A client-final without a client-first. */
    trib_scram_server_t s;
    trib_scram_server_init(&s, TRIB_SCRAM_SHA_256);
    const char *why = NULL;
    char out[300];
    assert_int_equal(trib_scram_server_client_final(&s, &cred, (const uint8_t *)RFC_CLIENT_FINAL,
                                                    strlen(RFC_CLIENT_FINAL), out, sizeof(out),
                                                    &why),
                     -EINVAL);
}

static void test_base64(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n = 0;
    char enc[32];
    assert_int_equal(trib_base64_decode("YWJj", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(trib_base64_decode("YQ==", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(trib_base64_decode("YWI=", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(trib_base64_decode("YWJ", 3, out, sizeof(out), &n), -EINVAL);
    assert_int_equal(trib_base64_decode("Y=Jj", 4, out, sizeof(out), &n), -EINVAL);
    assert_int_equal(trib_base64_decode("YW=j", 4, out, sizeof(out), &n), -EINVAL);
    assert_int_equal(trib_base64_decode("YW J", 4, out, sizeof(out), &n), -EINVAL);
    assert_int_equal(trib_base64_decode("YWJjYWJj", 8, out, 5, &n), -ENOSPC);
    assert_int_equal(trib_base64_encode((const uint8_t *)"ab", 2, enc), 4);
    assert_string_equal(enc, "YWI=");
}

/* The client's side against RFC 7677's exchange, byte for byte. */
static void test_client_rfc7677(void **state)
{
    (void)state;
    trib_scram_client_t c;
    char out[1100];
    const char *why = NULL;
    int n = trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "user", "rOprNGfwEbeRWgbNEkqO", out,
                                    sizeof(out));
    assert_int_equal(n, (int)strlen(RFC_CLIENT_FIRST));
    assert_string_equal(out, RFC_CLIENT_FIRST);
    n = trib_scram_client_final(&c, "pencil", 6, (const uint8_t *)RFC_SERVER_FIRST,
                                strlen(RFC_SERVER_FIRST), out, sizeof(out), &why);
    assert_int_equal(n, (int)strlen(RFC_CLIENT_FINAL));
    assert_string_equal(out, RFC_CLIENT_FINAL);
    assert_int_equal(trib_scram_client_verify(&c, (const uint8_t *)RFC_SERVER_FINAL,
                                              strlen(RFC_SERVER_FINAL), &why),
                     0);
    /* A signature from a server that does not know the password. */
    assert_int_equal(trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "user", "rOprNGfwEbeRWgbNEkqO",
                                             out, sizeof(out)),
                     (int)strlen(RFC_CLIENT_FIRST));
    assert_true(trib_scram_client_final(&c, "pencil", 6, (const uint8_t *)RFC_SERVER_FIRST,
                                        strlen(RFC_SERVER_FIRST), out, sizeof(out), &why) > 0);
    const char *forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    assert_int_equal(trib_scram_client_verify(&c, (const uint8_t *)forged, strlen(forged), &why),
                     -EACCES);
    /* Verify only once, after a client-final. */
    assert_int_equal(trib_scram_client_verify(&c, (const uint8_t *)RFC_SERVER_FINAL,
                                              strlen(RFC_SERVER_FINAL), &why),
                     -EINVAL);
    trib_scram_client_fini(&c);
}

/* Our client against our server, SHA-512, a user name with ',' and '='; then a wrong password. */
static void test_client_server_round_trip(void **state)
{
    (void)state;
    for (int wrong = 0; wrong < 2; wrong++) {
        trib_scram_cred_t cred;
        assert_int_equal(trib_scram_cred_from_password(&cred, TRIB_SCRAM_SHA_512, "s3cret", 6, NULL,
                                                       0, TRIB_SCRAM_MIN_ITERATIONS),
                         0);
        trib_scram_client_t c;
        trib_scram_server_t s;
        trib_scram_server_init(&s, TRIB_SCRAM_SHA_512);
        char cnonce[33], snonce[33], m1[1100], m2[1100], m3[1100], m4[300];
        const char *why = NULL;
        assert_int_equal(trib_scram_nonce(cnonce), 0);
        assert_int_equal(trib_scram_nonce(snonce), 0);
        int n = trib_scram_client_first(&c, TRIB_SCRAM_SHA_512, "a,b=c", cnonce, m1, sizeof(m1));
        assert_true(n > 0);
        assert_int_equal(trib_scram_server_client_first(&s, (const uint8_t *)m1, (size_t)n, &why),
                         0);
        assert_string_equal(s.user, "a,b=c");
        n = trib_scram_server_first(&s, &cred, snonce, m2, sizeof(m2));
        assert_true(n > 0);
        const char *pw = wrong ? "s3cret!" : "s3cret";
        n = trib_scram_client_final(&c, pw, strlen(pw), (const uint8_t *)m2, (size_t)n, m3,
                                    sizeof(m3), &why);
        assert_true(n > 0);
        n = trib_scram_server_client_final(&s, &cred, (const uint8_t *)m3, (size_t)n, m4,
                                           sizeof(m4), &why);
        if (wrong) {
            assert_int_equal(n, -EACCES);
            /* Kafka's broker answers an error; a server-final "e=" is refused too. */
            const char *e = "e=invalid-proof";
            assert_int_equal(trib_scram_client_verify(&c, (const uint8_t *)e, strlen(e), &why),
                             -EACCES);
            assert_string_equal(why, "invalid-proof");
        } else {
            assert_true(n > 0);
            assert_int_equal(trib_scram_client_verify(&c, (const uint8_t *)m4, (size_t)n, &why), 0);
        }
        trib_scram_client_fini(&c);
    }
}

/* server-first messages a client must refuse. */
static void test_client_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "r=other%hvYDpWUa2RaTCAfuxFIlj,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* not our nonce */
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",        /* nothing added */
        "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", /* bad base64 */
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", /* too few */
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=40x6",
        "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trib_scram_client_t c;
        char out[1100];
        const char *why = NULL;
        assert_true(trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "user", "rOprNGfwEbeRWgbNEkqO",
                                            out, sizeof(out)) > 0);
        int n = trib_scram_client_final(&c, "pencil", 6, (const uint8_t *)bad[i], strlen(bad[i]),
                                        out, sizeof(out), &why);
        if (n != -EINVAL) {
            fprintf(stderr, "accepted server-first #%zu: %s\n", i, bad[i]);
        }
        assert_int_equal(n, -EINVAL);
        assert_non_null(why);
    }
    trib_scram_client_t c;
    char out[64];
    assert_int_equal(trib_scram_client_first(&c, 0, "user", "abc", out, sizeof(out)), -EINVAL);
    assert_int_equal(trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "", "abc", out, sizeof(out)),
                     -EINVAL);
    assert_int_equal(
        trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "user", "a,b", out, sizeof(out)), -EINVAL);
    assert_int_equal(trib_scram_client_first(&c, TRIB_SCRAM_SHA_256, "user", "abc", out, 8),
                     -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_vector),    cmocka_unit_test(test_rfc7677_wrong_proof),
        cmocka_unit_test(test_sha512_round_trip), cmocka_unit_test(test_librdkafka_nonce),
        cmocka_unit_test(test_malformed),         cmocka_unit_test(test_base64),
        cmocka_unit_test(test_client_rfc7677),    cmocka_unit_test(test_client_server_round_trip),
        cmocka_unit_test(test_client_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
