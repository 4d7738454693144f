/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's records in __consumer_offsets, in Kafka's formats, so
 * Kafka's tools can read them (kafka-console-consumer with its formatters)
 * and compaction keeps the latest value per key. Every record is written
 * to partition abs(hashCode(group)) % partitions, timestamp = commit time;
 * the offsets of one OffsetCommit go in one batch (stored all or none, as
 * Kafka appends them). A null value is a tombstone.
 *
 * OffsetCommitKey v1 (key)              OffsetCommitValue v3 (value)
 *   int16  version = 1                    int16  version = 3
 *   string group                          int64  offset
 *   string topic                          int32  leader epoch (-1: none)
 *   int32  partition                      string metadata
 *                                         int64  commit timestamp (ms)
 *
 * GroupMetadataKey v2 (key)             GroupMetadataValue v3 (value)
 *   int16  version = 2                    int16  version = 3
 *   string group                          string protocol type ("" for none)
 *                                         int32  generation
 *                                         nullable string protocol
 *                                         nullable string leader
 *                                         int64  current state timestamp
 *                                         int32  member count, then each:
 *                                           string memberId
 *                                           nullable string groupInstanceId
 *                                           string clientId, string clientHost
 *                                           int32  rebalance timeout
 *                                           int32  session timeout
 *                                           bytes  subscription (chosen protocol's metadata)
 *                                           bytes  assignment
 *
 * (strings: int16 length + bytes, -1 = null; bytes: int32 length.)
 *
 * Loading replays every partition from its start: the last record per
 * key wins, tombstones delete. On a single node all partitions load at
 * startup (to the high watermark); on a cluster a partition loads, a chunk
 * at a time (coll_gstore_load_step), when this node becomes its leader,
 * to the log end it had then (coordinator.c, "a cluster"). A stored
 * group never replaces the membership of a running sink's group. Older
 * key/value versions (offset key v0, value v0-v3, group value v0-v3) are
 * read too. Groups with members come back Stable: their members keep
 * heartbeating with the same generation and are expired by their session
 * timeout if they do not.
 */
#include "group/group_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/record.h"

#define LOAD_CHUNK (1u << 20)

static void put_str(trib_buf_t *b, const char *s)
{
    if (!s) {
        trib_buf_put_i16(b, -1);
        return;
    }
    size_t n = strlen(s);
    trib_buf_put_i16(b, (int16_t)n);
    trib_buf_append(b, s, n);
}

static void put_bytes(trib_buf_t *b, const uint8_t *p, int32_t n)
{
    trib_buf_put_i32(b, n);
    if (n > 0) {
        trib_buf_append(b, p, (size_t)n);
    }
}

/* Appends n records (keys[i], values[i]; a NULL value is a tombstone) as one batch. */
static int append_many(coll_groups_t *g, const char *group, trib_buf_t *keys, trib_buf_t **values,
                       size_t n)
{
    if (g->loading || n == 0) {
        return 0;
    }
    coll_topic_t *t = coll_groups_topic(g, true);
    if (!t) {
        return TRIB_ESTATE;
    }
    int32_t pi = coll_group_partition_for(group, strlen(group), t->npartitions);
    coll_partition_t *p = coll_cluster_partition(t, pi);
    if (!p || !p->log) {
        return TRIB_ESTATE;
    }
    /* On a cluster only the partition's leader appends (followers copy it). */
    if (!g->host.writable(g->host.cluster, p)) {
        return TRIB_ESTATE;
    }
    trib_record_in_t *recs = calloc(n, sizeof(*recs));
    if (!recs) {
        return -ENOMEM;
    }
    int rc = 0;
    int64_t now = g->host.wall_ms();
    for (size_t i = 0; i < n; i++) {
        size_t klen, vlen = 0;
        const uint8_t *k = trib_buf_flatten(&keys[i], &klen);
        const uint8_t *v = values[i] ? trib_buf_flatten(values[i], &vlen) : NULL;
        if (!k || (values[i] && !v) || trib_buf_error(&keys[i]) ||
            (values[i] && trib_buf_error(values[i]))) {
            rc = -ENOMEM;
            break;
        }
        recs[i].key = trib_record_bytes(k, (int32_t)klen);
        recs[i].value =
            values[i] ? trib_record_bytes(v, (int32_t)vlen) : trib_record_bytes(NULL, -1);
        recs[i].timestamp = now;
    }
    if (rc == 0) {
        rc = g->host.append(p, recs, n, NULL);
    }
    free(recs);
    return rc;
}

static int append(coll_groups_t *g, const char *group, trib_buf_t *key, trib_buf_t *value)
{
    return append_many(g, group, key, &value, 1);
}

static void offset_key(trib_buf_t *k, const char *group, const char *topic, int32_t partition)
{
    trib_buf_put_i16(k, 1);
    put_str(k, group);
    put_str(k, topic);
    trib_buf_put_i32(k, partition);
}

static void offset_value(trib_buf_t *v, const coll_goffset_t *o)
{
    trib_buf_put_i16(v, 3);
    trib_buf_put_i64(v, o->offset);
    trib_buf_put_i32(v, o->leader_epoch);
    put_str(v, o->metadata ? o->metadata : "");
    trib_buf_put_i64(v, o->commit_ts);
}

int coll_gstore_offsets(coll_groups_t *g, const char *group, const char *const *topics,
                        const int32_t *partitions, const coll_goffset_t *const *o, size_t n)
{
    trib_buf_t *keys = calloc(n ? n : 1, sizeof(*keys));
    trib_buf_t *vals = calloc(n ? n : 1, sizeof(*vals));
    trib_buf_t **vp = calloc(n ? n : 1, sizeof(*vp));
    int rc = -ENOMEM;
    if (keys && vals && vp) {
        for (size_t i = 0; i < n; i++) {
            trib_buf_init(&keys[i]);
            trib_buf_init(&vals[i]);
            offset_key(&keys[i], group, topics[i], partitions[i]);
            if (o[i]) {
                offset_value(&vals[i], o[i]);
                vp[i] = &vals[i];
            }
        }
        rc = append_many(g, group, keys, vp, n);
        for (size_t i = 0; i < n; i++) {
            trib_buf_fini(&keys[i]);
            trib_buf_fini(&vals[i]);
        }
    }
    free(keys);
    free(vals);
    free(vp);
    return rc;
}

int coll_gstore_offset(coll_groups_t *g, const char *group, const char *topic, int32_t partition,
                       const coll_goffset_t *o)
{
    return coll_gstore_offsets(g, group, &topic, &partition, &o, 1);
}

int coll_gstore_group(coll_groups_t *g, const char *group, const coll_group_t *grp)
{
    trib_buf_t k, v;
    trib_buf_init(&k);
    trib_buf_init(&v);
    trib_buf_put_i16(&k, 2);
    put_str(&k, group);
    if (grp) {
        trib_buf_put_i16(&v, 3);
        put_str(&v, grp->protocol_type ? grp->protocol_type : "");
        trib_buf_put_i32(&v, grp->generation);
        put_str(&v, grp->protocol);
        put_str(&v, grp->leader);
        trib_buf_put_i64(&v, grp->state_ts);
        trib_buf_put_i32(&v, (int32_t)grp->nmembers);
        for (const coll_gmember_t *m = grp->members; m; m = m->next) {
            put_str(&v, m->id);
            put_str(&v, m->instance_id);
            put_str(&v, m->client_id ? m->client_id : "");
            put_str(&v, m->client_host ? m->client_host : "");
            trib_buf_put_i32(&v, m->rebalance_timeout_ms);
            trib_buf_put_i32(&v, m->session_timeout_ms);
            int32_t mlen;
            const uint8_t *md = coll_gmember_metadata(grp, m, &mlen);
            put_bytes(&v, md, md ? mlen : 0);
            put_bytes(&v, m->assignment, m->assignment ? m->assignment_len : 0);
        }
    }
    int rc = append(g, group, &k, grp ? &v : NULL);
    trib_buf_fini(&k);
    trib_buf_fini(&v);
    return rc;
}

/* ---- loading ---- */

/* A string as a view; null gives len -1. */
static trib_kstr_t get_str(trib_slice_t *s)
{
    trib_kstr_t out = {NULL, -1};
    int16_t n = trib_slice_i16(s);
    if (n < 0) {
        return out;
    }
    const uint8_t *p = trib_slice_take(s, (size_t)n);
    if (p) {
        out.ptr = (const char *)p;
        out.len = n;
    }
    return out;
}

static trib_kbytes_t get_bytes(trib_slice_t *s)
{
    trib_kbytes_t out = {NULL, -1};
    int32_t n = trib_slice_i32(s);
    if (n < 0) {
        return out;
    }
    const uint8_t *p = trib_slice_take(s, (size_t)n);
    if (p) {
        out.ptr = p;
        out.len = n;
    }
    return out;
}

static char *sdup(trib_kstr_t s)
{
    return s.len < 0 ? NULL : coll_gdup(s.ptr ? s.ptr : "", (size_t)s.len);
}

static void load_offset(coll_groups_t *g, trib_slice_t *ks, const trib_record_t *rec)
{
    trib_kstr_t group = get_str(ks);
    trib_kstr_t topic = get_str(ks);
    int32_t partition = trib_slice_i32(ks);
    if (!trib_slice_ok(ks) || group.len <= 0 || topic.len <= 0) {
        return;
    }
    coll_group_t *grp = coll_groups_get(g, group.ptr, (size_t)group.len, rec->value.len >= 0);
    if (!grp) {
        return;
    }
    if (rec->value.len < 0) {
        coll_group_offset_remove(grp, topic.ptr, (size_t)topic.len, partition);
        return;
    }
    trib_slice_t vs = trib_slice_make(rec->value.ptr, (size_t)rec->value.len);
    int16_t ver = trib_slice_i16(&vs);
    int64_t offset = trib_slice_i64(&vs);
    int32_t epoch = ver >= 3 ? trib_slice_i32(&vs) : -1;
    trib_kstr_t meta = get_str(&vs);
    int64_t ts = trib_slice_i64(&vs);
    if (!trib_slice_ok(&vs) || ver < 0 || ver > 4) {
        return;
    }
    coll_goffset_t *o = coll_group_offset_set(grp, topic.ptr, (size_t)topic.len, partition, offset,
                                              epoch, meta.len >= 0 ? meta.ptr : NULL,
                                              meta.len > 0 ? (size_t)meta.len : 0, ts);
    if (o) {
        o->log_end = rec->offset + 1;
    }
}

static void load_group(coll_groups_t *g, trib_slice_t *ks, const trib_record_t *rec)
{
    trib_kstr_t group = get_str(ks);
    if (!trib_slice_ok(ks) || group.len <= 0) {
        return;
    }
    coll_group_t *grp = coll_groups_find(g, group.ptr, (size_t)group.len);
    if (rec->value.len < 0) {
        if (grp) {
            /* A deleted group's offsets were tombstoned before its metadata. */
            coll_groups_remove(g, grp);
        }
        return;
    }
    trib_slice_t vs = trib_slice_make(rec->value.ptr, (size_t)rec->value.len);
    int16_t ver = trib_slice_i16(&vs);
    trib_kstr_t ptype = get_str(&vs);
    int32_t gen = trib_slice_i32(&vs);
    trib_kstr_t proto = get_str(&vs);
    trib_kstr_t leader = get_str(&vs);
    int64_t state_ts = ver >= 2 ? trib_slice_i64(&vs) : -1;
    int32_t n = trib_slice_i32(&vs);
    if (!trib_slice_ok(&vs) || ver < 0 || ver > 4 || n < 0 || (size_t)n > vs.len) {
        return;
    }
    if (!grp && !(grp = coll_groups_get(g, group.ptr, (size_t)group.len, true))) {
        return;
    }
    if (coll_group_has_internal(grp)) {
        return; /* a running sink's membership is live: a stored one does not replace it */
    }
    while (grp->members) {
        coll_gmember_t *m = grp->members;
        grp->members = m->next;
        free(m->id);
        free(m->instance_id);
        free(m->client_id);
        free(m->client_host);
        free(m->assignment);
        for (size_t i = 0; i < m->nprotocols; i++) {
            free(m->proto_names[i]);
            free(m->proto_meta[i]);
        }
        free(m->proto_names);
        free(m->proto_meta);
        free(m->proto_meta_len);
        free(m);
    }
    grp->nmembers = 0;
    free(grp->protocol_type);
    free(grp->protocol);
    free(grp->leader);
    grp->protocol_type = ptype.len > 0 ? sdup(ptype) : NULL;
    grp->protocol = sdup(proto);
    grp->leader = sdup(leader);
    grp->generation = gen;
    grp->state_ts = state_ts > 0 ? state_ts : g->host.wall_ms();
    coll_gmember_t **tail = &grp->members;
    for (int32_t i = 0; i < n; i++) {
        trib_kstr_t id = get_str(&vs);
        trib_kstr_t inst = ver >= 3 ? get_str(&vs) : (trib_kstr_t){NULL, -1};
        trib_kstr_t cid = get_str(&vs);
        trib_kstr_t host = get_str(&vs);
        int32_t rebalance = ver >= 1 ? trib_slice_i32(&vs) : -1;
        int32_t session = trib_slice_i32(&vs);
        trib_kbytes_t sub = get_bytes(&vs);
        trib_kbytes_t asg = get_bytes(&vs);
        if (!trib_slice_ok(&vs) || id.len <= 0) {
            break;
        }
        coll_gmember_t *m = calloc(1, sizeof(*m));
        if (!m) {
            break;
        }
        m->id = sdup(id);
        m->instance_id = sdup(inst);
        m->client_id = sdup(cid.len < 0 ? (trib_kstr_t){"", 0} : cid);
        m->client_host = sdup(host.len < 0 ? (trib_kstr_t){"", 0} : host);
        /* A stored timeout out of today's range would keep a ghost member forever. */
        if (session < g->cfg.min_session_timeout_ms || session > g->cfg.max_session_timeout_ms) {
            session = g->cfg.max_session_timeout_ms < 30000 ? g->cfg.max_session_timeout_ms : 30000;
        }
        m->session_timeout_ms = session;
        m->rebalance_timeout_ms = rebalance > 0 ? rebalance : session;
        if (grp->protocol) {
            m->proto_names = calloc(1, sizeof(char *));
            m->proto_meta = calloc(1, sizeof(uint8_t *));
            m->proto_meta_len = calloc(1, sizeof(int32_t));
            if (m->proto_names && m->proto_meta && m->proto_meta_len) {
                m->nprotocols = 1;
                m->proto_names[0] = coll_gdup(grp->protocol, strlen(grp->protocol));
                int32_t sl = sub.len > 0 ? sub.len : 0;
                m->proto_meta[0] = malloc(sl ? (size_t)sl : 1);
                if (m->proto_meta[0] && sl) {
                    memcpy(m->proto_meta[0], sub.ptr, (size_t)sl);
                }
                m->proto_meta_len[0] = sl;
            }
        }
        if (asg.len > 0 && (m->assignment = malloc((size_t)asg.len))) {
            memcpy(m->assignment, asg.ptr, (size_t)asg.len);
            m->assignment_len = asg.len;
        }
        *tail = m;
        tail = &m->next;
        grp->nmembers++;
    }
    grp->state = grp->nmembers ? COLL_GROUP_STABLE : COLL_GROUP_EMPTY;
}

static void load_record(coll_groups_t *g, const trib_record_t *rec)
{
    if (rec->key.len < 2) {
        return;
    }
    trib_slice_t ks = trib_slice_make(rec->key.ptr, (size_t)rec->key.len);
    int16_t kver = trib_slice_i16(&ks);
    if (kver == 0 || kver == 1) {
        load_offset(g, &ks, rec);
    } else if (kver == 2) {
        load_group(g, &ks, rec);
    }
}

int coll_gstore_load_step(coll_groups_t *g, coll_partition_t *p, int64_t *next, int64_t end,
                          size_t *records)
{
    coll_log_t *log = p->log;
    int64_t offset = *next;
    if (!log || offset >= end) {
        *next = end;
        return 0;
    }
    if (offset < coll_log_start_offset(log)) {
        offset = coll_log_start_offset(log);
    }
    coll_read_t rd;
    int rc = coll_log_read(log, offset, LOAD_CHUNK, end, 0, &rd);
    if (rc != 0 || rd.len == 0) {
        coll_read_release(&rd);
        *next = end;
        return rc;
    }
    uint8_t *buf = malloc(rd.len);
    if (!buf) {
        coll_read_release(&rd);
        return -ENOMEM;
    }
    ssize_t got = coll_read_copy(&rd, 0, buf, rd.len);
    int64_t nxt = rd.next_offset;
    coll_read_release(&rd);
    if (got <= 0) {
        free(buf);
        *next = end;
        return got < 0 ? (int)got : 0;
    }
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, buf, (size_t)got, 0);
    trib_batch_t b;
    while (trib_batch_iter_next(&it, &b) == 1) {
        if (trib_batch_is_control(&b)) {
            continue;
        }
        trib_record_iter_t ri;
        if (trib_record_iter_init(&ri, &b, NULL, 64u << 20) == 0) {
            trib_record_t rec;
            while (trib_record_iter_next(&ri, &rec) == 1) {
                if (rec.offset >= offset) {
                    load_record(g, &rec);
                    (*records)++;
                }
            }
        }
        trib_record_iter_fini(&ri);
    }
    free(buf);
    *next = nxt > offset ? nxt : end;
    return 0;
}

static int load_partition(coll_groups_t *g, coll_partition_t *p, size_t *records)
{
    if (!p->log) {
        return 0;
    }
    int64_t next = coll_log_start_offset(p->log);
    int64_t end = coll_log_high_watermark(p->log);
    int rc = 0;
    while (rc == 0 && next < end) {
        rc = coll_gstore_load_step(g, p, &next, end, records);
    }
    return rc;
}

int coll_gstore_load(coll_groups_t *g)
{
    size_t records = 0;
    coll_topic_t *t = coll_groups_topic(g, false);
    for (int32_t i = 0; t && i < t->npartitions; i++) {
        if (!t->partitions[i]->log) {
            continue; /* no replica of it here (a cluster) */
        }
        int rc = load_partition(g, t->partitions[i], &records);
        if (rc) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_GROUP_FACILITY, "%s-%d: cannot load: %s",
                     COLL_OFFSETS_TOPIC, (int)i, trib_strerror(rc));
            return rc;
        }
    }
    size_t noff = 0;
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        noff += grp->noffsets;
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
             "loaded %zu groups and %zu committed offsets from %zu records of %s", g->ngroups, noff,
             records, COLL_OFFSETS_TOPIC);
    return 0;
}
