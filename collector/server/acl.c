/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ACL store and Kafka's authorization rules (see acl.h). A store
 * holds tens to a few thousand ACLs: a flat array searched linearly.
 */
#include "server/acl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tributary/buf.h"
#include "tributary/fileio.h"

#define ACL_MAX_BYTES (64u << 20)
#define ACL_FIELD_MAX 1024

struct coll_acls {
    char *path; /* NULL: not persisted */
    coll_acl_t *e;
    size_t n, cap;
};

static const char *const type_names[] = {"Unknown", "Any",     "Topic",
                                         "Group",   "Cluster", "TransactionalId"};
static const char *const pattern_names[] = {"Unknown", "Any", "Match", "Literal", "Prefixed"};
static const char *const op_names[] = {
    "Unknown",        "Any",   "All",      "Read",          "Write",           "Create",
    "Delete",         "Alter", "Describe", "ClusterAction", "DescribeConfigs", "AlterConfigs",
    "IdempotentWrite"};
static const char *const perm_names[] = {"Unknown", "Any", "Deny", "Allow"};

#define NAMEOF(tab, v) ((v) >= 0 && (size_t)(v) < sizeof(tab) / sizeof(tab[0]) ? tab[v] : "?")

const char *coll_acl_type_name(int v)
{
    return NAMEOF(type_names, v);
}
const char *coll_acl_pattern_name(int v)
{
    return NAMEOF(pattern_names, v);
}
const char *coll_acl_op_name(int v)
{
    return NAMEOF(op_names, v);
}
const char *coll_acl_perm_name(int v)
{
    return NAMEOF(perm_names, v);
}

static int lookup(const char *const *tab, size_t n, const char *p, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(tab[i]) == len && strncasecmp(tab[i], p, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}
#define LOOKUP(tab, p, len) lookup(tab, sizeof(tab) / sizeof(tab[0]), p, len)

coll_acls_t *coll_acls_new(const char *data_dir)
{
    coll_acls_t *a = calloc(1, sizeof(*a));
    if (!a) {
        return NULL;
    }
    if (data_dir) {
        size_t len = strlen(data_dir) + sizeof(COLL_ACL_FILE) + 2;
        if (!(a->path = malloc(len))) {
            free(a);
            return NULL;
        }
        snprintf(a->path, len, "%s/%s", data_dir, COLL_ACL_FILE);
    }
    return a;
}

static void acl_free(coll_acl_t *x)
{
    free(x->name);
    free(x->principal);
    free(x->host);
}

static void clear(coll_acls_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        acl_free(&a->e[i]);
    }
    a->n = 0;
}

void coll_acls_free(coll_acls_t *a)
{
    if (!a) {
        return;
    }
    clear(a);
    free(a->e);
    free(a->path);
    free(a);
}

size_t coll_acls_count(const coll_acls_t *a)
{
    return a ? a->n : 0;
}

const coll_acl_t *coll_acls_get(const coll_acls_t *a, size_t i)
{
    return &a->e[i];
}

void coll_acls_remove(coll_acls_t *a, size_t i)
{
    acl_free(&a->e[i]);
    memmove(&a->e[i], &a->e[i + 1], (a->n - i - 1) * sizeof(a->e[0]));
    a->n--;
}

static bool same(const coll_acl_t *x, const coll_acl_t *y)
{
    return x->type == y->type && x->pattern == y->pattern && x->op == y->op && x->perm == y->perm &&
           strcmp(x->name, y->name) == 0 && strcmp(x->principal, y->principal) == 0 &&
           strcmp(x->host, y->host) == 0;
}

int coll_acls_add(coll_acls_t *a, const coll_acl_t *acl)
{
    for (size_t i = 0; i < a->n; i++) {
        if (same(&a->e[i], acl)) {
            return 0;
        }
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        coll_acl_t *e = realloc(a->e, cap * sizeof(*e));
        if (!e) {
            return -ENOMEM;
        }
        a->e = e;
        a->cap = cap;
    }
    coll_acl_t x = *acl;
    x.name = strdup(acl->name);
    x.principal = strdup(acl->principal);
    x.host = strdup(acl->host);
    if (!x.name || !x.principal || !x.host) {
        acl_free(&x);
        return -ENOMEM;
    }
    a->e[a->n++] = x;
    return 0;
}

