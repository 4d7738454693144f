/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink plugins from the command line, outside the running host:
 * tributary-collector --list-sinks, --describe-sink NAME and
 * --check-config --connect. Each plugin documents itself from its own
 * descriptor (tributary/sink.h): the option schema's rows (name, type,
 * default, range, description) and its `details` text.
 */
#ifndef COLLECTOR_SINKS_ADMIN_H
#define COLLECTOR_SINKS_ADMIN_H

#include <stdio.h>

#include "sinks/sinks.h"

/* One line per plugin found on the search path: type, description, file. 0 or an error. */
int coll_sinks_list(FILE *out);

/* Every option of plugin `type`, then its details. 0, or TRIB_ENOT_FOUND (said on err). */
int coll_sinks_describe(FILE *out, FILE *err, const char *type);

/*
 * For each configured sink: opens an instance with its options (which
 * must have passed coll_sinks_check) and runs the plugin's probe: connect
 * to the target and check what writes need (the table, its columns and
 * key), writing nothing. One line per sink on out ("ok" or the actionable
 * error); returns the number of sinks that failed, or a negative error.
 */
int coll_sinks_probe(FILE *out, trib_config_t *cfg, const coll_sink_conf_t *sinks, size_t n);

#endif
