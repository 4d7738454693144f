/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `zookeeper` backend's session on the collector's loop.
 *
 * Client: Debian's single-threaded ZooKeeper C client (libzookeeper-st).
 * Its zookeeper_interest() names the socket, the events it waits for and
 * a timeout; zookeeper_process() does the I/O and runs the completions
 * and watchers. A uv_poll on that socket and a uv_timer for the timeout
 * drive it, so every callback runs on the loop thread, beside the
 * metadata it changes, with no lock. The multi-threaded client
 * (libzookeeper-mt) would run callbacks on its own thread and need a
 * uv_async and locks around every cached value for nothing.
 *
 * The client may replace its socket at any call (reconnects), possibly
 * under the same descriptor number, so after every zookeeper_process()
 * the poll is re-armed: a new uv_poll when the number changed, else
 * stop + start (libuv then re-adds the descriptor to epoll).
 * zookeeper_close() is never called from inside zookeeper_process(): an
 * expired session only sets a flag, handled once process() returns.
 *
 * ZooKeeper layout (under the connect string's chroot, which is created
 * if missing; Kafka 2.8's ZkData.scala, JSON in zk_json.h):
 *
 *   /brokers/ids/<id>   ephemeral registration; its czxid is the broker epoch
 *   /brokers/topics/... topics, assignments, partition states (zk_topics.c)
 *   /config/topics/<t>  topic overrides (zk_topics.c)
 *   /admin/delete_topics/<t>  deletion markers (zk_controller.c)
 *   /latest_producer_id_block  producer id blocks (zk_pid.c)
 *   /controller         ephemeral {"brokerid": id}: the controller
 *   /controller_epoch   persistent decimal, bumped by each election
 *   /cluster/id         the cluster id clients see: the first broker's
 *                       (from its data dir); the others answer with it
 *
 * Per session (a new one after expiry): sync, create the paths, read (or
 * create) /cluster/id, register,
 * then read everything with watches: /controller (exists, then get), the
 * children of /brokers/ids with each registration, and every topic, config
 * and partition state (coll_zk_topics_resync). A registration that exists
 * under another live session is fatal: that id is taken.
 *
 * SIGTERM runs a controlled shutdown (coll_zk_controlled_shutdown): the
 * registration is rewritten with "shutting_down": true, the controller
 * moves this broker's leaderships away, and the session closes once it
 * leads nothing.
 *
 * Election: when /controller is absent, read /controller_epoch (E, version
 * V) and issue one multi { create /controller, set /controller_epoch E+1
 * at version V }. Only one broker can win a term; the winner remembers the
 * version its set produced and every later controller write is a multi
 * that starts with a check of /controller_epoch at that version
 * (coll_zk_controller_multi), so the writes of a broker that lost the
 * controllership while paused fail (KAFKA-6082).
 *
 * Test hook: with TRIB_TEST_STALE_CONTROLLER_WRITE=1 in the environment,
 * a broker whose session expired while it was the controller issues, once
 * its new session is set up, one controller write (create
 * /fence-probe-<id>) checked at the epoch version of its lost term, and
 * logs and counts the outcome: the write a paused ex-controller would
 * make. It must be refused. With TRIB_TEST_STALE_CONTROLLER_WRITE=state
 * the write is the one KAFKA-6082 describes: every partition state this
 * broker still caches from before its pause (up to 31 of them) written
 * back unconditionally with the lost term's controller epoch, in one
 * multi checked at that term's epoch version.
 */
#include "cluster/zk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/zk_json.h"
#include "tributary/buf.h"
#include "tributary/log.h"
#include "tributary/prom.h"

#define FACILITY "zookeeper"

int coll_zk_check_connect(const char *connect, const char **why)
{
    if (!connect || !*connect) {
        *why = "empty ZooKeeper connect string";
        return -EINVAL;
    }
    const char *slash = strchr(connect, '/');
    size_t hl = slash ? (size_t)(slash - connect) : strlen(connect);
    if (hl == 0) {
        *why = "no ZooKeeper host:port before the chroot";
        return -EINVAL;
    }
    const char *p = connect, *end = connect + hl;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        const char *colon = NULL;
        for (const char *q = p; q < e; q++) {
            if (*q == ':') {
                colon = q;
            }
        }
        if (!colon || colon == p || colon + 1 == e) {
            *why = "expected host:port in the ZooKeeper connect string";
            return -EINVAL;
        }
        long port = 0;
        for (const char *q = colon + 1; q < e; q++) {
            if (*q < '0' || *q > '9' || port > 65535) {
                *why = "bad port in the ZooKeeper connect string";
                return -EINVAL;
            }
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535) {
            *why = "bad port in the ZooKeeper connect string";
            return -EINVAL;
        }
        p = comma ? comma + 1 : end;
        if (comma && p == end) {
            *why = "empty host in the ZooKeeper connect string";
            return -EINVAL;
        }
    }
    if (slash) {
        const char *c = slash;
        if (strlen(c) > 200) {
            *why = "ZooKeeper chroot too long (at most 200 characters)";
            return -EINVAL;
        }
        while (*c == '/') {
            const char *n = strchr(c + 1, '/');
            size_t l = n ? (size_t)(n - c - 1) : strlen(c + 1);
            if (l == 0 || (l == 1 && c[1] == '.') || (l == 2 && c[1] == '.' && c[2] == '.')) {
                *why = "bad ZooKeeper chroot (empty, '.' or '..' component, or a trailing '/')";
                return -EINVAL;
            }
            c += 1 + l;
        }
    }
    return 0;
}

#ifndef TRIB_HAVE_ZOOKEEPER

bool coll_zk_available(void)
{
    return false;
}

int coll_zk_start(uv_loop_t *loop, const coll_zk_config_t *cfg, coll_zk_t **out, trib_error_t *err)
{
    (void)loop;
    (void)cfg;
    *out = NULL;
    trib_error_set(err, -ENOTSUP, "this collector was built without the ZooKeeper client");
    return -ENOTSUP;
}

void coll_zk_close(coll_zk_t *z)
{
    (void)z;
}

