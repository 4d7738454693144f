/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent as main() sees it: options, start, run, stop.
 *
 *   inputs (input/input.h: tail, syslog, metrics, prometheus)
 *     --events--> pipeline (pipeline.h: parse/, filter/, value, topic, key)
 *     --messages--> output (output/output.h: librdkafka, or printed in a
 *     dry run) --delivery reports--> the sender: a tail file's ack ring and
 *     checkpoint (state/checkpoint.h), or the disk buffer (buffer/buffer.h,
 *     through spool.c) for inputs that cannot replay
 *
 * One libuv loop, one thread (agent.c); librdkafka runs its own threads.
 * The configuration is conf.h; events event.h; counters stats.h.
 */
#ifndef TRIBUTARY_AGENT_H
#define TRIBUTARY_AGENT_H

#include <stdbool.h>
#include <stdio.h>

#include "conf.h"

typedef struct agent agent_t;

typedef struct agent_options {
    const char *config_path;
    bool dry_run;
    bool once; /* exit when every file has been read to its end and acked */
    /* dry run: lines of this file ("-": stdin) go through the pipeline of
       input input_id (NULL: the only input) instead of the inputs' own
       sources; the agent exits once they are printed */
    const char *input_path;
    const char *input_id;
    FILE *dry_out;
} agent_options_t;

int agent_new(agent_t **out, agent_config_t *cfg, const agent_options_t *opts);
/* Runs the loop until SIGTERM/SIGINT (or --once). Returns the exit status. */
int agent_run(agent_t *a);
/* Closes the loop; returns uv_loop_close()'s status (0: no handle was left). */
int agent_free(agent_t *a);
/* The configuration in use (a reload replaces the one given): the caller frees it. */
agent_config_t *agent_take_config(agent_t *a);
/* Prometheus text exposition of the agent's counters. */
struct trib_buf;
void agent_metrics_render(agent_t *a, struct trib_buf *out);

#endif
