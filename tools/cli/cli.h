/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `tributary` CLI's shared pieces: exit codes, error reporting, the
 * options every subcommand takes, and metadata look-ups.
 *
 * Exit codes (documented in `tributary --help` and the README):
 *   0  success
 *   1  the broker answered with a Kafka error (its name is printed)
 *   2  usage error (bad or missing option)
 *   3  the broker could not be reached, or the connection or protocol failed
 *   4  consume: --max records did not arrive within --timeout-ms
 */
#ifndef TRIB_CLI_H
#define TRIB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tributary/arena.h"
#include "tributary/error.h"
#include "tributary/kafka.h"
#include "tributary/kclient.h"

#include "kafka/gen/MetadataResponse.h"

enum {
    CLI_OK = 0,
    CLI_EKAFKA = 1,
    CLI_EUSAGE = 2,
    CLI_ENET = 3,
    CLI_ETIMEOUT = 4,
};

/* API keys the CLI uses. */
enum {
    API_PRODUCE = 0,
    API_FETCH = 1,
    API_LIST_OFFSETS = 2,
    API_METADATA = 3,
    API_FIND_COORDINATOR = 10,
    API_CREATE_TOPICS = 19,
    API_DELETE_TOPICS = 20,
    API_DESCRIBE_CONFIGS = 32,
    API_ALTER_CONFIGS = 33,
    API_CREATE_PARTITIONS = 37,
    API_INCREMENTAL_ALTER_CONFIGS = 44,
    API_DESCRIBE_CLUSTER = 60,
};

/* Options every subcommand takes. */
typedef struct cli_common {
    const char *bootstrap;
    int request_timeout_ms;
    bool verbose;
    const char *command_config; /* --command-config FILE: TLS and SASL properties; NULL none */
} cli_common_t;

/* long options shared by every subcommand (ids >= 1000) */
#define CLI_OPT_BOOTSTRAP 1000
#define CLI_OPT_REQUEST_TIMEOUT 1001
#define CLI_OPT_VERBOSE 1002
#define CLI_OPT_COMMAND_CONFIG 1003
#define CLI_COMMON_LONGOPTS                                                                        \
    {"bootstrap", required_argument, NULL, CLI_OPT_BOOTSTRAP},                                     \
        {"bootstrap-server", required_argument, NULL, CLI_OPT_BOOTSTRAP},                          \
        {"request-timeout-ms", required_argument, NULL, CLI_OPT_REQUEST_TIMEOUT},                  \
        {"command-config", required_argument, NULL, CLI_OPT_COMMAND_CONFIG},                       \
    {                                                                                              \
        "verbose", no_argument, NULL, CLI_OPT_VERBOSE                                              \
    }

void cli_common_init(cli_common_t *o);
/* Handles a shared option; returns 1 if it was one, 0 if not, -1 on a bad value. */
int cli_common_opt(cli_common_t *o, int opt, const char *arg);

/* Prints "tributary: error: …" to stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For a local/network error: prints it and returns CLI_ENET. */
int cli_fail(const trib_error_t *err);
/*
 * For a Kafka error code: prints "<what>: NAME: message" (the broker's
 * message when it sent one, else Kafka's description) and returns CLI_EKAFKA.
 */
int cli_kafka_fail(int16_t code, trib_kstr_t broker_msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Connects (with --command-config's TLS and SASL settings); on failure
 * prints why and returns CLI_ENET, or CLI_EKAFKA when the broker refused
 * the SASL login, or CLI_EUSAGE for a command config it cannot use.
 */
int cli_connect(trib_kclient_t **c, const cli_common_t *o);

/* Negotiated version or, printing why, -1. */
int16_t cli_version(trib_kclient_t *c, int16_t api_key, int16_t min, int16_t max);

/* The coordinator of group (FindCoordinator, any version up to 4) into
 *node; CLI_OK or an exit code after printing why. */
int cli_find_coordinator(trib_kclient_t *c, const char *group, int32_t *node, trib_arena_t *arena);

/* Parsing helpers: 0 or -1 (after printing an error naming opt). */
int cli_parse_int(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out);
bool cli_kstr_eq(trib_kstr_t k, const char *s);

/*
 * Metadata for `topics` (NULL and n 0 = every topic). With
 * allow_auto_create the broker may create missing topics (v4+; earlier
 * versions always allow it). The brokers of the response replace the
 * client's table. Retries (bounded, about `wait_ms` in total) while a
 * requested topic answers LEADER_NOT_AVAILABLE or has a partition without
 * a leader, as after auto-creation. Returns CLI_OK or an exit code.
 */
int cli_metadata(trib_kclient_t *c, const char *const *topics, size_t n, bool allow_auto_create,
                 int wait_ms, MetadataResponse *out, trib_arena_t *arena);
const MetadataResponse_MetadataResponseTopic *cli_find_topic(const MetadataResponse *m,
                                                             const char *name);
/* Topic error → exit code with a message ("topic 'x': UNKNOWN_TOPIC_OR_PARTITION: …"). */
int cli_topic_error(const MetadataResponse_MetadataResponseTopic *t, const char *name);

/*
 * A partition's health, as kafka-topics.sh judges it: under-replicated when
 * its ISR is smaller than its replica set; offline (unavailable) when it has
 * no leader or its leader is not among the response's live brokers.
 */
bool cli_partition_under_replicated(const MetadataResponse_MetadataResponsePartition *p);
bool cli_partition_offline(const MetadataResponse *m,
                           const MetadataResponse_MetadataResponsePartition *p);
/* "1,2,3" (nothing for an empty list) to stdout. */
void cli_print_int_list(const trib_karr_int32_t *a);

void cli_sleep_ms(int ms);
int64_t cli_now_ms(void);

/* Subcommands. argv[0] is the subcommand's name. */
int cli_topics(int argc, char **argv);
int cli_produce(int argc, char **argv);
int cli_consume(int argc, char **argv);
int cli_cluster(int argc, char **argv);
/* tributary partitions reassign|status|elect-leaders (partitions.c). */
int cli_partitions(int argc, char **argv);
/* tributary cluster drain: moves every replica off broker (partitions.c). */
int cli_cluster_drain(trib_kclient_t *c, int32_t broker, bool wait, int64_t timeout_ms,
                      trib_arena_t *arena);

#endif