coll_acls_t *coll_acls_clone(const coll_acls_t *a)
{
    coll_acls_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    if (a->path && !(c->path = strdup(a->path))) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (coll_acls_add(c, &a->e[i]) != 0) {
            coll_acls_free(c);
            return NULL;
        }
    }
    return c;
}

void coll_acls_replace(coll_acls_t *dst, coll_acls_t *src)
{
    clear(dst);
    free(dst->e);
    dst->e = src->e;
    dst->n = src->n;
    dst->cap = src->cap;
    src->e = NULL;
    src->n = src->cap = 0;
    coll_acls_free(src);
}

const char *coll_acl_invalid(const coll_acl_t *acl)
{
    if (acl->type < COLL_RES_TOPIC || acl->type > COLL_RES_TRANSACTIONAL_ID) {
        return "the resource type must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID";
    }
    if (acl->pattern != COLL_PAT_LITERAL && acl->pattern != COLL_PAT_PREFIXED) {
        return "the pattern type must be LITERAL or PREFIXED";
    }
    if (!acl->name || !acl->name[0]) {
        return "the resource name must not be empty";
    }
    if (acl->type == COLL_RES_CLUSTER &&
        (acl->pattern != COLL_PAT_LITERAL || strcmp(acl->name, COLL_ACL_CLUSTER_NAME) != 0)) {
        return "the cluster resource is the literal name kafka-cluster";
    }
    const char *colon = acl->principal ? strchr(acl->principal, ':') : NULL;
    if (!colon || colon == acl->principal || !colon[1]) {
        return "the principal must be TYPE:NAME (User:alice)";
    }
    if (!acl->host || !acl->host[0]) {
        return "the host must be * or an address";
    }
    if (acl->op < COLL_OP_ALL || acl->op > COLL_OP_IDEMPOTENT_WRITE) {
        return "the operation must be a concrete operation or ALL";
    }
    if (acl->perm != COLL_PERM_ALLOW && acl->perm != COLL_PERM_DENY) {
        return "the permission type must be ALLOW or DENY";
    }
    return NULL;
}

const char *coll_acl_filter_invalid(const coll_acl_filter_t *f)
{
    if (f->type <= COLL_RES_UNKNOWN || f->type > COLL_RES_TRANSACTIONAL_ID) {
        return f->type == 6 || f->type == 7 ? NULL : "unknown resource type";
    }
    if (f->pattern <= COLL_PAT_UNKNOWN || f->pattern > COLL_PAT_PREFIXED) {
        return "unknown pattern type";
    }
    if (f->op <= COLL_OP_UNKNOWN || f->op > 14) {
        return "unknown operation";
    }
    if (f->perm <= COLL_PERM_UNKNOWN || f->perm > COLL_PERM_ALLOW) {
        return "unknown permission type";
    }
    return NULL;
}

/* Whether the pattern (type, pattern, name) applies to the resource name[0..len). */
static bool pattern_applies(const coll_acl_t *acl, const char *name, size_t len)
{
    size_t nl = strlen(acl->name);
    if (acl->pattern == COLL_PAT_LITERAL) {
        return (nl == 1 && acl->name[0] == '*') || (nl == len && memcmp(acl->name, name, len) == 0);
    }
    return acl->pattern == COLL_PAT_PREFIXED && nl <= len && memcmp(acl->name, name, nl) == 0;
}

bool coll_acl_filter_matches(const coll_acl_filter_t *f, const coll_acl_t *acl)
{
    if (f->type != COLL_RES_ANY && f->type != acl->type) {
        return false;
    }
    if (f->pattern == COLL_PAT_MATCH) {
        if (f->name && !pattern_applies(acl, f->name, strlen(f->name))) {
            return false;
        }
    } else {
        if (f->pattern != COLL_PAT_ANY && f->pattern != acl->pattern) {
            return false;
        }
        if (f->name && strcmp(f->name, acl->name) != 0) {
            return false;
        }
    }
    if (f->principal && strcmp(f->principal, acl->principal) != 0) {
        return false;
    }
    if (f->host && strcmp(f->host, acl->host) != 0) {
        return false;
    }
    if (f->op != COLL_OP_ANY && f->op != acl->op) {
        return false;
    }
    return f->perm == COLL_PERM_ANY || f->perm == acl->perm;
}

static bool principal_matches(const coll_acl_t *acl, const char *principal)
{
    return strcmp(acl->principal, "User:*") == 0 || strcmp(acl->principal, principal) == 0;
}

