/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's loop: the pipelines and their inputs built from the
 * configuration, the handles that drive them, the checkpoint timer,
 * signals and reloads. What an input does is behind its operations table
 * (input/input.h); what is sent, behind the pipeline (pipeline.h) and the
 * output (output/output.h).
 *
 * Handles (all on one uv loop, closed before uv_loop_close()):
 *   tick        every few ms: each input's tick (scans, polls, multiline
 *               timeouts), librdkafka's reports, --once completion
 *   work        an idle handle that runs the inputs' work (reading files)
 *               and the disk buffer's pump while there is something to
 *               read and the output is not paused; a pass reads at most
 *               AGENT_READ_BUDGET bytes per file so reports are served
 *   rk_poll     librdkafka's main queue signals a pipe when reports wait
 *   ckpt_timer  writes the checkpoint table when it changed
 *   signals     SIGTERM/SIGINT drain and exit, SIGHUP reloads
 * (the tail inputs' inotify handle is theirs: input/tail.c)
 *
 * Reload (SIGHUP): the new file is loaded and validated first; a bad one is
 * reported and the running pipelines go on. A good one: reading stops,
 * multiline records are sent, the producer is flushed (shutdown_timeout),
 * the checkpoint table is written, files are closed and the pipelines are
 * rebuilt; each input resumes from the checkpoints kept in memory under
 * its id. Nothing is lost and, when the flush completes, nothing is sent
 * twice.
 */
#include "agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buffer/buffer.h"
#include "tributary/buf.h"
#include "tributary/fileio.h"
#include "tributary/log.h"

#define AGENT_READ_BUDGET (1u << 20)

int64_t agent_now_ms(agent_t *a)
{
    return (int64_t)uv_now(&a->loop);
}

static void work_cb(uv_idle_t *h);

/* The output has room again: reading resumes. */
static void output_room(void *arg)
{
    agent_t *a = arg;
    a->paused = false;
    agent_kick(a);
}

static bool host_running(void *arg)
{
    agent_t *a = arg;
    return a->state == AGENT_RUNNING;
}

static void host_kick(void *arg)
{
    agent_kick(arg);
}

static void host_tick_now(void *arg)
{
    agent_tick_now(arg);
}

static int host_spool(void *arg, agent_input_t *in, agent_event_t *ev, const char *source)
{
    return agent_spool_emit(arg, in, ev, source);
}

bool agent_healthy(agent_t *a, char *why, size_t whylen)
{
    if (a->state != AGENT_RUNNING || a->exit_code != 0) {
        snprintf(why, whylen, "stopping");
        return false;
    }
    return agent_output_healthy(a->out, !agent_spool_idle(a), why, whylen);
}

void agent_kick(agent_t *a)
{
    if (!a->work_on && a->state == AGENT_RUNNING && !a->paused) {
        uv_idle_start(&a->work, work_cb);
        a->work_on = true;
    }
}

static void work_cb(uv_idle_t *h)
{
    agent_t *a = h->data;
    bool more = agent_spool_pump(a);
    for (size_t i = 0; i < a->npipes && !a->paused; i++) {
        agent_pipe_t *pl = &a->pipes[i];
        for (size_t j = 0; j < pl->ninputs && !a->paused; j++) {
            agent_input_t *in = &pl->inputs[j];
            if (in->ops->work != NULL) {
                more |= in->ops->work(in, AGENT_READ_BUDGET);
            }
        }
    }
    if (a->opts.dry_run && a->opts.dry_out == NULL) {
        fflush(stdout);
    }
    if (!more || a->paused || a->state != AGENT_RUNNING) {
        uv_idle_stop(&a->work);
        a->work_on = false;
    }
    agent_output_poll(a->out);
}

static int save_ckpts(agent_t *a)
{
    if (a->opts.dry_run || !a->ckpts.dirty) {
        return 0;
    }
    a->ckpts.dirty = false;
    int rc = agent_ckpt_save(&a->ckpts, a->state_dir);
    if (rc != 0) {
        a->ckpts.dirty = true;
        a->st.checkpoint_errors++;
        static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 3);
        TRIB_LOG_RL(&rl, TRIB_LOG_ERROR, "state", "cannot write checkpoints in %s: %s",
                    a->state_dir, trib_strerror(rc));
    } else {
        a->st.checkpoint_writes++;
    }
    return rc;
}

