/* SPDX-License-Identifier: Apache-2.0 */
/* The loop's private structs, shared by agent.c, metrics.c, spool.c and, for the host
   they run on, the inputs (input/). */
#ifndef TRIBUTARY_AGENT_INT_H
#define TRIBUTARY_AGENT_INT_H

#include "agent.h"
#include "event.h"
#include "filter/filter.h"
#include "input/input.h"
#include "input/syslog.h"
#include "input/tail.h"
#include "output/output.h"
#include "parse/parse.h"
#include "pipeline.h"
#include "regex.h"
#include "state/checkpoint.h"
#include "stats.h"

#include <uv.h>

#include "input/syslog_net.h"
#include "tributary/http.h"

typedef struct agent_pipe agent_pipe_t;

/* A pipeline of the loop: its processing (pipeline.h) and its inputs. */
struct agent_pipe {
    agent_pipeline_t pl;
    agent_input_t *inputs;
    size_t ninputs;
};

enum { AGENT_RUNNING = 0, AGENT_STOPPING = 1 };

struct agent {
    uv_loop_t loop;
    bool loop_ok;
    char *state_dir; /* fixed at start: a reload cannot move the checkpoints */
    agent_config_t *cfg;
    agent_options_t opts;
    agent_pipe_t *pipes;
    size_t npipes;
    agent_ckpt_table_t ckpts;
    agent_input_host_t host; /* what the inputs run on */
    agent_tails_t *tails;    /* what the tail inputs share (input/tail.h) */
    struct agent_syslogs *syslogs;
    agent_output_t *out;
    unsigned tail_owner, spool_owner; /* the output's owner ids */
    int rk_pipe[2];
    uv_poll_t rk_poll;
    uv_timer_t tick;
    uv_timer_t ckpt_timer;
    uv_signal_t sigterm, sigint, sighup;
    uv_idle_t work;
    bool work_on;
    agent_sbuf_t line; /* a dry run's printed message */
    bool paused;       /* reading waits for the output's room callback */
    int state;
    int exit_code;
    int lock_fd;
    int64_t tick_ms;
    agent_stats_t st;
    /* the disk buffer of events from syslog, metrics and prometheus inputs */
    struct agent_buffer *buf;
    uint64_t buf_max; /* buffer.max_size as opened */
    bool buf_blocked; /* an input was refused for lack of room: resume stream inputs on room */
    uint64_t buf_report_torn, buf_report_corrupt, buf_report_quarantined; /* at open */
    uint8_t buf_instance[8]; /* the buffer's instance: half of a buffered event's id */
    bool buf_instance_ok;    /* false: buffered events get no event id */
    bool keep_listeners;     /* free_pipelines() keeps them (reload, rebuild) */
    trib_http_t http;        /* the metrics endpoint, when agent.metrics is set */
    bool http_on;
    char *http_addr; /* as started: a reload does not move it */
    agent_input_stats_t *istats;
    int64_t started_ms;
    int input_fd; /* a dry run's --input copied from stdin (an unlinked file) */
    char input_path[64];
};

int64_t agent_now_ms(agent_t *a);
int agent_http_start(agent_t *a);
int agent_metrics_write_file(agent_t *a);
/* GET /status: see metrics.c. */
struct trib_buf;
void agent_status_render(agent_t *a, struct trib_buf *b);
void agent_http_stop(agent_t *a);
void agent_kick(agent_t *a); /* make the work handle run */
/* Runs the tick now (a tail input's inotify event), at most every 50 ms. */
void agent_tick_now(agent_t *a);

/* spool.c: events of inputs that cannot be replayed go through
   the disk buffer. */
/* Processes the event (pipeline.h) and appends the message to the buffer
   (printed instead in a dry run). 0: accepted, filtered or dropped and
   counted; -EAGAIN: the buffer is full (nothing written); -EIO: the buffer
   could not write it (counted). */
int agent_spool_emit(agent_t *a, agent_input_t *in, agent_event_t *ev, const char *source);
int agent_spool_start(agent_t *a);
void agent_spool_stop(agent_t *a);
/* Hands buffered records to the output while it has room; true when
   records are left. */
bool agent_spool_pump(agent_t *a);
/* The output's owner callback of buffered records. */
void agent_spool_ack(void *arg, uint64_t id, int status, const char *why);
/* After a new producer: records handed to the old one and not
   acknowledged are sent again. */
void agent_spool_restart(agent_t *a);
/* Stream inputs refused for lack of room read again once there is room. */
void agent_spool_check_room(agent_t *a);
/* True when nothing buffered waits to be sent. */
bool agent_spool_idle(agent_t *a);

/* agent.c: healthy unless stopping or the output cannot deliver. */
bool agent_healthy(agent_t *a, char *why, size_t whylen);

#endif
