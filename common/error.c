/* SPDX-License-Identifier: Apache-2.0 */
/* Error code names and messages, generated from TRIB_ERROR_LIST. */
#include "tributary/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *trib_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define TRIB_ERR_MSG_(name, value, msg)                                                            \
    case value:                                                                                    \
        return msg;
        TRIB_ERROR_LIST(TRIB_ERR_MSG_)
#undef TRIB_ERR_MSG_
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        return strerror(-err);
    }
    return "unknown error";
}

const char *trib_errname(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define TRIB_ERR_NAME_(name, value, msg)                                                           \
    case value:                                                                                    \
        return "TRIB_E" #name;
        TRIB_ERROR_LIST(TRIB_ERR_NAME_)
#undef TRIB_ERR_NAME_
    case -ENOMEM:
        return "ENOMEM";
    case -EINVAL:
        return "EINVAL";
    case -ENOENT:
        return "ENOENT";
    case -EIO:
        return "EIO";
    case -EAGAIN:
        return "EAGAIN";
    case -EEXIST:
        return "EEXIST";
    case -ENOSPC:
        return "ENOSPC";
    default:
        return "EUNKNOWN";
    }
}

void trib_error_clear(trib_error_t *e)
{
    if (e) {
        e->code = 0;
        e->file = NULL;
        e->line = 0;
        e->col = 0;
        e->msg[0] = '\0';
    }
}

static void error_vset(trib_error_t *e, int code, const char *file, int line, int col,
                       const char *fmt, va_list ap)
{
    e->code = code;
    e->file = file;
    e->line = line;
    e->col = col;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

int trib_error_set(trib_error_t *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        error_vset(e, code, NULL, 0, 0, fmt, ap);
        va_end(ap);
    }
    return code;
}

int trib_error_setpos(trib_error_t *e, int code, const char *file, int line, int col,
                      const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        error_vset(e, code, file, line, col, fmt, ap);
        va_end(ap);
    }
    return code;
}

int trib_error_format(const trib_error_t *e, char *out, size_t outlen)
{
    if (e->file && e->line > 0 && e->col > 0) {
        return snprintf(out, outlen, "%s:%d:%d: error: %s", e->file, e->line, e->col, e->msg);
    }
    if (e->file && e->line > 0) {
        return snprintf(out, outlen, "%s:%d: error: %s", e->file, e->line, e->msg);
    }
    if (e->file) {
        return snprintf(out, outlen, "%s: error: %s", e->file, e->msg);
    }
    return snprintf(out, outlen, "error: %s", e->msg);
}

_Noreturn void trib_never_hit(const char *file, int line, const char *cond)
{
    fprintf(stderr, "%s:%d: TRIB_NEVER(%s) hit\n", file, line, cond);
    fflush(stderr);
    abort();
}
