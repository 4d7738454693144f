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

#endif
