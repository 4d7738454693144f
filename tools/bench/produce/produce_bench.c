/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-bench-produce: a librdkafka producer and consumer benchmark in
 * the manner of kafka-producer-perf-test, with the broker's cost beside it.
 *
 * For each record size (default 100 B and 1 KiB) and acks setting (1 and
 * all) it produces N records into a fresh 6-partition topic and reports
 * records/s, MB/s and the send-to-acknowledgement latency p50/p99/p999
 * (as perf-test: from rd_kafka_produce() to the delivery report), then
 * consumes the topic back (manual assignment) for a consumer figure. For
 * each pass it reads the collector's CPU seconds (the sum of its threads'
 * nanoseconds in /proc/<pid>/task/<tid>/schedstat, or utime + stime from
 * /proc/<pid>/stat in clock ticks where there is no schedstat) and peak RSS (VmHWM from
 * /proc/<pid>/status, reset before each pass through /proc/<pid>/clear_refs when allowed), and the
 * benchmark's own CPU, so one can tell whether the client or the broker
 * was the bottleneck. A loopback TCP baseline (one socket, 1 MiB writes,
 * a reader thread discarding) is measured in the same run. Each pass runs
 * --runs times and the median is printed with the individual runs.
 *
 * The topic is consumed twice: by librdkafka, and by the CLI's consumer
 * (`tributary consume --from-beginning --max N`, output discarded; --cli
 * PATH, by default the `tributary` beside --collector). For each record
 * size a summary line sets the consumers' MB/s and the collector's
 * CPU-seconds per GB served beside the produce figure and the baseline.
 *
 *   tributary-bench-produce --collector build/bin/tributary-collector
 *       starts a collector on 127.0.0.1 with a temporary data dir
 *   tributary-bench-produce --bootstrap HOST:PORT[,HOST:PORT...]
 *                           [--collector-pid PID[,PID...]]
 *       uses a running broker or cluster (any Kafka; collector figures need
 *       the pids: CPU seconds and peak RSS are summed over them)
 *   -X security.protocol=ssl -X ssl.ca.location=ca.pem ...
 *       librdkafka properties for every client (a TLS or SASL listener;
 *       the CLI pass speaks plaintext only: add --no-cli)
 *
 * On a cluster, --replication-factors 1,3 runs every pass once per
 * replication factor, in the same run (the topic of each pass is created
 * with that factor, and with --min-insync N also min.insync.replicas N, or
 * the factor when it is smaller),
 * and a closing line sets each factor's produce MB/s beside the first
 * factor's. A topic that cannot be created with its factor is reported and
 * its passes left out (exit status 1); it is never auto-created instead.
 * tributary-bench-cluster (tools/bench/cluster) runs this against a local
 * cluster and a single-node collector in one run.
 *
 * It prints figures; it is not a test and asserts nothing.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define MAX_RUNS 15
#define PARTITIONS 6
#define MAX_PIDS 16
#define MAX_RFS 4

typedef struct opts {
    const char *bootstrap;
    const char *collector;
    pid_t collector_pid; /* the first of pids; 0 when none */
    pid_t pids[MAX_PIDS];
    int npids;
    int rfs[MAX_RFS];
    int nrfs;
    int min_insync;     /* 0: the broker's default */
    long records_small; /* records at 100 B */
    long bytes_large;   /* bytes per 1 KiB pass */
    int runs;
    bool skip_consume;
    bool skip_baseline;
    const char *cli; /* tributary, for the CLI consumer pass; NULL: none */
    bool skip_cli;
    bool delete_topics;
    int sizes[4];
    int nsizes;
    int acks[2];
    int nacks;
} opts_t;

typedef struct sample {
    double secs;
    double rec_s;
    double mb_s;
    double p50, p99, p999; /* ms */
    double coll_cpu;       /* collector CPU seconds */
    double coll_hwm_mb;    /* collector peak RSS, MiB */
    double self_cpu;       /* this process's CPU seconds */
    long errors;
} sample_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/*
 * CPU seconds of a process's threads from /proc/<pid>/task/<tid>/schedstat
 * (nanoseconds on the CPU): utime + stime come in clock ticks, 10 ms, which
 * is 0.02 CPU-s per GB on a 512 MB pass. -1 when unreadable (then
 * proc_cpu falls back to the ticks). Threads that exited are not counted.
 */