static bool host_matches(const coll_acl_t *acl, const char *host)
{
    return strcmp(acl->host, "*") == 0 || (host && strcmp(acl->host, host) == 0);
}

/* Whether an ALLOW ACL of operation `have` allows `want` (Kafka's implied operations). */
static bool allow_implies(int have, int want)
{
    if (have == COLL_OP_ALL || have == want) {
        return true;
    }
    if (want == COLL_OP_DESCRIBE) {
        return have == COLL_OP_READ || have == COLL_OP_WRITE || have == COLL_OP_DELETE ||
               have == COLL_OP_ALTER;
    }
    if (want == COLL_OP_DESCRIBE_CONFIGS) {
        return have == COLL_OP_ALTER_CONFIGS;
    }
    return false;
}

bool coll_acls_authorize(const coll_acls_t *a, const char *principal, const char *host, int op,
                         int type, const char *name, size_t len)
{
    if (!a) {
        return false;
    }
    bool allowed = false;
    for (size_t i = 0; i < a->n; i++) {
        const coll_acl_t *x = &a->e[i];
        if (x->type != type || !principal_matches(x, principal) || !host_matches(x, host) ||
            !pattern_applies(x, name, len)) {
            continue;
        }
        if (x->perm == COLL_PERM_DENY) {
            if (x->op == op || x->op == COLL_OP_ALL) {
                return false; /* deny wins */
            }
        } else if (allow_implies(x->op, op)) {
            allowed = true;
        }
    }
    return allowed;
}

/* Whether DENY ACL d takes away everything ALLOW ACL x grants (Kafka's authorizeByResourceType). */
static bool deny_covers(const coll_acl_t *d, const coll_acl_t *x)
{
    size_t dl = strlen(d->name);
    if (d->pattern == COLL_PAT_LITERAL) {
        return strcmp(d->name, "*") == 0 ||
               (x->pattern == COLL_PAT_LITERAL && strcmp(d->name, x->name) == 0);
    }
    return strncmp(d->name, x->name, dl) == 0; /* a prefix of the name or of the prefix */
}

bool coll_acls_authorize_any(const coll_acls_t *a, const char *principal, const char *host, int op,
                             int type)
{
    if (!a) {
        return false;
    }
    /* Some ALLOW whose resources no DENY takes away entirely. */
    for (size_t i = 0; i < a->n; i++) {
        const coll_acl_t *x = &a->e[i];
        if (x->type != type || x->perm != COLL_PERM_ALLOW || !allow_implies(x->op, op) ||
            !principal_matches(x, principal) || !host_matches(x, host)) {
            continue;
        }
        bool covered = false;
        for (size_t k = 0; k < a->n && !covered; k++) {
            const coll_acl_t *d = &a->e[k];
            covered = d->type == type && d->perm == COLL_PERM_DENY &&
                      (d->op == op || d->op == COLL_OP_ALL) && principal_matches(d, principal) &&
                      host_matches(d, host) && deny_covers(d, x);
        }
        if (!covered) {
            return true;
        }
    }
    return false;
}

/* ---- the file --------------------------------------------------------------------------- */

static void put_enc(trib_buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '%' || *p < '!' || *p > '~') {
            char hex[4];
            snprintf(hex, sizeof(hex), "%%%02X", *p);
            trib_buf_append(b, hex, 3);
        } else {
            trib_buf_append(b, p, 1);
        }
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static int dec(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            int h, l;
            if (i + 2 >= n || (h = hexval(p[i + 1])) < 0 || (l = hexval(p[i + 2])) < 0) {
                return -1;
            }
            ch = h * 16 + l;
            i += 2;
            if (ch == 0) {
                return -1;
            }
        }
        if (o + 1 >= cap) {
            return -1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -1;
}

