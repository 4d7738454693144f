/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Filters, applied in order after the parsers: grep keeps events whose
 * field matches a PCRE2 pattern, exclude drops them; set, remove and rename
 * edit fields. An event dropped here never reaches the output, and its
 * lines count as delivered for the checkpoint (they were handled).
 * A grep on a missing field drops the event; an exclude keeps it.
 */
#include "filter/filter.h"
#include "regex.h"

#include <string.h>

bool agent_filter_apply(const agent_filter_conf_t *f, agent_event_t *ev)
{
    size_t flen = strlen(f->field);
    switch (f->type) {
    case AGENT_FILTER_GREP:
    case AGENT_FILTER_EXCLUDE: {
        agent_field_t *v = agent_event_get(ev, f->field, flen);
        if (v == NULL) {
            return f->type == AGENT_FILTER_EXCLUDE;
        }
        const char *s;
        size_t n;
        agent_field_text(ev, v, &s, &n);
        int m = agent_regex_match(f->re, s, n);
        bool matched = m > 0; /* a match that hit a limit counts as no match */
        return f->type == AGENT_FILTER_GREP ? matched : !matched;
    }
    case AGENT_FILTER_SET:
        agent_event_set(ev, f->field, flen, f->value, strlen(f->value), false);
        return true;
    case AGENT_FILTER_REMOVE:
        agent_event_remove(ev, f->field, flen);
        return true;
    case AGENT_FILTER_RENAME: {
        agent_field_t *v = agent_event_get(ev, f->field, flen);
        if (v != NULL) {
            agent_event_remove(ev, f->to, strlen(f->to));
            v = agent_event_get(ev, f->field, flen);
            v->name = f->to;
            v->nlen = strlen(f->to);
            v->plain_name = false;
        }
        return true;
    }
    default:
        return true;
    }
}