static double proc_cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) {
        return -1;
    }
    double sum = 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char sp[300];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(sp, "r");
        unsigned long long ns;
        if (f && fscanf(f, "%llu", &ns) == 1) {
            sum += (double)ns / 1e9;
            n++;
        }
        if (f) {
            fclose(f);
        }
    }
    closedir(d);
    return n > 0 ? sum : -1;
}

/* CPU seconds of a process (all its threads); -1 if unreadable. */
static double proc_cpu(pid_t pid)
{
    if (pid <= 0) {
        return -1;
    }
    double ns = proc_cpu_ns(pid);
    if (ns >= 0) {
        return ns;
    }
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) {
        return -1;
    }
    unsigned long utime = 0, stime = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
        return -1;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* VmHWM in MiB; -1 if unreadable. */
static double proc_hwm_mb(pid_t pid)
{
    if (pid <= 0) {
        return -1;
    }
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    double mb = -1;
    while (fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) {
            mb = kb / 1024.0;
        }
    }
    fclose(f);
    return mb;
}

/* Resets the peak RSS so the next pass's VmHWM is its own (Linux >= 4.0). */
static bool proc_reset_hwm(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    FILE *f = fopen(path, "w");
    if (!f) {
        return false;
    }
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

/* The collectors' CPU seconds, summed; -1 when there is none or one is unreadable. */
static double colls_cpu(const struct opts *o)
{
    double sum = 0;
    for (int i = 0; i < o->npids; i++) {
        double v = proc_cpu(o->pids[i]);
        if (v < 0) {
            return -1;
        }
        sum += v;
    }
    return o->npids ? sum : -1;
}

/* The collectors' peak RSS in MiB, summed; -1 as above. */
static double colls_hwm_mb(const struct opts *o)
{
    double sum = 0;
    for (int i = 0; i < o->npids; i++) {
        double v = proc_hwm_mb(o->pids[i]);
        if (v < 0) {
            return -1;
        }
        sum += v;
    }
    return o->npids ? sum : -1;
}

static void colls_reset_hwm(const struct opts *o)
{
    for (int i = 0; i < o->npids; i++) {
        proc_reset_hwm(o->pids[i]);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    double tmp[MAX_RUNS];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* ---- loopback TCP baseline ----------------------------------------------------- */

static void *sink_main(void *arg)
{
    int fd = accept(*(int *)arg, NULL, NULL);
    static char buf[1 << 20];
    while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {
    }
    if (fd >= 0) {
        close(fd);
    }
    return NULL;
}

/* MB/s of one TCP stream over 127.0.0.1 moving `total` bytes. */
static double loopback_mb_s(size_t total)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
        return -1;
    }
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &lfd);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        close(lfd);
        return -1;
    }
    static char buf[1 << 20];
    memset(buf, 'x', sizeof buf);
    double t0 = now_s();
    size_t sent = 0;
    while (sent < total) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        sent += (size_t)n;
    }
    close(fd);
    pthread_join(t, NULL);
    double secs = now_s() - t0;
    close(lfd);
    return (double)sent / 1e6 / secs;
}

/* ---- the collector ---------------------------------------------------------------- */

static char tmpdir[256];

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static pid_t start_collector(const char *path, char *bootstrap, size_t len)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/trib-bench.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    char data[300], ready[300], logp[300];
    snprintf(data, sizeof data, "%s/data", tmpdir);
    snprintf(ready, sizeof ready, "%s/ready", tmpdir);
    snprintf(logp, sizeof logp, "%s/collector.log", tmpdir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *lf = freopen(logp, "w", stdout);
        (void)lf;
        dup2(1, 2);
        execl(path, path, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--data-dir", data,
              "--ready-file", ready, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* at most 30 s */
        FILE *f = fopen(ready, "r");
        char line[300];
        int lines = 0;
        bootstrap[0] = '\0';
        while (f && fgets(line, sizeof line, f)) {
            char k[32], v[256];
            lines++;
            if (sscanf(line, "%31s %255s", k, v) == 2 && !strcmp(k, "kafka")) {
                snprintf(bootstrap, len, "%s", v);
            }
        }
        if (f) {
            fclose(f);
        }
        if (lines >= 2 && bootstrap[0]) {
            return pid;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "collector exited early (see %s)\n", logp);
            return -1;
        }
        usleep(50000);
    }
    fprintf(stderr, "collector not ready within 30 s\n");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void stop_collector(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 600 && waitpid(pid, &st, WNOHANG) == 0; i++) {
        usleep(50000);
    }
    if (kill(pid, 0) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- producing -------------------------------------------------------------------- */

typedef struct prod_ctx {
    double *sent_at; /* per record, seconds */
    double *lat_ms;
    long acked;
    long errors;
    char first_error[256];
} prod_ctx_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    prod_ctx_t *c = opaque;
    if (m->err) {
        if (!c->errors++) {
            snprintf(c->first_error, sizeof c->first_error, "%s", rd_kafka_err2str(m->err));
        }
        return;
    }
    long i = (long)(intptr_t)m->_private;
    c->lat_ms[c->acked++] = (now_s() - c->sent_at[i]) * 1000.0;
}

