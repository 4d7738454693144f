/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tail input (input/tail.c): its files, their ack rings, and the state
 * all tail inputs of an agent share (file slots, the read and fingerprint
 * buffers, inotify). The loop sees a tail input only through
 * agent_tail_ops; this header is for what reports on files (metrics.c).
 */
#ifndef TRIBUTARY_AGENT_TAIL_H
#define TRIBUTARY_AGENT_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "input/input.h"
#include "state/checkpoint.h"

#define AGENT_ACK_BIT (1ull << 63)
/* A tail message's cookie: (file slot << 40) | (seq & 2^40-1) */
#define AGENT_SEQ_BITS 40
#define AGENT_SEQ_MASK ((1ull << AGENT_SEQ_BITS) - 1)

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
    uint64_t ml_start; /* where the record being joined starts */
    /* the event id's file identity (event.h), valid for the first id_len bytes */
    uint64_t id_hash;
    uint64_t id_len;
    bool id_known;
    int64_t ml_last_ms;
} agent_file_t;

/* A tail input's state (its impl). */
typedef struct agent_tail {
    agent_file_t *files;
    size_t nopen;
    int64_t next_scan_ms;
    int64_t next_poll_ms;
    uint64_t scan_gen;     /* the shared inotify generation last acted on */
    const char *only_path; /* a dry run's --input: this file instead of paths */
    uint8_t *unmatched;    /* per path pattern: its last scan matched no file */
    bool scanned;
    bool capped;  /* the last scan left files unopened (max_open_files) */
    bool started; /* by start(), until stop() */
} agent_tail_t;

typedef struct agent_tails agent_tails_t;

/* The shared state of the agent's tail inputs, on the agent's loop: 0 or -ENOMEM. */
int agent_tails_new(agent_tails_t **out, agent_input_host_t *h);
/* Closes the inotify handle (the loop runs its close). */
void agent_tails_close(agent_tails_t *t);
void agent_tails_free(agent_tails_t *t);
/* Sizes the read and fingerprint buffers for a configuration: 0 or -ENOMEM. */
int agent_tails_prepare(agent_tails_t *t, const agent_conf_t *k);
/* Watches the directories of the started tail inputs' globs. */
void agent_tails_watch(agent_tails_t *t);
/* Bytes of the shared read buffer (metrics). */
size_t agent_tails_read_buffer(const agent_tails_t *t);

/* A dry run's --input: the input reads this file instead of its globs. */
void agent_tail_set_only(agent_input_t *in, const char *path);
/* The input's files (NULL for an input of another type). */
agent_file_t *agent_tail_files(agent_input_t *in);
size_t agent_tail_open_count(agent_input_t *in);
/* The output's owner callback of tail messages. */
void agent_tail_ack(void *arg, uint64_t cookie, int status, const char *why);

/* The ack ring (input/tail.c): room for one entry (0 or -ENOMEM), an entry
   for an event in flight, an event needing no delivery (-EAGAIN without
   room), a delivery. The file's checkpoint follows the acknowledged
   prefix. */
int agent_ring_reserve(agent_file_t *f);
void agent_ring_push(agent_file_t *f, uint64_t end_off);
int agent_ring_done(agent_file_t *f, uint64_t end_off);
void agent_ring_ack(agent_file_t *f, uint64_t seq);

#endif
