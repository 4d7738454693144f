/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inputs as handles: each input of a pipeline is an agent_input_t whose
 * operations table (tail, syslog, metrics and prometheus) the loop drives
 * without knowing the type, and whose type's own state (files, listener,
 * timer) is behind `impl`, owned by the type's module.
 *
 *   init    allocate the type's state (when the pipelines are built)
 *   start   begin reading: scan the globs, listen, start the timer
 *   tick    timers due (scans, polls, multiline timeouts); may be NULL
 *   work    read up to `budget` bytes (the loop's work handle); true when
 *           there is more to read; may be NULL (inputs driven by callbacks)
 *   idle    nothing left to read or in flight (--once); NULL: always
 *   drain   send what is held (multiline records) before a stop; true
 *           when some is left (the output was full); may be NULL
 *   stop    stop reading; keep: a reload keeps the listener's socket
 *   fini    free the type's state
 *
 * A new input type is one file with its table and a row in input_types
 * (agent.c).
 */
#ifndef TRIBUTARY_AGENT_INPUT_H
#define TRIBUTARY_AGENT_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "pipeline.h"
#include "stats.h"

typedef struct agent_input agent_input_t;

typedef struct agent_input_ops {
    const char *name;
    int (*init)(agent_input_t *in);
    int (*start)(agent_input_t *in);
    void (*tick)(agent_input_t *in, int64_t now_ms);
    bool (*work)(agent_input_t *in, size_t budget);
    bool (*idle)(agent_input_t *in);
    bool (*drain)(agent_input_t *in);
    void (*stop)(agent_input_t *in, bool keep);
    void (*fini)(agent_input_t *in);
} agent_input_ops_t;

struct agent_output;
struct agent_ckpt_table;
struct agent_tails;
struct agent_syslogs;
struct uv_loop_s;

/*
 * What inputs run on, given by the loop (agent.c): its services and the
 * state the inputs of a type share. Inputs see nothing else of the loop.
 */
typedef struct agent_input_host {
    struct uv_loop_s *loop;
    agent_stats_t *st;
    struct agent_ckpt_table *ckpts;
    struct agent_output *out;
    unsigned tail_owner; /* the output's owner id of tail messages */
    bool dry_run;
    const char *input_path; /* a dry run's --input, or NULL */
    bool *paused;           /* reading waits for the output's room (the loop clears it) */
    struct agent_tails *tails;
    struct agent_syslogs *syslogs;
    void *arg;
    bool (*running)(void *arg);  /* false while stopping or reloading */
    void (*kick)(void *arg);     /* the loop's work handle runs (work() is called) */
    void (*tick_now)(void *arg); /* the loop's tick runs now */
    /* the disk buffer (spool.c): an event of an input that cannot replay */
    int (*spool)(void *arg, agent_input_t *in, agent_event_t *ev, const char *source);
} agent_input_host_t;

struct agent_input {
    const agent_input_ops_t *ops;
    void *impl;               /* the type's own state */
    agent_input_host_t *host; /* the loop that runs it */
    agent_pipeline_t *pl;
    agent_input_conf_t *conf;
    agent_input_stats_t *ist;
    agent_source_t source; /* the headers and counters of its events */
    int64_t tick_ms;       /* set by start: how often tick() wants to run (0: never) */
};

extern const agent_input_ops_t agent_tail_ops;
extern const agent_input_ops_t agent_syslog_ops;
extern const agent_input_ops_t agent_sample_ops; /* metrics and prometheus */

#endif