/* -X key=value: librdkafka properties for every client (TLS, SASL). */
#define MAX_PROPS 16
static char *props[MAX_PROPS];
static int nprops;

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof err);
    rd_kafka_conf_set(conf, "client.id", "tributary-bench", err, sizeof err);
    for (int i = 0; i < nprops; i++) {
        char *eq = strchr(props[i], '=');
        *eq = '\0';
        if (rd_kafka_conf_set(conf, props[i], eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "tributary-bench-produce: -X %s: %s\n", props[i], err);
            exit(2);
        }
        *eq = '=';
    }
    return conf;
}

/*
 * Creates topic with PARTITIONS partitions, replication factor rf and, when
 * min_insync > 0, min.insync.replicas = min(min_insync, rf) (so an RF 1
 * topic beside an RF 3 one still takes acks=all). 0, or -1 after printing why.
 */
static int create_topic(const char *bootstrap, const char *topic, int rf, int min_insync)
{
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(bootstrap), err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return -1;
    }
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, PARTITIONS, rf, err, sizeof err);
    if (!nt) {
        fprintf(stderr, "CreateTopics %s: %s\n", topic, err);
        rd_kafka_destroy(rk);
        return -1;
    }
    if (min_insync > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", min_insync < rf ? min_insync : rf);
        rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", v);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    int rc = -1;
    if (ev) {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        if (rd_kafka_event_error(ev)) {
            fprintf(stderr, "CreateTopics: %s\n", rd_kafka_event_error_string(ev));
        } else if (n == 1 && rd_kafka_topic_result_error(tr[0])) {
            fprintf(stderr, "CreateTopics %s: %s\n", topic,
                    rd_kafka_topic_result_error_string(tr[0]));
        } else {
            rc = 0;
        }
        rd_kafka_event_destroy(ev);
    } else {
        fprintf(stderr, "CreateTopics: no answer in 10 s\n");
    }
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/*
 * Deletes topic (--delete-topics), so that the next pass writes into page
 * cache the deleted files give back instead of growing into memory the
 * machine has not touched yet. 0, or -1 after printing why.
 */
static int delete_topic(const char *bootstrap, const char *topic)
{
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(bootstrap), err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return -1;
    }
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = -1;
    if (ev) {
        const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_DeleteTopics_result_topics(res, &n) : NULL;
        if (rd_kafka_event_error(ev)) {
            fprintf(stderr, "DeleteTopics: %s\n", rd_kafka_event_error_string(ev));
        } else if (n == 1 && rd_kafka_topic_result_error(tr[0])) {
            fprintf(stderr, "DeleteTopics %s: %s\n", topic,
                    rd_kafka_topic_result_error_string(tr[0]));
        } else {
            rc = 0;
        }
        rd_kafka_event_destroy(ev);
    } else {
        fprintf(stderr, "DeleteTopics: no answer in 30 s\n");
    }
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static int produce_pass(const opts_t *o, const char *topic, int size, int acks, long n, sample_t *s)
{
    char err[256], v[32];
    prod_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.sent_at = malloc((size_t)n * sizeof *ctx.sent_at);
    ctx.lat_ms = malloc((size_t)n * sizeof *ctx.lat_ms);
    char *payload = malloc((size_t)size);
    if (!ctx.sent_at || !ctx.lat_ms || !payload) {
        return -1;
    }
    for (int i = 0; i < size; i++) {
        payload[i] = (char)('a' + (i * 7 + i / 13) % 26); /* compressible, but compression is off */
    }
    rd_kafka_conf_t *conf = base_conf(o->bootstrap);
    snprintf(v, sizeof v, "%d", acks);
    rd_kafka_conf_set(conf, "acks", v, err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
    rd_kafka_conf_set(conf, "batch.size", "1000000", err, sizeof err);
    rd_kafka_conf_set(conf, "batch.num.messages", "100000", err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "2000000", err, sizeof err);
    rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", "1048576", err, sizeof err);
    rd_kafka_conf_set(conf, "compression.type", "none", err, sizeof err);
    rd_kafka_conf_set_opaque(conf, &ctx);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return -1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    /* Connect and learn the leaders before the clock starts. */
    const struct rd_kafka_metadata *md;
    rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    colls_reset_hwm(o);
    double cpu0 = colls_cpu(o), self0 = self_cpu(), t0 = now_s();
    for (long i = 0; i < n; i++) {
        ctx.sent_at[i] = now_s();
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                                (size_t)size, NULL, 0, (void *)(intptr_t)i) == -1) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
            }
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0) {
            rd_kafka_poll(rk, 0);
        }
    }
    rd_kafka_flush(rk, 120000);
    double secs = now_s() - t0;
    s->coll_cpu = cpu0 >= 0 ? colls_cpu(o) - cpu0 : -1;
    s->coll_hwm_mb = colls_hwm_mb(o);
    s->self_cpu = self_cpu() - self0;
    s->secs = secs;
    s->rec_s = (double)ctx.acked / secs;
    s->mb_s = (double)ctx.acked * size / 1e6 / secs;
    s->errors = ctx.errors + (n - ctx.acked - ctx.errors);
    if (ctx.errors) {
        fprintf(stderr, "  %ld delivery errors, first: %s\n", ctx.errors, ctx.first_error);
    }
    qsort(ctx.lat_ms, (size_t)ctx.acked, sizeof *ctx.lat_ms, cmp_double);
    if (ctx.acked > 0) {
        s->p50 = ctx.lat_ms[(long)(ctx.acked * 0.5)];
        s->p99 = ctx.lat_ms[(long)(ctx.acked * 0.99)];
        s->p999 = ctx.lat_ms[(long)(ctx.acked * 0.999)];
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(ctx.sent_at);
    free(ctx.lat_ms);
    free(payload);
    return 0;
}

