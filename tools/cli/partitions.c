/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary partitions reassign|status|elect-leaders, and tributary
 * cluster drain: moving replicas between brokers with
 * AlterPartitionReassignments (key 45), watching the moves with
 * ListPartitionReassignments (key 46), and preferred-leader elections
 * with ElectLeaders (key 43). Every request goes to the controller (from
 * Metadata); NOT_CONTROLLER, and REQUEST_TIMED_OUT for a partition (the
 * controller was writing another change of the topic), are asked again,
 * a bounded number of times.
 *
 * A plan is a list of (topic, partition, target replicas or cancel),
 * built from the options or read from a file (--plan), one partition a
 * line:
 *
 *   # topic partition replicas (preferred leader first), or "cancel"
 *   events 0 4,2,3
 *   events 1 cancel
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tributary/kafka_error.h"

#include "kafka/gen/AlterPartitionReassignmentsRequest.h"
#include "kafka/gen/AlterPartitionReassignmentsResponse.h"
#include "kafka/gen/ElectLeadersRequest.h"
#include "kafka/gen/ElectLeadersResponse.h"
#include "kafka/gen/ListPartitionReassignmentsRequest.h"
#include "kafka/gen/ListPartitionReassignmentsResponse.h"

#define API_ELECT_LEADERS 43
#define API_ALTER_REASSIGN 45
#define API_LIST_REASSIGN 46
#define MAXR 64
#define ATTEMPTS 20

typedef struct move {
    char topic[256];
    int32_t partition;
    int32_t n; /* -1: cancel */
    int32_t replicas[MAXR];
    bool done;
} move_t;

typedef struct plan {
    move_t *v;
    size_t n, cap;
} plan_t;

static move_t *plan_add(plan_t *p)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 32;
        move_t *nv = realloc(p->v, nc * sizeof(*nv));
        if (!nv) {
            return NULL;
        }
        p->v = nv;
        p->cap = nc;
    }
    move_t *m = &p->v[p->n++];
    memset(m, 0, sizeof(*m));
    return m;
}

/* "1,2,3" into ids; -1 (after printing why) when it is not a list of distinct ids. */
static int parse_ids(const char *what, const char *s, int32_t *ids, int32_t *n)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX || *n >= MAXR) {
            cli_errorf("%s: '%s' is not a list of broker ids (1,2,3)", what, s);
            return -1;
        }
        for (int32_t k = 0; k < *n; k++) {
            if (ids[k] == (int32_t)v) {
                cli_errorf("%s: broker %ld is listed twice", what, v);
                return -1;
            }
        }
        ids[(*n)++] = (int32_t)v;
        p = end;
        if (*p == ',') {
            p++;
        } else if (*p) {
            cli_errorf("%s: '%s' is not a list of broker ids (1,2,3)", what, s);
            return -1;
        }
    }
    if (*n == 0) {
        cli_errorf("%s: an empty list of brokers", what);
        return -1;
    }
    return 0;
}

static int read_plan(const char *path, plan_t *plan)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_errorf("--plan %s: %s", path, strerror(errno));
        return CLI_EUSAGE;
    }
    char line[4096];
    int lineno = 0, rc = CLI_OK;
    while (rc == CLI_OK && fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) {
            *hash = '\0';
        }
        char topic[256], part[32], reps[1024];
        int got = sscanf(line, "%255s %31s %1023s", topic, part, reps);
        if (got <= 0) {
            continue;
        }
        char what[300];
        snprintf(what, sizeof(what), "%s:%d", path, lineno);
        int64_t pi;
        if (got != 3 || cli_parse_int(what, part, 0, INT32_MAX, &pi) != 0) {
            cli_errorf("%s: expected 'TOPIC PARTITION REPLICAS|cancel'", what);
            rc = CLI_EUSAGE;
            break;
        }
        move_t *m = plan_add(plan);
        if (!m) {
            rc = CLI_ENET;
            break;
        }
        snprintf(m->topic, sizeof(m->topic), "%s", topic);
        m->partition = (int32_t)pi;
        if (!strcmp(reps, "cancel")) {
            m->n = -1;
        } else if (parse_ids(what, reps, m->replicas, &m->n) != 0) {
            rc = CLI_EUSAGE;
        }
    }
    fclose(f);
    return rc;
}

