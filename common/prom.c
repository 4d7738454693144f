/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text exposition format (see prom.h). */
#include "tributary/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void trib_prom_header(trib_buf_t *b, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    trib_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void trib_prom_label_escape(trib_buf_t *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == '"') {
            trib_buf_put_u8(b, '\\');
            trib_buf_put_u8(b, (uint8_t)ch);
        } else if (ch == '\n') {
            trib_buf_append(b, "\\n", 2);
        } else {
            trib_buf_put_u8(b, (uint8_t)ch);
        }
    }
}

size_t trib_prom_label_escape_str(char *out, size_t outlen, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < outlen; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    if (outlen > 0) {
        out[o] = '\0';
    }
    return o;
}

static void put_name_labels(trib_buf_t *b, const char *name, const char *labels)
{
    trib_buf_append(b, name, strlen(name));
    if (labels && *labels) {
        trib_buf_put_u8(b, '{');
        trib_buf_append(b, labels, strlen(labels));
        trib_buf_put_u8(b, '}');
    }
    trib_buf_put_u8(b, ' ');
}

void trib_prom_sample(trib_buf_t *b, const char *name, const char *labels, double value)
{
    put_name_labels(b, name, labels);
    char v[64];
    int n;
    if (isinf(value)) {
        n = snprintf(v, sizeof(v), "%s\n", value > 0 ? "+Inf" : "-Inf");
    } else if (isnan(value)) {
        n = snprintf(v, sizeof(v), "NaN\n");
    } else {
        n = snprintf(v, sizeof(v), "%.10g\n", value);
    }
    trib_buf_append(b, v, (size_t)n);
}

void trib_prom_metric_u64(trib_buf_t *b, const char *name, const char *type, const char *help,
                          const char *labels, uint64_t value)
{
    if (help != NULL) {
        trib_prom_header(b, name, type, help);
    }
    trib_prom_sample_u64(b, name, labels, value);
}

void trib_prom_sample_u64(trib_buf_t *b, const char *name, const char *labels, uint64_t value)
{
    put_name_labels(b, name, labels);
    char v[32];
    int n = snprintf(v, sizeof(v), "%" PRIu64 "\n", value);
    trib_buf_append(b, v, (size_t)n);
}
