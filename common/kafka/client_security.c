/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The small client's security settings (kclient.h) and the properties
 * file they come from: the file a Kafka tool takes with --command-config
 * and librdkafka's names for the same settings, as far as TLS with PEM
 * files and SASL PLAIN/SCRAM go. Nothing here connects; client.c uses the
 * settings.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "tributary/kclient.h"

void trib_kclient_security_init(trib_kclient_security_t *s)
{
    memset(s, 0, sizeof(*s));
    s->protocol = TRIB_KCLIENT_PLAINTEXT;
    s->verify_hostname = true;
}

const char *trib_kclient_protocol_name(trib_kclient_protocol_t p)
{
    switch (p) {
    case TRIB_KCLIENT_SSL:
        return "SSL";
    case TRIB_KCLIENT_SASL_PLAINTEXT:
        return "SASL_PLAINTEXT";
    case TRIB_KCLIENT_SASL_SSL:
        return "SASL_SSL";
    default:
        return "PLAINTEXT";
    }
}

static int copy(char *dst, size_t cap, const char *key, const char *value, trib_error_t *err)
{
    size_t n = strlen(value);
    if (n >= cap) {
        return trib_error_set(err, -EINVAL, "%s is too long (at most %zu bytes)", key, cap - 1);
    }
    memcpy(dst, value, n + 1);
    return 0;
}

/*
 * The value of NAME="..." in a JAAS login module line (backslash escapes
 * the next character). 0 when found, 1 when absent, -EINVAL when malformed
 * or too long.
 */
static int jaas_option(const char *conf, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = conf; (p = strstr(p, name)) != NULL; p += nl) {
        bool starts = p == conf || isspace((unsigned char)p[-1]);
        const char *q = p + nl;
        while (*q == ' ' || *q == '\t') {
            q++;
        }
        if (!starts || *q != '=') {
            continue;
        }
        q++;
        while (*q == ' ' || *q == '\t') {
            q++;
        }
        if (*q != '"') {
            return -EINVAL;
        }
        q++;
        size_t o = 0;
        for (; *q && *q != '"'; q++) {
            if (*q == '\\' && q[1]) {
                q++;
            }
            if (o + 1 >= cap) {
                return -EINVAL;
            }
            out[o++] = *q;
        }
        if (*q != '"') {
            return -EINVAL;
        }
        out[o] = '\0';
        return 0;
    }
    return 1;
}

static int set_jaas(trib_kclient_security_t *s, const char *value, trib_error_t *err)
{
    if (!strstr(value, "PlainLoginModule") && !strstr(value, "ScramLoginModule")) {
        return trib_error_set(err, -EINVAL,
                              "sasl.jaas.config: only PlainLoginModule and ScramLoginModule "
                              "(username=\"...\" password=\"...\") are supported");
    }
    int rc = jaas_option(value, "username", s->username, sizeof(s->username));
    if (rc == 0) {
        rc = jaas_option(value, "password", s->password, sizeof(s->password));
    }
    if (rc != 0) {
        return trib_error_set(err, -EINVAL,
                              "sasl.jaas.config: want username=\"...\" and password=\"...\" "
                              "(quoted, each under %zu bytes)",
                              sizeof(s->username));
    }
    return 0;
}

