/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary users list|set|delete: SCRAM credentials of the SASL users,
 * through DescribeUserScramCredentials (key 50) and
 * AlterUserScramCredentials (key 51), as Kafka's kafka-configs.sh
 * --entity-type users does. `set` reads the password from stdin (its first
 * line), draws a 32-byte salt and sends only the salted password
 * (PBKDF2, common/scram.c); the password never leaves this process.
 */
#include <getopt.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cli.h"
#include "tributary/kafka_error.h"
#include "tributary/scram.h"

#include "kafka/gen/AlterUserScramCredentialsRequest.h"
#include "kafka/gen/AlterUserScramCredentialsResponse.h"
#include "kafka/gen/DescribeUserScramCredentialsRequest.h"
#include "kafka/gen/DescribeUserScramCredentialsResponse.h"

#define API_DESCRIBE_SCRAM 50
#define API_ALTER_SCRAM 51

static void usage(FILE *out)
{
    fputs("Usage:\n"
          "  tributary users list [NAME...]\n"
          "  tributary users set NAME [--mechanism M] [--iterations N]   (password on stdin)\n"
          "  tributary users delete NAME [--mechanism M]\n"
          "\n"
          "The SCRAM users of SASL listeners (DescribeUserScramCredentials and\n"
          "AlterUserScramCredentials).\n"
          "  list    every user (or the NAMEs) with its mechanisms and iteration counts\n"
          "  set     adds or replaces NAME's credential; the password is the first line\n"
          "          of stdin; only a salted hash of it is sent\n"
          "  delete  removes NAME's credential for M, or for every mechanism it has\n"
          "\n"
          "  --mechanism M   SCRAM-SHA-256 or SCRAM-SHA-512 (set: default SCRAM-SHA-512)\n"
          "  --iterations N  4096..16384 (default 8192)\n"
          "\n"
          "Common options: --bootstrap HOST:PORT, --request-timeout-ms N, --verbose,\n"
          "  --command-config FILE (TLS and SASL; see tributary --help).\n",
          out);
}

static int describe(trib_kclient_t *c, char **names, int n,
                    DescribeUserScramCredentialsResponse *resp, trib_arena_t *arena)
{
    if (trib_kclient_version(c, API_DESCRIBE_SCRAM, 0, 0) < 0) {
        cli_errorf("the broker does not support DescribeUserScramCredentials");
        return CLI_EKAFKA;
    }
    DescribeUserScramCredentialsRequest req;
    DescribeUserScramCredentialsRequest_init(&req);
    DescribeUserScramCredentialsRequest_UserName *u =
        n > 0 ? trib_arena_calloc(arena, (size_t)n, sizeof(*u)) : NULL;
    for (int i = 0; i < n && u; i++) {
        DescribeUserScramCredentialsRequest_UserName_init(&u[i]);
        u[i].Name = trib_kstr(names[i]);
    }
    req.Users.items = u;
    req.Users.count = n > 0 && u ? n : -1;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_DESCRIBE_SCRAM, 0, &req, resp, arena, &err) <
        0) {
        return cli_fail(&err);
    }
    if (resp->ErrorCode != 0) {
        return cli_kafka_fail(resp->ErrorCode, resp->ErrorMessage, "DescribeUserScramCredentials");
    }
    return CLI_OK;
}

static int list(trib_kclient_t *c, char **names, int n, trib_arena_t *arena)
{
    DescribeUserScramCredentialsResponse resp;
    int rc = describe(c, names, n, &resp, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    int status = CLI_OK;
    for (int32_t i = 0; i < resp.Results.count; i++) {
        const DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult *r =
            &resp.Results.items[i];
        if (r->ErrorCode != 0) {
            status = cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "user '%.*s'", (int)r->User.len,
                                    r->User.ptr);
            continue;
        }
        for (int32_t k = 0; k < r->CredentialInfos.count; k++) {
            const char *m = trib_scram_mech_name(r->CredentialInfos.items[k].Mechanism);
            printf("%.*s\t%s\titerations=%d\n", (int)r->User.len, r->User.ptr, m ? m : "UNKNOWN",
                   (int)r->CredentialInfos.items[k].Iterations);
        }
    }
    return status;
}

static int alter(trib_kclient_t *c, AlterUserScramCredentialsRequest *req, trib_arena_t *arena)
{
    if (trib_kclient_version(c, API_ALTER_SCRAM, 0, 0) < 0) {
        cli_errorf("the broker does not support AlterUserScramCredentials");
        return CLI_EKAFKA;
    }
    AlterUserScramCredentialsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_ALTER_SCRAM, 0, req, &resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    int status = CLI_OK;
    for (int32_t i = 0; i < resp.Results.count; i++) {
        const AlterUserScramCredentialsResponse_AlterUserScramCredentialsResult *r =
            &resp.Results.items[i];
        if (r->ErrorCode != 0) {
            status = cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "user '%.*s'", (int)r->User.len,
                                    r->User.ptr);
        }
    }
    return status;
}