static bool has(const int32_t *v, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++) {
        if (v[i] == id) {
            return true;
        }
    }
    return false;
}

/* Refreshes the metadata (so the controller is current); CLI_OK or an exit code. */
static int refresh(trib_kclient_t *c, MetadataResponse *md, trib_arena_t *arena)
{
    return cli_metadata(c, NULL, 0, false, 0, md, arena);
}

static void print_move(const move_t *m)
{
    printf("  %s-%d: ", m->topic, (int)m->partition);
    if (m->n < 0) {
        fputs("cancel\n", stdout);
        return;
    }
    for (int32_t k = 0; k < m->n; k++) {
        printf("%s%d", k ? "," : "", (int)m->replicas[k]);
    }
    putchar('\n');
}

/*
 * Sends the plan's moves (not yet done) to the controller, asking again for
 * the retriable refusals. CLI_OK when every move was accepted.
 */
static int submit(trib_kclient_t *c, plan_t *plan, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_ALTER_REASSIGN, 0, 0);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    for (int attempt = 0;; attempt++) {
        MetadataResponse md;
        int rc = refresh(c, &md, arena);
        if (rc != CLI_OK) {
            return rc;
        }
        /* One topic entry per distinct topic, its partitions not done yet. */
        size_t left = 0;
        for (size_t i = 0; i < plan->n; i++) {
            left += plan->v[i].done ? 0 : 1;
        }
        if (left == 0) {
            return CLI_OK;
        }
        AlterPartitionReassignmentsRequest req;
        AlterPartitionReassignmentsRequest_init(&req);
        req.TimeoutMs = 30000;
        AlterPartitionReassignmentsRequest_ReassignableTopic *tv =
            trib_arena_alloc(arena, left * sizeof(*tv));
        AlterPartitionReassignmentsRequest_ReassignablePartition *pv =
            trib_arena_alloc(arena, left * sizeof(*pv));
        if (!tv || !pv) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        int32_t nt = 0;
        size_t np = 0;
        for (size_t i = 0; i < plan->n; i++) {
            move_t *m = &plan->v[i];
            if (m->done) {
                continue;
            }
            int32_t t = 0;
            while (t < nt && !cli_kstr_eq(tv[t].Name, m->topic)) {
                t++;
            }
            if (t == nt) {
                AlterPartitionReassignmentsRequest_ReassignableTopic_init(&tv[t]);
                tv[t].Name = trib_kstr(m->topic);
                tv[t].Partitions.items = NULL;
                tv[t].Partitions.count = 0;
                nt++;
            }
            (void)t;
        }
        /* Partitions grouped by topic, contiguous in pv. */
        for (int32_t t = 0; t < nt; t++) {
            tv[t].Partitions.items = &pv[np];
            for (size_t i = 0; i < plan->n; i++) {
                move_t *m = &plan->v[i];
                if (m->done || !cli_kstr_eq(tv[t].Name, m->topic)) {
                    continue;
                }
                AlterPartitionReassignmentsRequest_ReassignablePartition_init(&pv[np]);
                pv[np].PartitionIndex = m->partition;
                pv[np].Replicas.items = m->n < 0 ? NULL : m->replicas;
                pv[np].Replicas.count = m->n < 0 ? -1 : m->n;
                np++;
                tv[t].Partitions.count++;
            }
        }
        req.Topics.items = tv;
        req.Topics.count = nt;
        AlterPartitionReassignmentsResponse resp;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(c, TRIB_KCLIENT_CONTROLLER, API_ALTER_REASSIGN, v, &req, &resp, arena,
                              &err) < 0) {
            if (attempt + 1 >= ATTEMPTS) {
                return cli_fail(&err);
            }
            cli_sleep_ms(500);
            continue;
        }
        bool retry = false;
        if (resp.ErrorCode == TRIB_KAFKA_NOT_CONTROLLER) {
            retry = true;
        } else if (resp.ErrorCode != 0) {
            return cli_kafka_fail(resp.ErrorCode, resp.ErrorMessage, "AlterPartitionReassignments");
        }
        int failed = 0;
        for (int32_t t = 0; !retry && t < resp.Responses.count; t++) {
            const AlterPartitionReassignmentsResponse_ReassignableTopicResponse *tr =
                &resp.Responses.items[t];
            for (int32_t k = 0; k < tr->Partitions.count; k++) {
                const AlterPartitionReassignmentsResponse_ReassignablePartitionResponse *pr =
                    &tr->Partitions.items[k];
                move_t *m = NULL;
                for (size_t i = 0; i < plan->n && !m; i++) {
                    if (!plan->v[i].done && plan->v[i].partition == pr->PartitionIndex &&
                        cli_kstr_eq(tr->Name, plan->v[i].topic)) {
                        m = &plan->v[i];
                    }
                }
                if (!m) {
                    continue;
                }
                if (pr->ErrorCode == 0) {
                    m->done = true;
                } else if (pr->ErrorCode == TRIB_KAFKA_REQUEST_TIMED_OUT ||
                           pr->ErrorCode == TRIB_KAFKA_NOT_CONTROLLER) {
                    retry = true;
                } else {
                    cli_kafka_fail(pr->ErrorCode, pr->ErrorMessage, "%.*s-%d", (int)tr->Name.len,
                                   tr->Name.ptr, (int)pr->PartitionIndex);
                    m->done = true; /* refused for good: not asked again */
                    failed++;
                }
            }
        }
        if (failed) {
            return CLI_EKAFKA;
        }
        if (!retry) {
            continue; /* the loop ends when every move is done */
        }
        if (attempt + 1 >= ATTEMPTS) {
            cli_errorf("the controller kept refusing the reassignment: giving up");
            return CLI_EKAFKA;
        }
        cli_sleep_ms(300);
    }
}

