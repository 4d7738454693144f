/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_check: loads a YAML file against a representative schema (shaped
 * like the collector's: listen address, data_dir, node_id, storage, sinks
 * with batches and pass-through options, auth with a secret, log) and
 * prints the errors, compiler-style, or the effective configuration.
 *
 *   config_check FILE                     errors to stdout; exit 1 if any
 *   config_check --dump FILE              effective config (exit 1 on errors)
 *   config_check --describe FILE          the same with each option's description
 *   config_check --expect EXPECTED FILE   exit 0 iff FILE has errors and they
 *                                         are exactly EXPECTED's lines
 *   config_check --expect-dump DUMP FILE  exit 0 iff FILE loads and its dump
 *                                         is exactly DUMP
 *
 * Sinks of type "file" have their `options` map validated against a
 * plugin-style schema with trib_config_apply_map(), as the sink host will.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/config.h"

#include "test_schema.h"

/* Reads a whole file into a malloc'd string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "config_check: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096;
    size_t len = 0;
    char *s = malloc(cap);
    while (s) {
        size_t n = fread(s + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
        if (len + 1 == cap) {
            char *ns = realloc(s, cap * 2);
            if (!ns) {
                free(s);
                s = NULL;
                break;
            }
            s = ns;
            cap *= 2;
        }
    }
    fclose(f);
    if (s) {
        s[len] = '\0';
    }
    return s;
}

/* Runs fn(fp) into memory and returns the text. */
static char *capture(trib_config_t *cfg, const conf_t *conf, bool dump)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp) {
        return NULL;
    }
    if (dump) {
        trib_config_dump(fp, test_conf_opts, conf, 0);
    } else {
        trib_config_print_errors(cfg, fp);
    }
    fclose(fp);
    return text;
}

static int compare(const char *what, const char *expected_path, const char *got)
{
    char *want = slurp(expected_path);
    if (!want) {
        return 2;
    }
    int rc = strcmp(want, got) == 0 ? 0 : 1;
    if (rc) {
        printf("%s differ from %s\n--- expected\n%s--- got\n%s---\n", what, expected_path, want,
               got);
    }
    free(want);
    return rc;
}

/* The dump must load back and dump the same again. */
static int reload_same(const char *dump)
{
    conf_t again;
    trib_config_t *cfg = NULL;
    int rc = trib_config_load_string(&cfg, "<dump>", dump, strlen(dump), test_conf_opts, &again);
    if (rc != 0) {
        printf("the dump does not load back:\n");
        trib_config_print_errors(cfg, stdout);
        trib_config_free(cfg);
        return 1;
    }
    char *second = capture(cfg, &again, true);
    rc = second && strcmp(second, dump) == 0 ? 0 : 1;
    if (rc) {
        printf("the dump changes when loaded back:\n%s", second ? second : "");
    }
    free(second);
    trib_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *expect = NULL;
    const char *expect_dump = NULL;
    bool dump = false;
    unsigned dump_flags = 0;
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--dump") == 0) {
            dump = true;
        } else if (strcmp(argv[i], "--describe") == 0) {
            dump = true;
            dump_flags = TRIB_CONFIG_DUMP_DESC;
        } else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) {
            expect = argv[++i];
        } else if (strcmp(argv[i], "--expect-dump") == 0 && i + 1 < argc) {
            expect_dump = argv[++i];
        } else {
            break;
        }
    }
    if (i + 1 != argc) {
        fprintf(stderr,
                "usage: config_check [--dump | --describe] [--expect ERRORS | --expect-dump DUMP] "
                "FILE\n");
        return 2;
    }

    conf_t conf;
    trib_config_t *cfg = NULL;
    int rc = trib_config_load_file(&cfg, argv[i], test_conf_opts, &conf);
    if (rc == -ENOMEM) {
        fprintf(stderr, "config_check: out of memory\n");
        trib_config_free(cfg);
        return 2;
    }
    /* The plugin host's step: validate each file sink's options. */
    for (size_t s = 0; s < conf.nsinks; s++) {
        if (conf.sinks[s].type == 0) {
            char where[64];
            file_sink_conf_t fs;
            snprintf(where, sizeof(where), "sinks[%zu].options", s);
            trib_config_apply_map(cfg, &conf.sinks[s].options, where, test_file_sink_opts, &fs);
        }
    }
    bool failed = trib_config_error_count(cfg) > 0;

    int status;
    if (expect) {
        char *got = capture(cfg, &conf, false);
        status = !failed ? (printf("expected errors, but %s loads\n", argv[i]), 1)
                         : compare("errors", expect, got ? got : "");
        free(got);
    } else if (expect_dump) {
        if (failed) {
            trib_config_print_errors(cfg, stdout);
            status = 1;
        } else {
            char *got = capture(cfg, &conf, true);
            status = compare("dump", expect_dump, got ? got : "");
            if (status == 0) {
                status = reload_same(got);
            }
            free(got);
        }
    } else {
        trib_config_print_errors(cfg, stdout);
        if (dump && !failed) {
            trib_config_dump(stdout, test_conf_opts, &conf, dump_flags);
        }
        status = failed ? 1 : 0;
    }
    trib_config_free(cfg);
    return status;
}
