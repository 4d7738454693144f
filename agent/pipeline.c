/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A pipeline's processing (see pipeline.h): the one place where an event
 * is parsed, filtered and rendered, whichever input it came from.
 *
 * A parse step that fails marks the event parse_error (parse/parse.h);
 * on_parse_error then keeps it, drops it (counted) or sends it to
 * parse_error_topic. Filters run after the parse steps; the first that
 * refuses the event ends it (counted as filtered).
 */
#include "pipeline.h"

#include <errno.h>
#include <string.h>

#include "filter/filter.h"
#include "parse/parse.h"

static int quote(agent_sbuf_t *b, const char *s)
{
    b->len = 0;
    agent_sbuf_putc(b, '"');
    agent_sbuf_json_str(b, s, strlen(s));
    agent_sbuf_putc(b, '"');
    return b->err;
}

int agent_pipeline_init(agent_pipeline_t *pl, const agent_pipeline_conf_t *conf,
                        const agent_conf_t *k, agent_stats_t *st)
{
    memset(pl, 0, sizeof(*pl));
    pl->conf = conf;
    pl->st = st;
    pl->headers = k->output.headers;
    pl->event_id = k->output.event_id;
    pl->topic_fixed = strchr(conf->topic, '{') == NULL;
    pl->topic_len = strlen(conf->topic);
    if (quote(&pl->jhost, k->agent.hostname) != 0 || quote(&pl->jagent, k->agent.id) != 0) {
        return -ENOMEM;
    }
    return 0;
}

void agent_pipeline_fini(agent_pipeline_t *pl)
{
    agent_sbuf_fini(&pl->jhost);
    agent_sbuf_fini(&pl->jagent);
    agent_sbuf_fini(&pl->scratch);
    agent_sbuf_fini(&pl->val);
    agent_sbuf_fini(&pl->key);
    agent_sbuf_fini(&pl->topic);
}

int agent_event_begin(agent_event_t *ev, agent_pipeline_t *pl, const agent_input_conf_t *ic,
                      int64_t ts_ms, const char *source, size_t slen, bool source_json,
                      const char *msg, size_t len, size_t reserve)
{
    ev->nfields = 0;
    ev->partial = false;
    ev->ts_ms = ts_ms;
    ev->tz_local = ic->tz_local;
    ev->tz_offset_s = ic->tz_offset_s;
    pl->scratch.len = 0;
    if (agent_sbuf_reserve(&pl->scratch, reserve) != 0) {
        return -ENOMEM;
    }
    ev->scratch = &pl->scratch;
    ev->has_id = false;
    /* the fixed fields: host and agent pre-rendered as JSON strings */
    ev->fields[0] = (agent_field_t){"host", 4, pl->jhost.p, pl->jhost.len, true, true};
    ev->fields[1] = (agent_field_t){"agent", 5, pl->jagent.p, pl->jagent.len, true, true};
    ev->fields[2] = (agent_field_t){"source", 6, source, slen, source_json, true};
    ev->nfields = 3;
    if (msg != NULL) {
        ev->fields[3] = (agent_field_t){"message", 7, msg, len, false, true};
        ev->nfields = 4;
    }
    return 0;
}

int agent_pipeline_process(agent_pipeline_t *pl, agent_event_t *ev, const agent_source_t *src,
                           agent_msg_t *out, bool *out_routed)
{
    const agent_pipeline_conf_t *pc = pl->conf;
    bool routed = false;
    size_t failed = agent_parse_all(pc, ev);
    if (failed > 0) {
        pl->st->parse_failures += failed;
        src->ist->parse_failures++;
        if (pc->on_parse_error == AGENT_ON_PARSE_ERROR_DROP) {
            src->ist->parse_dropped++;
            return 1;
        }
        routed = pc->on_parse_error == AGENT_ON_PARSE_ERROR_ROUTE;
    }
    for (size_t i = 0; i < pc->nfilters; i++) {
        if (!agent_filter_apply(&pc->filters[i], ev)) {
            pl->st->events_filtered++;
            src->ist->filtered++;
            return 1;
        }
    }
    pl->val.len = 0;
    agent_event_render(ev, &pl->val);
    pl->key.len = 0;
    if (pc->key[0] != '\0') {
        agent_template_render(ev, pc->key, false, &pl->key);
    }
    /* the topic: the configuration's own string when it has no template
       fields (no copy per event) */
    const char *topic = pc->topic;
    size_t topic_len = pl->topic_len;
    if (routed || !pl->topic_fixed) {
        pl->topic.len = 0;
        if (routed) {
            agent_sbuf_puts(&pl->topic, pc->parse_error_topic);
        } else {
            agent_template_render(ev, pc->topic, true, &pl->topic);
        }
        agent_sbuf_putc(&pl->topic, '\0');
        pl->topic.len--;
        topic = pl->topic.p;
        topic_len = pl->topic.len;
    }
    if (pl->val.err || pl->key.err || pl->topic.err) {
        return -EAGAIN;
    }
    out->topic = topic;
    out->topic_len = topic_len;
    out->topic_fixed = pl->topic_fixed && !routed;
    out->key = pl->key.len > 0 ? pl->key.p : NULL;
    out->key_len = pl->key.len;
    out->value = pl->val.p;
    out->value_len = pl->val.len;
    out->ts_ms = ev->ts_ms;
    out->nhdrs = 0;
    out->hdr_names_cstr = true;
    if (pl->headers) {
        out->hdrs[0] = (agent_msg_hdr_t){"source_type", 11, src->type, strlen(src->type)};
        out->hdrs[1] = (agent_msg_hdr_t){src->hdr, strlen(src->hdr), src->name, strlen(src->name)};
        out->nhdrs = 2;
    }
    if (pl->event_id && ev->has_id) {
        agent_event_id_hex(ev->id, pl->idhex);
        out->hdrs[out->nhdrs++] =
            (agent_msg_hdr_t){"event.id", 8, pl->idhex, 2 * AGENT_EVENT_ID_LEN};
    }
    *out_routed = routed;
    return 0;
}