/* ListPartitionReassignments of every topic into *out; CLI_OK or an exit code. */
static int list(trib_kclient_t *c, ListPartitionReassignmentsResponse *out, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_LIST_REASSIGN, 0, 0);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    for (int attempt = 0;; attempt++) {
        MetadataResponse md;
        int rc = refresh(c, &md, arena);
        if (rc != CLI_OK) {
            return rc;
        }
        ListPartitionReassignmentsRequest req;
        ListPartitionReassignmentsRequest_init(&req);
        req.TimeoutMs = 30000;
        req.Topics.items = NULL;
        req.Topics.count = -1;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(c, TRIB_KCLIENT_CONTROLLER, API_LIST_REASSIGN, v, &req, out, arena,
                              &err) < 0) {
            if (attempt + 1 >= ATTEMPTS) {
                return cli_fail(&err);
            }
        } else if (out->ErrorCode == 0) {
            return CLI_OK;
        } else if (out->ErrorCode != TRIB_KAFKA_NOT_CONTROLLER || attempt + 1 >= ATTEMPTS) {
            return cli_kafka_fail(out->ErrorCode, out->ErrorMessage, "ListPartitionReassignments");
        }
        cli_sleep_ms(300);
    }
}

static bool still_moving(const ListPartitionReassignmentsResponse *l, const plan_t *plan)
{
    for (int32_t t = 0; t < l->Topics.count; t++) {
        const ListPartitionReassignmentsResponse_OngoingTopicReassignment *tr = &l->Topics.items[t];
        for (int32_t k = 0; k < tr->Partitions.count; k++) {
            if (!plan) {
                return true;
            }
            for (size_t i = 0; i < plan->n; i++) {
                if (plan->v[i].partition == tr->Partitions.items[k].PartitionIndex &&
                    cli_kstr_eq(tr->Name, plan->v[i].topic)) {
                    return true;
                }
            }
        }
    }
    return false;
}

static void print_list(const ListPartitionReassignmentsResponse *l)
{
    int n = 0;
    for (int32_t t = 0; t < l->Topics.count; t++) {
        n += l->Topics.items[t].Partitions.count;
    }
    printf("Reassignments in progress: %d\n", n);
    for (int32_t t = 0; t < l->Topics.count; t++) {
        const ListPartitionReassignmentsResponse_OngoingTopicReassignment *tr = &l->Topics.items[t];
        for (int32_t k = 0; k < tr->Partitions.count; k++) {
            const ListPartitionReassignmentsResponse_OngoingPartitionReassignment *p =
                &tr->Partitions.items[k];
            printf("  %.*s-%d: replicas ", (int)tr->Name.len, tr->Name.ptr, (int)p->PartitionIndex);
            cli_print_int_list(&p->Replicas);
            fputs(", adding ", stdout);
            cli_print_int_list(&p->AddingReplicas);
            fputs(", removing ", stdout);
            cli_print_int_list(&p->RemovingReplicas);
            putchar('\n');
        }
    }
}

