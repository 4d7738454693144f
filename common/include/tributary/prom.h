/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format (version 0.0.4): HELP/TYPE lines
 * and samples appended to a trib_buf_t. Used by the collector's and the
 * agent's /metrics endpoints.
 */
#ifndef TRIBUTARY_PROM_H
#define TRIBUTARY_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "tributary/buf.h"

/* Appends one "name{labels} value" sample (labels may be NULL). */
void trib_prom_sample(trib_buf_t *b, const char *name, const char *labels, double value);
void trib_prom_sample_u64(trib_buf_t *b, const char *name, const char *labels, uint64_t value);
/* Appends "# HELP" and "# TYPE" lines. */
void trib_prom_header(trib_buf_t *b, const char *name, const char *type, const char *help);
/* Appends a label value escaped for the exposition format (\\, \", \n). */
void trib_prom_label_escape(trib_buf_t *b, const char *s, size_t len);
/* The same into out (outlen > 0 bytes, NUL-terminated), for building a labels string: stops
   before a character whose escape would not fit. Returns the length written. */
size_t trib_prom_label_escape_str(char *out, size_t outlen, const char *s);
/* A metric of one sample: HELP and TYPE lines first unless help is NULL (a further sample of
   a metric whose header is out already), then trib_prom_sample_u64. */
void trib_prom_metric_u64(trib_buf_t *b, const char *name, const char *type, const char *help,
                          const char *labels, uint64_t value);

#endif
