/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: a YAML configuration file, loaded against the config
 * tests' collector-shaped schema (tests/config/test_schema.c), with the
 * errors formatted and, when it loads, the effective config dumped.
 *
 * Sets fuzz_input_valid when the input loaded without errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tributary/config.h"

#include "test_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conf_t conf;
    trib_config_t *cfg = NULL;
    memset(&conf, 0, sizeof(conf));
    int rc =
        trib_config_load_string(&cfg, "fuzz.yaml", (const char *)data, size, test_conf_opts, &conf);
    FILE *devnull = fopen("/dev/null", "w");
    if (cfg && devnull) {
        if (rc == 0) {
            trib_config_dump(devnull, test_conf_opts, &conf, TRIB_CONFIG_DUMP_DESC);
            for (size_t i = 0; i < conf.nsinks; i++) {
                if (conf.sinks[i].type != 0) { /* only "file" sinks have a plugin schema */
                    continue;
                }
                file_sink_conf_t fs;
                memset(&fs, 0, sizeof(fs));
                trib_config_apply_map(cfg, &conf.sinks[i].options, "sinks[].options",
                                      test_file_sink_opts, &fs);
            }
        }
        trib_config_print_errors(cfg, devnull);
    }
    if (devnull) {
        fclose(devnull);
    }
    int errors = cfg ? (int)trib_config_error_count(cfg) : 1;
    trib_config_free(cfg);
    fuzz_input_valid = rc == 0 && errors == 0;
    return 0;
}
