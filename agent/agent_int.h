/* SPDX-License-Identifier: Apache-2.0 */
/* The loop's private structs, shared by agent.c, metrics.c, the inputs (input/) and
   output/spool.c. */
#ifndef TRIBUTARY_AGENT_INT_H
#define TRIBUTARY_AGENT_INT_H

#include "agent.h"
#include "event.h"
#include "filter/filter.h"
#include "output/output.h"
#include "parse/parse.h"
#include "pipeline.h"
#include "regex.h"
#include "state/checkpoint.h"
#include "stats.h"

#include <uv.h>

#include "input/syslog_net.h"
#include "tributary/http.h"

#define AGENT_ACK_BIT (1ull << 63)
/* A tail message's cookie: (file slot << 40) | (seq & 2^40-1) */
#define AGENT_SEQ_BITS 40
#define AGENT_SEQ_MASK ((1ull << AGENT_SEQ_BITS) - 1)

typedef struct agent_input agent_input_t;
typedef struct agent_pipe agent_pipe_t;

typedef struct agent_file {
    struct agent_file *next;
    agent_input_t *in;
    agent_ckpt_t *ck;
    char *path;
    char *jpath; /* path as a quoted JSON string, rendered once */
    size_t jpath_len;
    int fd; /* -1 once closed (the object lives on while events are in flight) */
    uint64_t dev, ino;
    uint64_t off;      /* first byte not yet turned into an event */
    uint64_t examined; /* bytes looked at (a partial last line is examined, not consumed) */
    uint64_t size;     /* at the last fstat */
    int64_t last_growth_ms;
    int64_t detached_ms; /* when its path stopped naming it (rotated or deleted); 0 */
    bool deleted;
    bool want_read;
    bool seen; /* by the current scan */
    uint32_t slot;
    /* ack ring: entries are end offsets, AGENT_ACK_BIT once delivered */
    uint64_t *ring;
    size_t rcap; /* a power of two */
    uint64_t head, tail;
    uint64_t acked_off;
    uint64_t trunc_seq;
    bool trunc_pending;
    uint64_t inflight;
    /* multiline */
    agent_sbuf_t ml;
    size_t ml_lines;
    uint64_t ml_end;
    int64_t ml_last_ms;
} agent_file_t;

struct agent_sl;
struct agent_hostmetrics;
typedef struct agent_syslog_src agent_syslog_src_t;
struct agent_scrape;

struct agent_input {
    agent_t *a;
    agent_pipeline_t *pl;
    agent_source_t source; /* headers and counters of its events (per file: the path) */
    agent_input_stats_t *ist;
    agent_input_conf_t *conf;
    /* syslog */
    struct agent_sl *sl;
    agent_syslog_src_t *src;
    /* metrics, prometheus: the sampling timer (heap: freed by its close callback) */
    uv_timer_t *timer;
    struct agent_hostmetrics *hm;
    struct agent_scrape *scrape; /* a scrape running on the thread pool */
    agent_file_t *files;
    size_t nopen;
    int64_t next_scan_ms;
    int64_t next_poll_ms;
    const char *only_path; /* a dry run's --input: this file instead of paths */
    uint8_t *unmatched;    /* per path pattern: its last scan matched no file */
    bool scanned;
    bool capped; /* the last scan left files unopened (max_open_files) */
};

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
    agent_file_t **slots;
    size_t nslots;
    agent_output_t *out;
    unsigned tail_owner, spool_owner; /* the output's owner ids */
    int rk_pipe[2];
    uv_poll_t rk_poll;
    uv_timer_t tick;
    uv_timer_t ckpt_timer;
    uv_signal_t sigterm, sigint, sighup;
    uv_idle_t work;
    bool work_on;
    int inotify_fd;
    uv_poll_t inotify_poll;
    bool inotify_failed;
    int *wds;
    size_t nwds;
    bool want_scan;
    int64_t last_wake_ms;
    agent_sbuf_t line; /* a dry run's printed message */
    char *rbuf;
    size_t rbuf_cap;
    char *fpbuf;
    bool paused; /* reading waits for the output's room callback */
    int state;
    int exit_code;
    int lock_fd;
    int64_t tick_ms;
    int64_t wall_ms; /* the time of the current read: events made from it get it */
    agent_stats_t st;
    /* the disk buffer of events from syslog, metrics and prometheus inputs */
    struct agent_buffer *buf;
    uint64_t buf_max; /* buffer.max_size as opened */
    bool buf_blocked; /* an input was refused for lack of room: resume stream inputs on room */
    uint64_t buf_report_torn, buf_report_corrupt, buf_report_quarantined; /* at open */
    agent_sl_stats_t sl_totals;  /* counters of listeners already stopped */
    agent_syslog_src_t *sl_kept; /* listeners kept across a reload, not yet taken */
    bool keep_listeners;         /* free_pipelines() keeps them (reload, rebuild) */
    trib_http_t http;            /* the metrics endpoint, when agent.metrics is set */
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
int64_t agent_wall_ms(void);
void agent_kick(agent_t *a); /* make the work handle run */