void coll_zk_controlled_shutdown(coll_zk_t *z, uint32_t timeout_ms, void (*done)(void *arg),
                                 void *arg)
{
    (void)z;
    (void)timeout_ms;
    done(arg);
}

void coll_zk_free(coll_zk_t *z)
{
    (void)z;
}

void coll_zk_view(coll_zk_t *z, coll_cluster_view_t *out)
{
    (void)z;
    memset(out, 0, sizeof(*out));
}

int32_t coll_zk_controller_id(const coll_zk_t *z)
{
    (void)z;
    return -1;
}

bool coll_zk_is_controller(const coll_zk_t *z)
{
    (void)z;
    return false;
}

bool coll_zk_registered(const coll_zk_t *z)
{
    (void)z;
    return false;
}

void coll_zk_render_metrics(coll_zk_t *z, struct trib_buf *b)
{
    (void)z;
    (void)b;
}

#else

#include "cluster/zk_int.h"

static void new_session(coll_zk_t *z);
static void read_controller(coll_zk_t *z);
static void refresh_brokers(coll_zk_t *z);
static void session_expired(coll_zk_t *z);

bool coll_zk_available(void)
{
    return true;
}

int coll_zk_path(const coll_zk_t *z, const char *rel, char *out, size_t n)
{
    int w = snprintf(out, n, "%s%s", z->root, rel);
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

int64_t coll_zk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True when a completion belongs to a handle being closed: touch nothing. */
bool coll_zk_gone(coll_zk_t *z, int rc)
{
    return rc == ZCLOSING || z->closing || z->failed;
}

static void die(coll_zk_t *z, const char *why)
{
    if (z->failed) {
        return;
    }
    z->failed = true;
    TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s", why);
    if (z->fatal) {
        z->fatal(z->fatal_arg, why);
    }
}

/*
 * The client's own messages (connection failures while the ensemble is
 * away) go to our log as warnings, at most one a second: a reconnect loop
 * would otherwise print several a second.
 */
static void client_log(const char *message)
{
    static int64_t last_ms;
    static uint64_t suppressed;
    int64_t now = coll_zk_now_ms();
    if (now - last_ms < 1000) {
        suppressed++;
        return;
    }
    last_ms = now;
    const char *m = strstr(message, "ZOO_");
    m = m ? m : message;
    size_t n = strlen(m);
    while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == '\r')) {
        n--;
    }
    if (suppressed) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "client: %.*s (%" PRIu64 " more in the last second)",
                 (int)n, m, suppressed);
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "client: %.*s", (int)n, m);
    }
    suppressed = 0;
}

/* ---- driving the client from the loop ------------------------------------------ */

static void poll_closed(uv_handle_t *h)
{
    free(h);
}

static void drop_poll(coll_zk_t *z)
{
    if (z->poll) {
        uv_close((uv_handle_t *)z->poll, poll_closed);
        z->poll = NULL;
    }
    z->poll_fd = -1;
}

static void pump(coll_zk_t *z, int events)
{
    if (!z->zh || z->closing) {
        return;
    }
    z->in_process = true;
    int rc = zookeeper_process(z->zh, events);
    z->in_process = false;
    if (rc == ZINVALIDSTATE && !z->closing && zoo_state(z->zh) == ZOO_EXPIRED_SESSION_STATE) {
        session_expired(z);
    }
    if (z->closing) {
        return;
    }
    if (z->need_new_session) {
        new_session(z);
    }
    coll_zk_rearm(z);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    coll_zk_t *z = h->data;
    int ev = 0;
    if (status < 0) {
        ev = ZOOKEEPER_READ | ZOOKEEPER_WRITE; /* let the client find the error */
    } else {
        ev = ((events & UV_READABLE) ? ZOOKEEPER_READ : 0) |
             ((events & UV_WRITABLE) ? ZOOKEEPER_WRITE : 0);
    }
    pump(z, ev);
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data, 0);
    coll_zk_ctl_tick(t->data);
}

/* Asks the client what it waits for, and waits for exactly that. */
void coll_zk_rearm(coll_zk_t *z)
{
    if (!z->zh || z->closing || z->in_process) {
        return;
    }
    int fd = -1, interest = 0;
    struct timeval tv = {0, 0};
    int rc = zookeeper_interest(z->zh, &fd, &interest, &tv);
    if (rc == ZINVALIDSTATE) {
        /* Expired: a new session, outside any callback. */
        session_expired(z);
        uv_timer_start(&z->timer, on_timer, 0, 0);
        return;
    }
    if (fd != z->poll_fd) {
        drop_poll(z);
        if (fd >= 0) {
            uv_poll_t *p = malloc(sizeof(*p));
            if (p && uv_poll_init(z->loop, p, fd) == 0) {
                p->data = z;
                z->poll = p;
                z->poll_fd = fd;
            } else {
                free(p);
                TRIB_LOG(TRIB_LOG_WARN, FACILITY, "cannot watch the ZooKeeper socket; retrying");
            }
        }
    }
    if (z->poll) {
        int ev = ((interest & ZOOKEEPER_READ) ? UV_READABLE : 0) |
                 ((interest & ZOOKEEPER_WRITE) ? UV_WRITABLE : 0);
        uv_poll_stop(z->poll);
        if (ev) {
            uv_poll_start(z->poll, ev, on_poll);
        }
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    if (ms > 60000) {
        ms = 60000;
    }
    if (!z->poll && ms < 10) {
        ms = 10; /* no socket: the client waits to reconnect */
    }
    uv_timer_start(&z->timer, on_timer, ms, 0);
}

/* ---- registration ---------------------------------------------------------------- */

static void registered_done(int rc, const char *path, const struct Stat *st, const void *data);

static void register_broker(coll_zk_t *z)
{
    char path[PATH_MAX_ZK], json[2048], rel[64];
    snprintf(rel, sizeof(rel), "/brokers/ids/%" PRId32, z->self.id);
    int len = coll_zk_broker_encode(&z->self, coll_zk_now_ms(), json, sizeof(json));
    if (coll_zk_path(z, rel, path, sizeof(path)) != 0 || len < 0) {
        die(z, "the broker registration does not fit in a znode path or 2 KiB");
        return;
    }
    int rc = zoo_acreate2(z->zh, path, json, len, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL,
                          registered_done, z);
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "registering: %s (retried with the session)", zerror(rc));
    }
}

