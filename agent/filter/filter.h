/* SPDX-License-Identifier: Apache-2.0 */
/* The filters of a pipeline: grep, exclude, set, remove, rename. */
#ifndef TRIBUTARY_AGENT_FILTER_H
#define TRIBUTARY_AGENT_FILTER_H

#include <stdbool.h>

#include "conf.h"
#include "event.h"

/* Filters: true keeps the event. */
bool agent_filter_apply(const agent_filter_conf_t *f, agent_event_t *ev);

#endif