/* Sets a consumer property unless -X gave it. */
static void consumer_default(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    size_t kl = strlen(key);
    for (int i = 0; i < nprops; i++) {
        if (!strncmp(props[i], key, kl) && props[i][kl] == '=') {
            return;
        }
    }
    char err[256];
    rd_kafka_conf_set(conf, key, value, err, sizeof err);
}

static int consume_pass(const opts_t *o, const char *topic, long n, sample_t *s)
{
    char err[256];
    rd_kafka_conf_t *conf = base_conf(o->bootstrap);
    rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof err);
    /*
     * -X max.partition.fetch.bytes=1048576 (librdkafka's default) gives 6 MiB
     * answers: with 8 MiB a 6-partition answer is 48 MiB, above glibc's largest
     * mmap threshold (32 MiB), so librdkafka maps and zero-fills fresh pages for
     * every answer, which is then most of the consumer's CPU.
     */
    consumer_default(conf, "fetch.max.bytes", "52428800");
    consumer_default(conf, "max.partition.fetch.bytes", "8388608");
    consumer_default(conf, "queued.max.messages.kbytes", "1048576");
    /*
     * librdkafka stops fetching a partition once 100,000 messages wait in its
     * queue (queued.min.messages) and resumes only after a backoff: with 100 B
     * records that, not the broker, capped the consumer at ~400k records/s.
     */
    consumer_default(conf, "queued.min.messages", "10000000");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return -1;
    }
    /* Every partition the topic really has (auto-created topics may differ). */
    int parts = PARTITIONS;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && md &&
        md->topic_cnt == 1 && md->topics[0].partition_cnt > 0) {
        parts = md->topics[0].partition_cnt;
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    colls_reset_hwm(o);
    /*
     * The simple (legacy) consumer, as kcat -C: every partition from the
     * beginning into one queue, no group; batched polling.
     */
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    double cpu0 = colls_cpu(o), self0 = self_cpu(), t0 = now_s();
    for (int p = 0; p < parts; p++) {
        rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q);
    }
    rd_kafka_message_t *msgs[10000];
    long got = 0;
    size_t bytes = 0;
    double last = now_s();
    while (got < n && now_s() - last < 30) {
        /* What is there now; else block briefly for one (a batch call waits to fill up). */
        ssize_t k = rd_kafka_consume_batch_queue(q, 0, msgs, 10000);
        if (k == 0) {
            msgs[0] = rd_kafka_consume_queue(q, 100);
            k = msgs[0] ? 1 : 0;
        }
        for (ssize_t i = 0; i < k; i++) {
            if (!msgs[i]->err) {
                got++;
                bytes += msgs[i]->len;
                last = now_s();
            }
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    double secs = now_s() - t0;
    s->coll_cpu = cpu0 >= 0 ? colls_cpu(o) - cpu0 : -1;
    s->coll_hwm_mb = colls_hwm_mb(o);
    s->self_cpu = self_cpu() - self0;
    s->secs = secs;
    s->rec_s = (double)got / secs;
    s->mb_s = (double)bytes / 1e6 / secs;
    s->errors = n - got;
    for (int p = 0; p < parts; p++) {
        rd_kafka_consume_stop(rkt, p);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return 0;
}

/*
 * The CLI's consumer reads the n records of the topic from the beginning,
 * its output discarded; bench CPU is the CLI's own.
 */
static int cli_pass(const opts_t *o, const char *topic, long n, int size, sample_t *s)
{
    char max[32];
    snprintf(max, sizeof max, "%ld", n);
    double cpu0 = colls_cpu(o), t0 = now_s();
    colls_reset_hwm(o);
    fflush(stdout); /* or the child's freopen() writes our buffered lines again */
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) {
            _exit(127);
        }
        execl(o->cli, o->cli, "--bootstrap", o->bootstrap, "consume", "--topic", topic,
              "--from-beginning", "--max", max, "--timeout-ms", "30000", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) != pid) {
        return -1;
    }
    double secs = now_s() - t0;
    s->coll_cpu = cpu0 >= 0 ? colls_cpu(o) - cpu0 : -1;
    s->coll_hwm_mb = colls_hwm_mb(o);
    s->self_cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                  (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    s->secs = secs;
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    s->rec_s = ok ? (double)n / secs : 0;
    s->mb_s = ok ? (double)n * size / 1e6 / secs : 0;
    s->errors = ok ? 0 : n;
    if (!ok) {
        fprintf(stderr, "  %s consume exited with status %d\n", o->cli,
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    return 0;
}

/* ---- report ---------------------------------------------------------------------- */

static void print_header(void)
{
    printf("%-22s %9s %11s %8s %8s %8s %8s %9s %9s %8s %9s %6s\n", "pass", "records", "records/s",
           "MB/s", "p50 ms", "p99 ms", "p999 ms", "coll CPUs", "CPUs/GB", "coll MiB", "bench CPUs",
           "errors");
}

static void print_sample(const char *name, long n, int size, const sample_t *s)
{
    double gb = (double)n * size / 1e9;
    printf("%-22s %9ld %11.0f %8.1f %8.2f %8.2f %8.2f %9.2f %9.2f %8.1f %9.2f %6ld\n", name, n,
           s->rec_s, s->mb_s, s->p50, s->p99, s->p999, s->coll_cpu,
           s->coll_cpu >= 0 ? s->coll_cpu / gb : -1, s->coll_hwm_mb, s->self_cpu, s->errors);
}

static sample_t report(const char *name, long n, int size, sample_t *runs, int nruns)
{
    char label[64];
    for (int r = 0; r < nruns; r++) {
        snprintf(label, sizeof label, "  %s #%d", name, r + 1);
        print_sample(label, n, size, &runs[r]);
    }
    double v[MAX_RUNS];
    sample_t med;
    memset(&med, 0, sizeof med);
#define MED(field)                                                                                 \
    for (int r = 0; r < nruns; r++) {                                                              \
        v[r] = runs[r].field;                                                                      \
    }                                                                                              \
    med.field = median(v, nruns)
    MED(rec_s);
    MED(mb_s);
    MED(p50);
    MED(p99);
    MED(p999);
    MED(coll_cpu);
    MED(coll_hwm_mb);
    MED(self_cpu);
#undef MED
    for (int r = 0; r < nruns; r++) {
        med.errors += runs[r].errors;
    }
    snprintf(label, sizeof label, "%s median", name);
    print_sample(label, n, size, &med);
    fflush(stdout);
    return med;
}

/* CPU-seconds of the collector per GB of record data (-1 unknown). */
static double cpu_per_gb(const sample_t *s, long n, int size)
{
    return s->coll_cpu >= 0 ? s->coll_cpu / ((double)n * size / 1e9) : -1;
}

static void usage(FILE *out)
{
    fputs("Usage: tributary-bench-produce (--collector PATH | --bootstrap HOST:PORT\n"
          "                              [--collector-pid PID]) [--runs N]\n"
          "                              [--records N] [--mbytes N] [--sizes 100,1024]\n"
          "                              [--acks 1,all] [--no-consume] [--no-baseline]\n"
          "                              [--cli PATH | --no-cli] [-X KEY=VALUE]...\n"
          "                              [--replication-factors 1,3] [--min-insync N]\n"
          "                              [--delete-topics]\n"
          "\n"
          "--bootstrap takes a list (HOST:PORT,HOST:PORT...) and --collector-pid a list\n"
          "of pids whose CPU seconds and peak RSS are summed (a cluster's collectors).\n"
          "--replication-factors: run every pass once per factor (default 1), each on a\n"
          "topic created with that factor (and with --min-insync N, min.insync.replicas\n"
          "N, or the factor when smaller).\n"
          "--records: records per 100-byte pass (default 2000000); --mbytes: MB per pass\n"
          "for larger records (default 512). --runs: repetitions, median reported (3).\n"
          "--cli: the tributary CLI for the CLI consumer pass (default: beside --collector).\n"
          "-X: a librdkafka property for every client (security.protocol=ssl ...); it\n"
          "overrides the consumer's fetch settings (fetch.max.bytes 50 MiB,\n"
          "max.partition.fetch.bytes 8 MiB, queued.min.messages, queued.max.messages.kbytes).\n"
          "--delete-topics: delete each pass's topic once the pass is done, so the next\n"
          "pass reuses the page cache it held (on a VM whose host backs guest memory on\n"
          "first touch, writing into never-touched memory is several times slower).\n",
          out);
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
        out[n++] = !strcmp(t, "all") ? -1 : atoi(t);
    }
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"collector", required_argument, NULL, 'c'},
        {"collector-pid", required_argument, NULL, 'P'},
        {"records", required_argument, NULL, 'n'},
        {"mbytes", required_argument, NULL, 'm'},
        {"runs", required_argument, NULL, 'r'},
        {"sizes", required_argument, NULL, 's'},
        {"acks", required_argument, NULL, 'a'},
        {"no-consume", no_argument, NULL, 'C'},
        {"no-baseline", no_argument, NULL, 'B'},
        {"cli", required_argument, NULL, 'L'},
        {"no-cli", no_argument, NULL, 'N'},
        {"replication-factors", required_argument, NULL, 'R'},
        {"min-insync", required_argument, NULL, 'I'},
        {"delete-topics", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts_t o = {.records_small = 2000000, .bytes_large = 512000000, .runs = 3};
    o.nsizes = parse_list("100,1024", o.sizes, 4);
    o.nacks = parse_list("1,all", o.acks, 2);
    o.nrfs = parse_list("1", o.rfs, MAX_RFS);
    int c;
    while ((c = getopt_long(argc, argv, "b:c:hX:", lo, NULL)) != -1) {
        switch (c) {
        case 'X':
            if (!strchr(optarg, '=') || nprops == MAX_PROPS) {
                usage(stderr);
                return 2;
            }
            props[nprops++] = optarg;
            break;
        case 'b':
            o.bootstrap = optarg;
            break;
        case 'c':
            o.collector = optarg;
            break;
        case 'P':
            o.npids = parse_list(optarg, o.pids, MAX_PIDS);
            o.collector_pid = o.npids ? o.pids[0] : 0;
            break;
        case 'R':
            o.nrfs = parse_list(optarg, o.rfs, MAX_RFS);
            break;
        case 'I':
            o.min_insync = atoi(optarg);
            break;
        case 'n':
            o.records_small = atol(optarg);
            break;
        case 'm':
            o.bytes_large = atol(optarg) * 1000000L;
            break;
        case 'r':
            o.runs = atoi(optarg);
            break;
        case 's':
            o.nsizes = parse_list(optarg, o.sizes, 4);
            break;
        case 'a':
            o.nacks = parse_list(optarg, o.acks, 2);
            break;
        case 'C':
            o.skip_consume = true;
            break;
        case 'B':
            o.skip_baseline = true;
            break;
        case 'D':
            o.delete_topics = true;
            break;
        case 'L':
            o.cli = optarg;
            break;
        case 'N':
            o.skip_cli = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((!o.bootstrap) == (!o.collector) || o.runs < 1 || o.runs > MAX_RUNS ||
        o.records_small < 1 || o.bytes_large < 1 || o.nrfs < 1 || o.min_insync < 0) {
        usage(stderr);
        return 2;
    }
    static char cli_path[4096];
    if (!o.cli && o.collector) {
        /* The CLI built beside the collector. */
        snprintf(cli_path, sizeof cli_path, "%s", o.collector);
        char *slash = strrchr(cli_path, '/');
        size_t at = slash ? (size_t)(slash - cli_path) + 1 : 0;
        snprintf(cli_path + at, sizeof cli_path - at, "tributary");
        struct stat sb;
        if (stat(cli_path, &sb) == 0) {
            o.cli = cli_path;
        }
    }
    if (o.skip_cli || o.skip_consume) {
        o.cli = NULL;
    }
    char boot[256];
    pid_t started = 0;
    if (o.collector) {
        started = start_collector(o.collector, boot, sizeof boot);
        if (started < 0) {
            return 1;
        }
        o.bootstrap = boot;
        o.collector_pid = started;
        o.pids[0] = started;
        o.npids = 1;
    }
    char cpu[256] = "unknown";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (ci && fgets(line, sizeof line, ci)) {
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    }
    if (ci) {
        fclose(ci);
    }
    printf("tributary-bench-produce: librdkafka %s, broker %s, collector pids",
           rd_kafka_version_str(), o.bootstrap);
    for (int i = 0; i < o.npids; i++) {
        printf("%s%d", i ? "," : " ", (int)o.pids[i]);
    }
    printf("%s\n", o.npids ? "" : " unknown");
    printf("machine: %ld CPUs, %s; %d runs per pass, medians below each\n",
           sysconf(_SC_NPROCESSORS_ONLN), cpu, o.runs);
    double baseline = -1;
    if (!o.skip_baseline) {
        double v[MAX_RUNS];
        for (int r = 0; r < o.runs; r++) {
            v[r] = loopback_mb_s((size_t)2 << 30);
        }
        baseline = median(v, o.runs);
        printf("loopback TCP baseline (one stream, 2 GiB, 1 MiB writes): median %.0f MB/s "
               "(runs:",
               baseline);
        for (int r = 0; r < o.runs; r++) {
            printf(" %.0f", v[r]);
        }
        printf(")\n");
    }
    print_header();
    int rc = 0, failed = 0;
    int seq = 0;
    /* RF suffixes on pass names only when the factors were asked for. */
    bool rf_names = o.nrfs > 1 || o.rfs[0] != 1 || o.min_insync > 0;
    /* medians of produce MB/s and per-run ratios to the first factor, for the closing lines */
    double rf_mb[4][2][MAX_RFS], rf_ratio[4][2][MAX_RFS];
    bool rf_ok[4][2][MAX_RFS];
    memset(rf_ok, 0, sizeof rf_ok);
    for (int si = 0; si < o.nsizes && rc == 0; si++) {
        int size = o.sizes[si];
        long n = size <= 100 ? o.records_small : o.bytes_large / size;
        for (int ai = 0; ai < o.nacks && rc == 0; ai++) {
            int acks = o.acks[ai];
            static sample_t prod[MAX_RFS][MAX_RUNS], cons[MAX_RFS][MAX_RUNS],
                clis[MAX_RFS][MAX_RUNS];
            bool usable[MAX_RFS];
            memset(prod, 0, sizeof prod);
            memset(cons, 0, sizeof cons);
            memset(clis, 0, sizeof clis);
            for (int fi = 0; fi < o.nrfs; fi++) {
                usable[fi] = true;
            }
            /* Each run measures every factor in turn, so their ratio is taken under one load. */
            for (int r = 0; r < o.runs && rc == 0; r++) {
                for (int fi = 0; fi < o.nrfs && rc == 0; fi++) {
                    if (!usable[fi]) {
                        continue;
                    }
                    int rf = o.rfs[fi];
                    char topic[96];
                    snprintf(topic, sizeof topic, "bench-%d-%dB-acks%s-rf%d-%d", (int)getpid(),
                             size, acks < 0 ? "all" : "1", rf, seq++);
                    if (create_topic(o.bootstrap, topic, rf, o.min_insync) < 0) {
                        if (rf != 1 || o.min_insync > 0) {
                            fprintf(stderr,
                                    "  replication factor %d%s: no topic, its passes are left "
                                    "out\n",
                                    rf, o.min_insync > 0 ? " with min.insync.replicas" : "");
                            usable[fi] = false;
                            failed = 1;
                            continue;
                        }
                        fprintf(stderr, "  (relying on auto-creation for %s)\n", topic);
                    }
                    rc = produce_pass(&o, topic, size, acks, n, &prod[fi][r]);
                    if (rc == 0 && !o.skip_consume) {
                        rc = consume_pass(&o, topic, n, &cons[fi][r]);
                    }
                    if (rc == 0 && o.cli) {
                        rc = cli_pass(&o, topic, n, size, &clis[fi][r]);
                    }
                    if (rc == 0 && o.delete_topics && delete_topic(o.bootstrap, topic) < 0) {
                        failed = 1;
                    }
                }
            }
            if (rc != 0) {
                break;
            }
            for (int fi = 0; fi < o.nrfs; fi++) {
                if (!usable[fi]) {
                    continue;
                }
                char name[64], rfs[32] = "";
                if (rf_names) {
                    snprintf(rfs, sizeof rfs, " rf%d", o.rfs[fi]);
                }
                snprintf(name, sizeof name, "produce %dB acks=%s%s", size, acks < 0 ? "all" : "1",
                         rfs);
                sample_t pm = report(name, n, size, prod[fi], o.runs);
                rf_ok[si][ai][fi] = true;
                rf_mb[si][ai][fi] = pm.mb_s;
                if (fi > 0 && usable[0]) {
                    double v[MAX_RUNS];
                    for (int r = 0; r < o.runs; r++) {
                        v[r] = prod[0][r].mb_s > 0 ? prod[fi][r].mb_s / prod[0][r].mb_s : 0;
                    }
                    rf_ratio[si][ai][fi] = median(v, o.runs);
                }
                if (o.skip_consume) {
                    continue;
                }
                snprintf(name, sizeof name, "consume %dB%s", size, rfs);
                sample_t cm = report(name, n, size, cons[fi], o.runs);
                sample_t lm = {0};
                if (o.cli) {
                    snprintf(name, sizeof name, "cli consume %dB%s", size, rfs);
                    lm = report(name, n, size, clis[fi], o.runs);
                }
                printf("summary %dB acks=%s%s: produce %.0f MB/s (collector %.2f CPU-s/GB); "
                       "librdkafka consume %.0f MB/s = %.2fx produce",
                       size, acks < 0 ? "all" : "1", rfs, pm.mb_s, cpu_per_gb(&pm, n, size),
                       cm.mb_s, pm.mb_s > 0 ? cm.mb_s / pm.mb_s : 0);
                if (baseline > 0) {
                    printf(", %.0f%% of loopback", 100 * cm.mb_s / baseline);
                }
                printf(" (collector %.2f CPU-s/GB served)", cpu_per_gb(&cm, n, size));
                if (o.cli) {
                    printf("; CLI consume %.0f MB/s", lm.mb_s);
                    if (baseline > 0) {
                        printf(", %.0f%% of loopback", 100 * lm.mb_s / baseline);
                    }
                    printf(" (collector %.2f CPU-s/GB served)", cpu_per_gb(&lm, n, size));
                }
                printf("\n");
                fflush(stdout);
            }
        }
    }
    /* One line per size and acks comparing each factor with the first. */
    for (int si = 0; si < o.nsizes && o.nrfs > 1; si++) {
        for (int ai = 0; ai < o.nacks; ai++) {
            if (!rf_ok[si][ai][0]) {
                continue;
            }
            printf("replication %dB acks=%s: rf%d %.1f MB/s", o.sizes[si],
                   o.acks[ai] < 0 ? "all" : "1", o.rfs[0], rf_mb[si][ai][0]);
            for (int fi = 1; fi < o.nrfs; fi++) {
                if (rf_ok[si][ai][fi]) {
                    printf("; rf%d %.1f MB/s = %.2fx rf%d (median of the runs' ratios)", o.rfs[fi],
                           rf_mb[si][ai][fi], rf_ratio[si][ai][fi], o.rfs[0]);
                } else {
                    printf("; rf%d not measured", o.rfs[fi]);
                }
            }
            printf("\n");
        }
    }
    if (failed && rc == 0) {
        rc = 1;
    }
    if (started > 0) {
        stop_collector(started);
    }
    return rc ? 1 : 0;
}
