/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-collector: the broker daemon's entry point.
 *
 * Order of things: the configuration (collector.yaml, then the flags on
 * top of it), logging, the storage (recovering every partition log), the
 * cluster metadata (topics, attached to their logs), then the server
 * (listeners, metrics, the ready file). SIGTERM/SIGINT stop the server
 * gracefully, then close the storage (fsync, checkpoints, the clean
 * shutdown marker) and exit 0. SIGHUP reloads the sinks from the
 * configuration file (coll_sinks_reload): a file that does not load is
 * logged and the running sinks stay as they are; other settings apply at
 * the next start. With no arguments it runs on the embedded defaults:
 * 127.0.0.1:9092, ./tributary-data, node 1.
 *
 * Exit codes: 0 clean stop or valid --check-config; 1 a runtime failure
 * (cannot bind, storage error, the data directory locked by another
 * collector, a sink --check-config --connect found unusable); 2 bad usage
 * or configuration.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "cluster/zk.h"
#include "conf.h"
#include "server/partition.h"
#include "server/server.h"
#include "sinks/admin.h"
#include "sinks/remote.h"
#include "sinks/sinks.h"
#include "tributary/fileio.h"
#include "tributary/buf.h"
#include "storage/storage.h"
#include "tributary/log.h"
#include "tributary/scram.h"
#include "tributary/version.h"
#include "server/credentials.h"
#include "server/tls.h"

#define FACILITY "main"

static void usage(FILE *out)
{
    fputs("Usage: tributary-collector [OPTIONS]\n"
          "\n"
          "The Tributary collector: a partitioned log broker that speaks the Apache\n"
          "Kafka wire protocol and hosts sink plugins.\n"
          "\n"
          "Options (flags override the configuration file):\n"
          "  -c, --config FILE        read configuration from FILE (YAML; see\n"
          "                           conf/collector.yaml for every option)\n"
          "      --listen HOST:PORT   Kafka listener (default 127.0.0.1:9092; port 0 = any);\n"
          "                           with listeners[] in the file, a plaintext listener\n"
          "                           added before them\n"
          "      --advertise HOST:PORT  address given to clients in metadata\n"
          "      --data-dir DIR       data directory (default ./tributary-data); locked\n"
          "                           (DIR/.lock) while the collector runs\n"
          "      --node-id N          this node's id (broker.id, default 1); with the\n"
          "                           zookeeper backend, its /brokers/ids/N znode\n"
          "      --zookeeper CONNECT  join a cluster: the zookeeper backend with the\n"
          "                           ensemble HOST:PORT[,HOST:PORT...][/CHROOT]; the\n"
          "                           broker registers and takes part in the controller\n"
          "                           election (no replication yet)\n"
          "      --metrics HOST:PORT|off  Prometheus metrics and /health\n"
          "                           (default 127.0.0.1:9644; port 0 = any)\n"
          "      --ready-file FILE    once listening, write 'kafka HOST:PORT' and\n"
          "                           'metrics HOST:PORT' lines to FILE (atomically)\n"
          "      --log-level LEVEL    error, warn, info, debug or trace\n"
          "      --log-format FORMAT  text or json\n"
          "      --check-config       validate the configuration (and the TLS listeners'\n"
          "                           certificate files) and exit (offline)\n"
          "      --connect            with --check-config: also connect each sink to its\n"
          "                           server and check the table it writes to\n"
          "      --list-sinks         list the sink plugins found and exit\n"
          "      --sinks-only         run only the sinks of the configuration, against the\n"
          "                           Kafka-protocol cluster of --bootstrap (no listener,\n"
          "                           storage or metrics); one such process per sink\n"
          "      --bootstrap HOST:PORT[,HOST:PORT...]  with --sinks-only: the cluster\n"
          "      --describe-sink TYPE  print a sink plugin's options (type, default,\n"
          "                           description) and what it needs, and exit\n"
          "      --add-user NAME      offline: add or replace NAME's SCRAM credential in\n"
          "                           the data directory (DIR/scram-credentials) for\n"
          "                           SASL listeners, the password read from stdin (one\n"
          "                           line), and exit; refused while a collector runs\n"
          "                           on DIR (then: tributary users set)\n"
          "      --mechanism M        with --add-user: SCRAM-SHA-256 or SCRAM-SHA-512\n"
          "                           (default SCRAM-SHA-512)\n"
          "      --iterations N       with --add-user: 4096..16384 (default 8192)\n"
          "  -h, --help               show this help and exit\n"
          "  -V, --version            show versions and exit\n"
          "\n"
          "SIGTERM or SIGINT stops it; SIGHUP reloads the sinks from --config FILE and\n"
          "the TLS listeners' certificate files.\n",
          out);
}

