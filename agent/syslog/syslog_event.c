/* SPDX-License-Identifier: Apache-2.0 */
/* Syslog message -> event fields (see syslog_event.h). */
#include "syslog/syslog_event.h"

#include <string.h>

#include "syslog/syslog.h"

static void set_str(agent_event_t *ev, const char *name, size_t nlen, agent_syslog_str_t v)
{
    if (v.p != NULL) {
        (void)agent_event_set(ev, name, nlen, v.p, v.n, false);
    }
}

int agent_syslog_to_event(agent_event_t *ev, const char *s, size_t n)
{
    agent_syslog_opts_t o = {.now_ms = ev->ts_ms,
                             .tz = {.local = ev->tz_local, .offset = ev->tz_offset_s}};
    agent_syslog_msg_t m;
    int rc = agent_syslog_parse(s, n, &o, &m);
    const char *fac = agent_syslog_facility_name(m.facility);
    const char *sev = agent_syslog_severity_name(m.severity);
    if (fac != NULL) {
        (void)agent_event_set(ev, "facility", 8, fac, strlen(fac), false);
    }
    if (sev != NULL) {
        (void)agent_event_set(ev, "severity", 8, sev, strlen(sev), false);
    }
    if (m.pri >= 0 && ev->scratch != NULL && ev->scratch->cap - ev->scratch->len >= 4) {
        /* the number's text lives in the scratch buffer, which never moves
           while an event is built */
        agent_sbuf_t *sc = ev->scratch;
        char *dst = sc->p + sc->len;
        size_t k = 0;
        int v = m.pri;
        char tmp[4];
        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0 && k < sizeof(tmp));
        for (size_t i = 0; i < k; i++) {
            dst[i] = tmp[k - 1 - i];
        }
        sc->len += k;
        (void)agent_event_set(ev, "pri", 3, dst, k, true);
    }
    set_str(ev, "hostname", 8, m.hostname);
    set_str(ev, "app", 3, m.app);
    set_str(ev, "procid", 6, m.procid);
    set_str(ev, "msgid", 5, m.msgid);
    if (m.sd.p != NULL) {
        /* as JSON in the scratch buffer when it has room, else as its text */
        agent_sbuf_t *sc = ev->scratch;
        long k = -1;
        if (sc != NULL && sc->cap - sc->len >= m.sd.n * 6 + 2) {
            k = agent_syslog_sd_json(m.sd.p, m.sd.n, sc->p + sc->len, sc->cap - sc->len);
        }
        if (k >= 0) {
            (void)agent_event_set(ev, "structured_data", 15, sc->p + sc->len, (size_t)k, true);
            sc->len += (size_t)k;
        } else {
            set_str(ev, "structured_data", 15, m.sd);
        }
    }
    if (rc == 0) {
        (void)agent_event_set(ev, "message", 7, m.msg.p, m.msg.n, false);
    }
    if (m.has_ts) {
        ev->ts_ms = m.ts_ms;
    }
    return rc;
}
