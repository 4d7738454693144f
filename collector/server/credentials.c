/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SCRAM credential store (see credentials.h for the file format).
 * A store holds a handful to a few thousand users: a flat array searched
 * linearly is enough, and keeps the file's order.
 */
#include "server/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tributary/buf.h"
#include "tributary/fileio.h"

#define CREDS_MAX_BYTES (64u << 20)

typedef struct entry {
    char *user;
    trib_scram_cred_t cred;
} entry_t;

struct coll_creds {
    char *path;
    entry_t *e;
    size_t n, cap;
};

coll_creds_t *coll_creds_new(const char *data_dir)
{
    coll_creds_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    size_t len = strlen(data_dir) + sizeof(COLL_CREDS_FILE) + 2;
    if (!(c->path = malloc(len))) {
        free(c);
        return NULL;
    }
    snprintf(c->path, len, "%s/%s", data_dir, COLL_CREDS_FILE);
    return c;
}

static void clear(coll_creds_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].user);
    }
    OPENSSL_cleanse(c->e, c->cap * sizeof(*c->e));
    c->n = 0;
}

void coll_creds_free(coll_creds_t *c)
{
    if (!c) {
        return;
    }
    clear(c);
    free(c->e);
    free(c->path);
    free(c);
}

static ssize_t find(const coll_creds_t *c, const char *user, int mech)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].cred.mech == mech && strcmp(c->e[i].user, user) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

const trib_scram_cred_t *coll_creds_find(const coll_creds_t *c, const char *user, int mech)
{
    ssize_t i = find(c, user, mech);
    return i < 0 ? NULL : &c->e[i].cred;
}

int coll_creds_set(coll_creds_t *c, const char *user, const trib_scram_cred_t *cred)
{
    size_t ul = strlen(user);
    if (ul == 0 || ul >= TRIB_SCRAM_NAME_MAX || !trib_scram_mech_name(cred->mech)) {
        return -EINVAL;
    }
    ssize_t i = find(c, user, cred->mech);
    if (i >= 0) {
        c->e[i].cred = *cred;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        entry_t *e = realloc(c->e, cap * sizeof(*e));
        if (!e) {
            return -ENOMEM;
        }
        c->e = e;
        c->cap = cap;
    }
    char *u = strdup(user);
    if (!u) {
        return -ENOMEM;
    }
    c->e[c->n].user = u;
    c->e[c->n].cred = *cred;
    c->n++;
    return 0;
}

int coll_creds_delete(coll_creds_t *c, const char *user, int mech)
{
    ssize_t i = find(c, user, mech);
    if (i < 0) {
        return TRIB_ENOT_FOUND;
    }
    free(c->e[i].user);
    memmove(&c->e[i], &c->e[i + 1], (c->n - (size_t)i - 1) * sizeof(*c->e));
    c->n--;
    OPENSSL_cleanse(&c->e[c->n], sizeof(*c->e));
    return 0;
}

size_t coll_creds_count(const coll_creds_t *c)
{
    return c->n;
}

void coll_creds_get(const coll_creds_t *c, size_t i, const char **user,
                    const trib_scram_cred_t **cred)
{
    *user = c->e[i].user;
    *cred = &c->e[i].cred;
}

coll_creds_t *coll_creds_clone(const coll_creds_t *c)
{
    coll_creds_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->path = strdup(c->path))) {
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (coll_creds_set(d, c->e[i].user, &c->e[i].cred) != 0) {
            coll_creds_free(d);
            return NULL;
        }
    }
    return d;
}