typedef struct app {
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint, sighup;
    coll_storage_t *st;
    coll_cluster_t *cluster;
    coll_zk_t *zk; /* the zookeeper backend's session, or NULL */
    coll_server_t *server;
    coll_sinks_t *sinks;
    const char *config_path;
    bool stopping, sinks_stopped, draining;
    uint32_t shutdown_timeout_ms; /* the controlled shutdown's bound */
    int status;
} app_t;

static void close_signals(app_t *a)
{
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sighup, NULL);
}

static void storage_closed(void *arg, int status)
{
    app_t *a = arg;
    if (status != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "closing the storage: %s", trib_strerror(status));
        a->status = 1;
    }
    a->st = NULL;
    close_signals(a);
}

static void server_stopped(void *arg)
{
    app_t *a = arg;
    if (a->st) {
        int rc = coll_storage_close(a->st, storage_closed, a);
        if (rc != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "closing the storage: %s", trib_strerror(rc));
            a->status = 1;
            close_signals(a);
        }
    } else {
        close_signals(a);
    }
}

static void stop_server(app_t *a);

static void extra_metrics(void *arg, trib_buf_t *b)
{
    app_t *a = arg;
    if (a->zk) {
        coll_zk_render_metrics(a->zk, b);
    }
    if (a->sinks && !a->sinks_stopped) {
        coll_sinks_render_metrics(a->sinks, b);
    }
}

static bool sinks_health(void *arg, trib_buf_t *b)
{
    return coll_sinks_health(arg, b);
}

static int sinks_http(void *arg, const char *method, const char *target, bool loopback,
                      trib_buf_t *body)
{
    return coll_sinks_http(arg, method, target, loopback, body);
}

static void sinks_stopped(void *arg)
{
    app_t *a = arg;
    a->sinks_stopped = true; /* no more samples from the stopped sinks */
    coll_server_set_health_hook(a->server, NULL, NULL);
    coll_server_set_http_admin(a->server, NULL, NULL);
    coll_server_set_console_sinks(a->server, NULL);
    stop_server(a);
}

static void begin_stop(app_t *a, const char *why)
{
    if (a->stopping) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "%s: already stopping", why);
        return;
    }
    a->stopping = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "%s: shutting down", why);
    /* Leave the cluster first: the other brokers see this one gone at once. */
    coll_zk_close(a->zk);
    if (a->sinks) {
        /* The sinks first: they commit offsets through the server's coordinator. */
        coll_sinks_stop(a->sinks, sinks_stopped, a);
    } else {
        stop_server(a);
    }
}

static void zk_fatal(void *arg, const char *why)
{
    app_t *a = arg;
    a->status = 1;
    begin_stop(a, why);
}

static void stop_server(app_t *a)
{
    if (a->server) {
        coll_server_stop(a->server, server_stopped, a);
    } else {
        server_stopped(a);
    }
}

/* Logs a configuration's errors, one line each. */
static void log_config_errors(trib_config_t *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "the configuration has errors");
        return;
    }
    trib_config_print_errors(cfg, f);
    fclose(f);
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s", line);
    }
    free(text);
}

/* SIGHUP: the sinks of the configuration file again (added, removed, changed). */
static void reload(app_t *a)
{
    if (a->stopping || !a->sinks) {
        return;
    }
    if (!a->config_path) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                 "SIGHUP: no configuration file (-c FILE) was given: nothing to reload");
        return;
    }
    coll_conf_t nc;
    trib_config_t *ncfg = NULL;
    int rc = coll_conf_load(&nc, &ncfg, a->config_path);
    if (rc != 0) {
        if (ncfg) {
            log_config_errors(ncfg);
        } else {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s: %s", a->config_path, trib_strerror(rc));
        }
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY,
                 "SIGHUP: %s does not load; the running configuration stays", a->config_path);
        trib_config_free(ncfg);
        return;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "SIGHUP: reloading the sinks from %s (other settings apply at the next start)",
             a->config_path);
    rc = coll_sinks_reload(a->sinks, ncfg, nc.sinks, nc.nsinks);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "SIGHUP: reloading the sinks: %s", trib_strerror(rc));
    }
}