/* Waits until none of the plan's partitions (every partition with plan NULL) is moving. */
static int wait_done(trib_kclient_t *c, const plan_t *plan, int64_t timeout_ms)
{
    int64_t start = cli_now_ms(), last_print = 0;
    for (;;) {
        trib_arena_t arena;
        trib_arena_init(&arena);
        ListPartitionReassignmentsResponse l;
        int rc = list(c, &l, &arena);
        bool moving = rc == CLI_OK && still_moving(&l, plan);
        if (rc == CLI_OK && moving && cli_now_ms() - last_print >= 5000) {
            print_list(&l);
            last_print = cli_now_ms();
        }
        trib_arena_fini(&arena);
        if (rc != CLI_OK) {
            return rc;
        }
        if (!moving) {
            printf("Reassignment complete (%.1f s).\n", (double)(cli_now_ms() - start) / 1000.0);
            return CLI_OK;
        }
        if (cli_now_ms() - start > timeout_ms) {
            cli_errorf("the reassignment is still in progress after %lld ms",
                       (long long)timeout_ms);
            return CLI_ETIMEOUT;
        }
        cli_sleep_ms(250);
    }
}

/* ---- building plans from Metadata ------------------------------------------------------- */

static const MetadataResponse_MetadataResponsePartition *
find_part(const MetadataResponse_MetadataResponseTopic *t, int32_t p)
{
    for (int32_t k = 0; k < t->Partitions.count; k++) {
        if (t->Partitions.items[k].PartitionIndex == p) {
            return &t->Partitions.items[k];
        }
    }
    return NULL;
}

/* The live broker ids (sorted) of md. */
static int32_t brokers_of(const MetadataResponse *md, int32_t *ids, int32_t cap)
{
    int32_t n = 0;
    for (int32_t i = 0; i < md->Brokers.count && n < cap; i++) {
        int32_t id = md->Brokers.items[i].NodeId;
        int32_t k = n++;
        while (k > 0 && ids[k - 1] > id) {
            ids[k] = ids[k - 1];
            k--;
        }
        ids[k] = id;
    }
    return n;
}

typedef struct load {
    int32_t ids[4096];
    int32_t count[4096];
    int32_t n;
} load_t;

static int32_t *load_of(load_t *l, int32_t id)
{
    for (int32_t i = 0; i < l->n; i++) {
        if (l->ids[i] == id) {
            return &l->count[i];
        }
    }
    return NULL;
}

/* Replicas per live broker over every topic of md. */
static void count_load(const MetadataResponse *md, load_t *l)
{
    l->n = brokers_of(md, l->ids, 4096);
    memset(l->count, 0, sizeof(l->count));
    for (int32_t t = 0; t < md->Topics.count; t++) {
        const MetadataResponse_MetadataResponseTopic *tp = &md->Topics.items[t];
        for (int32_t k = 0; k < tp->Partitions.count; k++) {
            const trib_karr_int32_t *r = &tp->Partitions.items[k].ReplicaNodes;
            for (int32_t j = 0; j < r->count; j++) {
                int32_t *c = load_of(l, r->items[j]);
                if (c) {
                    (*c)++;
                }
            }
        }
    }
}

/* The least loaded live broker that is not in v (and not `except`); -1 if none. */
static int32_t pick(load_t *l, const int32_t *v, int32_t n, int32_t except)
{
    int32_t best = -1, bestc = 0;
    for (int32_t i = 0; i < l->n; i++) {
        int32_t id = l->ids[i];
        if (id == except || has(v, n, id)) {
            continue;
        }
        if (best < 0 || l->count[i] < bestc) {
            best = id;
            bestc = l->count[i];
        }
    }
    if (best >= 0) {
        (*load_of(l, best))++;
    }
    return best;
}

/*
 * One move for partition p of t: kind 'r' target list (rotated by the
 * partition's index with rotate), 'f' replace broker from by to, 'n'
 * replication factor rf (new replicas on the least loaded brokers),
 * 'c' cancel. Partitions that need no change are left out.
 */