int coll_acls_save(const coll_acls_t *a)
{
    if (!a->path) {
        return 0;
    }
    trib_buf_t b;
    trib_buf_init(&b);
    static const char head[] = "# tributary ACLs (format 1)\n"
                               "# TYPE PATTERN NAME PRINCIPAL HOST OPERATION PERMISSION\n";
    trib_buf_append(&b, head, sizeof(head) - 1);
    for (size_t i = 0; i < a->n; i++) {
        const coll_acl_t *x = &a->e[i];
        char w[64];
        int len = snprintf(w, sizeof(w), "%s %s ", coll_acl_type_name(x->type),
                           coll_acl_pattern_name(x->pattern));
        trib_buf_append(&b, w, (size_t)len);
        put_enc(&b, x->name);
        trib_buf_append(&b, " ", 1);
        put_enc(&b, x->principal);
        trib_buf_append(&b, " ", 1);
        put_enc(&b, x->host);
        len = snprintf(w, sizeof(w), " %s %s\n", coll_acl_op_name(x->op),
                       coll_acl_perm_name(x->perm));
        trib_buf_append(&b, w, (size_t)len);
    }
    size_t len = 0;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    int rc = trib_buf_error(&b) ? -ENOMEM
             : p                ? trib_write_file_atomic_mode(a->path, p, len, 0600)
                                : -ENOMEM;
    trib_buf_fini(&b);
    return rc;
}

int coll_acls_parse(coll_acls_t *a, const char *text, size_t n, const char *file, trib_error_t *err)
{
    clear(a);
    size_t pos = 0;
    int line = 0;
    char name[ACL_FIELD_MAX], principal[ACL_FIELD_MAX], host[ACL_FIELD_MAX];
    while (pos < n) {
        line++;
        size_t end = pos;
        while (end < n && text[end] != '\n') {
            end++;
        }
        const char *f[8];
        size_t fl[8];
        int nf = 0;
        size_t i = pos;
        while (i < end) {
            while (i < end && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) {
                i++;
            }
            if (i >= end) {
                break;
            }
            size_t s = i;
            while (i < end && text[i] != ' ' && text[i] != '\t' && text[i] != '\r') {
                i++;
            }
            if (nf < 8) {
                f[nf] = text + s;
                fl[nf] = i - s;
            }
            nf++;
        }
        pos = end + 1;
        if (nf == 0 || f[0][0] == '#') {
            continue;
        }
        const char *why = NULL;
        coll_acl_t x = {0};
        int v;
        if (nf != 7) {
            why = "expected TYPE PATTERN NAME PRINCIPAL HOST OPERATION PERMISSION";
        } else if ((v = LOOKUP(type_names, f[0], fl[0])) < 0) {
            why = "unknown resource type";
        } else if ((x.type = (int8_t)v, v = LOOKUP(pattern_names, f[1], fl[1])) < 0) {
            why = "unknown pattern type";
        } else if ((x.pattern = (int8_t)v, dec(f[2], fl[2], name, sizeof(name))) != 0 ||
                   dec(f[3], fl[3], principal, sizeof(principal)) != 0 ||
                   dec(f[4], fl[4], host, sizeof(host)) != 0) {
            why = "bad name, principal or host (percent-encoded, 1-1023 bytes)";
        } else if ((v = LOOKUP(op_names, f[5], fl[5])) < 0) {
            why = "unknown operation";
        } else if ((x.op = (int8_t)v, v = LOOKUP(perm_names, f[6], fl[6])) < 0) {
            why = "unknown permission type";
        } else {
            x.perm = (int8_t)v;
            x.name = name;
            x.principal = principal;
            x.host = host;
            why = coll_acl_invalid(&x);
        }
        if (why) {
            return trib_error_setpos(err, TRIB_EMALFORMED, file, line, 0, "%s", why);
        }
        int rc = coll_acls_add(a, &x);
        if (rc != 0) {
            return trib_error_set(err, rc, "%s: out of memory", file);
        }
    }
    return 0;
}

int coll_acls_load(coll_acls_t *a, trib_error_t *err)
{
    if (!a->path) {
        return 0;
    }
    int fd = open(a->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return trib_error_set(err, -errno, "%s: %s", a->path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size > (off_t)ACL_MAX_BYTES) {
        int rc = errno ? -errno : TRIB_ETOO_LARGE;
        close(fd);
        return trib_error_set(err, rc, "%s: cannot read it (or larger than 64 MiB)", a->path);
    }
    size_t size = (size_t)st.st_size;
    char *text = malloc(size + 1);
    if (!text) {
        close(fd);
        return trib_error_set(err, -ENOMEM, "%s: out of memory", a->path);
    }
    ssize_t got = trib_pread_all(fd, text, size, 0);
    close(fd);
    if (got < 0) {
        free(text);
        return trib_error_set(err, (int)got, "%s: %s", a->path, strerror((int)-got));
    }
    int rc = coll_acls_parse(a, text, (size_t)got, a->path, err);
    free(text);
    return rc;
}