static void controlled_done(void *arg)
{
    app_t *a = arg;
    begin_stop(a, "SIGTERM");
}

static void on_signal(uv_signal_t *h, int signum)
{
    app_t *a = h->data;
    if (signum == SIGHUP) {
        if (a->server && !a->stopping) {
            coll_server_reload_tls(a->server);
        }
        reload(a);
        return;
    }
    if (signum == SIGTERM && a->zk && !a->stopping && !a->draining) {
        /*
         * A broker of a cluster hands its leaderships over first (controlled
         * shutdown); a second SIGTERM, or SIGINT, stops at once.
         */
        a->draining = true;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "SIGTERM: moving leaderships away before stopping");
        coll_zk_controlled_shutdown(a->zk, a->shutdown_timeout_ms, controlled_done, a);
        return;
    }
    begin_stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * Locks <data_dir>/.lock for the life of the process: an OFD write lock on
 * the whole file (released by the kernel when the process ends, however
 * it ends), with the holder's pid written in the file for the next one to
 * name. A second collector on a live directory stops here, before the
 * storage is opened: it creates, truncates and renames nothing. Returns
 * the descriptor to keep open, or -1 with the reason on stderr.
 */
static int lock_data_dir(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/.lock", dir) >= (int)sizeof(path)) {
        fprintf(stderr, "tributary-collector: data directory path too long: %s\n", dir);
        return -1;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        int rc = trib_mkdirs_durable(dir, 0755);
        if (rc != 0) {
            fprintf(stderr, "tributary-collector: cannot create the data directory %s: %s\n", dir,
                    strerror(-rc));
            return -1;
        }
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "tributary-collector: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        int e = errno;
        if (e == EAGAIN || e == EACCES) {
            /* OFD locks do not report their owner's pid: the holder wrote it in the file. */
            char text[32] = "";
            ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
            text[n > 0 ? n : 0] = '\0';
            text[strcspn(text, "\n")] = '\0';
            fprintf(stderr,
                    "tributary-collector: the data directory %s is in use by another collector "
                    "(pid %s, holding the lock %s); stop it first, or give this one another "
                    "--data-dir\n",
                    dir, text[0] ? text : "unknown", path);
        } else {
            fprintf(stderr, "tributary-collector: cannot lock %s: %s\n", path, strerror(e));
        }
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        fprintf(stderr, "tributary-collector: cannot write %s: %s\n", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* An error for the log: its position if it has one, without the "error:" prefix. */
static const char *error_text(const trib_error_t *e, char *buf, size_t n)
{
    if (!e->file) {
        return e->msg;
    }
    trib_error_format(e, buf, n);
    return buf;
}

/* Runs the loop until every handle is closed; closes stragglers (a bug) with a warning. */
static void drain_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) == UV_EBUSY) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "handles left open at exit");
        uv_run(loop, UV_RUN_NOWAIT);
        uv_loop_close(loop);
    }
}

/*
 * --check-config: every TLS listener's certificate, key and CA load (as at
 * a start), or the error at the listener's tls key. 0, or -1 after printing.
 */
static int check_tls_files(const coll_conf_t *conf, trib_config_t *cfg, const char *path)
{
    static coll_listener_config_t lcfg[COLL_CONF_MAX_LISTENERS + 1];
    size_t n = coll_conf_listeners(conf, lcfg);
    size_t first = conf->listen_flag ? 1 : 0;
    int rc = 0;
    for (size_t i = first; i < n; i++) {
        if (!coll_security_tls(lcfg[i].security)) {
            continue;
        }
        trib_error_t err;
        trib_error_clear(&err);
        SSL_CTX *ctx = coll_tls_ctx_new(&lcfg[i], &err);
        if (ctx) {
            SSL_CTX_free(ctx);
            continue;
        }
        char key[64];
        int line = 0, col = 0;
        snprintf(key, sizeof(key), "listeners[%zu].tls", i - first);
        trib_config_position(cfg, key, &line, &col);
        fprintf(stderr, "%s:%d:%d: error: %s\n", path ? path : "(defaults)", line, col, err.msg);
        rc = -1;
    }
    return rc;
}