static void ckpt_cb(uv_timer_t *t)
{
    agent_t *a = t->data;
    agent_ckpt_expire(&a->ckpts, agent_wall_ms(), a->cfg->conf.agent.state_ttl_ms);
    save_ckpts(a);
    if (a->buf != NULL) {
        int rc = agent_buffer_sync(a->buf);
        if (rc != 0) {
            static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 3);
            TRIB_LOG_RL(&rl, TRIB_LOG_ERROR, "buffer", "cannot sync the disk buffer: %s",
                        trib_strerror(rc));
        }
    }
    agent_metrics_write_file(a);
}

static bool all_idle(agent_t *a)
{
    agent_output_state_t os;
    agent_output_state(a->out, &os);
    if (os.inflight_msgs > 0 || !agent_spool_idle(a)) {
        return false;
    }
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            agent_input_t *in = &a->pipes[i].inputs[j];
            if (in->ops->idle != NULL && !in->ops->idle(in)) {
                return false;
            }
        }
    }
    return true;
}

static void begin_stop(agent_t *a);

static void rebuild(agent_t *a);

static void tick_cb(uv_timer_t *t)
{
    agent_t *a = t->data;
    int64_t now = agent_now_ms(a);
    agent_output_poll(a->out);
    if (a->state != AGENT_RUNNING) {
        return;
    }
    if (agent_output_fatal(a->out)) {
        rebuild(a);
        return;
    }
    for (size_t i = 0; i < a->npipes; i++) {
        agent_pipe_t *pl = &a->pipes[i];
        for (size_t j = 0; j < pl->ninputs; j++) {
            agent_input_t *in = &pl->inputs[j];
            if (in->ops->tick != NULL) {
                in->ops->tick(in, now);
            }
        }
    }
    agent_spool_check_room(a);
    if (a->opts.once && all_idle(a)) {
        begin_stop(a);
    }
}

void agent_tick_now(agent_t *a)
{
    if (!uv_is_closing((uv_handle_t *)&a->tick)) {
        tick_cb(&a->tick);
    }
}

static void rk_poll_cb(uv_poll_t *h, int status, int events)
{
    agent_t *a = h->data;
    char buf[256];
    while (read(a->rk_pipe[0], buf, sizeof(buf)) > 0) {
    }
    agent_output_poll(a->out);
}

/* The counters of an input, found by pipeline name and input id. */
static agent_input_stats_t *input_stats(agent_t *a, const char *pipeline, const char *input)
{
    for (agent_input_stats_t *s = a->istats; s != NULL; s = s->next) {
        if (strcmp(s->pipeline, pipeline) == 0 && strcmp(s->input, input) == 0) {
            return s;
        }
    }
    agent_input_stats_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->pipeline = strdup(pipeline)) == NULL ||
        (s->input = strdup(input)) == NULL) {
        if (s != NULL) {
            free(s->pipeline);
        }
        free(s);
        return NULL;
    }
    s->next = a->istats;
    a->istats = s;
    return s;
}

/* The producer, with a handle for each pipeline's fixed topic. */
static int start_output(agent_t *a)
{
    int rc = agent_output_start(a->out, &a->cfg->conf, a->rk_pipe[1]);
    for (size_t i = 0; rc == 0 && i < a->npipes; i++) {
        if (a->pipes[i].pl.topic_fixed) {
            agent_output_topic(a->out, a->pipes[i].pl.conf->topic);
        }
    }
    return rc;
}

/* The operations of each input type, by AGENT_INPUT_*. */
static const agent_input_ops_t *const input_types[] = {
    [AGENT_INPUT_TAIL] = &agent_tail_ops,
    [AGENT_INPUT_SYSLOG] = &agent_syslog_ops,
    [AGENT_INPUT_METRICS] = &agent_sample_ops,
    [AGENT_INPUT_PROMETHEUS] = &agent_sample_ops,
};

static int build_pipelines(agent_t *a)
{
    agent_conf_t *k = &a->cfg->conf;
    a->pipes = calloc(k->npipelines, sizeof(*a->pipes));
    if (a->pipes == NULL) {
        return -ENOMEM;
    }
    a->npipes = k->npipelines;
    for (size_t i = 0; i < k->npipelines; i++) {
        agent_pipe_t *pl = &a->pipes[i];
        const agent_pipeline_conf_t *pc = &k->pipelines[i];
        if (agent_pipeline_init(&pl->pl, pc, k, &a->st) != 0) {
            return -ENOMEM;
        }
        pl->inputs = calloc(pc->ninputs, sizeof(*pl->inputs));
        if (pl->inputs == NULL) {
            return -ENOMEM;
        }
        pl->ninputs = pc->ninputs;
        for (size_t j = 0; j < pl->ninputs; j++) {
            agent_input_t *in = &pl->inputs[j];
            in->host = &a->host;
            in->pl = &pl->pl;
            in->conf = &pc->inputs[j];
            in->ist = input_stats(a, pc->name, pc->inputs[j].id);
            if (in->ist == NULL) {
                return -ENOMEM;
            }
            in->ops = input_types[in->conf->type & 3];
            static const char *const types[] = {"tail", "syslog", "metrics", "prometheus"};
            in->source = (agent_source_t){types[in->conf->type & 3], "source", "", in->ist};
            if (in->ops->init(in) != 0) {
                return -ENOMEM;
            }
        }
    }
    if (agent_tails_prepare(a->tails, k) != 0) {
        return -ENOMEM;
    }
    return 0;
}

