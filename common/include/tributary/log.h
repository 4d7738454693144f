/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Leveled logging, in text or JSON lines.
 *
 *   TRIB_LOG(TRIB_LOG_WARN, "storage", "truncated %s at %zu", path, pos);
 *
 * text:  2026-11-26T15:08:19.123Z WARN  storage: truncated … at 12
 * json:  {"ts":"2026-11-26T15:08:19.123Z","level":"warn","facility":"storage","msg":"…"}
 *
 * The macro checks the level before evaluating its arguments, so disabled
 * debug logging costs one comparison. The logger's settings (level, format,
 * output fd) are process-wide: a daemon has one log. Writes are one
 * write(2) per line, so lines from threads do not interleave.
 *
 * Repeated errors are rate-limited with a caller-owned trib_log_ratelimit_t:
 * at most `burst` lines per `interval_ms`, then one summary of how many
 * were suppressed.
 */
#ifndef TRIBUTARY_LOG_H
#define TRIBUTARY_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum trib_log_level {
    TRIB_LOG_ERROR = 0,
    TRIB_LOG_WARN = 1,
    TRIB_LOG_INFO = 2,
    TRIB_LOG_DEBUG = 3,
    TRIB_LOG_TRACE = 4,
} trib_log_level_t;

typedef enum trib_log_format {
    TRIB_LOG_TEXT = 0,
    TRIB_LOG_JSON = 1,
} trib_log_format_t;

extern int trib_log_level_current;

void trib_log_set_level(trib_log_level_t level);
void trib_log_set_format(trib_log_format_t fmt);
/* Where lines go (default 2, stderr). */
void trib_log_set_fd(int fd);
/* "error", "warn", "info", "debug", "trace" -> level; -1 if unknown. */
int trib_log_level_parse(const char *name);
const char *trib_log_level_name(trib_log_level_t level);

void trib_log_write(trib_log_level_t level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TRIB_LOG_ENABLED(level) ((int)(level) <= trib_log_level_current)

#define TRIB_LOG(level, facility, ...)                                                             \
    do {                                                                                           \
        if (TRIB_LOG_ENABLED(level)) {                                                             \
            trib_log_write((level), (facility), __VA_ARGS__);                                      \
        }                                                                                          \
    } while (0)

typedef struct trib_log_ratelimit {
    uint32_t interval_ms;
    uint32_t burst;
    uint64_t window_start_ms;
    uint32_t count;
    uint32_t suppressed;
} trib_log_ratelimit_t;

#define TRIB_LOG_RATELIMIT_INIT(interval_ms, burst)                                                \
    {                                                                                              \
        (interval_ms), (burst), 0, 0, 0                                                            \
    }

/*
 * Returns true if a line may be logged now. When a new window opens after
 * suppression, logs how many lines were dropped.
 */
bool trib_log_ratelimit_ok(trib_log_ratelimit_t *rl, const char *facility);

#define TRIB_LOG_RL(rl, level, facility, ...)                                                      \
    do {                                                                                           \
        if (TRIB_LOG_ENABLED(level) && trib_log_ratelimit_ok((rl), (facility))) {                  \
            trib_log_write((level), (facility), __VA_ARGS__);                                      \
        }                                                                                          \
    } while (0)

#endif
