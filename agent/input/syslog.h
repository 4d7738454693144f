/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The syslog input (input/syslog.c): a listener (input/syslog_net.h) per
 * input, and what the syslog inputs of an agent share: the listeners a
 * reload keeps and the counters of those already stopped.
 */
#ifndef TRIBUTARY_AGENT_SYSLOG_INPUT_H
#define TRIBUTARY_AGENT_SYSLOG_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "input/input.h"
#include "input/syslog_net.h"

typedef struct agent_syslogs agent_syslogs_t;

int agent_syslogs_new(agent_syslogs_t **out);
/* Stops the listeners still kept, and frees. */
void agent_syslogs_free(agent_syslogs_t *s);
/* Closes the listeners a reload kept and no new input took. */
void agent_syslogs_release_kept(agent_syslogs_t *s);
/* The listeners' counters: those stopped so far plus the running ones. */
void agent_syslogs_stats(agent_syslogs_t *s, agent_sl_stats_t *out);
void agent_syslogs_resume(agent_syslogs_t *s); /* the buffer has room again */
void agent_syslogs_pause(agent_syslogs_t *s);  /* draining: stop reading */

/* One message handled as if the input's listener had received it (a dry
   run's --input); the result of the listener's callback. */
int agent_syslog_feed(agent_input_t *in, const char *msg, size_t len);
bool agent_syslog_listening(agent_input_t *in);

#endif