static void free_pipelines(agent_t *a)
{
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            agent_input_t *in = &a->pipes[i].inputs[j];
            if (in->impl != NULL) {
                in->ops->stop(in, a->keep_listeners);
                in->ops->fini(in);
            }
        }
        free(a->pipes[i].inputs);
        agent_pipeline_fini(&a->pipes[i].pl);
    }
    free(a->pipes);
    a->pipes = NULL;
    a->npipes = 0;
}

static const char *const input_type_names[] = {"tail", "syslog", "metrics", "prometheus"};

/* The input a dry run's --input feeds: input_id, or the only input. */
static agent_input_t *test_input(agent_t *a)
{
    agent_input_t *found = NULL;
    size_t n = 0;
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            agent_input_t *in = &a->pipes[i].inputs[j];
            n++;
            if (a->opts.input_id == NULL || strcmp(in->conf->id, a->opts.input_id) == 0) {
                found = in;
            }
        }
    }
    if (a->opts.input_id == NULL && n > 1) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent",
                 "--input: the configuration has %zu inputs: choose one with --input-id", n);
        return NULL;
    }
    if (found == NULL) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input-id %s: no input has that id",
                 a->opts.input_id ? a->opts.input_id : "");
        return NULL;
    }
    if (found->conf->type != AGENT_INPUT_TAIL && found->conf->type != AGENT_INPUT_SYSLOG) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input: input %s is a %s input, which reads no lines",
                 found->conf->id, input_type_names[found->conf->type]);
        return NULL;
    }
    return found;
}

/* Each line of the test input handed to a syslog input's pipeline. */
static int feed_syslog(agent_t *a, agent_input_t *in)
{
    FILE *fp = fopen(a->input_path, "r");
    if (fp == NULL) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input %s: %s", a->opts.input_path, strerror(errno));
        return -errno;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, fp)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }
        if (n > 0) {
            (void)agent_syslog_feed(in, line, (size_t)n);
        }
    }
    free(line);
    fclose(fp);
    return 0;
}

/* 0, or the error of a listener or sampler that could not start. */
static int start_inputs(agent_t *a)
{
    int64_t tick = 250;
    int rc = 0;
    agent_input_t *only = NULL;
    if (a->opts.input_path != NULL) {
        only = test_input(a);
        if (only == NULL) {
            a->exit_code = 2;
            return -EINVAL;
        }
        if (only->conf->type == AGENT_INPUT_SYSLOG) {
            rc = feed_syslog(a, only);
        } else {
            agent_tail_set_only(only, a->input_path);
        }
    }
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            agent_input_t *in = &a->pipes[i].inputs[j];
            if (a->opts.input_path != NULL && (in != only || in->conf->type != AGENT_INPUT_TAIL)) {
                continue;
            }
            if (in->conf->type != AGENT_INPUT_TAIL && a->opts.once) {
                /* --once ends when the files are read: a source without an
                   end is not started */
                TRIB_LOG(TRIB_LOG_INFO, "agent", "input %s (%s): not started under --once",
                         in->conf->id, input_type_names[in->conf->type]);
                continue;
            }
            if (in->conf->type == AGENT_INPUT_SYSLOG && a->opts.dry_run) {
                /* a dry run beside the running agent must not take its
                   address (nor its datagrams) */
                TRIB_LOG(TRIB_LOG_INFO, "agent",
                         "input %s (syslog): not listening on %s in a dry run (feed it lines "
                         "with --input FILE)",
                         in->conf->id, in->conf->address);
                continue;
            }
            int e = in->ops->start(in);
            rc = rc ? rc : e;
            if (e == 0 && in->tick_ms > 0 && in->tick_ms < tick) {
                tick = in->tick_ms;
            }
        }
    }
    agent_tails_watch(a->tails);
    a->tick_ms = tick;
    uv_timer_start(&a->tick, tick_cb, (uint64_t)tick, (uint64_t)tick);
    agent_kick(a);
    return rc;
}

