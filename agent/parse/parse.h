/* SPDX-License-Identifier: Apache-2.0 */
/* The parse steps of a pipeline: regex, json, logfmt and syslog. */
#ifndef TRIBUTARY_AGENT_PARSE_H
#define TRIBUTARY_AGENT_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "event.h"

/* Parsers: 0 parsed, 1 no match, 2 a types: conversion failed, <0 error.
   Fields point into the event's text or its scratch buffer. */
int agent_parse_apply(const agent_parse_conf_t *p, agent_event_t *ev);
/* Every parse step of a pipeline. A step that fails marks the event
   "parse_error": true and "parse_error_by": its type (the first that
   failed). Returns how many steps failed. */
size_t agent_parse_all(const agent_pipeline_conf_t *pc, agent_event_t *ev);
/* A types: conversion of a field's text: the JSON value in out (int,
   float, bool) or an RFC 3339 string (timestamp, read with time_format).
   Returns the length, or 0 when the text is not of that type. */
size_t agent_convert(int type, const char *s, size_t n, const char *time_format, char *out,
                     size_t outlen);
/* "rfc3339", "unix", "unix_ms" or a strptime() format. 0 or -1. */
int agent_parse_time(const char *s, size_t n, const char *fmt, int64_t *ms);

#endif