static void owner_checked(int rc, const struct Stat *st, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc == ZNONODE) {
        register_broker(z); /* the other session just ended */
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading the registration: %s", zerror(rc));
        return;
    }
    if (st->ephemeralOwner == z->session_id) {
        z->registered = true;
        z->broker_epoch = st->czxid;
        read_controller(z);
        refresh_brokers(z);
        coll_zk_topics_resync(z);
        return;
    }
    char why[256];
    snprintf(why, sizeof(why),
             "broker id %" PRId32 " is already registered in ZooKeeper by a live broker (session "
             "0x%" PRIx64 "): another collector runs with this node id",
             z->self.id, (uint64_t)st->ephemeralOwner);
    die(z, why);
}

static void registered_done(int rc, const char *path, const struct Stat *st, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    (void)path;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc == ZNODEEXISTS) {
        char p[PATH_MAX_ZK], rel[64];
        snprintf(rel, sizeof(rel), "/brokers/ids/%" PRId32, z->self.id);
        coll_zk_path(z, rel, p, sizeof(p));
        zoo_aexists(z->zh, p, 0, owner_checked, z);
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "registering broker %" PRId32 ": %s", z->self.id,
                 zerror(rc));
        return;
    }
    z->registered = true;
    z->broker_epoch = st->czxid;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "registered as broker %" PRId32 " (broker epoch %" PRId64 ", session 0x%" PRIx64 ")",
             z->self.id, z->broker_epoch, (uint64_t)z->session_id);
    read_controller(z);
    refresh_brokers(z);
    coll_zk_topics_resync(z);
}

/* ---- setup of a new session: sync, then the paths, one at a time ------------------ */

static const char *const setup_paths[] = {
    "",         "/brokers", "/brokers/ids",   "/brokers/topics", "/controller_epoch",
    "/cluster", "/config",  "/config/topics", "/admin",          "/admin/delete_topics",
    NULL};

static void stale_write_probe(coll_zk_t *z);
static void read_cluster_id(coll_zk_t *z);

static void setup_next(coll_zk_t *z, size_t i);

static void setup_created(int rc, const char *path, const void *data)
{
    (void)path;
    const setup_ctx_t *ctx = data;
    coll_zk_t *z = ctx->z;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc != ZOK && rc != ZNODEEXISTS) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "creating %s%s: %s (retried with the session)", z->root,
                 setup_paths[ctx->i], zerror(rc));
        return;
    }
    setup_next(z, ctx->i + 1);
}

static void ignore_created(int rc, const char *path, const void *data)
{
    (void)rc;
    (void)path;
    (void)data;
}

static void setup_next(coll_zk_t *z, size_t i)
{
    char path[PATH_MAX_ZK];
    for (; setup_paths[i]; i++) {
        coll_zk_path(z, setup_paths[i], path, sizeof(path));
        if (path[0] == '\0') {
            continue; /* no chroot */
        }
        /* The chroot's parents. */
        if (i == 0) {
            for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                zoo_acreate(z->zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, ignore_created, z);
                *s = '/';
            }
        }
        bool epoch = strcmp(setup_paths[i], "/controller_epoch") == 0;
        int rc = zoo_acreate(z->zh, path, epoch ? "0" : "", epoch ? 1 : 0, &ZOO_OPEN_ACL_UNSAFE, 0,
                             setup_created, &z->setup_ctx[i]);
        if (rc != ZOK) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "creating %s: %s", path, zerror(rc));
        }
        return;
    }
    if (z->test_stale_write && z->stale_epoch_version >= 0) {
        stale_write_probe(z);
    }
    read_cluster_id(z);
}

static void cluster_id_read(int rc, const char *value, int len, const struct Stat *st,
                            const void *data);

static void cluster_id_created(int rc, const char *path, const void *data)
{
    (void)path;
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc != ZOK && rc != ZNODEEXISTS) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "creating /cluster/id: %s", zerror(rc));
        register_broker(z);
        return;
    }
    read_cluster_id(z);
}

static void cluster_id_read(int rc, const char *value, int len, const struct Stat *st,
                            const void *data)
{
    (void)st;
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/cluster/id", p, sizeof(p));
    if (rc == ZNONODE) {
        char json[128];
        int jl = coll_zk_cluster_id_encode(z->local_cluster_id, json, sizeof(json));
        if (jl < 0 || zoo_acreate(z->zh, p, json, jl, &ZOO_OPEN_ACL_UNSAFE, 0, cluster_id_created,
                                  z) != ZOK) {
            register_broker(z);
        }
        return;
    }
    char id[COLL_ZK_CLUSTER_ID_MAX];
    const char *why = zerror(rc);
    if (rc == ZOK && coll_zk_cluster_id_decode(value, len > 0 ? (size_t)len : 0, id, &why) == 0) {
        if (strcmp(id, z->cluster_id) != 0) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY, "cluster id %s%s", id,
                     strcmp(id, z->local_cluster_id) != 0 ? " (from ZooKeeper)" : "");
        }
        memcpy(z->cluster_id, id, sizeof(id));
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "/cluster/id: %s", why);
    }
    register_broker(z);
}

static void read_cluster_id(coll_zk_t *z)
{
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/cluster/id", p, sizeof(p));
    if (zoo_aget(z->zh, p, 0, cluster_id_read, z) != ZOK) {
        register_broker(z);
    }
}

static void synced(int rc, const char *value, const void *data)
{
    (void)value;
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "sync: %s", zerror(rc));
    }
    setup_next(z, 0);
}