static void apply_logging(agent_conf_t *k)
{
    trib_log_set_level((trib_log_level_t)k->agent.log_level);
    trib_log_set_format(k->agent.log_format == 1 ? TRIB_LOG_JSON : TRIB_LOG_TEXT);
}

/* Inputs send what they hold (multiline records); true when some is left. */
static bool drain_inputs(agent_t *a)
{
    bool left = false;
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            agent_input_t *in = &a->pipes[i].inputs[j];
            if (in->impl != NULL && in->ops->drain != NULL) {
                left |= in->ops->drain(in);
            }
        }
    }
    return left;
}

static void drain(agent_t *a)
{
    uv_idle_stop(&a->work);
    a->work_on = false;
    a->paused = false;
    /* The output may be full: wait for room once (reports may free files,
       so the lists are walked again afterwards, never across the wait). */
    if (drain_inputs(a)) {
        agent_output_flush(a->out, a->cfg->conf.agent.shutdown_timeout_ms);
        a->paused = false;
        (void)drain_inputs(a);
    }
    a->state = AGENT_STOPPING;
    agent_output_stop(a->out, a->cfg->conf.agent.shutdown_timeout_ms);
    a->paused = false;
    save_ckpts(a);
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

static void begin_stop(agent_t *a)
{
    if (uv_is_closing((uv_handle_t *)&a->tick)) {
        return;
    }
    agent_output_state_t os;
    agent_output_state(a->out, &os);
    TRIB_LOG(TRIB_LOG_INFO, "agent", "stopping: draining %llu events in flight",
             (unsigned long long)os.inflight_msgs);
    a->keep_listeners = false;
    agent_syslogs_pause(a->syslogs);
    agent_syslogs_release_kept(a->syslogs);
    drain(a);
    a->ckpts.dirty = true;
    save_ckpts(a);
    agent_metrics_write_file(a);
    TRIB_LOG(TRIB_LOG_INFO, "agent",
             "stopped: %llu lines read, %llu events sent, %llu acknowledged, %llu filtered, "
             "%llu truncations (%llu bytes lost), %llu rotations",
             (unsigned long long)a->st.lines_read, (unsigned long long)a->st.events_sent,
             (unsigned long long)a->st.events_acked, (unsigned long long)a->st.events_filtered,
             (unsigned long long)a->st.truncations, (unsigned long long)a->st.bytes_lost_truncation,
             (unsigned long long)a->st.rotations);
    free_pipelines(a);
    agent_http_stop(a);
    uv_close((uv_handle_t *)&a->tick, close_cb);
    uv_close((uv_handle_t *)&a->ckpt_timer, close_cb);
    uv_close((uv_handle_t *)&a->work, close_cb);
    uv_close((uv_handle_t *)&a->rk_poll, close_cb);
    uv_close((uv_handle_t *)&a->sigterm, close_cb);
    uv_close((uv_handle_t *)&a->sigint, close_cb);
    uv_close((uv_handle_t *)&a->sighup, close_cb);
    agent_tails_close(a->tails);
}

/* What an input is made of, to tell what a reload changed. */
static void input_sig(const agent_pipeline_conf_t *pl, const agent_input_conf_t *c, char *out,
                      size_t outlen)
{
    int n = snprintf(out, outlen, "%s|%s|%s|%zu|%zu|%d|%s|%d|%d|%s|%s|%lld|%d|%d|%s", pl->name,
                     pl->topic, pl->key, pl->nparse, pl->nfilters, c->type,
                     c->address ? c->address : "", c->mode, c->framing, c->url ? c->url : "",
                     c->multiline.start ? c->multiline.start : "", (long long)c->interval_ms,
                     c->read_from, pl->on_parse_error,
                     pl->parse_error_topic ? pl->parse_error_topic : "");
    for (size_t k = 0; k < c->paths.count && n >= 0 && (size_t)n < outlen; k++) {
        n += snprintf(out + n, outlen - (size_t)n, "|p:%s", c->paths.items[k]);
    }
    for (size_t k = 0; k < c->exclude.count && n >= 0 && (size_t)n < outlen; k++) {
        n += snprintf(out + n, outlen - (size_t)n, "|x:%s", c->exclude.items[k]);
    }
    for (size_t k = 0; k < pl->nparse && n >= 0 && (size_t)n < outlen; k++) {
        const agent_parse_conf_t *p = &pl->parse[k];
        n += snprintf(out + n, outlen - (size_t)n, "|r:%d:%s:%s:%s:%zu", p->type,
                      p->pattern ? p->pattern : "", p->field, p->time_field ? p->time_field : "",
                      p->types.count);
    }
    for (size_t k = 0; k < pl->nfilters && n >= 0 && (size_t)n < outlen; k++) {
        const agent_filter_conf_t *f = &pl->filters[k];
        n += snprintf(out + n, outlen - (size_t)n, "|f:%d:%s:%s:%s:%s", f->type, f->field,
                      f->match ? f->match : "", f->value ? f->value : "", f->to ? f->to : "");
    }
}

static const agent_input_conf_t *find_input_conf(const agent_conf_t *k, const char *id,
                                                 const agent_pipeline_conf_t **pl)
{
    for (size_t i = 0; i < k->npipelines; i++) {
        for (size_t j = 0; j < k->pipelines[i].ninputs; j++) {
            if (strcmp(k->pipelines[i].inputs[j].id, id) == 0) {
                *pl = &k->pipelines[i];
                return &k->pipelines[i].inputs[j];
            }
        }
    }
    return NULL;
}

/* Logs the inputs a reload adds, removes or changes (with their pipeline). */
static void log_reload_changes(const agent_conf_t *old, const agent_conf_t *nw)
{
    static char s1[8192], s2[8192];
    size_t same = 0;
    for (size_t i = 0; i < nw->npipelines; i++) {
        for (size_t j = 0; j < nw->pipelines[i].ninputs; j++) {
            const agent_input_conf_t *c = &nw->pipelines[i].inputs[j];
            const agent_pipeline_conf_t *opl = NULL;
            const agent_input_conf_t *oc = find_input_conf(old, c->id, &opl);
            if (oc == NULL) {
                TRIB_LOG(TRIB_LOG_INFO, "agent", "reload: input %s added (pipeline %s)", c->id,
                         nw->pipelines[i].name);
                continue;
            }
            input_sig(opl, oc, s1, sizeof(s1));
            input_sig(&nw->pipelines[i], c, s2, sizeof(s2));
            if (strcmp(s1, s2) != 0) {
                TRIB_LOG(TRIB_LOG_INFO, "agent", "reload: input %s changed (pipeline %s)", c->id,
                         nw->pipelines[i].name);
            } else {
                same++;
            }
        }
    }
    for (size_t i = 0; i < old->npipelines; i++) {
        for (size_t j = 0; j < old->pipelines[i].ninputs; j++) {
            const agent_pipeline_conf_t *npl = NULL;
            const agent_input_conf_t *c = &old->pipelines[i].inputs[j];
            if (find_input_conf(nw, c->id, &npl) == NULL) {
                TRIB_LOG(TRIB_LOG_INFO, "agent", "reload: input %s removed (was in pipeline %s)",
                         c->id, old->pipelines[i].name);
            }
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, "agent", "reload: %zu inputs unchanged", same);
}

static void reload(agent_t *a)
{
    agent_config_t *nc = NULL;
    int rc = agent_config_load(&nc, a->opts.config_path);
    if (rc != 0) {
        a->st.reload_failures++;
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "reload: %s has errors; the running pipelines go on",
                 a->opts.config_path);
        if (nc != NULL) {
            agent_config_print_errors(nc, stderr);
        }
        agent_config_free(nc);
        return;
    }
    if (strcmp(nc->conf.agent.state_dir, a->state_dir) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, "agent", "reload: agent.state_dir changes only at a restart");
    }
    if (nc->conf.buffer.max_size != a->cfg->conf.buffer.max_size ||
        nc->conf.buffer.segment_size != a->cfg->conf.buffer.segment_size) {
        TRIB_LOG(TRIB_LOG_WARN, "agent",
                 "reload: buffer.max_size and buffer.segment_size change "
                 "only at a restart");
    }
    TRIB_LOG(TRIB_LOG_INFO, "agent", "reloading %s", a->opts.config_path);
    log_reload_changes(&a->cfg->conf, &nc->conf);
    uv_timer_stop(&a->tick);
    drain(a);
    a->keep_listeners = true;
    free_pipelines(a);
    agent_config_t *old = a->cfg;
    a->cfg = nc;
    apply_logging(&nc->conf);
    a->state = AGENT_RUNNING;
    a->st.reloads++;
    if (build_pipelines(a) != 0 || start_output(a) != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "reload failed to start the new pipelines; stopping");
        a->exit_code = 1;
        a->cfg = nc;
        agent_config_free(old);
        begin_stop(a);
        return;
    }
    agent_config_free(old);
    agent_http_start(a);
    agent_spool_restart(a);
    rc = start_inputs(a);
    a->keep_listeners = false;
    agent_syslogs_release_kept(a->syslogs); /* those the new configuration has no input for */
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "reload: an input could not start; stopping");
        a->exit_code = 1;
        begin_stop(a);
    }
}