typedef struct spec {
    char kind;
    int32_t list[MAXR], nlist;
    bool rotate;
    int32_t from, to, rf;
} spec_t;

static int plan_partition(plan_t *plan, const char *topic,
                          const MetadataResponse_MetadataResponsePartition *mp, const spec_t *s,
                          load_t *load)
{
    const trib_karr_int32_t *cur = &mp->ReplicaNodes;
    int32_t tgt[MAXR], n = 0;
    switch (s->kind) {
    case 'c':
        break;
    case 'r':
        for (int32_t k = 0; k < s->nlist; k++) {
            tgt[n++] = s->list[s->rotate ? (k + mp->PartitionIndex) % s->nlist : k];
        }
        break;
    case 'f':
        if (!has(cur->items, cur->count, s->from) || has(cur->items, cur->count, s->to)) {
            return CLI_OK;
        }
        for (int32_t k = 0; k < cur->count && n < MAXR; k++) {
            tgt[n++] = cur->items[k] == s->from ? s->to : cur->items[k];
        }
        break;
    case 'n':
        if (cur->count >= s->rf) {
            if (cur->count > s->rf) {
                cli_errorf("%s-%d has %d replicas: lowering the replication factor is not what "
                           "--replication-factor does (give --replicas)",
                           topic, (int)mp->PartitionIndex, (int)cur->count);
                return CLI_EUSAGE;
            }
            return CLI_OK;
        }
        for (int32_t k = 0; k < cur->count && n < MAXR; k++) {
            tgt[n++] = cur->items[k];
        }
        while (n < s->rf) {
            int32_t b = pick(load, tgt, n, -1);
            if (b < 0) {
                cli_errorf("%s-%d: not enough live brokers for %d replicas", topic,
                           (int)mp->PartitionIndex, (int)s->rf);
                return CLI_EUSAGE;
            }
            tgt[n++] = b;
        }
        break;
    default:
        return CLI_EUSAGE;
    }
    move_t *m = plan_add(plan);
    if (!m) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    snprintf(m->topic, sizeof(m->topic), "%s", topic);
    m->partition = mp->PartitionIndex;
    m->n = s->kind == 'c' ? -1 : n;
    memcpy(m->replicas, tgt, (size_t)n * sizeof(int32_t));
    return CLI_OK;
}

static void usage_partitions(FILE *out)
{
    fputs("Usage: tributary partitions reassign --topic T [--partition P]\n"
          "                                     (--replicas IDS [--rotate] | --move-from A --to B\n"
          "                                      | --replication-factor N | --cancel)\n"
          "                                     [--wait] [--timeout-ms N]\n"
          "       tributary partitions reassign --plan FILE [--wait] [--timeout-ms N]\n"
          "       tributary partitions status [--wait] [--timeout-ms N]\n"
          "       tributary partitions elect-leaders [--topic T [--partition P]]\n"
          "\n"
          "reassign moves replicas between brokers (AlterPartitionReassignments, sent to\n"
          "the controller). The new replicas copy the log from the leader, join the ISR,\n"
          "and then the old ones are dropped; producers and consumers go on meanwhile.\n"
          "  --replicas IDS        the target replica list (1,2,3: preferred leader first)\n"
          "                        for each selected partition; --rotate starts partition p's\n"
          "                        list at its (p mod n)th id, so preferred leaders spread\n"
          "  --move-from A --to B  broker B takes broker A's replica in every selected\n"
          "                        partition that has one (moving replicas onto a new broker)\n"
          "  --replication-factor N  raises the replica count to N: the new replicas go to\n"
          "                        the live brokers holding the fewest replicas\n"
          "  --cancel              stops the reassignments in progress (the original\n"
          "                        replicas stay)\n"
          "  --plan FILE           one partition a line: TOPIC PARTITION IDS|cancel\n"
          "  --wait                waits until the moves are complete (exit 4 after\n"
          "                        --timeout-ms, default 600000)\n"
          "The catch-up is throttled by the collectors'\n"
          "cluster.leader.replication.throttled.rate (bytes per second per leader).\n"
          "\n"
          "status lists the reassignments in progress (ListPartitionReassignments):\n"
          "replicas, those being added, those being removed.\n"
          "\n"
          "elect-leaders makes each selected partition's preferred replica (the first of\n"
          "its list) its leader when it is alive and in the ISR (ElectLeaders); without\n"
          "--topic, every partition of the cluster.\n"
          "\n"
          "Common options: --bootstrap HOST:PORT[,HOST:PORT...], --request-timeout-ms N,\n"
          "  --verbose.\n",
          out);
}

