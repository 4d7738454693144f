/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `stdout` sink: each record as a JSON line (sinkutil.h's shape), or
 * its value alone, on standard output. For trying a pipeline out and for
 * tests; a batch is durable once it has been written to the descriptor.
 * Instances share fd 1: a lock keeps each batch's lines together.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sinkutil.h"

typedef struct sink_stdout_opts {
    int format;
} sink_stdout_opts_t;

static const char *const sink_stdout_formats[] = {"json", "value", NULL};

static const trib_config_option_t sink_stdout_options[] = {
    {TRIB_CONFIG_FIELD(sink_stdout_opts_t, format, ENUM), .def = "json",
     .choices = sink_stdout_formats,
     .desc = "json: one object per record; value: the record's value as it is"},
    TRIB_CONFIG_END,
};

typedef struct sink_stdout {
    sink_stdout_opts_t o;
    sink_str_t out;
} sink_stdout_t;

static pthread_mutex_t sink_stdout_lock = PTHREAD_MUTEX_INITIALIZER;

static int sink_stdout_open(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                            void **instance, trib_error_t *err)
{
    sink_stdout_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    s->o = *(const sink_stdout_opts_t *)options;
    sink_str_init(&s->out);
    *instance = s;
    return 0;
}

static trib_sink_status_t sink_stdout_write(void *instance, const trib_sink_batch_t *b,
                                            trib_sink_result_t *res)
{
    sink_stdout_t *s = instance;
    sink_str_reset(&s->out);
    for (size_t i = 0; i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        if (s->o.format == 1) {
            if (r->value.len > 0) {
                sink_str_append(&s->out, r->value.ptr, (size_t)r->value.len);
            }
        } else {
            sink_json_record(&s->out, b->topic, b->partition, r);
        }
        sink_str_append(&s->out, "\n", 1);
    }
    if (s->out.err) {
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        return TRIB_SINK_RETRY;
    }
    pthread_mutex_lock(&sink_stdout_lock);
    size_t off = 0;
    while (off < s->out.len) {
        ssize_t n = write(STDOUT_FILENO, s->out.p + off, s->out.len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            pthread_mutex_unlock(&sink_stdout_lock);
            snprintf(res->msg, sizeof(res->msg), "write to stdout: %s",
                     n < 0 ? strerror(errno) : "short write");
            return TRIB_SINK_RETRY;
        }
        off += (size_t)n;
    }
    pthread_mutex_unlock(&sink_stdout_lock);
    return TRIB_SINK_OK;
}

static void sink_stdout_close(void *instance)
{
    sink_stdout_t *s = instance;
    if (s) {
        sink_str_fini(&s->out);
        free(s);
    }
}

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
{
    static const trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "stdout",
        .description = "JSON lines (or raw values) on standard output",
        .options = sink_stdout_options,
        .options_size = sizeof(sink_stdout_opts_t),
        .open = sink_stdout_open,
        .write = sink_stdout_write,
        .flush = NULL,
        .close = sink_stdout_close,
    };
    return &d;
}