/*
 * After a fatal producer error: the producer is destroyed (what it still
 * holds is purged, unacknowledged), the files are closed and reopened at
 * their checkpoints with a new producer. Multiline records in memory are
 * dropped with the files: their lines are behind the checkpoint too.
 */
static void rebuild(agent_t *a)
{
    a->st.producer_rebuilds++;
    uv_timer_stop(&a->tick);
    uv_idle_stop(&a->work);
    a->work_on = false;
    a->state = AGENT_STOPPING;
    agent_output_stop(a->out, 1000);
    a->paused = false;
    save_ckpts(a);
    a->keep_listeners = true;
    free_pipelines(a);
    a->state = AGENT_RUNNING;
    if (build_pipelines(a) != 0 || start_output(a) != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "cannot rebuild the producer; stopping");
        a->exit_code = 1;
        begin_stop(a);
        return;
    }
    TRIB_LOG(TRIB_LOG_INFO, "agent", "producer rebuilt; reading resumes at the checkpoints");
    agent_spool_restart(a);
    int rc = start_inputs(a);
    a->keep_listeners = false;
    agent_syslogs_release_kept(a->syslogs);
    if (rc != 0) {
        a->exit_code = 1;
        begin_stop(a);
    }
}

static void signal_cb(uv_signal_t *h, int signum)
{
    agent_t *a = h->data;
    if (signum == SIGHUP) {
        reload(a);
        return;
    }
    begin_stop(a);
}