static int elect(trib_kclient_t *c, const char *topic, int32_t partition,
                 const MetadataResponse *md, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_ELECT_LEADERS, 0, 2);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    ElectLeadersRequest req;
    ElectLeadersRequest_init(&req);
    req.ElectionType = 0;
    req.TimeoutMs = 30000;
    ElectLeadersRequest_TopicPartitions tp;
    int32_t parts[1];
    if (topic) {
        const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(md, topic);
        if (!t || t->ErrorCode != 0) {
            return cli_topic_error(t, topic);
        }
        ElectLeadersRequest_TopicPartitions_init(&tp);
        tp.Topic = trib_kstr(topic);
        if (partition >= 0) {
            parts[0] = partition;
            tp.Partitions.items = parts;
            tp.Partitions.count = 1;
        } else {
            int32_t *all = trib_arena_alloc(arena, (size_t)(t->Partitions.count + 1) * 4);
            if (!all) {
                return CLI_ENET;
            }
            for (int32_t k = 0; k < t->Partitions.count; k++) {
                all[k] = t->Partitions.items[k].PartitionIndex;
            }
            tp.Partitions.items = all;
            tp.Partitions.count = t->Partitions.count;
        }
        req.TopicPartitions.items = &tp;
        req.TopicPartitions.count = 1;
    } else {
        req.TopicPartitions.items = NULL;
        req.TopicPartitions.count = -1;
    }
    ElectLeadersResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_CONTROLLER, API_ELECT_LEADERS, v, &req, &resp, arena,
                          &err) < 0) {
        return cli_fail(&err);
    }
    if (resp.ErrorCode != 0) {
        return cli_kafka_fail(resp.ErrorCode, trib_kstr(NULL), "ElectLeaders");
    }
    int elected = 0, not_needed = 0, failed = 0;
    for (int32_t t = 0; t < resp.ReplicaElectionResults.count; t++) {
        const ElectLeadersResponse_ReplicaElectionResult *r = &resp.ReplicaElectionResults.items[t];
        for (int32_t k = 0; k < r->PartitionResult.count; k++) {
            const ElectLeadersResponse_PartitionResult *p = &r->PartitionResult.items[k];
            if (p->ErrorCode == 0) {
                elected++;
                printf("  %.*s-%d: preferred leader elected\n", (int)r->Topic.len, r->Topic.ptr,
                       (int)p->PartitionId);
            } else if (p->ErrorCode == TRIB_KAFKA_ELECTION_NOT_NEEDED) {
                not_needed++;
            } else {
                failed++;
                const char *name = trib_kafka_err_name(p->ErrorCode);
                printf("  %.*s-%d: %s: %.*s\n", (int)r->Topic.len, r->Topic.ptr,
                       (int)p->PartitionId, name ? name : "?",
                       p->ErrorMessage.len > 0 ? (int)p->ErrorMessage.len : 0,
                       p->ErrorMessage.len > 0 ? p->ErrorMessage.ptr : "");
            }
        }
    }
    printf("Elected: %d, already led by their preferred replica: %d, failed: %d\n", elected,
           not_needed, failed);
    return failed ? CLI_EKAFKA : CLI_OK;
}