static void session_established(coll_zk_t *z)
{
    const clientid_t *id = zoo_client_id(z->zh);
    int64_t sid = id ? id->client_id : 0;
    if (sid == z->session_id && z->registered) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "reconnected to ZooKeeper (session 0x%" PRIx64 ")",
                 (uint64_t)sid);
        /* The client re-sets its watches; re-read anyway in case a trigger was missed. */
        read_controller(z);
        refresh_brokers(z);
        coll_zk_topics_resync(z);
        return;
    }
    z->session_id = sid;
    z->sessions++;
    z->registered = false;
    z->brokers_loaded = false;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "ZooKeeper session 0x%" PRIx64 " established", (uint64_t)sid);
    /* Later reads see at least what the ensemble's leader has committed. */
    int rc = zoo_async(z->zh, "/", synced, z);
    if (rc != ZOK) {
        setup_next(z, 0);
    }
}

static void resign(coll_zk_t *z, const char *why)
{
    if (z->is_controller) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "no longer the controller (epoch %" PRId32 "): %s",
                 z->controller_epoch, why);
        z->stale_epoch_version = z->epoch_version;
        z->stale_epoch = z->controller_epoch;
        z->is_controller = false;
        coll_zk_ctl_resigned(z);
    }
    z->is_controller = false;
}

/*
 * The session is gone: this broker is no longer registered nor the
 * controller. Seen as a session event, or as ZINVALIDSTATE from the client
 * before the event was delivered; counted once per session.
 */
static void session_expired(coll_zk_t *z)
{
    if (z->conn != CONN_EXPIRED) {
        z->conn = CONN_EXPIRED;
        z->expirations++;
        TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                 "ZooKeeper session 0x%" PRIx64 " expired: starting a new one",
                 (uint64_t)z->session_id);
    }
    z->registered = false;
    resign(z, "the session expired");
    z->controller_id = -1;
    z->need_new_session = true;
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    (void)zh;
    coll_zk_t *z = ctx;
    if (z->closing || z->failed) {
        return;
    }
    if (type == ZOO_SESSION_EVENT) {
        if (state == ZOO_CONNECTED_STATE) {
            z->conn = CONN_CONNECTED;
            session_established(z);
        } else if (state == ZOO_EXPIRED_SESSION_STATE) {
            session_expired(z);
        } else if (state == ZOO_CONNECTING_STATE || state == ZOO_ASSOCIATING_STATE) {
            if (z->conn == CONN_CONNECTED) {
                TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                         "disconnected from ZooKeeper; reconnecting (session 0x%" PRIx64
                         "); no writes are taken as a leader meanwhile",
                         (uint64_t)z->session_id);
            }
            z->conn = CONN_CONNECTING;
        } else if (state == ZOO_AUTH_FAILED_STATE) {
            die(z, "ZooKeeper authentication failed");
        }
        return;
    }
    if (!path) {
        return;
    }
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/controller", p, sizeof(p));
    if (strcmp(path, p) == 0) {
        read_controller(z);
        return;
    }
    coll_zk_path(z, "/brokers/ids", p, sizeof(p));
    size_t pl = strlen(p);
    if (strncmp(path, p, pl) == 0 && (path[pl] == '\0' || path[pl] == '/')) {
        refresh_brokers(z);
        return;
    }
    if (!coll_zk_topics_watch(z, type, path)) {
        coll_zk_ctl_watch(z, type, path);
    }
}

static void new_session(coll_zk_t *z)
{
    z->need_new_session = false;
    drop_poll(z);
    if (z->zh) {
        zookeeper_close(z->zh); /* pending completions see ZCLOSING */
        z->zh = NULL;
    }
    z->conn = CONN_CONNECTING;
    z->registered = false;
    z->brokers_loaded = false;
    z->electing = false; /* an election of the old session never completes */
    z->zh = zookeeper_init2(z->hosts, watcher, (int)z->session_timeout_ms, NULL, z, 0, client_log);
    if (!z->zh) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "zookeeper_init: %s; retrying in 1s", strerror(errno));
        z->need_new_session = true;
        uv_timer_start(&z->timer, on_timer, 1000, 0);
    }
}

/* ---- the controller ---------------------------------------------------------------- */

static void elected(int rc, const void *data);

static void epoch_read(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    int32_t e = 0;
    if (rc != ZOK || coll_zk_epoch_decode(value, len > 0 ? (size_t)len : 0, &e) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading /controller_epoch: %s",
                 rc != ZOK ? zerror(rc) : "not a decimal epoch");
        z->electing = false;
        return;
    }
    if (e == INT32_MAX) {
        die(z, "/controller_epoch is at its maximum");
        return;
    }
    char ctl[PATH_MAX_ZK], json[128], epoch[16];
    coll_zk_path(z, "/controller", ctl, sizeof(ctl));
    coll_zk_path(z, "/controller_epoch", z->elect_path, sizeof(z->elect_path));
    int jl = coll_zk_controller_encode(z->self.id, coll_zk_now_ms(), json, sizeof(json));
    int el = snprintf(epoch, sizeof(epoch), "%" PRId32, e + 1);
    z->elect_epoch = e + 1;
    zoo_op_t ops[2];
    zoo_create_op_init(&ops[0], ctl, json, jl, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
    zoo_set_op_init(&ops[1], z->elect_path, epoch, el, st->version, &z->elect_stat);
    rc = zoo_amulti(z->zh, 2, ops, z->elect_results, elected, z);
    if (rc != ZOK) {
        z->electing = false;
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "election: %s", zerror(rc));
    }
}

static void elected(int rc, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    z->electing = false;
    if (rc == ZOK) {
        z->is_controller = true;
        z->controller_id = z->self.id;
        z->controller_epoch = z->elect_epoch;
        z->epoch_version = z->elect_stat.version;
        z->stale_epoch_version = -1;
        z->elections_won++;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "elected controller: epoch %" PRId32 " (/controller_epoch version %" PRId32 ")",
                 z->controller_epoch, z->epoch_version);
        coll_zk_ctl_elected(z);
    } else {
        TRIB_LOG(TRIB_LOG_DEBUG, FACILITY, "election lost: %s", zerror(rc));
    }
    read_controller(z); /* watch /controller again, whoever won */
}

