/* SPDX-License-Identifier: Apache-2.0 */
/* The process-wide logger (see log.h). */
#include "tributary/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int trib_log_level_current = TRIB_LOG_INFO;
static trib_log_format_t log_format = TRIB_LOG_TEXT;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const level_tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};

void trib_log_set_level(trib_log_level_t level)
{
    trib_log_level_current = (int)level;
}

void trib_log_set_format(trib_log_format_t fmt)
{
    log_format = fmt;
}

void trib_log_set_fd(int fd)
{
    log_fd = fd;
}

int trib_log_level_parse(const char *name)
{
    for (int i = 0; i <= TRIB_LOG_TRACE; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        return TRIB_LOG_WARN;
    }
    return -1;
}

const char *trib_log_level_name(trib_log_level_t level)
{
    if ((int)level < 0 || level > TRIB_LOG_TRACE) {
        return "unknown";
    }
    return level_names[level];
}

static size_t log_timestamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
    return k + (m > 0 ? (size_t)m : 0);
}

/* Appends s JSON-escaped to out[*pos..cap). */
static void json_escape(char *out, size_t cap, size_t *pos, const char *s)
{
    size_t p = *pos;
    for (; *s && p + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[p++] = '\\';
            out[p++] = (char)c;
        } else if (c == '\n') {
            out[p++] = '\\';
            out[p++] = 'n';
        } else if (c < 0x20) {
            p += (size_t)snprintf(out + p, cap - p, "\\u%04x", c);
        } else {
            out[p++] = (char)c;
        }
    }
    *pos = p;
}

void trib_log_write(trib_log_level_t level, const char *facility, const char *fmt, ...)
{
    char msg[2048];
    char line[4608];
    char ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_timestamp(ts, sizeof(ts));
    if ((int)level < 0 || level > TRIB_LOG_TRACE) {
        level = TRIB_LOG_ERROR;
    }
    size_t pos;
    if (log_format == TRIB_LOG_JSON) {
        int n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"facility\":\"", ts,
                         level_names[level]);
        pos = (size_t)n;
        json_escape(line, sizeof(line), &pos, facility ? facility : "");
        memcpy(line + pos, "\",\"msg\":\"", 9);
        pos += 9;
        json_escape(line, sizeof(line), &pos, msg);
        memcpy(line + pos, "\"}\n", 3);
        pos += 3;
    } else {
        int n = snprintf(line, sizeof(line), "%s %s %s: %s\n", ts, level_tags[level],
                         facility ? facility : "-", msg);
        pos = n < 0 ? 0 : (size_t)n;
        if (pos >= sizeof(line)) {
            pos = sizeof(line) - 1;
            line[pos - 1] = '\n';
        }
    }
    ssize_t w = write(log_fd, line, pos);
    (void)w;
}

static uint64_t log_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool trib_log_ratelimit_ok(trib_log_ratelimit_t *rl, const char *facility)
{
    uint64_t now = log_now_ms();
    if (rl->window_start_ms == 0 || now - rl->window_start_ms >= rl->interval_ms) {
        if (rl->suppressed) {
            trib_log_write(TRIB_LOG_WARN, facility, "%u similar messages suppressed",
                           rl->suppressed);
        }
        rl->window_start_ms = now;
        rl->count = 0;
        rl->suppressed = 0;
    }
    if (rl->count < rl->burst) {
        rl->count++;
        return true;
    }
    rl->suppressed++;
    return false;
}