int cli_partitions(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage_partitions(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    const char *action = argv[1];
    if (strcmp(action, "reassign") && strcmp(action, "status") && strcmp(action, "elect-leaders")) {
        cli_errorf("unknown partitions action '%s'", action);
        usage_partitions(stderr);
        return CLI_EUSAGE;
    }
    enum {
        O_TOPIC = 1,
        O_PART,
        O_REPL,
        O_ROTATE,
        O_FROM,
        O_TO,
        O_RF,
        O_CANCEL,
        O_PLAN,
        O_WAIT,
        O_TMO
    };
    static const struct option opts[] = {
        {"topic", required_argument, NULL, O_TOPIC},
        {"partition", required_argument, NULL, O_PART},
        {"replicas", required_argument, NULL, O_REPL},
        {"rotate", no_argument, NULL, O_ROTATE},
        {"move-from", required_argument, NULL, O_FROM},
        {"to", required_argument, NULL, O_TO},
        {"replication-factor", required_argument, NULL, O_RF},
        {"cancel", no_argument, NULL, O_CANCEL},
        {"plan", required_argument, NULL, O_PLAN},
        {"wait", no_argument, NULL, O_WAIT},
        {"timeout-ms", required_argument, NULL, O_TMO},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    cli_common_t common;
    cli_common_init(&common);
    const char *topic = NULL, *planfile = NULL;
    int64_t partition = -1, tmo = 600000, v;
    spec_t s;
    memset(&s, 0, sizeof(s));
    s.from = s.to = -1;
    int kinds = 0;
    bool wait = false;
    optind = 1;
    int ch;
    argc--;
    argv++;
    while ((ch = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
        int r = cli_common_opt(&common, ch, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (ch) {
        case O_TOPIC:
            topic = optarg;
            break;
        case O_PART:
            if (cli_parse_int("--partition", optarg, 0, INT32_MAX, &partition) != 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_REPL:
            if (parse_ids("--replicas", optarg, s.list, &s.nlist) != 0) {
                return CLI_EUSAGE;
            }
            s.kind = 'r';
            kinds++;
            break;
        case O_ROTATE:
            s.rotate = true;
            break;
        case O_FROM:
        case O_TO:
            if (cli_parse_int(ch == O_FROM ? "--move-from" : "--to", optarg, 0, INT32_MAX, &v) !=
                0) {
                return CLI_EUSAGE;
            }
            if (ch == O_FROM) {
                s.from = (int32_t)v;
                s.kind = 'f';
                kinds++;
            } else {
                s.to = (int32_t)v;
            }
            break;
        case O_RF:
            if (cli_parse_int("--replication-factor", optarg, 1, MAXR, &v) != 0) {
                return CLI_EUSAGE;
            }
            s.rf = (int32_t)v;
            s.kind = 'n';
            kinds++;
            break;
        case O_CANCEL:
            s.kind = 'c';
            kinds++;
            break;
        case O_PLAN:
            planfile = optarg;
            break;
        case O_WAIT:
            wait = true;
            break;
        case O_TMO:
            if (cli_parse_int("--timeout-ms", optarg, 1, INT32_MAX, &tmo) != 0) {
                return CLI_EUSAGE;
            }
            break;
        case 'h':
            usage_partitions(stdout);
            return CLI_OK;
        default:
            usage_partitions(stderr);
            return CLI_EUSAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("unexpected argument '%s'", argv[optind]);
        return CLI_EUSAGE;
    }
    bool reassign = !strcmp(action, "reassign");
    if (reassign) {
        if ((planfile != NULL) == (kinds > 0) || kinds > 1 || (planfile && topic) ||
            (kinds == 1 && !topic)) {
            cli_errorf("reassign takes --plan FILE, or --topic with one of --replicas, "
                       "--move-from, --replication-factor, --cancel");
            return CLI_EUSAGE;
        }
        if (s.kind == 'f' && s.to < 0) {
            cli_errorf("--move-from needs --to");
            return CLI_EUSAGE;
        }
    } else if (kinds > 0 || planfile) {
        cli_errorf("%s takes no reassignment options", action);
        return CLI_EUSAGE;
    }
    if (!strcmp(action, "elect-leaders") && partition >= 0 && !topic) {
        cli_errorf("--partition needs --topic");
        return CLI_EUSAGE;
    }
    trib_kclient_t *c;
    int rc = cli_connect(&c, &common);
    if (rc != CLI_OK) {
        return rc;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    plan_t plan = {NULL, 0, 0};
    MetadataResponse md;
    rc = refresh(c, &md, &arena);
    if (rc == CLI_OK && !strcmp(action, "status")) {
        ListPartitionReassignmentsResponse l;
        rc = list(c, &l, &arena);
        if (rc == CLI_OK) {
            print_list(&l);
            if (wait) {
                rc = wait_done(c, NULL, tmo);
            }
        }
    } else if (rc == CLI_OK && !strcmp(action, "elect-leaders")) {
        rc = elect(c, topic, (int32_t)partition, &md, &arena);
    } else if (rc == CLI_OK && planfile) {
        rc = read_plan(planfile, &plan);
    } else if (rc == CLI_OK) {
        const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(&md, topic);
        if (!t || t->ErrorCode != 0) {
            rc = cli_topic_error(t, topic);
        } else {
            load_t *load = calloc(1, sizeof(*load));
            if (!load) {
                rc = CLI_ENET;
            } else {
                count_load(&md, load);
                for (int32_t k = 0; rc == CLI_OK && k < t->Partitions.count; k++) {
                    const MetadataResponse_MetadataResponsePartition *mp = &t->Partitions.items[k];
                    if (partition >= 0 && mp->PartitionIndex != partition) {
                        continue;
                    }
                    rc = plan_partition(&plan, topic, mp, &s, load);
                }
                if (rc == CLI_OK && partition >= 0 && !find_part(t, (int32_t)partition)) {
                    cli_errorf("topic '%s' has no partition %lld", topic, (long long)partition);
                    rc = CLI_EUSAGE;
                }
                free(load);
            }
        }
    }
    if (rc == CLI_OK && reassign) {
        if (plan.n == 0) {
            printf("Nothing to move.\n");
        } else {
            printf("Reassigning %zu partitions:\n", plan.n);
            for (size_t i = 0; i < plan.n; i++) {
                print_move(&plan.v[i]);
            }
            rc = submit(c, &plan, &arena);
            if (rc == CLI_OK) {
                printf("Reassignment started.\n");
                if (wait) {
                    rc = wait_done(c, &plan, tmo);
                }
            }
        }
    }
    free(plan.v);
    trib_arena_fini(&arena);
    trib_kclient_close(c);
    return rc;
}

/* ---- tributary cluster drain ------------------------------------------------------------- */

int cli_cluster_drain(trib_kclient_t *c, int32_t broker, bool wait, int64_t timeout_ms,
                      trib_arena_t *arena)
{
    MetadataResponse md;
    int rc = refresh(c, &md, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    load_t *load = calloc(1, sizeof(*load));
    plan_t plan = {NULL, 0, 0};
    if (!load) {
        return CLI_ENET;
    }
    count_load(&md, load);
    for (int32_t t = 0; rc == CLI_OK && t < md.Topics.count; t++) {
        const MetadataResponse_MetadataResponseTopic *tp = &md.Topics.items[t];
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)tp->Name.len, tp->Name.ptr);
        for (int32_t k = 0; rc == CLI_OK && k < tp->Partitions.count; k++) {
            const MetadataResponse_MetadataResponsePartition *mp = &tp->Partitions.items[k];
            const trib_karr_int32_t *cur = &mp->ReplicaNodes;
            if (!has(cur->items, cur->count, broker)) {
                continue;
            }
            int32_t to = pick(load, cur->items, cur->count, broker);
            if (to < 0) {
                cli_errorf("%s-%d: no live broker without a replica of it can take broker %d's",
                           name, (int)mp->PartitionIndex, (int)broker);
                rc = CLI_EKAFKA;
                break;
            }
            /* The drained broker's replica goes last on the new broker: it leads nothing. */
            move_t *m = plan_add(&plan);
            if (!m) {
                rc = CLI_ENET;
                break;
            }
            snprintf(m->topic, sizeof(m->topic), "%s", name);
            m->partition = mp->PartitionIndex;
            for (int32_t j = 0; j < cur->count && m->n < MAXR; j++) {
                if (cur->items[j] != broker) {
                    m->replicas[m->n++] = cur->items[j];
                }
            }
            m->replicas[m->n++] = to;
        }
    }
    free(load);
    if (rc == CLI_OK) {
        printf("Draining broker %d: %zu partitions to move\n", (int)broker, plan.n);
        for (size_t i = 0; i < plan.n; i++) {
            print_move(&plan.v[i]);
        }
        if (plan.n > 0) {
            rc = submit(c, &plan, arena);
        }
        if (rc == CLI_OK && wait && plan.n > 0) {
            rc = wait_done(c, &plan, timeout_ms);
        }
        if (rc == CLI_OK && wait) {
            printf("Broker %d holds no replica: it can be stopped.\n", (int)broker);
        }
    }
    free(plan.v);
    return rc;
}
