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

#endif