/*
 * --add-user: one SCRAM credential into DIR/scram-credentials, with the
 * collector stopped (the data directory's lock is taken, so a running
 * collector's store is never overwritten behind its back). The password
 * is the first line of stdin. Exit 0, 1 (I/O) or 2 (usage).
 */
static int add_user_offline(const char *dir, const char *user, const char *mech_name,
                            const char *iter_text)
{
    int mech = trib_scram_mech_parse(mech_name ? mech_name : "SCRAM-SHA-512");
    if (!mech) {
        fprintf(stderr,
                "tributary-collector: --mechanism: expected SCRAM-SHA-256 or SCRAM-SHA-512, "
                "got '%s'\n",
                mech_name);
        return 2;
    }
    long iters = 8192;
    if (iter_text) {
        char *end;
        iters = strtol(iter_text, &end, 10);
        if (!*iter_text || *end || iters < TRIB_SCRAM_MIN_ITERATIONS ||
            iters > TRIB_SCRAM_MAX_ITERATIONS) {
            fprintf(stderr, "tributary-collector: --iterations: expected 4096..16384, got '%s'\n",
                    iter_text);
            return 2;
        }
    }
    size_t ulen = strlen(user);
    if (ulen == 0 || ulen >= TRIB_SCRAM_NAME_MAX) {
        fprintf(stderr, "tributary-collector: --add-user: the name must be 1-255 bytes\n");
        return 2;
    }
    char pw[1024];
    if (!fgets(pw, sizeof(pw), stdin)) {
        fprintf(stderr, "tributary-collector: --add-user: no password on stdin\n");
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    if (!pw[0]) {
        fprintf(stderr, "tributary-collector: --add-user: empty password\n");
        return 2;
    }
    int lock_fd = lock_data_dir(dir);
    if (lock_fd < 0) {
        OPENSSL_cleanse(pw, sizeof(pw));
        return 1;
    }
    int status = 1;
    trib_error_t err;
    trib_error_clear(&err);
    trib_scram_cred_t cred;
    coll_creds_t *creds = coll_creds_new(dir);
    int rc = creds ? coll_creds_load(creds, &err) : trib_error_set(&err, -ENOMEM, "out of memory");
    if (rc != 0) {
        char msg[700];
        fprintf(stderr, "tributary-collector: %s\n", error_text(&err, msg, sizeof(msg)));
    } else if ((rc = trib_scram_cred_from_password(&cred, mech, pw, strlen(pw), NULL, 0,
                                                   (int32_t)iters)) != 0 ||
               (rc = coll_creds_set(creds, user, &cred)) != 0 ||
               (rc = coll_creds_save(creds)) != 0) {
        fprintf(stderr, "tributary-collector: %s/%s: %s\n", dir, COLL_CREDS_FILE,
                trib_strerror(rc));
    } else {
        printf("%s: %s credential for user '%s' written (%ld iterations)\n", dir,
               trib_scram_mech_name(mech), user, iters);
        status = 0;
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(&cred, sizeof(cred));
    coll_creds_free(creds);
    close(lock_fd);
    return status;
}

/* ---- --sinks-only: the sinks of the configuration against another cluster ---- */

static void sinks_only_stopped(void *arg)
{
    app_t *a = arg;
    close_signals(a);
}

static void sinks_only_signal(uv_signal_t *h, int signum)
{
    app_t *a = h->data;
    if (signum == SIGHUP) {
        reload(a);
        return;
    }
    if (a->stopping) {
        return;
    }
    a->stopping = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "%s: stopping the sinks",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
    coll_sinks_stop(a->sinks, sinks_only_stopped, a);
}

/*
 * Runs the sinks of the configuration and nothing else, against the
 * Kafka-protocol cluster at bootstrap (sinks/remote.h): no listener, no
 * storage, no data directory; Ctrl-C or SIGTERM stops them once their
 * batches in flight are done, SIGHUP reloads them.
 */
static int run_sinks_only(const coll_conf_t *conf, trib_config_t *cfg, const char *config_path,
                          const char *bootstrap)
{
    signal(SIGPIPE, SIG_IGN);
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "tributary-collector %s starting: sinks only, cluster %s",
             TRIB_VERSION, bootstrap);
    if (conf->nsinks == 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "--sinks-only: the configuration has no sinks (yet)");
    }
    trib_error_t err;
    trib_error_clear(&err);
    coll_sremote_t *rm = NULL;
    int rc = coll_sremote_open(bootstrap, 10000, &rm, &err);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "--bootstrap %s: %s", bootstrap, err.msg);
        return 1;
    }
    uv_loop_t loop;
    if ((rc = uv_loop_init(&loop)) != 0) {
        fprintf(stderr, "tributary-collector: %s\n", uv_strerror(rc));
        coll_sremote_close(rm);
        return 1;
    }
    app_t app;
    memset(&app, 0, sizeof(app));
    app.loop = &loop;
    app.config_path = config_path;
    coll_sinks_env_t env = {.remote = rm};
    rc = coll_sinks_start(&loop, &env, cfg, conf->sinks, conf->nsinks, &app.sinks, &err);
    uv_signal_init(&loop, &app.sigterm);
    uv_signal_init(&loop, &app.sigint);
    uv_signal_init(&loop, &app.sighup);
    app.sigterm.data = app.sigint.data = app.sighup.data = &app;
    if (rc != 0) {
        char msg[700];
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "starting the sinks: %s",
                 error_text(&err, msg, sizeof(msg)));
        app.status = 1;
        app.stopping = true;
        if (app.sinks) {
            coll_sinks_stop(app.sinks, sinks_only_stopped, &app);
        } else {
            close_signals(&app);
        }
    } else {
        uv_signal_start(&app.sigterm, sinks_only_signal, SIGTERM);
        uv_signal_start(&app.sigint, sinks_only_signal, SIGINT);
        uv_signal_start(&app.sighup, sinks_only_signal, SIGHUP);
    }
    drain_loop(&loop);
    coll_sinks_free(app.sinks);
    coll_sremote_close(rm);
    if (app.status == 0) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "stopped");
    }
    return app.status;
}

