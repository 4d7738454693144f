/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one mapping of a syslog message to event fields, used by the syslog
 * input and by the `parse: [{type: syslog}]` step alike, so that a line
 * gets the same fields whichever way it arrives.
 */
#ifndef TRIBUTARY_AGENT_SYSLOG_EVENT_H
#define TRIBUTARY_AGENT_SYSLOG_EVENT_H

#include <stddef.h>

#include "event.h"

/*
 * Parses s[0..n) as RFC 5424 or RFC 3164 (syslog/syslog.h) and sets on ev:
 *
 *   facility, severity   the keywords of the PRI ("user", "notice" when the
 *                        message has none, as RFC 3164 §4.3.3 says)
 *   pri                  the PRI as a number, when the message has one
 *   hostname, app, procid, msgid
 *   structured_data      a JSON object {"id": {"param": "value"}} (its text
 *                        when the event's scratch buffer has no room)
 *   message              the free-form part (only when well formed)
 *   @timestamp           the message's time, when it has one
 *
 * A timestamp without a zone is read in the event's zone (ev->tz_local,
 * ev->tz_offset_s: the input's `timezone`); a missing year is inferred from
 * ev->ts_ms, the time the event was read. Returns 0 when the message is
 * well formed, 1 when it is not: then the fields recognised are set and
 * the message is left as it was.
 */
int agent_syslog_to_event(agent_event_t *ev, const char *s, size_t n);

#endif
