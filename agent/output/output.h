/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The output: the one owner of librdkafka. Senders (the tail input, the
 * disk buffer) register once as owners with a callback; each message they
 * produce carries a 56-bit cookie of theirs, and its delivery report comes
 * back to that owner's callback with the cookie. The message's librdkafka
 * opaque is owner << 56 | cookie, so nothing is allocated per message.
 *
 * Delivery (agents-and-sinks.md §2.3, §2.9): the producer runs with
 * acks=all and enable.idempotence=true, so a retry never duplicates or
 * reorders at the broker, and message.timeout.ms=0: retry forever, through
 * leader changes and outages of the whole cluster (the configuration
 * refuses another value: a timed-out message produced again would land
 * behind newer ones of its partition). Should one time out all the same,
 * it is produced again here, unseen by its owner.
 *
 * Backpressure (§2.4): the bytes of messages in the producer are bounded
 * by output.max_inflight_bytes (default memory_limit/16, also given to
 * librdkafka as queue.buffering.max.kbytes). A sender refused for lack of
 * room (-EAGAIN) waits for the room callback, called once half the budget
 * is free again.
 *
 * After a fatal producer error (idempotence state lost) reports come back
 * AGENT_ACK_UNSENT and agent_output_fatal() turns true: the loop destroys
 * the producer and makes a new one (agent_output_stop, agent_output_start),
 * and the owners send again what was not acknowledged.
 */
#ifndef TRIBUTARY_AGENT_OUTPUT_H
#define TRIBUTARY_AGENT_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "pipeline.h"
#include "stats.h"

typedef struct agent_output agent_output_t;

/* What became of a message, as its owner hears it. */
enum {
    AGENT_ACK_DELIVERED = 0,
    AGENT_ACK_UNSENT = 1,  /* purged, stopping or a fatal error: to be sent again later */
    AGENT_ACK_EXPIRED = 2, /* timed out and could not be produced again */
    AGENT_ACK_FAILED =
        3, /* a permanent error (too large, not authorized, ...): counted as a drop */
};
#define AGENT_OUTPUT_MAX_OWNERS 4
#define AGENT_OUTPUT_COOKIE_MASK ((1ull << 56) - 1)

/* why: the error's text (for logs), "" when delivered. */
typedef void (*agent_ack_cb)(void *arg, uint64_t cookie, int status, const char *why);
/* The budget has room again after a sender was refused. */
typedef void (*agent_room_cb)(void *arg);

/* 0 or -ENOMEM. dry_run: no producer is made; messages are printed to dry_out. */
int agent_output_new(agent_output_t **out, agent_stats_t *st, bool dry_run, FILE *dry_out,
                     agent_room_cb room, void *room_arg);
/* Destroys the producer (nothing is waited for) and frees. */
void agent_output_free(agent_output_t *o);
/* An owner id for agent_output_produce(); AGENT_OUTPUT_MAX_OWNERS at most. */
unsigned agent_output_owner(agent_output_t *o, agent_ack_cb cb, void *arg);

/* Makes the producer from the configuration; its main queue writes a byte
   to wake_fd when reports wait (the loop then calls agent_output_poll). */
int agent_output_start(agent_output_t *o, const agent_conf_t *k, int wake_fd);
/* A topic known in advance (a pipeline's fixed topic): its handle is made
   now, so librdkafka fetches its metadata (and the collector creates it)
   before the first message. */
void agent_output_topic(agent_output_t *o, const char *topic);
/* Waits up to timeout_ms for reports, purges the rest (reported UNSENT),
   destroys the producer. */
void agent_output_stop(agent_output_t *o, int64_t timeout_ms);
/* Serves reports for up to timeout_ms while messages are in flight. */
void agent_output_flush(agent_output_t *o, int64_t timeout_ms);
/* Serves the reports that wait. */
void agent_output_poll(agent_output_t *o);

/* The budget is used up: true, and the room callback is due. */
bool agent_output_full(agent_output_t *o);
/*
 * Hands a message to librdkafka (copied). 0: in flight, its report comes to
 * the owner; -EAGAIN: no room (budget, librdkafka's queue, or a fatal error:
 * wait for the room callback or the rebuild), nothing taken; -EPERM:
 * librdkafka refused it for good (counted as a drop and logged): the
 * owner passes over it.
 */
int agent_output_produce(agent_output_t *o, const agent_msg_t *m, unsigned owner, uint64_t cookie);
/* A dry run: the message as one JSON line. */
void agent_output_print(agent_output_t *o, const agent_msg_t *m);

/* A fatal producer error happened: rebuild it. */
bool agent_output_fatal(const agent_output_t *o);

typedef struct agent_output_state {
    bool producer; /* one exists */
    bool brokers_down;
    uint64_t inflight_msgs;
    uint64_t inflight_bytes;
    uint64_t max_inflight;
    const char *last_error; /* "" when none */
} agent_output_state_t;
void agent_output_state(const agent_output_t *o, agent_output_state_t *s);

/* Events waiting while librdkafka said all brokers were down, or
   AGENT_HEALTH_STALL_MS with none acknowledged: false and the reason.
   `waiting`: the caller has messages that wait besides those in flight. */
#define AGENT_HEALTH_STALL_MS 30000
bool agent_output_healthy(const agent_output_t *o, bool waiting, char *why, size_t whylen);

#endif