static void elect(coll_zk_t *z)
{
    if (z->electing || !z->registered) {
        return;
    }
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/controller_epoch", p, sizeof(p));
    z->electing = true;
    if (zoo_aget(z->zh, p, 0, epoch_read, z) != ZOK) {
        z->electing = false;
    }
}

static void controller_read(int rc, const char *value, int len, const struct Stat *st,
                            const void *data)
{
    (void)st;
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc == ZNONODE) {
        read_controller(z); /* gone between exists and get: the exists watch again */
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading /controller: %s", zerror(rc));
        return;
    }
    int32_t id;
    const char *why;
    if (coll_zk_controller_decode(value, len > 0 ? (size_t)len : 0, &id, &why) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "/controller: %s", why);
        return;
    }
    if (id != z->self.id) {
        resign(z, "another broker holds /controller");
    } else if (!z->is_controller && st->ephemeralOwner != z->session_id) {
        /* Our id under another session: a previous life of this broker. */
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "/controller names this broker from an older session");
    }
    if (id != z->controller_id) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "controller: broker %" PRId32, id);
    }
    z->controller_id = id;
}

static void controller_exists(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc == ZNONODE) {
        resign(z, "/controller is gone");
        if (z->controller_id != -1) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY, "no controller: electing");
        }
        z->controller_id = -1;
        elect(z);
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "watching /controller: %s", zerror(rc));
        return;
    }
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/controller", p, sizeof(p));
    zoo_aget(z->zh, p, 1, controller_read, z);
}

static void read_controller(coll_zk_t *z)
{
    if (!z->registered) {
        return;
    }
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/controller", p, sizeof(p));
    zoo_aexists(z->zh, p, 1, controller_exists, z);
    coll_zk_rearm(z);
}

typedef struct multi_ctx {
    coll_zk_t *z;
    coll_zk_multi_cb cb;
    coll_zk_multi2_cb cb2;
    void *arg;
    zoo_op_result_t *user_results;
    int n;
    zoo_op_result_t results[MAX_MULTI + 1];
} multi_ctx_t;

static void multi_done(int rc, const void *data)
{
    multi_ctx_t *m = (multi_ctx_t *)data;
    bool fenced = rc != ZOK && rc != ZCLOSING && m->results[0].err != ZOK;
    if (fenced || (!m->cb2 && rc == ZBADVERSION)) {
        m->z->fenced_writes++;
    }
    if (m->user_results) {
        memcpy(m->user_results, m->results + 1, (size_t)m->n * sizeof(*m->user_results));
    }
    if (m->cb) {
        m->cb(m->arg, rc);
    }
    if (m->cb2) {
        m->cb2(m->arg, rc, fenced);
    }
    free(m);
}

static int multi_at(coll_zk_t *z, int32_t version, const zoo_op_t *ops, int n,
                    zoo_op_result_t *results, coll_zk_multi_cb cb, coll_zk_multi2_cb cb2, void *arg)
{
    if (n < 0 || n > MAX_MULTI) {
        return -EINVAL;
    }
    if (!z->zh || z->conn != CONN_CONNECTED) {
        return -ENOTCONN;
    }
    multi_ctx_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return -ENOMEM;
    }
    m->z = z;
    m->cb = cb;
    m->cb2 = cb2;
    m->arg = arg;
    m->user_results = results;
    m->n = n;
    zoo_op_t all[MAX_MULTI + 1];
    char epoch_path[PATH_MAX_ZK];
    coll_zk_path(z, "/controller_epoch", epoch_path, sizeof(epoch_path));
    zoo_check_op_init(&all[0], epoch_path, version);
    if (n > 0) {
        memcpy(all + 1, ops, (size_t)n * sizeof(*ops));
    }
    int rc = zoo_amulti(z->zh, n + 1, all, m->results, multi_done, m);
    if (rc != ZOK) {
        free(m);
        return -EIO;
    }
    coll_zk_rearm(z);
    return 0;
}

int coll_zk_controller_multi(coll_zk_t *z, const zoo_op_t *ops, int n, zoo_op_result_t *results,
                             coll_zk_multi_cb cb, void *arg)
{
    if (!z->is_controller) {
        return -EPERM;
    }
    return multi_at(z, z->epoch_version, ops, n, results, cb, NULL, arg);
}

int coll_zk_controller_multi2(coll_zk_t *z, const zoo_op_t *ops, int n, zoo_op_result_t *results,
                              coll_zk_multi2_cb cb, void *arg)
{
    if (!z->is_controller) {
        return -EPERM;
    }
    return multi_at(z, z->epoch_version, ops, n, results, NULL, cb, arg);
}

static void probe_done(void *arg, int rc)
{
    coll_zk_t *z = arg;
    if (rc == ZCLOSING) {
        return;
    }
    if (rc == ZOK) {
        z->stale_writes_applied++;
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY,
                 "test: a write checked at the lost term's controller epoch was APPLIED");
    } else {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "test: a write checked at the lost term's controller epoch was refused: %s",
                 zerror(rc));
    }
}

/* The stale partition-state writes of TRIB_TEST_STALE_CONTROLLER_WRITE=state. */
typedef struct stale_states {
    zoo_op_t ops[MAX_MULTI - 1];
    char paths[MAX_MULTI - 1][PATH_MAX_ZK];
    char json[MAX_MULTI - 1][256];
    int n;
} stale_states_t;

static void stale_state_add(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    stale_states_t *s = arg;
    for (int32_t i = 0; i < zt->nparts && s->n < MAX_MULTI - 1; i++) {
        if (!zt->parts[i].have_state) {
            continue;
        }
        coll_zk_state_t st = zt->parts[i].st;
        st.controller_epoch = z->stale_epoch;
        int jl = coll_zk_state_encode(&st, s->json[s->n], sizeof(s->json[s->n]));
        if (jl < 0 ||
            coll_zk_topic_path(z, zt->name, 3, i, s->paths[s->n], sizeof(s->paths[s->n])) != 0) {
            continue;
        }
        zoo_set_op_init(&s->ops[s->n], s->paths[s->n], s->json[s->n], jl, -1, NULL);
        s->n++;
    }
}