/* ---- the file ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    return -1;
}

static int unpercent(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            if (i + 2 >= n) {
                return -EINVAL;
            }
            int hi = hexval(p[i + 1]);
            int lo = hexval(p[i + 2]);
            if (hi < 0 || lo < 0) {
                return -EINVAL;
            }
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= cap) {
            return -EINVAL;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -EINVAL;
}

static void put_user(trib_buf_t *b, const char *user)
{
    for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '%') {
            char hex[4];
            snprintf(hex, sizeof(hex), "%%%02X", *p);
            trib_buf_append(b, hex, 3);
        } else {
            trib_buf_append(b, p, 1);
        }
    }
}

static int field_b64(const char *p, size_t n, uint8_t *out, size_t cap, size_t *len)
{
    return trib_base64_decode(p, n, out, cap, len);
}

int coll_creds_parse(coll_creds_t *c, const char *text, size_t n, const char *file,
                     trib_error_t *err)
{
    clear(c);
    size_t pos = 0;
    int line = 0;
    while (pos < n) {
        line++;
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', n - pos);
        size_t len = nl ? (size_t)(nl - l) : n - pos;
        pos += len + (nl ? 1 : 0);
        while (len > 0 && (l[len - 1] == '\r' || l[len - 1] == ' ' || l[len - 1] == '\t')) {
            len--;
        }
        size_t i = 0;
        while (i < len && (l[i] == ' ' || l[i] == '\t')) {
            i++;
        }
        if (i == len || l[i] == '#') {
            continue;
        }
        /* Six fields separated by spaces or tabs. */
        const char *f[7];
        size_t fl[7];
        int nf = 0;
        while (i < len && nf < 7) {
            size_t s = i;
            while (i < len && l[i] != ' ' && l[i] != '\t') {
                i++;
            }
            f[nf] = l + s;
            fl[nf] = i - s;
            nf++;
            while (i < len && (l[i] == ' ' || l[i] == '\t')) {
                i++;
            }
        }
        const char *why = NULL;
        char user[TRIB_SCRAM_NAME_MAX];
        char mech_name[16];
        trib_scram_cred_t cred;
        memset(&cred, 0, sizeof(cred));
        size_t kl = 0, got = 0;
        if (nf != 6 || i < len) {
            why = "expected USER MECHANISM ITERATIONS SALT STORED_KEY SERVER_KEY";
        } else if (unpercent(f[0], fl[0], user, sizeof(user)) != 0) {
            why = "bad user name (percent-encoded, 1-255 bytes)";
        } else if (fl[1] >= sizeof(mech_name)) {
            why = "unknown mechanism (SCRAM-SHA-256 or SCRAM-SHA-512)";
        } else {
            memcpy(mech_name, f[1], fl[1]);
            mech_name[fl[1]] = '\0';
            cred.mech = trib_scram_mech_parse(mech_name);
            kl = trib_scram_key_len(cred.mech);
            char num[16];
            long it = 0;
            char *end = NULL;
            if (!cred.mech) {
                why = "unknown mechanism (SCRAM-SHA-256 or SCRAM-SHA-512)";
            } else if (fl[2] == 0 || fl[2] >= sizeof(num)) {
                why = "bad iteration count";
            } else {
                memcpy(num, f[2], fl[2]);
                num[fl[2]] = '\0';
                it = strtol(num, &end, 10);
                if (*end || it < TRIB_SCRAM_MIN_ITERATIONS || it > TRIB_SCRAM_MAX_ITERATIONS) {
                    why = "bad iteration count (4096..16384)";
                }
            }
            cred.iterations = (int32_t)it;
            if (!why && (field_b64(f[3], fl[3], cred.salt, sizeof(cred.salt), &cred.salt_len) ||
                         cred.salt_len == 0)) {
                why = "bad salt (base64, 1-64 bytes)";
            }
            if (!why && (field_b64(f[4], fl[4], cred.stored_key, sizeof(cred.stored_key), &got) ||
                         got != kl)) {
                why = "bad stored key (base64 of the hash's length)";
            }
            if (!why && (field_b64(f[5], fl[5], cred.server_key, sizeof(cred.server_key), &got) ||
                         got != kl)) {
                why = "bad server key (base64 of the hash's length)";
            }
            if (!why && find(c, user, cred.mech) >= 0) {
                why = "a second line for the same user and mechanism";
            }
        }
        if (why) {
            clear(c);
            return trib_error_setpos(err, TRIB_EMALFORMED, file, line, 0, "%s", why);
        }
        int rc = coll_creds_set(c, user, &cred);
        OPENSSL_cleanse(&cred, sizeof(cred));
        if (rc != 0) {
            clear(c);
            return trib_error_set(err, rc, "%s: out of memory", file);
        }
    }
    return 0;
}

int coll_creds_load(coll_creds_t *c, trib_error_t *err)
{
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            clear(c);
            return 0;
        }
        return trib_error_set(err, -errno, "%s: %s", c->path, strerror(errno));
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || (uint64_t)size > CREDS_MAX_BYTES) {
        close(fd);
        return trib_error_set(err, size < 0 ? -errno : TRIB_ETOO_LARGE, "%s: %s", c->path,
                              size < 0 ? strerror(errno) : "larger than 64 MiB");
    }
    char *text = malloc((size_t)size + 1);
    if (!text) {
        close(fd);
        return trib_error_set(err, -ENOMEM, "%s: out of memory", c->path);
    }
    ssize_t got = trib_pread_all(fd, text, (size_t)size, 0);
    close(fd);
    if (got < 0) {
        free(text);
        return trib_error_set(err, (int)got, "%s: %s", c->path, strerror((int)-got));
    }
    int rc = coll_creds_parse(c, text, (size_t)got, c->path, err);
    OPENSSL_cleanse(text, (size_t)got);
    free(text);
    return rc;
}

int coll_creds_save(const coll_creds_t *c)
{
    trib_buf_t b;
    trib_buf_init(&b);
    static const char head[] =
        "# tributary SCRAM credentials (format 1), written by the collector:\n"
        "# USER MECHANISM ITERATIONS SALT STORED_KEY SERVER_KEY\n";
    trib_buf_append(&b, head, sizeof(head) - 1);
    for (size_t i = 0; i < c->n; i++) {
        const trib_scram_cred_t *cr = &c->e[i].cred;
        size_t kl = trib_scram_key_len(cr->mech);
        char tmp[160];
        put_user(&b, c->e[i].user);
        int len = snprintf(tmp, sizeof(tmp), " %s %d ", trib_scram_mech_name(cr->mech),
                           (int)cr->iterations);
        trib_buf_append(&b, tmp, (size_t)len);
        len = (int)trib_base64_encode(cr->salt, cr->salt_len, tmp);
        trib_buf_append(&b, tmp, (size_t)len);
        trib_buf_append(&b, " ", 1);
        len = (int)trib_base64_encode(cr->stored_key, kl, tmp);
        trib_buf_append(&b, tmp, (size_t)len);
        trib_buf_append(&b, " ", 1);
        len = (int)trib_base64_encode(cr->server_key, kl, tmp);
        trib_buf_append(&b, tmp, (size_t)len);
        trib_buf_append(&b, "\n", 1);
    }
    size_t len = 0;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    int rc = trib_buf_error(&b);
    if (rc == 0 && !p) {
        rc = -ENOMEM;
    }
    if (rc == 0) {
        rc = trib_write_file_atomic_mode(c->path, p, len, 0600);
    }
    trib_buf_fini(&b);
    return rc;
}
