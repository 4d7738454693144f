/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tributary's local error codes.
 *
 * Functions return int: 0 on success, a negative errno (-ENOMEM, -EINVAL …)
 * or one of the TRIB_E* codes below. The codes live in one X-macro list that
 * also generates their names and messages, so a code can never be added
 * without a message. TRIB_E* values start at -1000 so they never collide with
 * -errno. Kafka protocol error codes are a separate type (kafka.h) and never
 * share this list.
 *
 * Errors that need context (a config file position, a TLS or plugin message)
 * fill a caller-owned trib_error_t; nothing is allocated on error paths.
 */
#ifndef TRIBUTARY_ERROR_H
#define TRIBUTARY_ERROR_H

#include <stddef.h>

/* X(name, value, message) */
#define TRIB_ERROR_LIST(X)                                                                         \
    X(TRUNCATED, -1000, "input truncated")                                                         \
    X(MALFORMED, -1001, "malformed input")                                                         \
    X(TOO_LARGE, -1002, "size limit exceeded")                                                     \
    X(CRC, -1003, "checksum mismatch")                                                             \
    X(UNSUPPORTED_VERSION, -1004, "unsupported version")                                           \
    X(UNSUPPORTED, -1005, "unsupported feature")                                                   \
    X(CONFIG, -1006, "configuration error")                                                        \
    X(COMPRESSION, -1007, "compression codec error")                                               \
    X(NOT_FOUND, -1008, "not found")                                                               \
    X(EXISTS, -1009, "already exists")                                                             \
    X(STATE, -1010, "invalid state")                                                               \
    X(LIMIT, -1011, "resource limit reached")

enum trib_errcode {
#define TRIB_ERR_ENUM_(name, value, msg) TRIB_E##name = (value),
    TRIB_ERROR_LIST(TRIB_ERR_ENUM_)
#undef TRIB_ERR_ENUM_
};

/*
 * TRIB_NEVER(cond): a condition that cannot happen but whose branch is kept
 * as a defence, after SQLite's NEVER():
 *
 *     if (TRIB_NEVER(took != n)) {
 *         ... recover: count it, close the connection ...
 *     }
 *
 * - Debug builds (NDEBUG not defined: CMAKE_BUILD_TYPE=Debug, the sanitizer
 *   build the tests run in) and any build with TRIB_DEBUG defined: a true
 *   condition aborts with "file:line: TRIB_NEVER(cond) hit", so a test
 *   that reaches the branch fails loudly instead of passing through it.
 * - Coverage builds (TRIB_COVERAGE): 0, so the branch that cannot be
 *   reached is not counted as uncovered.
 * - Release builds (NDEBUG, the packages): the condition itself, so the
 *   defended branch runs if it ever is reached.
 *
 * The condition is evaluated exactly once except under TRIB_COVERAGE,
 * where it is not evaluated at all: it must have no side effect.
 */
#if defined(TRIB_COVERAGE)
#define TRIB_NEVER(x) 0
#elif defined(TRIB_DEBUG) || !defined(NDEBUG)
#define TRIB_NEVER(x) ((x) ? (trib_never_hit(__FILE__, __LINE__, #x), 1) : 0)
#else
#define TRIB_NEVER(x) (x)
#endif

/* Reports a TRIB_NEVER() condition that held and aborts. */
_Noreturn void trib_never_hit(const char *file, int line, const char *cond);

/* Message for a local error code or a negative errno; never NULL. */
const char *trib_strerror(int err);

/* Symbolic name ("TRIB_ETRUNCATED", "ENOMEM"); never NULL. */
const char *trib_errname(int err);

/*
 * A caller-owned error with context. `file` is borrowed: it must outlive the
 * error (config errors point at the path the loader was given).
 */
typedef struct trib_error {
    int code;
    const char *file;
    int line; /* 1-based; 0 when unknown */
    int col;  /* 1-based; 0 when unknown */
    char msg[512];
} trib_error_t;

void trib_error_clear(trib_error_t *e);

/* Fills e (if not NULL) and returns code. printf-style message. */
int trib_error_set(trib_error_t *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Same, with a position. */
int trib_error_setpos(trib_error_t *e, int code, const char *file, int line, int col,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Formats compiler-style: "file:line:col: error: msg" (position parts
 * omitted when unknown). Returns what snprintf returns.
 */
int trib_error_format(const trib_error_t *e, char *out, size_t outlen);

#endif