/*
 * A dry run's --input: a file is read as named (from its beginning, no
 * checkpoint applies); stdin is first copied to an unlinked temporary file
 * so that a tail input can read it like any file.
 */
static int open_test_input(agent_t *a)
{
    if (strcmp(a->opts.input_path, "-") != 0) {
        snprintf(a->input_path, sizeof(a->input_path), "%s", a->opts.input_path);
        if (strlen(a->opts.input_path) >= sizeof(a->input_path)) {
            TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input %s: path too long", a->opts.input_path);
            return -ENAMETOOLONG;
        }
        if (access(a->input_path, R_OK) != 0) {
            int e = errno;
            TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input %s: %s", a->input_path, strerror(e));
            return -e;
        }
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    char tpl[4096];
    snprintf(tpl, sizeof(tpl), "%s/tributary-agent-input.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkostemp(tpl, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input -: cannot make a temporary file: %s",
                 strerror(e));
        return -e;
    }
    unlink(tpl);
    a->input_fd = fd;
    char buf[65536];
    ssize_t n;
    uint64_t off = 0;
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
        int rc = n > 0 ? trib_pwrite_all(fd, buf, (size_t)n, off) : 0;
        if (rc != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, "agent", "--input -: cannot copy stdin: %s",
                     trib_strerror(rc));
            return rc;
        }
        off += n > 0 ? (uint64_t)n : 0;
    }
    snprintf(a->input_path, sizeof(a->input_path), "/proc/self/fd/%d", fd);
    return 0;
}

/* The missing parents of state_dir (0750), as a package's unit would make
   them; 0 or an errno. */
static int mkdir_parents(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) {
        return ENAMETOOLONG;
    }
    char *last = strrchr(p, '/');
    for (char *s = p + 1; last != NULL && s <= last; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0750) != 0 && errno != EEXIST) {
                return errno;
            }
            *s = '/';
        }
    }
    return 0;
}

