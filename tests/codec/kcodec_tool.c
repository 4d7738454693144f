/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kcodec_tool: the generated Kafka message codecs behind a line protocol, so
 * that independent implementations (tests/codec/oracle_messages.py, driving
 * kafka-python) can check them from outside.
 *
 * Each input line names one message body (no request/response header):
 *
 *   <request|response> <api_key> <version> <hex>      (hex may be empty)
 *
 * and gets exactly one output line, flushed at once so that a crash is
 * pinned to the input that caused it:
 *
 *   {"ok":true,"json":<to_json output>,"reencoded":"<hex of encode()>"}
 *   {"ok":false,"error":"<trib_strerror text>"}
 *
 * A decode error is reported with trib_strerror()'s text alone; a failure
 * after a successful decode (to_json, encode) or a bad input line says which
 * step failed. to_json output is passed through untouched unless it holds a
 * raw control byte, which would break the one-line framing: that is reported
 * as an error instead, since valid JSON never contains one.
 *
 * Every message gets its own arena, bounded so that hostile input cannot
 * make the tool allocate without limit. Exit status: 0, or 1 when stdin or
 * stdout fails.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/error.h"
#include "tributary/kafka.h"
#include "tributary/slice.h"

/* Far above anything the oracle sends; a bound for garbage input. */
#define KCODEC_ARENA_LIMIT (256u << 20)

static void put_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p);
        } else {
            fputc(*p, out);
        }
    }
    fputc('"', out);
}

static void print_error(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void print_error(FILE *out, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fputs("{\"ok\":false,\"error\":", out);
    put_json_string(out, msg);
    fputs("}\n", out);
}

static void put_hex(FILE *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        fputc(digits[p[i] >> 4], out);
        fputc(digits[p[i] & 15], out);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Decodes hex in place (the output is never longer than the input). */
static int unhex(char *hex, size_t n, size_t *outlen)
{
    uint8_t *dst = (uint8_t *)hex;
    if (n % 2 != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval((unsigned char)hex[i]);
        int lo = hexval((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        dst[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *outlen = n / 2;
    return 0;
}

/* Splits off the next space-separated word; "" at the end of the line. */
static char *next_word(char **cursor)
{
    char *p = *cursor;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    char *word = p;
    while (*p != '\0' && *p != ' ' && *p != '\t') {
        p++;
    }
    if (*p != '\0') {
        *p++ = '\0';
    }
    *cursor = p;
    return word;
}

static int parse_i16(const char *s, int16_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < INT16_MIN || v > INT16_MAX) {
        return -1;
    }
    *out = (int16_t)v;
    return 0;
}

/* Decodes, prints and re-encodes one body; prints exactly one line. */
static void run_one(FILE *out, const trib_kafka_codec_t *codec, int16_t version,
                    const uint8_t *body, size_t len)
{
    trib_arena_t arena;
    trib_buf_t json, enc;
    void *m = NULL;
    int rc;

    trib_arena_init(&arena);
    trib_arena_set_limit(&arena, KCODEC_ARENA_LIMIT);
    trib_buf_init(&json);
    trib_buf_init(&enc);

    m = calloc(1, codec->size);
    if (m == NULL) {
        print_error(out, "kcodec_tool: %s", trib_strerror(-ENOMEM));
        goto done;
    }
    codec->init(m);

    trib_slice_t s = trib_slice_make(body, len);
    rc = codec->decode(m, &s, version, &arena);
    if (rc == 0 && !trib_slice_ok(&s)) {
        rc = s.err; /* a decoder that forgot to report its sticky error */
    }
    if (rc < 0) {
        print_error(out, "%s", trib_strerror(rc));
        goto done;
    }

    rc = codec->to_json(m, version, &json);
    if (rc == 0) {
        rc = trib_buf_error(&json);
    }
    if (rc < 0) {
        print_error(out, "to_json failed: %s", trib_strerror(rc));
        goto done;
    }
    size_t jlen = 0;
    const uint8_t *jp = trib_buf_flatten(&json, &jlen);
    if (jp == NULL && trib_buf_error(&json) < 0) {
        print_error(out, "to_json failed: %s", trib_strerror(trib_buf_error(&json)));
        goto done;
    }
    for (size_t i = 0; i < jlen; i++) {
        if (jp[i] < 0x20) {
            print_error(out, "to_json output has a raw control byte 0x%02x at offset %zu: %.*s",
                        jp[i], i, (int)(jlen < 200 ? jlen : 200), (const char *)jp);
            goto done;
        }
    }

    rc = codec->encode(m, &enc, version);
    if (rc == 0) {
        rc = trib_buf_error(&enc);
    }
    if (rc < 0) {
        print_error(out, "encode failed: %s", trib_strerror(rc));
        goto done;
    }
    size_t elen = 0;
    const uint8_t *ep = trib_buf_flatten(&enc, &elen);
    if (ep == NULL && trib_buf_error(&enc) < 0) {
        print_error(out, "encode failed: %s", trib_strerror(trib_buf_error(&enc)));
        goto done;
    }

    fputs("{\"ok\":true,\"json\":", out);
    if (jlen == 0) {
        fputs("null", out); /* an empty to_json is a bug the oracle reports */
    } else {
        fwrite(jp, 1, jlen, out);
    }
    fputs(",\"reencoded\":\"", out);
    put_hex(out, ep, elen);
    fputs("\"}\n", out);

done:
    free(m);
    trib_buf_fini(&enc);
    trib_buf_fini(&json);
    trib_arena_fini(&arena);
}

static void handle_line(FILE *out, char *line)
{
    char *cursor = line;
    const char *dir = next_word(&cursor);
    const char *key_s = next_word(&cursor);
    const char *ver_s = next_word(&cursor);
    char *hex = next_word(&cursor);
    int16_t api_key, version;
    size_t len = 0;

    if ((strcmp(dir, "request") != 0 && strcmp(dir, "response") != 0) ||
        parse_i16(key_s, &api_key) < 0 || parse_i16(ver_s, &version) < 0 ||
        *next_word(&cursor) != '\0') {
        print_error(out, "kcodec_tool: bad input line (want: request|response api_key "
                         "version hex)");
        return;
    }
    if (unhex(hex, strlen(hex), &len) < 0) {
        print_error(out, "kcodec_tool: bad hex");
        return;
    }

    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    if (api == NULL) {
        print_error(out, "kcodec_tool: unknown API key %d: %s", api_key,
                    trib_strerror(TRIB_ENOT_FOUND));
        return;
    }
    const trib_kafka_codec_t *codec = strcmp(dir, "request") == 0 ? api->request : api->response;
    if (codec == NULL) {
        print_error(out, "kcodec_tool: API %s has no %s codec: %s", api->name, dir,
                    trib_strerror(TRIB_ENOT_FOUND));
        return;
    }
    run_one(out, codec, version, (const uint8_t *)hex, len);
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (argc > 1) {
        fprintf(stderr,
                "usage: %s < lines\n"
                "  each line: request|response <api_key> <version> <hex body>\n",
                argv[0]);
        return 2;
    }
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            line[--n] = '\0';
        }
        handle_line(stdout, line);
        if (fflush(stdout) != 0) {
            perror("kcodec_tool: stdout");
            free(line);
            return 1;
        }
    }
    free(line);
    if (ferror(stdin)) {
        perror("kcodec_tool: stdin");
        return 1;
    }
    return 0;
}