static int set(trib_kclient_t *c, const char *name, int mech, int32_t iterations,
               trib_arena_t *arena)
{
    char pw[1024];
    if (!fgets(pw, sizeof(pw), stdin)) {
        cli_errorf("users set: no password on stdin");
        return CLI_EUSAGE;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (!pw[0]) {
        cli_errorf("users set: empty password");
        return CLI_EUSAGE;
    }
    uint8_t salt[32], salted[TRIB_SCRAM_KEY_MAX];
    int rc = RAND_bytes(salt, sizeof(salt)) == 1
                 ? trib_scram_salted_password(mech, pw, strlen(pw), salt, sizeof(salt), iterations,
                                              salted)
                 : -1;
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc != 0) {
        cli_errorf("users set: cannot derive the salted password");
        return CLI_ENET;
    }
    AlterUserScramCredentialsRequest req;
    AlterUserScramCredentialsRequest_init(&req);
    AlterUserScramCredentialsRequest_ScramCredentialUpsertion up;
    AlterUserScramCredentialsRequest_ScramCredentialUpsertion_init(&up);
    up.Name = trib_kstr(name);
    up.Mechanism = (int8_t)mech;
    up.Iterations = iterations;
    up.Salt.ptr = salt;
    up.Salt.len = sizeof(salt);
    up.SaltedPassword.ptr = salted;
    up.SaltedPassword.len = (int32_t)trib_scram_key_len(mech);
    req.Upsertions.items = &up;
    req.Upsertions.count = 1;
    req.Deletions.count = 0;
    rc = alter(c, &req, arena);
    OPENSSL_cleanse(salted, sizeof(salted));
    if (rc == CLI_OK) {
        printf("user '%s': %s credential set (%d iterations)\n", name, trib_scram_mech_name(mech),
               (int)iterations);
    }
    return rc;
}

static int del(trib_kclient_t *c, char *name, int mech, trib_arena_t *arena)
{
    int8_t mechs[2];
    int n = 0;
    if (mech) {
        mechs[n++] = (int8_t)mech;
    } else {
        DescribeUserScramCredentialsResponse resp;
        int rc = describe(c, &name, 1, &resp, arena);
        if (rc != CLI_OK) {
            return rc;
        }
        for (int32_t i = 0; i < resp.Results.count; i++) {
            const DescribeUserScramCredentialsResponse_DescribeUserScramCredentialsResult *r =
                &resp.Results.items[i];
            if (r->ErrorCode != 0) {
                return cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "user '%s'", name);
            }
            for (int32_t k = 0; k < r->CredentialInfos.count && n < 2; k++) {
                mechs[n++] = r->CredentialInfos.items[k].Mechanism;
            }
        }
    }
    /* One request per mechanism: Kafka refuses a user named twice in one request. */
    for (int i = 0; i < n; i++) {
        AlterUserScramCredentialsRequest req;
        AlterUserScramCredentialsRequest_init(&req);
        AlterUserScramCredentialsRequest_ScramCredentialDeletion d;
        AlterUserScramCredentialsRequest_ScramCredentialDeletion_init(&d);
        d.Name = trib_kstr(name);
        d.Mechanism = mechs[i];
        req.Deletions.items = &d;
        req.Deletions.count = 1;
        req.Upsertions.count = 0;
        int rc = alter(c, &req, arena);
        if (rc != CLI_OK) {
            return rc;
        }
        const char *m = trib_scram_mech_name(mechs[i]);
        printf("user '%s': %s credential deleted\n", name, m ? m : "?");
    }
    return CLI_OK;
}

int cli_users(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    const char *action = argv[1];
    if (strcmp(action, "list") && strcmp(action, "set") && strcmp(action, "delete")) {
        cli_errorf("unknown users action '%s'", action);
        usage(stderr);
        return CLI_EUSAGE;
    }
    enum { O_MECH = 1, O_ITER };
    static const struct option opts[] = {
        {"mechanism", required_argument, NULL, O_MECH},
        {"iterations", required_argument, NULL, O_ITER},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    cli_common_t common;
    cli_common_init(&common);
    const char *mech_name = NULL;
    int64_t iterations = 8192;
    optind = 1;
    int ch;
    argc--;
    argv++;
    while ((ch = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
        int r = cli_common_opt(&common, ch, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        if (ch == O_MECH) {
            mech_name = optarg;
        } else if (ch == O_ITER) {
            if (cli_parse_int("--iterations", optarg, TRIB_SCRAM_MIN_ITERATIONS,
                              TRIB_SCRAM_MAX_ITERATIONS, &iterations) != 0) {
                return CLI_EUSAGE;
            }
        } else if (ch == 'h') {
            usage(stdout);
            return CLI_OK;
        } else {
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    int mech = 0;
    if (mech_name && !(mech = trib_scram_mech_parse(mech_name))) {
        cli_errorf("--mechanism: expected SCRAM-SHA-256 or SCRAM-SHA-512, got '%s'", mech_name);
        return CLI_EUSAGE;
    }
    char **names = argv + optind;
    int nnames = argc - optind;
    if (strcmp(action, "list") != 0 && nnames != 1) {
        cli_errorf("users %s takes one user name", action);
        return CLI_EUSAGE;
    }
    trib_kclient_t *c;
    int rc = cli_connect(&c, &common);
    if (rc != CLI_OK) {
        return rc;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    if (!strcmp(action, "list")) {
        rc = list(c, names, nnames, &arena);
    } else if (!strcmp(action, "set")) {
        rc = set(c, names[0], mech ? mech : TRIB_SCRAM_SHA_512, (int32_t)iterations, &arena);
    } else {
        rc = del(c, names[0], mech, &arena);
    }
    trib_arena_fini(&arena);
    trib_kclient_close(c);
    return rc;
}
