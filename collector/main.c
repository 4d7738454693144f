/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-collector: the broker daemon's entry point.
 *
 * This build parses the command line and reports versions; the broker
 * itself (listeners, storage, APIs) lands with the broker issue.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "tributary/version.h"

static void usage(FILE *out)
{
    fputs("Usage: tributary-collector [OPTIONS]\n"
          "\n"
          "The Tributary collector: a partitioned log broker that speaks the Apache\n"
          "Kafka wire protocol and hosts sink plugins.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE       read configuration from FILE (YAML)\n"
          "      --listen HOST:PORT  listen address (default 127.0.0.1:9092)\n"
          "      --advertise HOST:PORT  address given to clients in metadata\n"
          "      --data-dir DIR      data directory (default ./tributary-data)\n"
          "      --node-id N         this node's id (default 1)\n"
          "      --metrics HOST:PORT serve Prometheus metrics and health here\n"
          "      --check-config      validate the configuration and exit\n"
          "  -h, --help              show this help and exit\n"
          "  -V, --version           show versions and exit\n",
          out);
}

int main(int argc, char **argv)
{
    enum { OPT_LISTEN = 256, OPT_ADVERTISE, OPT_DATA_DIR, OPT_NODE_ID, OPT_METRICS, OPT_CHECK };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"advertise", required_argument, NULL, OPT_ADVERTISE},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"node-id", required_argument, NULL, OPT_NODE_ID},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            trib_version_print(stdout, "tributary-collector");
            printf("  %s\n", OpenSSL_version(OPENSSL_VERSION));
            return 0;
        case 'c':
        case OPT_LISTEN:
        case OPT_ADVERTISE:
        case OPT_DATA_DIR:
        case OPT_NODE_ID:
        case OPT_METRICS:
        case OPT_CHECK:
            break;
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
    fputs("tributary-collector: the broker is not part of this build yet\n", stderr);
    return 1;
}