int trib_kclient_security_set(trib_kclient_security_t *s, const char *key, const char *value,
                              trib_error_t *err)
{
    if (!strcmp(key, "security.protocol")) {
        static const trib_kclient_protocol_t all[] = {TRIB_KCLIENT_PLAINTEXT, TRIB_KCLIENT_SSL,
                                                      TRIB_KCLIENT_SASL_PLAINTEXT,
                                                      TRIB_KCLIENT_SASL_SSL};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
            if (!strcasecmp(value, trib_kclient_protocol_name(all[i]))) {
                s->protocol = all[i];
                return 0;
            }
        }
        return trib_error_set(err, -EINVAL,
                              "security.protocol '%s': want PLAINTEXT, SSL, SASL_PLAINTEXT or "
                              "SASL_SSL",
                              value);
    }
    if (!strcmp(key, "sasl.mechanism") || !strcmp(key, "sasl.mechanisms")) {
        static const char *const mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
        for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
            if (!strcasecmp(value, mechs[i])) {
                snprintf(s->mechanism, sizeof(s->mechanism), "%s", mechs[i]);
                return 0;
            }
        }
        return trib_error_set(err, -EINVAL, "%s '%s': want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                              key, value);
    }
    if (!strcmp(key, "sasl.username")) {
        return copy(s->username, sizeof(s->username), key, value, err);
    }
    if (!strcmp(key, "sasl.password")) {
        return copy(s->password, sizeof(s->password), key, value, err);
    }
    if (!strcmp(key, "sasl.jaas.config")) {
        return set_jaas(s, value, err);
    }
    if (!strcmp(key, "ssl.ca.location") || !strcmp(key, "ssl.truststore.location")) {
        return copy(s->ca_location, sizeof(s->ca_location), key, value, err);
    }
    if (!strcmp(key, "ssl.truststore.type") || !strcmp(key, "ssl.keystore.type")) {
        if (strcasecmp(value, "PEM") != 0) {
            return trib_error_set(err, -EINVAL,
                                  "%s '%s': only PEM files are supported (convert a JKS or "
                                  "PKCS12 store to PEM, or use ssl.ca.location, "
                                  "ssl.certificate.location and ssl.key.location)",
                                  key, value);
        }
        return 0;
    }
    if (!strcmp(key, "ssl.certificate.location")) {
        return copy(s->cert_location, sizeof(s->cert_location), key, value, err);
    }
    if (!strcmp(key, "ssl.key.location")) {
        return copy(s->key_location, sizeof(s->key_location), key, value, err);
    }
    if (!strcmp(key, "ssl.keystore.location")) {
        /* A PEM keystore holds the key and the certificate chain in one file. */
        int rc = copy(s->cert_location, sizeof(s->cert_location), key, value, err);
        return rc ? rc : copy(s->key_location, sizeof(s->key_location), key, value, err);
    }
    if (!strcmp(key, "ssl.key.password")) {
        return copy(s->key_password, sizeof(s->key_password), key, value, err);
    }
    if (!strcmp(key, "ssl.endpoint.identification.algorithm")) {
        if (!strcasecmp(value, "https")) {
            s->verify_hostname = true;
        } else if (!*value || !strcasecmp(value, "none")) {
            s->verify_hostname = false;
        } else {
            return trib_error_set(err, -EINVAL,
                                  "ssl.endpoint.identification.algorithm '%s': want https or "
                                  "none (or empty)",
                                  value);
        }
        return 0;
    }
    if (!strcmp(key, "ssl.truststore.password") || !strcmp(key, "ssl.keystore.password")) {
        return 0; /* store passwords: PEM files have none */
    }
    return 1;
}

int trib_kclient_security_check(const trib_kclient_security_t *s, trib_error_t *err)
{
    bool sasl = s->protocol == TRIB_KCLIENT_SASL_PLAINTEXT || s->protocol == TRIB_KCLIENT_SASL_SSL;
    const char *proto = trib_kclient_protocol_name(s->protocol);
    if (sasl && !s->mechanism[0]) {
        return trib_error_set(err, -EINVAL,
                              "security.protocol %s needs sasl.mechanism (PLAIN, SCRAM-SHA-256 "
                              "or SCRAM-SHA-512)",
                              proto);
    }
    if (sasl && (!s->username[0] || !s->password[0])) {
        return trib_error_set(err, -EINVAL,
                              "security.protocol %s needs sasl.username and sasl.password (or "
                              "sasl.jaas.config)",
                              proto);
    }
    if (!!s->cert_location[0] != !!s->key_location[0]) {
        return trib_error_set(err, -EINVAL,
                              "ssl.certificate.location and ssl.key.location go together");
    }
    return 0;
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n')) {
        p[--n] = '\0';
    }
    return p;
}

int trib_kclient_security_load(trib_kclient_security_t *s, const char *path,
                               void (*warn)(void *arg, const char *msg), void *warn_arg,
                               trib_error_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = -errno;
        return trib_error_set(err, e, "cannot open %s: %s", path, strerror(-e));
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        char *p = trim(line);
        if (!*p || *p == '#' || *p == '!') {
            continue;
        }
        size_t k = strcspn(p, "=:");
        if (!p[k]) {
            rc = trib_error_setpos(err, -EINVAL, path, lineno, 1, "want key=value, got '%.60s'", p);
            break;
        }
        p[k] = '\0';
        char *key = trim(p);
        char *value = trim(p + k + 1);
        if (!*key) {
            rc = trib_error_setpos(err, -EINVAL, path, lineno, 1, "a property without a key");
            break;
        }
        trib_error_t e;
        trib_error_clear(&e);
        int r = trib_kclient_security_set(s, key, value, &e);
        if (r < 0) {
            rc = trib_error_setpos(err, r, path, lineno, (int)(value - line) + 1, "%s", e.msg);
            break;
        }
        if (r == 1 && warn) {
            char msg[600];
            snprintf(msg, sizeof(msg), "%s:%d: unknown property '%.200s' (ignored)", path, lineno,
                     key);
            warn(warn_arg, msg);
        }
    }
    if (line) {
        OPENSSL_cleanse(line, cap);
        free(line);
    }
    if (rc == 0 && ferror(f)) {
        rc = trib_error_set(err, -EIO, "cannot read %s", path);
    }
    fclose(f);
    if (rc == 0) {
        trib_error_t e;
        trib_error_clear(&e);
        rc = trib_kclient_security_check(s, &e);
        if (rc < 0) {
            trib_error_set(err, rc, "%s: %s", path, e.msg);
        }
    }
    return rc;
}