static void stale_write_probe(coll_zk_t *z)
{
    if (z->test_stale_state) {
        stale_states_t *s = calloc(1, sizeof(*s));
        if (!s) {
            return;
        }
        coll_zk_topics_foreach(z, stale_state_add, s);
        int32_t v = z->stale_epoch_version;
        z->stale_epoch_version = -1;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "test: %d partition states written with controller epoch %" PRId32
                 ", checked at /controller_epoch version %" PRId32 " (the lost term)",
                 s->n, z->stale_epoch, v);
        /* zoo_amulti copies the operations into its request before it returns. */
        int rc = s->n > 0 ? multi_at(z, v, s->ops, s->n, z->probe_results, probe_done, NULL, z)
                          : -ENOENT;
        free(s);
        if (rc != 0) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "test: the probe was not sent: %s", strerror(-rc));
        }
        return;
    }
    char path[PATH_MAX_ZK], rel[64];
    snprintf(rel, sizeof(rel), "/fence-probe-%" PRId32, z->self.id);
    coll_zk_path(z, rel, path, sizeof(path));
    zoo_op_t op;
    zoo_create_op_init(&op, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    int32_t v = z->stale_epoch_version;
    z->stale_epoch_version = -1;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "test: a controller write checked at /controller_epoch version %" PRId32
             " (the lost term)",
             v);
    int rc = multi_at(z, v, &op, 1, z->probe_results, probe_done, NULL, z);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "test: the probe was not sent: %s", strerror(-rc));
    }
}

/* ---- the live brokers ---------------------------------------------------------------- */

static int broker_cmp(const void *a, const void *b)
{
    const coll_zk_broker_t *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void refresh_finish(coll_zk_t *z)
{
    qsort(z->pending, z->npending, sizeof(*z->pending), broker_cmp);
    free(z->brokers);
    z->brokers = z->pending;
    z->nbrokers = z->npending;
    z->pending = NULL;
    z->npending = 0;
    TRIB_LOG(TRIB_LOG_DEBUG, FACILITY, "%zu live brokers", z->nbrokers);
    if (z->refresh_again) {
        z->refresh_again = false;
        refresh_brokers(z);
        return;
    }
    z->brokers_loaded = true;
    coll_zk_topics_brokers_changed(z);
}

const coll_zk_broker_t *coll_zk_broker_find(const coll_zk_t *z, int32_t id)
{
    size_t lo = 0, hi = z->nbrokers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (z->brokers[mid].id == id) {
            return &z->brokers[mid];
        }
        if (z->brokers[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

typedef struct broker_read {
    coll_zk_t *z;
    uint64_t gen;
    int32_t id;
} broker_read_t;

static void broker_data(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
    broker_read_t *r = (broker_read_t *)data;
    coll_zk_t *z = r->z;
    bool current = r->gen == z->refresh_gen;
    int32_t id = r->id;
    free(r);
    if (coll_zk_gone(z, rc) || !current) {
        return;
    }
    if (rc == ZOK) {
        coll_zk_broker_t *b = &z->pending[z->npending];
        const char *why;
        if (coll_zk_broker_decode(value, len > 0 ? (size_t)len : 0, b, &why) == 0) {
            b->id = id;
            b->epoch = st->czxid;
            z->npending++;
        } else {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "/brokers/ids/%" PRId32 ": %s", id, why);
        }
    } else if (rc != ZNONODE) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading /brokers/ids/%" PRId32 ": %s", id, zerror(rc));
    }
    if (++z->pending_got == z->pending_want) {
        refresh_finish(z);
    }
}

static void broker_ids(int rc, const struct String_vector *ids, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "listing /brokers/ids: %s", zerror(rc));
        return;
    }
    z->refresh_gen++;
    free(z->pending);
    size_t n = ids->count > 0 ? (size_t)ids->count : 0;
    if (n > MAX_BROKERS) {
        n = MAX_BROKERS;
    }
    z->pending = calloc(n ? n : 1, sizeof(*z->pending));
    z->npending = 0;
    z->pending_got = 0;
    z->pending_want = 0;
    if (!z->pending) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "out of memory reading the brokers");
        return;
    }
    char dir[PATH_MAX_ZK];
    coll_zk_path(z, "/brokers/ids", dir, sizeof(dir));
    for (size_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long long v = strtoll(ids->data[i], &end, 10);
        if (*end || errno || v < 0 || v > INT32_MAX || !ids->data[i][0]) {
            continue;
        }
        broker_read_t *r = malloc(sizeof(*r));
        if (!r) {
            continue;
        }
        r->z = z;
        r->gen = z->refresh_gen;
        r->id = (int32_t)v;
        char p[PATH_MAX_ZK + 16];
        snprintf(p, sizeof(p), "%s/%s", dir, ids->data[i]);
        if (zoo_aget(z->zh, p, 1, broker_data, r) != ZOK) {
            free(r);
            continue;
        }
        z->pending_want++;
    }
    if (z->pending_want == 0) {
        refresh_finish(z);
    }
}

static void refresh_brokers(coll_zk_t *z)
{
    if (!z->registered) {
        return;
    }
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/brokers/ids", p, sizeof(p));
    zoo_aget_children(z->zh, p, 1, broker_ids, z);
    coll_zk_rearm(z);
}

/* ---- controlled shutdown ----------------------------------------------------------- */

/*
 * The partitions this broker leads; *movable: those with another in-sync
 * replica that is registered and not shutting down (the controller can
 * move only these).
 */
static size_t leading(const coll_zk_t *z, size_t *movable)
{
    *movable = 0;
    if (!z->cluster) {
        return 0;
    }
    size_t n = coll_cluster_topic_count(z->cluster), count = 0;
    coll_topic_t **topics = malloc((n ? n : 1) * sizeof(*topics));
    if (!topics) {
        return 0;
    }
    coll_cluster_topics(z->cluster, topics);
    for (size_t i = 0; i < n; i++) {
        for (int32_t k = 0; k < topics[i]->npartitions; k++) {
            const coll_partition_t *p = topics[i]->partitions[k];
            if (p->leader != z->self.id) {
                continue;
            }
            count++;
            for (int32_t r = 0; r < p->nisr; r++) {
                const coll_zk_broker_t *b =
                    p->isr[r] != z->self.id ? coll_zk_broker_find(z, p->isr[r]) : NULL;
                if (b && !b->shutting_down) {
                    (*movable)++;
                    break;
                }
            }
        }
    }
    free(topics);
    return count;
}