int agent_new(agent_t **out, agent_config_t *cfg, const agent_options_t *opts)
{
    agent_t *a = calloc(1, sizeof(*a));
    *out = a;
    if (a == NULL) {
        return -ENOMEM;
    }
    a->cfg = cfg;
    a->opts = *opts;
    a->lock_fd = -1;
    a->input_fd = -1;
    if (a->opts.input_path != NULL) {
        a->opts.dry_run = true;
        a->opts.once = true;
    }
    opts = &a->opts;
    a->rk_pipe[0] = a->rk_pipe[1] = -1;
    if (agent_output_new(&a->out, &a->st, a->opts.dry_run, a->opts.dry_out, output_room, a) != 0) {
        return -ENOMEM;
    }
    a->tail_owner = agent_output_owner(a->out, agent_tail_ack, &a->host);
    a->spool_owner = agent_output_owner(a->out, agent_spool_ack, a);
    apply_logging(&cfg->conf);
    a->state_dir = strdup(cfg->conf.agent.state_dir);
    if (a->state_dir == NULL) {
        return -ENOMEM;
    }
    const char *dir = a->state_dir;
    if (!opts->dry_run) {
        /* missing parents are made as a package's unit would make them;
           the entry itself must be durable before checkpoints and the
           buffer are synced inside it, or a power loss takes the whole
           directory */
        int me = mkdir_parents(dir);
        int drc = me != 0 ? -me : trib_mkdir_durable(dir, 0750);
        struct stat dst;
        if (drc != 0 && stat(dir, &dst) == 0 && S_ISDIR(dst.st_mode)) {
            TRIB_LOG(TRIB_LOG_WARN, "agent", "created state_dir %s but cannot sync its parent: %s",
                     dir, trib_strerror(drc));
        } else if (drc != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, "agent",
                     "cannot create state_dir %s: %s (create it with write access for the "
                     "agent's user, or set agent.state_dir to a directory the agent may write)",
                     dir, trib_strerror(drc));
            return drc;
        }
        char lock[4096];
        snprintf(lock, sizeof(lock), "%s/lock", dir);
        a->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (a->lock_fd < 0 || flock(a->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            TRIB_LOG(TRIB_LOG_ERROR, "agent", "cannot lock %s: %s (another agent uses it?)", lock,
                     strerror(e));
            return -e;
        }
    }
    int rc = 0;
    if (opts->input_path == NULL) {
        rc = agent_ckpt_load(&a->ckpts, dir);
    }
    if (rc != 0 && !opts->dry_run) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "cannot read checkpoints in %s: %s", dir,
                 trib_strerror(rc));
        return rc;
    }
    if (opts->input_path != NULL) {
        rc = open_test_input(a);
        if (rc != 0) {
            return rc;
        }
    }
    rc = agent_spool_start(a);
    if (rc != 0) {
        return rc;
    }
    if (pipe2(a->rk_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        return -errno;
    }
    rc = uv_loop_init(&a->loop);
    if (rc != 0) {
        return rc;
    }
    a->loop_ok = true;
    uv_timer_init(&a->loop, &a->tick);
    uv_timer_init(&a->loop, &a->ckpt_timer);
    uv_idle_init(&a->loop, &a->work);
    uv_poll_init(&a->loop, &a->rk_poll, a->rk_pipe[0]);
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    uv_signal_init(&a->loop, &a->sighup);
    a->tick.data = a->ckpt_timer.data = a->work.data = a->rk_poll.data = a;
    a->sigterm.data = a->sigint.data = a->sighup.data = a;
    a->host = (agent_input_host_t){
        .loop = &a->loop,
        .st = &a->st,
        .ckpts = &a->ckpts,
        .out = a->out,
        .tail_owner = a->tail_owner,
        .dry_run = a->opts.dry_run,
        .input_path = a->opts.input_path != NULL ? a->input_path : NULL,
        .paused = &a->paused,
        .arg = a,
        .running = host_running,
        .kick = host_kick,
        .tick_now = host_tick_now,
        .spool = host_spool,
    };
    if (agent_tails_new(&a->tails, &a->host) != 0 || agent_syslogs_new(&a->syslogs) != 0) {
        return -ENOMEM;
    }
    a->host.tails = a->tails;
    a->host.syslogs = a->syslogs;
    return 0;
}

/*
 * Preflight (agents-and-sinks.md §2.5): the descriptor limit is raised to
 * its hard limit, and a limit below what max_open_files allows is logged.
 */
static void preflight(agent_t *a)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t want = 64;
    agent_conf_t *k = &a->cfg->conf;
    for (size_t i = 0; i < k->npipelines; i++) {
        for (size_t j = 0; j < k->pipelines[i].ninputs; j++) {
            const agent_input_conf_t *c = &k->pipelines[i].inputs[j];
            want += c->type == AGENT_INPUT_TAIL ? c->max_open_files : c->max_connections;
        }
    }
    if ((uint64_t)rl.rlim_cur < want) {
        TRIB_LOG(TRIB_LOG_WARN, "agent",
                 "RLIMIT_NOFILE is %llu but the inputs may open %llu files: raise LimitNOFILE "
                 "(systemd) or lower max_open_files",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)want);
    }
    FILE *fp = fopen("/proc/sys/fs/inotify/max_user_watches", "r");
    unsigned long watches = 0;
    if (fp != NULL) {
        if (fscanf(fp, "%lu", &watches) != 1) {
            watches = 0;
        }
        fclose(fp);
    }
    if (watches > 0 && watches < 1024) {
        TRIB_LOG(TRIB_LOG_WARN, "agent",
                 "fs.inotify.max_user_watches is %lu: directories may fall back to polling",
                 watches);
    }
    /* a stream connection holds at most one message being framed */
    uint64_t conn_bytes = 0;
    for (size_t i = 0; i < k->npipelines; i++) {
        for (size_t j = 0; j < k->pipelines[i].ninputs; j++) {
            const agent_input_conf_t *c = &k->pipelines[i].inputs[j];
            if (c->type == AGENT_INPUT_SYSLOG && c->mode != AGENT_SYSLOG_MODE_UDP &&
                c->mode != AGENT_SYSLOG_MODE_UNIX_DGRAM) {
                conn_bytes += c->max_connections * (c->max_message_bytes + 4096);
            }
        }
    }
    uint64_t inflight = agent_conf_max_inflight(k);
    if (conn_bytes + inflight > k->agent.memory_limit) {
        TRIB_LOG(TRIB_LOG_WARN, "agent",
                 "syslog stream inputs may hold up to %llu bytes (max_connections x "
                 "max_message_bytes) besides %llu in flight: more than memory_limit (%llu) if "
                 "every connection sends a message that long at once",
                 (unsigned long long)conn_bytes, (unsigned long long)inflight,
                 (unsigned long long)k->agent.memory_limit);
    }
}