int main(int argc, char **argv)
{
    enum {
        OPT_LISTEN = 256,
        OPT_ADVERTISE,
        OPT_DATA_DIR,
        OPT_NODE_ID,
        OPT_ZOOKEEPER,
        OPT_METRICS,
        OPT_CHECK,
        OPT_READY,
        OPT_LOG_LEVEL,
        OPT_LOG_FORMAT,
        OPT_CONNECT,
        OPT_LIST_SINKS,
        OPT_DESCRIBE_SINK,
        OPT_ADD_USER,
        OPT_MECHANISM,
        OPT_ITERATIONS,
        OPT_SINKS_ONLY,
        OPT_BOOTSTRAP,
    };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"advertise", required_argument, NULL, OPT_ADVERTISE},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"zookeeper", required_argument, NULL, OPT_ZOOKEEPER},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"sinks-only", no_argument, NULL, OPT_SINKS_ONLY},
        {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"ready-file", required_argument, NULL, OPT_READY},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"connect", no_argument, NULL, OPT_CONNECT},
        {"list-sinks", no_argument, NULL, OPT_LIST_SINKS},
        {"add-user", required_argument, NULL, OPT_ADD_USER},
        {"mechanism", required_argument, NULL, OPT_MECHANISM},
        {"iterations", required_argument, NULL, OPT_ITERATIONS},
        {"describe-sink", required_argument, NULL, OPT_DESCRIBE_SINK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen = NULL, *advertise = NULL, *data_dir = NULL;
    const char *add_user = NULL, *mechanism = NULL, *iterations = NULL;
    const char *zookeeper = NULL;
    const char *node_id = NULL, *metrics = NULL, *ready_file = NULL, *log_level = NULL;
    const char *log_format = NULL;
    bool check = false, connect = false, sinks_only = false;
    const char *bootstrap = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            trib_version_print(stdout, "tributary-collector");
            printf("  %s\n  libuv %s\n", OpenSSL_version(OPENSSL_VERSION), uv_version_string());
            return 0;
        case 'c':
            config_path = optarg;
            break;
        case OPT_LISTEN:
            listen = optarg;
            break;
        case OPT_ADVERTISE:
            advertise = optarg;
            break;
        case OPT_DATA_DIR:
            data_dir = optarg;
            break;
        case OPT_NODE_ID:
            node_id = optarg;
            break;
        case OPT_ZOOKEEPER:
            zookeeper = optarg;
            break;
        case OPT_METRICS:
            metrics = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_READY:
            ready_file = optarg;
            break;
        case OPT_LOG_LEVEL:
            log_level = optarg;
            break;
        case OPT_LOG_FORMAT:
            log_format = optarg;
            break;
        case OPT_CONNECT:
            connect = true;
            break;
        case OPT_SINKS_ONLY:
            sinks_only = true;
            break;
        case OPT_BOOTSTRAP:
            bootstrap = optarg;
            break;
        case OPT_ADD_USER:
            add_user = optarg;
            break;
        case OPT_MECHANISM:
            mechanism = optarg;
            break;
        case OPT_ITERATIONS:
            iterations = optarg;
            break;
        case OPT_LIST_SINKS:
            return coll_sinks_list(stdout) == 0 ? 0 : 1;
        case OPT_DESCRIBE_SINK:
            return coll_sinks_describe(stdout, stderr, optarg) == 0 ? 0 : 2;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tributary-collector: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (sinks_only != (bootstrap != NULL)) {
        fprintf(stderr, "tributary-collector: --sinks-only and --bootstrap go together\n");
        return 2;
    }
    if (connect && !check) {
        fprintf(stderr, "tributary-collector: --connect goes with --check-config\n");
        return 2;
    }
    if ((mechanism || iterations) && !add_user) {
        fprintf(stderr, "tributary-collector: --mechanism and --iterations go with --add-user\n");
        return 2;
    }

    /* ---- configuration ---- */
    coll_conf_t conf;
    trib_config_t *cfg = NULL;
    int rc = coll_conf_load(&conf, &cfg, config_path);
    if (rc != 0) {
        if (cfg) {
            trib_config_print_errors(cfg, stderr);
        } else {
            fprintf(stderr, "tributary-collector: %s\n", trib_strerror(rc));
        }
        trib_config_free(cfg);
        return 2;
    }
    static char listen_host[256], advertise_host[256], metrics_host[256];
    uint16_t port;
    const char *why;
    bool bad = false;
    if (listen) {
        if (trib_config_parse_address(listen, listen_host, sizeof(listen_host), &port, &why) != 0) {
            fprintf(stderr, "tributary-collector: --listen: expected HOST:PORT, got '%s' (%s)\n",
                    listen, why);
            bad = true;
        } else {
            conf.listen.text = listen;
            conf.listen.host = listen_host;
            conf.listen.port = port;
            conf.listen_flag = true;
        }
    }
    if (advertise) {
        if (trib_config_parse_address(advertise, advertise_host, sizeof(advertise_host), &port,
                                      &why) != 0 ||
            !advertise_host[0]) {
            fprintf(stderr, "tributary-collector: --advertise: expected HOST:PORT, got '%s'\n",
                    advertise);
            bad = true;
        } else {
            conf.advertise.text = advertise;
            conf.advertise.host = advertise_host;
            conf.advertise.port = port;
        }
    }
    if (metrics) {
        if (strcmp(metrics, "off") == 0) {
            conf.metrics.enabled = false;
        } else if (trib_config_parse_address(metrics, metrics_host, sizeof(metrics_host), &port,
                                             &why) != 0) {
            fprintf(stderr,
                    "tributary-collector: --metrics: expected HOST:PORT or off, got '%s' (%s)\n",
                    metrics, why);
            bad = true;
        } else {
            conf.metrics.enabled = true;
            conf.metrics.listen.text = metrics;
            conf.metrics.listen.host = metrics_host;
            conf.metrics.listen.port = port;
        }
    }
    if (data_dir) {
        if (!*data_dir) {
            fprintf(stderr, "tributary-collector: --data-dir: empty\n");
            bad = true;
        }
        conf.data_dir = data_dir;
    }
    if (node_id) {
        char *end;
        errno = 0;
        long long v = strtoll(node_id, &end, 10);
        if (!*node_id || *end || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "tributary-collector: --node-id: expected 0..2147483647, got '%s'\n",
                    node_id);
            bad = true;
        }
        conf.node_id = v;
    }
    if (zookeeper) {
        if (coll_zk_check_connect(zookeeper, &why) != 0) {
            fprintf(stderr, "tributary-collector: --zookeeper: %s, got '%s'\n", why, zookeeper);
            bad = true;
        } else if (!coll_zk_available()) {
            fprintf(stderr, "tributary-collector: --zookeeper: this collector was built without "
                            "the ZooKeeper C client (libzookeeper-st-dev)\n");
            bad = true;
        }
        conf.cluster.backend = COLL_BACKEND_ZOOKEEPER;
        conf.cluster.zookeeper = zookeeper;
    }
    if (log_level) {
        int l = trib_log_level_parse(log_level);
        if (l < 0) {
            fprintf(stderr, "tributary-collector: --log-level: unknown level '%s'\n", log_level);
            bad = true;
        }
        conf.log.level = l;
    }
    if (log_format) {
        if (strcmp(log_format, "text") == 0) {
            conf.log.format = TRIB_LOG_TEXT;
        } else if (strcmp(log_format, "json") == 0) {
            conf.log.format = TRIB_LOG_JSON;
        } else {
            fprintf(stderr, "tributary-collector: --log-format: expected text or json, got '%s'\n",
                    log_format);
            bad = true;
        }
    }
    if (bad) {
        trib_config_free(cfg);
        return 2;
    }
    if (add_user) {
        rc = add_user_offline(conf.data_dir, add_user, mechanism, iterations);
        trib_config_free(cfg);
        return rc;
    }
    if (check && check_tls_files(&conf, cfg, config_path) != 0) {
        trib_config_free(cfg);
        return 2;
    }
    if (check && connect && conf.nsinks > 0) {
        trib_log_set_level((trib_log_level_t)conf.log.level);
        int failed = coll_sinks_probe(stdout, cfg, conf.sinks, conf.nsinks);
        trib_config_free(cfg);
        if (failed != 0) {
            fprintf(stderr, "tributary-collector: %s: %d sink%s cannot deliver (see above)\n",
                    config_path ? config_path : "(defaults)", failed < 0 ? 1 : failed,
                    failed == 1 ? "" : "s");
            return 1;
        }
        printf("%s: configuration OK, every sink connected\n",
               config_path ? config_path : "(defaults)");
        return 0;
    }
    if (check) {
        printf("%s: configuration OK\n", config_path ? config_path : "(defaults)");
        trib_config_free(cfg);
        return 0;
    }
    if (sinks_only) {
        trib_log_set_level((trib_log_level_t)conf.log.level);
        trib_log_set_format((trib_log_format_t)conf.log.format);
        rc = run_sinks_only(&conf, cfg, config_path, bootstrap);
        trib_config_free(cfg);
        return rc;
    }
    trib_log_set_level((trib_log_level_t)conf.log.level);
    trib_log_set_format((trib_log_format_t)conf.log.format);
    int lock_fd = lock_data_dir(conf.data_dir);
    if (lock_fd < 0) {
        trib_config_free(cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "tributary-collector %s starting: node %" PRId64 ", data %s",
             TRIB_VERSION, conf.node_id, conf.data_dir);

    /* ---- storage, cluster, server ---- */
    app_t app;
    memset(&app, 0, sizeof(app));
    uv_loop_t loop;
    if ((rc = uv_loop_init(&loop)) != 0) {
        fprintf(stderr, "tributary-collector: %s\n", uv_strerror(rc));
        trib_config_free(cfg);
        return 1;
    }
    app.loop = &loop;
    app.config_path = config_path;
    app.shutdown_timeout_ms = (uint32_t)conf.server.shutdown_timeout;
    coll_storage_config_t scfg;
    coll_conf_to_storage(&conf, &scfg);
    trib_error_t err;
    trib_error_clear(&err);
    rc = coll_storage_open(&loop, &scfg, &app.st, &err);
    if (rc != 0) {
        char msg[700];
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "opening the storage: %s",
                 error_text(&err, msg, sizeof(msg)));
        app.st = NULL;
        drain_loop(&loop);
        trib_config_free(cfg);
        return 1;
    }
    coll_cluster_config_t ccfg;
    coll_conf_to_cluster(&conf, &ccfg);
    rc = coll_cluster_open(app.st, &ccfg, &app.cluster, &err);
    if (rc != 0) {
        char msg[700];
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "loading the cluster metadata: %s",
                 error_text(&err, msg, sizeof(msg)));
        /* A data directory of another node id (or a metadata file that does not
         * parse) stays so until someone changes the configuration or the
         * directory: status 2, which the unit does not restart on. */
        app.status = (rc == TRIB_ECONFIG || err.code == TRIB_ECONFIG) ? 2 : 1;
    } else {
        coll_server_config_t svc;
        coll_conf_to_server(&conf, &svc);
        static coll_listener_config_t lcfg[COLL_CONF_MAX_LISTENERS + 1];
        svc.nlisteners = coll_conf_listeners(&conf, lcfg);
        svc.listeners = lcfg;
        svc.ready_file = ready_file;
        rc = coll_server_start(&loop, &svc, app.cluster, app.st, &app.server, &err);
        if (rc != 0) {
            char msg[700];
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s", error_text(&err, msg, sizeof(msg)));
            app.status = 1;
        } else {
            /* The host runs without sinks too: a reload (SIGHUP) may add some. */
            coll_sinks_env_t env = {
                .cluster = coll_server_cluster(app.server),
                .groups = coll_server_groups(app.server),
                .writable = coll_prt_led_here,
                .append = coll_prt_append_records,
            };
            static char peers[300];
            if (conf.cluster.backend == COLL_BACKEND_ZOOKEEPER) {
                /* On a cluster the sinks reach their group's coordinator and their
                 * dead-letter topic through this broker's own (advertised) address. */
                const coll_cluster_config_t *cc = coll_cluster_config(app.cluster);
                snprintf(peers, sizeof(peers), "%s:%d", cc->host, (int)cc->port);
                env.peers = peers;
            }
            rc = coll_sinks_start(&loop, &env, cfg, conf.sinks, conf.nsinks, &app.sinks, &err);
            if (rc != 0) {
                char msg[700];
                TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "starting the sinks: %s",
                         error_text(&err, msg, sizeof(msg)));
                app.status = 1;
            } else {
                coll_server_set_health_hook(app.server, sinks_health, app.sinks);
                coll_server_set_http_admin(app.server, sinks_http, app.sinks);
                coll_server_set_console_sinks(app.server, app.sinks);
            }
        }
        if (app.status == 0) {
            coll_server_set_metrics_hook(app.server, extra_metrics, &app);
        }
        if (app.status == 0 && conf.cluster.backend == COLL_BACKEND_ZOOKEEPER) {
            /* Registered once the listener's address is known (port 0 picks one). */
            const coll_cluster_config_t *cc = coll_cluster_config(app.cluster);
            coll_zk_config_t zc = {
                .connect = conf.cluster.zookeeper,
                .session_timeout_ms = (uint32_t)conf.cluster.session_timeout,
                .leader_rebalance_ms =
                    conf.cluster.auto_leader_rebalance
                        ? (uint32_t)conf.cluster.leader_imbalance_check_interval_s * 1000u
                        : 0,
                .node_id = (int32_t)conf.node_id,
                .host = cc->host,
                .port = cc->port,
                .rack = coll_conf_rack(&conf),
                .cluster_id = coll_cluster_id(app.cluster),
                .cluster = app.cluster,
                .fatal = zk_fatal,
                .arg = &app,
            };
            rc = coll_zk_start(&loop, &zc, &app.zk, &err);
            if (rc != 0) {
                char msg[700];
                TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "starting the ZooKeeper session: %s",
                         error_text(&err, msg, sizeof(msg)));
                app.status = 1;
            } else {
                coll_cluster_view_t view;
                coll_zk_view(app.zk, &view);
                coll_cluster_set_view(app.cluster, &view);
            }
        }
    }
    uv_signal_init(&loop, &app.sigterm);
    uv_signal_init(&loop, &app.sigint);
    uv_signal_init(&loop, &app.sighup);
    app.sigterm.data = app.sigint.data = app.sighup.data = &app;
    if (app.status != 0) {
        begin_stop(&app, "startup failed");
    } else {
        uv_signal_start(&app.sigterm, on_signal, SIGTERM);
        uv_signal_start(&app.sigint, on_signal, SIGINT);
        uv_signal_start(&app.sighup, on_signal, SIGHUP);
    }
    drain_loop(&loop);
    coll_sinks_free(app.sinks);
    coll_server_free(app.server);
    coll_cluster_free(app.cluster);
    coll_zk_free(app.zk);
    trib_config_free(cfg);
    if (app.status == 0) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "stopped");
    }
    close(lock_fd); /* the lock ends here, after the storage is closed */
    return app.status;
}