static void cs_finish(coll_zk_t *z, const char *how)
{
    if (!z->cs_active) {
        return;
    }
    z->cs_active = false;
    if (z->cs_timer_open) {
        z->cs_timer_open = false;
        uv_close((uv_handle_t *)&z->cs_timer, NULL);
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "controlled shutdown: %s", how);
    z->cs_done(z->cs_arg);
}

static void cs_tick(uv_timer_t *t)
{
    coll_zk_t *z = t->data;
    size_t movable;
    size_t n = leading(z, &movable);
    if (n == 0) {
        cs_finish(z, "this broker leads no partition");
    } else if (movable == 0) {
        char how[128];
        snprintf(how, sizeof(how), "%zu partitions have no other live in-sync replica to lead them",
                 n);
        cs_finish(z, how);
    } else if (uv_now(z->loop) >= z->cs_deadline) {
        char how[128];
        snprintf(how, sizeof(how), "still leading %zu partitions after the timeout", n);
        cs_finish(z, how);
    }
}

static void cs_registered(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "controlled shutdown: marking the registration: %s",
                 zerror(rc));
        cs_finish(z, "not marked; leaving at once");
    }
}

void coll_zk_controlled_shutdown(coll_zk_t *z, uint32_t timeout_ms, void (*done)(void *arg),
                                 void *arg)
{
    z->cs_done = done;
    z->cs_arg = arg;
    z->cs_active = true;
    size_t movable;
    size_t n = leading(z, &movable);
    if (!z->registered || z->conn != CONN_CONNECTED || !z->zh || n == 0 || movable == 0) {
        cs_finish(z, n == 0         ? "this broker leads no partition"
                     : movable == 0 ? "no other live in-sync replica can lead its partitions"
                                    : "not registered");
        return;
    }
    z->self.shutting_down = true;
    char path[PATH_MAX_ZK], json[2048], rel[64];
    snprintf(rel, sizeof(rel), "/brokers/ids/%" PRId32, z->self.id);
    int len = coll_zk_broker_encode(&z->self, coll_zk_now_ms(), json, sizeof(json));
    if (coll_zk_path(z, rel, path, sizeof(path)) != 0 || len < 0 ||
        zoo_aset(z->zh, path, json, len, -1, cs_registered, z) != ZOK) {
        cs_finish(z, "the registration could not be marked; leaving at once");
        return;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "controlled shutdown: registration marked shutting_down; waiting (at most %" PRIu32
             " ms) for %zu leaderships to move",
             timeout_ms, n);
    z->cs_deadline = uv_now(z->loop) + timeout_ms;
    uv_timer_init(z->loop, &z->cs_timer);
    z->cs_timer.data = z;
    z->cs_timer_open = true;
    uv_timer_start(&z->cs_timer, cs_tick, 50, 50);
    coll_zk_rearm(z);
}

/* ---- lifetime ----------------------------------------------------------------------- */

int coll_zk_start(uv_loop_t *loop, const coll_zk_config_t *cfg, coll_zk_t **out, trib_error_t *err)
{
    const char *why;
    *out = NULL;
    if (coll_zk_check_connect(cfg->connect, &why) != 0) {
        trib_error_set(err, TRIB_ECONFIG, "%s: '%s'", why, cfg->connect);
        return TRIB_ECONFIG;
    }
    coll_zk_t *z = calloc(1, sizeof(*z));
    if (!z) {
        return -ENOMEM;
    }
    const char *slash = strchr(cfg->connect, '/');
    size_t hl = slash ? (size_t)(slash - cfg->connect) : strlen(cfg->connect);
    z->hosts = strndup(cfg->connect, hl);
    if (!z->hosts) {
        free(z);
        return -ENOMEM;
    }
    if (slash) {
        snprintf(z->root, sizeof(z->root), "%s", slash);
    }
    z->loop = loop;
    z->poll_fd = -1;
    z->session_timeout_ms = cfg->session_timeout_ms;
    z->leader_rebalance_ms = cfg->leader_rebalance_ms;
    z->self.id = cfg->node_id;
    snprintf(z->self.host, sizeof(z->self.host), "%s", cfg->host ? cfg->host : "127.0.0.1");
    z->self.port = cfg->port;
    snprintf(z->self.rack, sizeof(z->self.rack), "%s", cfg->rack ? cfg->rack : "");
    snprintf(z->local_cluster_id, sizeof(z->local_cluster_id), "%s",
             cfg->cluster_id ? cfg->cluster_id : "");
    z->fatal = cfg->fatal;
    z->fatal_arg = cfg->arg;
    z->cluster = cfg->cluster;
    if (coll_zk_ctl_new(z) != 0 || coll_zk_pid_new(z) != 0 || coll_zk_topics_new(z) != 0) {
        coll_zk_topics_free(z);
        coll_zk_ctl_free(z);
        coll_zk_pid_free(z);
        free(z->hosts);
        free(z);
        return -ENOMEM;
    }
    z->controller_id = -1;
    z->stale_epoch_version = -1;
    for (size_t i = 0; i < SETUP_STEPS; i++) {
        z->setup_ctx[i].z = z;
        z->setup_ctx[i].i = i;
    }
    const char *t = getenv("TRIB_TEST_STALE_CONTROLLER_WRITE");
    z->test_stale_state = t && strcmp(t, "state") == 0;
    z->test_stale_write = t && (strcmp(t, "1") == 0 || z->test_stale_state);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    uv_timer_init(loop, &z->timer);
    z->timer.data = z;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "connecting to ZooKeeper %s (chroot %s, session timeout %" PRIu32
             " ms) as broker %" PRId32,
             z->hosts, z->root[0] ? z->root : "none", z->session_timeout_ms, z->self.id);
    new_session(z);
    coll_zk_rearm(z);
    *out = z;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