int agent_run(agent_t *a)
{
    signal(SIGPIPE, SIG_IGN);
    a->started_ms = agent_wall_ms();
    preflight(a);
    if (build_pipelines(a) != 0) {
        return 1;
    }
    if (start_output(a) != 0) {
        free_pipelines(a);
        return 1;
    }
    if (agent_http_start(a) != 0) {
        agent_output_stop(a->out, 0);
        free_pipelines(a);
        return 1;
    }
    uv_poll_start(&a->rk_poll, UV_READABLE, rk_poll_cb);
    uv_signal_start(&a->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&a->sigint, signal_cb, SIGINT);
    uv_signal_start(&a->sighup, signal_cb, SIGHUP);
    int64_t ci = a->cfg->conf.agent.checkpoint_interval_ms;
    uv_timer_start(&a->ckpt_timer, ckpt_cb, (uint64_t)ci, (uint64_t)ci);
    if (start_inputs(a) != 0) {
        a->exit_code = a->exit_code ? a->exit_code : 1;
        begin_stop(a);
    }
    TRIB_LOG(TRIB_LOG_INFO, "agent", "running: %zu pipelines, state in %s%s", a->npipes,
             a->state_dir, a->opts.dry_run ? " (dry run)" : "");
    uv_run(&a->loop, UV_RUN_DEFAULT);
    return a->exit_code;
}

int agent_free(agent_t *a)
{
    int status = 0;
    if (a == NULL) {
        return 0;
    }
    if (a->loop_ok) {
        agent_http_stop(a);
        /* listeners and timers of inputs close through the loop */
        a->keep_listeners = false;
        free_pipelines(a);
        agent_syslogs_release_kept(a->syslogs);
        /* handles were initialised: close any still open (an early failure) */
        if (!uv_is_closing((uv_handle_t *)&a->tick)) {
            uv_close((uv_handle_t *)&a->tick, close_cb);
            uv_close((uv_handle_t *)&a->ckpt_timer, close_cb);
            uv_close((uv_handle_t *)&a->work, close_cb);
            uv_close((uv_handle_t *)&a->rk_poll, close_cb);
            uv_close((uv_handle_t *)&a->sigterm, close_cb);
            uv_close((uv_handle_t *)&a->sigint, close_cb);
            uv_close((uv_handle_t *)&a->sighup, close_cb);
            agent_tails_close(a->tails);
        }
        {
            uv_run(&a->loop, UV_RUN_DEFAULT);
            status = uv_loop_close(&a->loop);
            if (status != 0) {
                TRIB_LOG(TRIB_LOG_ERROR, "agent", "the loop still had handles at exit");
            }
        }
    }
    a->keep_listeners = false;
    free_pipelines(a);
    agent_syslogs_release_kept(a->syslogs);
    agent_output_free(a->out);
    agent_spool_stop(a);
    agent_ckpt_clear(&a->ckpts);
    agent_tails_free(a->tails);
    agent_syslogs_free(a->syslogs);
    for (int i = 0; i < 2; i++) {
        if (a->rk_pipe[i] >= 0) {
            close(a->rk_pipe[i]);
        }
    }
    if (a->lock_fd >= 0) {
        close(a->lock_fd);
    }
    if (a->input_fd >= 0) {
        close(a->input_fd);
    }
    while (a->istats != NULL) {
        agent_input_stats_t *s = a->istats;
        a->istats = s->next;
        free(s->pipeline);
        free(s->input);
        free(s);
    }
    free(a->state_dir);
    free(a->http_addr);
    agent_sbuf_fini(&a->line);
    free(a);
    return status;
}

agent_config_t *agent_take_config(agent_t *a)
{
    agent_config_t *c = a->cfg;
    a->cfg = NULL;
    return c;
}
