/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The JSON of the ZooKeeper backend's znodes, as Kafka 2.8 writes them
 * (kafka/zk/ZkData.scala), so Kafka's tools read them:
 *
 *   /brokers/ids/<id>   {"version":5,"host":"127.0.0.1","port":9092,
 *                        "endpoints":["PLAINTEXT://127.0.0.1:9092"],
 *                        "listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},
 *                        "jmx_port":-1,"rack":"r1","timestamp":"1700000000000",
 *                        "features":{},"shutting_down":false}
 *   /controller         {"version":1,"brokerid":1,"timestamp":"1700000000000"}
 *   /controller_epoch   the decimal epoch, no JSON ("7")
 *   /cluster/id         {"version":"1","id":"Kq3qCmbOTSGnD4Tz6_0xvw"}
 *   /brokers/topics/<t> {"version":3,"partitions":{"0":[1,2,3],"1":[2,3,1]},
 *                        "topic_id":"Kq3qCmbOTSGnD4Tz6_0xvw",
 *                        "adding_replicas":{},"removing_replicas":{}}
 *   /brokers/topics/<t>/partitions/<p>/state
 *                       {"controller_epoch":3,"leader":1,"version":1,
 *                        "leader_epoch":0,"isr":[1,2,3]}
 *   /config/topics/<t>  {"version":1,"config":{"retention.ms":"86400000"}}
 *   /latest_producer_id_block
 *                       {"version":1,"broker":1,"block_start":"0","block_end":"999"}
 *
 * Kafka itself has no `shutting_down` key; ours is one more key, which
 * Kafka's parser ignores. The decoder reads one flat object: it takes the
 * keys it knows, skips any other value (nested objects and arrays
 * included), and rejects everything that is not valid JSON within the
 * bounds below. The endpoint comes from "endpoints" (the first PLAINTEXT://
 * entry) and falls back to host/port. No dependency on the ZooKeeper
 * client, so it is always built and unit-tested.
 */
#ifndef COLLECTOR_CLUSTER_ZK_JSON_H
#define COLLECTOR_CLUSTER_ZK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COLL_ZK_HOST_MAX 256
#define COLL_ZK_RACK_MAX 256

typedef struct coll_zk_broker {
    int32_t id;
    char host[COLL_ZK_HOST_MAX];
    int32_t port;
    char rack[COLL_ZK_RACK_MAX]; /* "" = none */
    bool shutting_down;
    int64_t epoch; /* the registration znode's czxid (not in the JSON) */
} coll_zk_broker_t;

/*
 * Writes the registration JSON into out (NUL-terminated). Returns its
 * length, or -ENOSPC when it does not fit.
 */
int coll_zk_broker_encode(const coll_zk_broker_t *b, int64_t timestamp_ms, char *out, size_t n);
/*
 * Reads a registration (b->id is left as it is: it is the znode's name).
 * 0, or -EINVAL with *why set.
 */
int coll_zk_broker_decode(const char *json, size_t len, coll_zk_broker_t *b, const char **why);

int coll_zk_controller_encode(int32_t broker_id, int64_t timestamp_ms, char *out, size_t n);
int coll_zk_controller_decode(const char *json, size_t len, int32_t *broker_id, const char **why);

/* /cluster/id: the id is 1..63 of Kafka's Uuid text characters [A-Za-z0-9_-]. */
#define COLL_ZK_CLUSTER_ID_MAX 64
int coll_zk_cluster_id_encode(const char *id, char *out, size_t n);
int coll_zk_cluster_id_decode(const char *json, size_t len, char id[COLL_ZK_CLUSTER_ID_MAX],
                              const char **why);

/* /controller_epoch: a decimal integer 0..INT32_MAX. */
int coll_zk_epoch_decode(const char *data, size_t len, int32_t *epoch);

/* Bounds on what a topic's znodes may hold. */
#define COLL_ZK_MAX_REPLICAS 64      /* replicas of one partition (and its ISR) */
#define COLL_ZK_MAX_PARTITIONS 10000 /* as COLL_MAX_PARTITIONS_PER_TOPIC */

/*
 * A topic's replica assignment: partition p's replicas are
 * ids[off[p] .. off[p + 1]), preferred leader first. Decoding allocates
 * off and ids (coll_zk_assignment_free); the partitions must be numbered
 * 0..n-1, each with 1..COLL_ZK_MAX_REPLICAS distinct non-negative ids.
 * adding_replicas and removing_replicas (a reassignment in progress,
 * Kafka's KIP-455 fields) are kept as a role per id: role[k] says whether
 * ids[k] is being added or removed. role may be NULL (no reassignment);
 * an id they name that the partition's list lacks is ignored. Both are
 * written with the partitions that have any (as Kafka writes them).
 */
#define COLL_ZK_ROLE_NONE 0
#define COLL_ZK_ROLE_ADDING 1
#define COLL_ZK_ROLE_REMOVING 2

typedef struct coll_zk_assignment {
    char topic_id[COLL_ZK_CLUSTER_ID_MAX]; /* "" when the znode has none */
    int32_t npartitions;
    int32_t *off; /* npartitions + 1 */
    int32_t *ids;
    uint8_t *role; /* as ids, or NULL */
} coll_zk_assignment_t;

/* True when partition p has replicas being added or removed. */
bool coll_zk_assignment_reassigning(const coll_zk_assignment_t *a, int32_t p);

int coll_zk_assignment_decode(const char *json, size_t len, coll_zk_assignment_t *a,
                              const char **why);
void coll_zk_assignment_free(coll_zk_assignment_t *a);
/* The znode's JSON, malloc'ed and NUL-terminated (*len without the NUL); NULL: no memory. */
char *coll_zk_assignment_encode(const coll_zk_assignment_t *a, size_t *len);

/* A partition's state znode (Kafka's LeaderAndIsr). */
typedef struct coll_zk_state {
    int32_t controller_epoch;
    int32_t leader; /* -1: none */
    int32_t leader_epoch;
    int32_t nisr;
    int32_t isr[COLL_ZK_MAX_REPLICAS];
} coll_zk_state_t;

int coll_zk_state_encode(const coll_zk_state_t *s, char *out, size_t n);
int coll_zk_state_decode(const char *json, size_t len, coll_zk_state_t *s, const char **why);

/*
 * /config/topics/<t>: every entry of "config" (string values) is passed
 * to fn(arg, name, value); fn returns 0, or nonzero to stop with *why =
 * "config entry refused". Names are at most 255 bytes, values 1023.
 */
int coll_zk_config_decode(const char *json, size_t len,
                          int (*fn)(void *arg, const char *name, const char *value), void *arg,
                          const char **why);
/* The znode's JSON for n entries; malloc'ed, NULL: no memory. */
char *coll_zk_config_encode(const char *const *names, const char *const *values, size_t n,
                            size_t *len);

/* /latest_producer_id_block. */
typedef struct coll_zk_pid_block {
    int32_t broker;
    int64_t start, end; /* inclusive */
} coll_zk_pid_block_t;

int coll_zk_pid_block_encode(const coll_zk_pid_block_t *b, char *out, size_t n);
int coll_zk_pid_block_decode(const char *json, size_t len, coll_zk_pid_block_t *b,
                             const char **why);

#endif