/* input/tail.c */
/* startup: read_from applies to files without a checkpoint; siblings: look
   for unmatched checkpoints' files among their directories' other files. */
void agent_tail_scan(agent_input_t *in, bool startup, bool siblings);
void agent_tail_poll(agent_input_t *in);
/* Reads up to budget bytes; returns bytes consumed. */
size_t agent_tail_read(agent_file_t *f, size_t budget);
bool agent_tail_idle(agent_input_t *in);
void agent_tail_flush_ml(agent_file_t *f);
void agent_tail_close_all(agent_input_t *in);
void agent_file_release(agent_file_t *f); /* frees when closed and nothing in flight */

/* input/syslog.c: listeners of syslog inputs */
/* Takes a kept listener with the same socket options, or makes one. */
int agent_syslog_input_start(agent_input_t *in);
/* keep: the listener goes on (queued bytes and connections stay) until a
   new input takes it or agent_syslog_release_kept() closes it. */
void agent_syslog_input_stop(agent_input_t *in, bool keep);
void agent_syslog_release_kept(agent_t *a);
/* One message handled as if the input's listener had received it (a dry
   run's --input); the result of the listener's callback. */
int agent_syslog_feed(agent_input_t *in, const char *msg, size_t len);
/* The listeners' counters: those stopped so far plus the running ones. */
void agent_syslog_stats(agent_t *a, agent_sl_stats_t *out);
void agent_syslog_resume_all(agent_t *a); /* the buffer has room again */
void agent_syslog_pause_all(agent_t *a);  /* draining: stop reading */

/* input/sample.c: metrics and prometheus inputs */
int agent_sample_input_start(agent_input_t *in);
void agent_sample_input_stop(agent_input_t *in);

/* output/spool.c: events of inputs that cannot be replayed go through
   the disk buffer. */
/* Processes the event (pipeline.h) and appends the message to the buffer
   (printed instead in a dry run). 0: accepted, filtered or dropped and
   counted; -EAGAIN: the buffer is full (nothing written); -EIO: the buffer
   could not write it (counted). */
int agent_spool_emit(agent_input_t *in, agent_event_t *ev, const char *source);
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

/* input/tail.c: the ack ring (see tail.c): room for one entry (0 or
   -ENOMEM), an entry for an event in flight, an event needing no delivery
   (-EAGAIN without room), a delivery. The file's checkpoint follows the
   acknowledged prefix. */
int agent_ring_reserve(agent_file_t *f);
void agent_ring_push(agent_file_t *f, uint64_t end_off);
int agent_ring_done(agent_file_t *f, uint64_t end_off);
void agent_ring_ack(agent_file_t *f, uint64_t seq);
/* The output's owner callback of tail messages. */
void agent_tail_ack(void *arg, uint64_t cookie, int status, const char *why);

/* agent.c: healthy unless stopping or the output cannot deliver. */
bool agent_healthy(agent_t *a, char *why, size_t whylen);

#endif