void coll_zk_close(coll_zk_t *z)
{
    if (!z || z->closing) {
        return;
    }
    z->closing = true;
    if (z->cs_timer_open) {
        z->cs_timer_open = false;
        z->cs_active = false;
        uv_close((uv_handle_t *)&z->cs_timer, NULL);
    }
    coll_zk_topics_closing(z);
    drop_poll(z);
    if (z->zh) {
        zookeeper_close(z->zh); /* ends the session: the registration goes at once */
        z->zh = NULL;
    }
    z->conn = CONN_CLOSED;
    z->is_controller = false;
    uv_close((uv_handle_t *)&z->timer, timer_closed);
}

void coll_zk_free(coll_zk_t *z)
{
    if (!z) {
        return;
    }
    coll_zk_topics_free(z);
    coll_zk_ctl_free(z);
    coll_zk_pid_free(z);
    free(z->brokers);
    free(z->pending);
    free(z->hosts);
    free(z);
}

int32_t coll_zk_controller_id(const coll_zk_t *z)
{
    return z->controller_id;
}

bool coll_zk_is_controller(const coll_zk_t *z)
{
    return z->is_controller;
}

bool coll_zk_registered(const coll_zk_t *z)
{
    return z->registered;
}

static int32_t view_controller(void *arg)
{
    return coll_zk_controller_id(arg);
}

static const char *view_cluster_id(void *arg)
{
    coll_zk_t *z = arg;
    return z->cluster_id[0] ? z->cluster_id : NULL;
}

static size_t view_brokers(void *arg, coll_broker_info_t *out, size_t max)
{
    coll_zk_t *z = arg;
    size_t n = 0;
    bool self = false;
    if (!out) {
        for (size_t i = 0; i < z->nbrokers; i++) {
            self = self || z->brokers[i].id == z->self.id;
        }
        return z->nbrokers + (self ? 0 : 1);
    }
    for (size_t i = 0; i < z->nbrokers && n < max; i++) {
        const coll_zk_broker_t *b = &z->brokers[i];
        self = self || b->id == z->self.id;
        out[n].id = b->id;
        out[n].host = b->host;
        out[n].port = b->port;
        out[n].rack = b->rack[0] ? b->rack : NULL;
        n++;
    }
    /* This broker answers, so it is alive even before its registration is read back. */
    if (!self && n < max) {
        out[n].id = z->self.id;
        out[n].host = z->self.host;
        out[n].port = z->self.port;
        out[n].rack = z->self.rack[0] ? z->self.rack : NULL;
        n++;
    }
    return n;
}

void coll_zk_view(coll_zk_t *z, coll_cluster_view_t *out)
{
    memset(out, 0, sizeof(*out));
    out->controller_id = view_controller;
    out->brokers = view_brokers;
    out->cluster_id = view_cluster_id;
    out->alter_isr = z->cluster ? coll_zk_alter_isr : NULL;
    out->may_lead = z->cluster ? coll_zk_may_lead : NULL;
    out->arg = z;
}

void coll_zk_render_metrics(coll_zk_t *z, struct trib_buf *b)
{
    trib_prom_header(b, "tributary_cluster_controller", "gauge",
                     "1 when this broker is the controller");
    trib_prom_sample(b, "tributary_cluster_controller", NULL, z->is_controller ? 1 : 0);
    trib_prom_header(b, "tributary_cluster_controller_epoch", "gauge",
                     "the controller epoch this broker last saw or wrote (0: none yet)");
    trib_prom_sample(b, "tributary_cluster_controller_epoch", NULL, z->controller_epoch);
    trib_prom_header(b, "tributary_cluster_controller_id", "gauge",
                     "the controller's broker id (-1: none known)");
    trib_prom_sample(b, "tributary_cluster_controller_id", NULL, z->controller_id);
    trib_prom_header(b, "tributary_cluster_registered", "gauge",
                     "1 when this broker's /brokers/ids registration is in place");
    trib_prom_sample(b, "tributary_cluster_registered", NULL, z->registered ? 1 : 0);
    trib_prom_header(b, "tributary_cluster_brokers", "gauge", "live brokers seen in ZooKeeper");
    trib_prom_sample_u64(b, "tributary_cluster_brokers", NULL, z->nbrokers);
    trib_prom_header(b, "tributary_cluster_elections_won_total", "counter",
                     "controller elections this broker won");
    trib_prom_sample_u64(b, "tributary_cluster_elections_won_total", NULL, z->elections_won);
    trib_prom_header(b, "tributary_cluster_controller_writes_fenced_total", "counter",
                     "controller writes refused by the controller epoch check");
    trib_prom_sample_u64(b, "tributary_cluster_controller_writes_fenced_total", NULL,
                         z->fenced_writes);
    trib_prom_header(b, "tributary_zookeeper_session_state", "gauge",
                     "0 connecting, 1 connected, 2 expired (a new session follows), 3 closed");
    trib_prom_sample(b, "tributary_zookeeper_session_state", NULL, (double)z->conn);
    trib_prom_header(b, "tributary_zookeeper_sessions_total", "counter",
                     "ZooKeeper sessions established");
    trib_prom_sample_u64(b, "tributary_zookeeper_sessions_total", NULL, z->sessions);
    trib_prom_header(b, "tributary_zookeeper_session_expirations_total", "counter",
                     "ZooKeeper sessions that expired");
    trib_prom_sample_u64(b, "tributary_zookeeper_session_expirations_total", NULL, z->expirations);
    coll_zk_topics_render_metrics(z, b);
    coll_zk_ctl_render_metrics(z, b);
    if (z->test_stale_write) {
        trib_prom_header(b, "tributary_test_stale_controller_writes_applied_total", "counter",
                         "test hook: writes at a lost term's epoch that ZooKeeper applied");
        trib_prom_sample_u64(b, "tributary_test_stale_controller_writes_applied_total", NULL,
                             z->stale_writes_applied);
    }
}

#endif
